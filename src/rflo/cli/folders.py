"""A training command's run, before it trains: its settings (flags, then
``--config``), the checks that refuse a run before anything is made (rules,
seeds, ``--init``, memory), and its folder (a new one, locked and cleared, or
the killed run that ``--resume`` continues) as a :class:`rflo.session.Session`."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from rflo.cli.common import SETTING_KEYS, UserError, rule_lr, seeds, spec

__all__ = [
    "Plan",
    "plan",
    "default_out",
    "apply_config",
    "check_rules",
    "check_memory",
    "check_init",
    "check_seeds",
    "open_session",
    "load_for_task",
    "RESUMABLE",
]

#: the settings a resumed run takes from its folder
RESUMABLE = SETTING_KEYS + ("rules", "rule", "init", "rule_lr")


class Plan(NamedTuple):
    """What the settings of a training run build: its task, cell and optimiser."""

    task: object
    cell: object
    optimizer: object


def default_out(out, kind):
    """``--out``, or a new folder under ./runs named by the time and the command."""
    if out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{stamp}-{kind}"
        i = 1
        while out.exists():
            i += 1
            out = Path("runs") / f"{stamp}-{kind}-{i}"
    return Path(out)


def apply_config(args):
    """Fill the settings not given as flags from ``--config`` (flags win)."""
    from rflo import runconfig

    if getattr(args, "config", None) is None:
        return
    try:
        cfg = runconfig.read_config(args.config)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    given = getattr(args, "given", set())
    for key, value in cfg.items():
        if key == "set":
            flags = runconfig.parse_set(args.set) if "set" in given else {}
            args.set = [f"{k}={json.dumps(v)}" for k, v in {**value, **flags}.items()]
        elif key not in given and hasattr(args, key):
            setattr(args, key, Path(value) if key == "init" else value)
        elif key not in given and key in ("rule", "rules"):
            raise UserError(
                f"{args.config}: {key!r} is for 'rflo {'train' if key == 'rule' else 'compare'}'"
            )


def plan(args) -> Plan:
    """Build (and so check) the run's task, cell and optimiser from its settings."""
    from rflo import runconfig
    from rflo.session import build

    try:
        params = runconfig.parse_set(args.set) if isinstance(args.set, list) else dict(args.set)
        args.set = params
        return Plan(*build(spec(args)))
    except ValueError as exc:
        raise UserError(str(exc)) from None


def check_rules(names, online, flag="--rules"):
    """The rules' names, checked: known, able to learn online if asked, not twice."""
    from rflo.rules import get_rule

    rules = []
    for n in names:
        try:
            r = get_rule(n)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if online and not r.online:
            online_ok = (
                [m for m in names if get_rule(m).online] if all(_known(m) for m in names) else []
            )
            if flag == "--rule":
                online_ok = ["rflo"]
            raise UserError(
                f"rule {r.name!r} cannot learn online; drop --online or use "
                f"{flag} {' '.join(online_ok) or 'rflo rtrl'}"
            )
        if r.name in rules:
            raise UserError(f"rule {r.name!r} given twice")
        rules.append(r.name)
    return rules


def _known(name):
    from rflo.rules import get_rule

    try:
        get_rule(name)
        return True
    except ValueError:
        return False


def check_memory(args, rules, task, cell=None):
    """Refuse, before any folder or array is made, a run that cannot fit (and,
    for a ``cell`` that owns its synapses, rates or rules that do not fit it)."""
    from rflo.segments import check_run

    try:
        check_run(spec(args), task, cell, rules, lambda name: rule_lr(args, name))
    except ValueError as exc:
        raise UserError(str(exc)) from None


def check_init(args):
    """--init starts from a saved network: refuse the settings that draw one."""
    if getattr(args, "init", None) is None:
        return
    given = getattr(args, "given", set())
    for key in ("dale", "connectivity"):
        if key in given and getattr(args, key) is not None:
            raise UserError(
                f"--{key} draws a new network; --init starts from a saved one (drop one of them)"
            )


def check_seeds(args):
    """--seeds trains an ensemble: refuse what only makes sense for one network."""
    chosen = seeds(args)
    if chosen is None:
        return
    given = getattr(args, "given", set())
    if "seed" in given:
        raise UserError(
            "give --seed N (one network) or --seeds N ... (one network per seed), not both"
        )
    if len(set(chosen)) != len(chosen):
        raise UserError(f"--seeds lists a seed twice: {chosen}")
    if getattr(args, "init", None) is not None:
        raise UserError(
            "--init starts one network; with --seeds each network is drawn from "
            "its seed (drop one of them)"
        )
    if getattr(args, "save", None) is not None:
        raise UserError(
            "--save writes one network; an ensemble's networks are in the run "
            "folder as RULE.seedS.npz (drop --save)"
        )


def load_for_task(path, task, dtype):
    """A saved network that fits ``task``."""
    from rflo.session import load_for_task

    try:
        return load_for_task(path, task, dtype)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def open_session(args, kind, rules, network=None):
    """The run's :class:`rflo.session.Session`: a new one (its folder locked and
    cleared, its initial network drawn and saved), or on --resume the saved
    run's, whose settings ``args`` then take."""
    from rflo.session import Session, open_saved

    if args.resume is None:
        try:
            return Session.start(
                spec(args),
                default_out(args.out, kind),
                rules=rules,
                command=kind,
                rule_lr=getattr(args, "rule_lr", None),
                network=network,
                overwrite=args.overwrite,
            )
        except ValueError as exc:
            raise UserError(str(exc)) from None
    try:
        out, lock, saved = open_saved(args.resume)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        if saved.get("command") != kind:
            raise UserError(f"{out} is a '{saved.get('command')}' run; resume it with that command")
        _check_resume_flags(args, saved, out)
        for k in RESUMABLE:
            if k in saved:
                setattr(args, k, saved[k] if k != "init" or saved[k] is None else Path(saved[k]))
        session = Session.reopen(spec(args), out, lock, saved)
    except ValueError as exc:
        lock.release()
        raise UserError(str(exc)) from None
    except BaseException:
        lock.release()
        raise
    if not args.quiet:
        print(f"resuming {out}", file=sys.stderr)
    return session


def _check_resume_flags(args, saved, out):
    """--resume continues a run with its own settings: a flag that says
    otherwise is an error, except ``--trials N`` above the run's (it extends the
    run, and is saved as its new length)."""
    from rflo import checkpoint

    given = getattr(args, "given", set())
    if "out" in given and Path(args.out).resolve() != out.resolve():
        raise UserError(f"--resume {out} writes into {out}; drop --out {args.out}")
    for k in sorted(given & set(RESUMABLE)):
        mine = getattr(args, k)
        if k == "set":
            from rflo import runconfig

            mine = runconfig.parse_set(mine)
        mine = list(mine) if isinstance(mine, (list, tuple)) else mine
        mine = str(mine) if isinstance(mine, Path) else mine
        theirs = saved.get(k)
        if k == "trials" and mine > theirs:
            saved["trials"] = mine
            checkpoint.save_settings(out, {k: v for k, v in saved.items() if k != "format"})
            continue
        if k == "trials" and mine < theirs:
            raise UserError(
                f"--trials {mine} is fewer than the run's {theirs}; --resume can only extend a run"
            )
        if mine != theirs:
            flag = "--" + k.replace("_", "-")
            raise UserError(
                f"{flag} {mine} conflicts with the run's {theirs!r}: --resume "
                "continues a run with its own settings (start a new run with "
                "another --out to change them)"
            )
