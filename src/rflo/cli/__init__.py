"""The ``rflo`` command line.

    rflo compare              the seed notebook's experiment (BPTT vs RFLO on the periodic task)
    rflo train --rule NAME    one rule on one task, optionally from/to a saved network
    rflo eval NET.npz         run a saved network with learning off and plot it
    rflo plot RESULTS         redraw the figures of a results folder
    rflo sweep ...            many networks over a grid of settings (rflo.sweep.cli)

User errors (bad arguments, unreadable files) print one line and exit with
status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np


__all__ = ["main"]

#: the periodic task's default period (its steps per trial), for ``rflo eval``
EVAL_PERIOD = 100

#: learning rates (in, rec, out) of ``rflo compare`` without ``--lr``: each rule's
#: best on the default experiment (periodic task, 50 units, 10,000 offline trials,
#: networks of seeds 0-4) among 0.01, 0.03, 0.1, 0.3 and 1 that did not diverge:
#: median final loss BPTT 3.8e-5 at 0.3 (1 diverged 5 of 5), RFLO 5.0e-4 at 0.03
#: (0.1 diverged 2 of 5); RTRL is BPTT's gradient.  Other rules: the seed's 0.03.
TUNED_LR = {"bptt": (0.0, 0.3, 0.3), "rtrl": (0.0, 0.3, 0.3), "rflo": (0.0, 0.03, 0.03)}

#: subcommands provided by other modules, each with ``main(argv) -> int``
EXTERNAL = {
    "figure2": ("rflo.paper.figure2", "reproduce Murray (2019) Figure 2 and its Dale supplement"),
    "figure2-supplements": ("rflo.paper.figure2_supplements", "reproduce Murray (2019) Figure "
                            "2's supplements 2 and 3 (which weights, network size, gain)"),
    "figure3": ("rflo.paper.figure3", "reproduce Murray (2019) Figure 3 (interval matching)"),
    "figure4": ("rflo.paper.figure4", "reproduce Murray (2019) Figure 4 (a loop chains short "
                                      "syllables into a long sequence)"),
    "gradients": ("rflo.gradients", "gradient quality of each rule against the exact gradient"),
    "task": ("rflo.tasks.cli", "show the built-in tasks"),
    "sweep": ("rflo.sweep.cli", "train many networks over a grid of settings into one table"),
}


class UserError(Exception):
    """A problem with the command's input; reported without a traceback."""


# --------------------------------------------------------------------------
# argument parsing


def _positive_int(text):
    from rflo.spec_flags import converters as _converters

    return _converters()["positive_int"](text)


def _add_common(p, *, out_help, command="train"):
    """The run's settings (one option per field of :class:`rflo.spec.RunSpec`)
    and the command's own options (folder, config, output)."""
    from rflo.spec import cli_options

    for option, (dest, kw) in cli_options(command).items():
        p.add_argument(option, dest=dest, **kw)
    p.add_argument("--config", type=Path, default=None, metavar="FILE.toml",
                   help="settings from a TOML file (flags override it; every run writes its own "
                        "as RUN/config.toml)")
    p.add_argument("--out", type=Path, default=None, help=out_help)
    p.add_argument("--overwrite", action="store_true", help="allow writing into an existing folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary table")
    p.add_argument("--progress", action="store_true",
                   help="show the progress bar even when stderr is not a terminal")
    p.add_argument("--resume", type=Path, default=None, metavar="FOLDER",
                   help="continue a killed run in FOLDER with its saved settings")


def build_parser():
    from rflo.rules import rule_names

    parser = Parser(
        prog="rflo",
        description="Train recurrent networks with local online learning rules "
                    "(RFLO, Murray 2019, eLife 8:e43299) and the exact methods (BPTT, RTRL).",
    )
    parser.add_argument("--version", action="version", version=f"rflo {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("compare", help="train several rules from one initial network and compare",
                       description="Train one network per rule, all from the same initial "
                                   "network, on one task, and compare their learning curves "
                                   "and outputs (default: BPTT and RFLO on the paper's periodic "
                                   "task).")
    p.add_argument("--rules", nargs="+", default=["bptt", "rflo"], metavar="RULE",
                   help=f"rules to compare (default bptt rflo; any of {', '.join(rule_names())})")
    _add_common(p, out_help="results folder (default: a new folder under ./runs)",
                command="compare")
    p.set_defaults(lr=None)  # each rule its own tuned rates (TUNED_LR) unless --lr says

    p = sub.add_parser("train", help="train one network with one rule",
                       description="Train one network with one learning rule on a task "
                                   "(default: RFLO on the paper's periodic task).")
    p.add_argument("--save", type=Path, default=None, metavar="FILE.npz",
                   help="also write the trained network here")
    _add_common(p, out_help="results folder (default: a new folder under ./runs)")

    p = sub.add_parser("eval", help="run a saved network with learning off and plot it",
                       description="Run a saved network on its task with learning off; print "
                                   "the loss and draw its output against the target.")
    p.add_argument("network", type=Path, help="a network .npz file")
    p.add_argument("--period", type=_positive_int, default=EVAL_PERIOD,
                   help="period of the target (default: the one the network was trained on, "
                        "else 100)")
    p.add_argument("--png", type=Path, default=None,
                   help="figure to write (default: NETWORK.eval.png beside the network)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing figure")

    p = sub.add_parser("plot", help="redraw the figures of a results folder",
                       description="Redraw the figures of a folder written by 'rflo train' or "
                                   "'rflo compare'.")
    p.add_argument("results", type=Path, help="a folder written by 'rflo compare' or 'rflo train'")

    for name, (module, helptext) in EXTERNAL.items():
        try:
            mod = importlib.import_module(module)
        except ImportError:  # pragma: no cover - an optional part missing
            continue
        mod.add_arguments(sub.add_parser(name, help=helptext, description=mod.DESCRIPTION))

    p = sub.add_parser("completion", help="print a shell completion script",
                       description="Print a completion script for bash, zsh or tcsh, e.g. "
                                   "'rflo completion bash > ~/.local/share/bash-completion/"
                                   "completions/rflo' (needs the 'completion' extra: "
                                   "pip install 'rflo[completion]').")
    p.add_argument("shell", choices=("bash", "zsh", "tcsh"))
    return parser


class Parser(argparse.ArgumentParser):
    """argparse with close-match suggestions for a mistyped command or choice."""

    def error(self, message):
        import difflib
        import re

        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            choices = re.findall(r"'?([\w.-]+)'?", m.group(2))
            close = difflib.get_close_matches(m.group(1), choices, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        super().error(message)


def _unknown_options(parser, args, extra):
    """Exit 2 for options the command does not take, naming the closest ones."""
    import difflib

    sub = parser._subparsers._group_actions[0].choices.get(args.command)
    options = [o for a in (sub or parser)._actions for o in a.option_strings]
    words = []
    for item in extra:
        word = item.split("=", 1)[0]
        close = difflib.get_close_matches(word, options, n=1) if word.startswith("-") else []
        words.append(f"{item}" + (f" (did you mean {close[0]}?)" if close else ""))
    (sub or parser).error(f"unrecognized arguments: {' '.join(words)}")


def cmd_completion(args):
    try:
        import shtab
    except ImportError:
        raise UserError("shell completion needs shtab: pip install 'rflo[completion]'") from None
    print(shtab.complete(build_parser(), shell=args.shell))
    return 0


def _given(argv):
    """The destinations of the options the command line names explicitly
    (parsed again with every default suppressed, so abbreviations count)."""
    parser = build_parser()
    for action in parser._subparsers._group_actions:
        for sub in action.choices.values():
            for a in sub._actions:
                a.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv))) - {"command"}


def _version():
    from rflo import __version__

    return __version__


# --------------------------------------------------------------------------
# helpers


def _default_out(out, kind):
    """``--out``, or a new folder under ./runs named by the time and the command."""
    if out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{stamp}-{kind}"
        i = 1
        while out.exists():
            i += 1
            out = Path("runs") / f"{stamp}-{kind}-{i}"
    return Path(out)


def _show_progress(args):
    """``"bar"`` (a terminal, or --progress), ``"lines"`` (no terminal: a line
    every ~10 s) or ``"off"`` (--quiet)."""
    if args.quiet:
        return "off"
    return "bar" if args.progress or sys.stderr.isatty() else "lines"


def _clock(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class RunLog:
    """``RUN/run.log``: one timestamped line per event and progress report
    (appended; a resumed run goes on in the same file)."""

    def __init__(self, folder, run_id):
        self.path = Path(folder) / "run.log"
        self.write(f"run {run_id}: rflo {' '.join(sys.argv[1:])}")

    def write(self, line):
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(f"{datetime.now().isoformat(timespec='seconds')}  {line}\n")


class ProgressBar:
    """Progress of one rule, fed after every segment: a tqdm bar on a terminal,
    else a one-line report every ``RFLO_PROGRESS_EVERY`` seconds (default 10)
    on stderr; the reports also go to the run's log."""

    def __init__(self, rule, total, mode, log=None):
        self.rule, self.total, self.mode, self.log = rule, total, mode, log
        self.bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            # delay: only runs longer than a second get a bar
            self.bar = tqdm(total=total, desc=f"{rule:>8}", unit="trial", file=sys.stderr,
                            delay=0.0 if os.environ.get("RFLO_PROGRESS_NO_DELAY") else 1.0,
                            dynamic_ncols=True, leave=True)
        self.every = float(os.environ.get("RFLO_PROGRESS_EVERY", 10))
        self.done, self.first = 0, None
        self.start = self.last = time.monotonic()

    def __call__(self, done, total, loss):
        if self.first is None:
            self.first = self.done
        if self.bar is not None:
            self.bar.update(done - self.done)
            self.bar.set_postfix_str(f"loss {loss:.3g}", refresh=False)
        self.done = done
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            rate = (done - self.first) / max(now - self.start, 1e-9)
            eta = _clock((total - done) / rate) if rate > 0 else "?"
            line = (f"{self.rule}: {done}/{total} trials ({100 * done / total:.0f}%), "
                    f"loss {loss:.3g}, {rate:.0f} trials/s, ETA {eta}")
            if self.mode == "lines":
                print(line, file=sys.stderr, flush=True)
            if self.log is not None:
                self.log.write(line)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _summary(rows, quiet):
    if quiet:
        return
    head = (f"{'rule':<16} {'lr_rec':>7} {'final loss':>11} {'best loss':>11} {'alignment':>10} "
            f"{'seconds':>8}")
    print(head)
    print("-" * len(head))
    random = set(_random_feedback_rules([r["rule"] for r in rows]))
    for r in rows:  # the alignment with b means something only where errors go through b
        align = f"{r['final_alignment']:>10.3f}" if r["rule"] in random else f"{'-':>10}"
        print(f"{r['rule']:<16} {r['lr_rec']:>7g} {r['final_loss']:>11.4g} {r['best_loss']:>11.4g} "
              f"{align} {r['seconds']:>8.2f}")
    if rows and "networks" in rows[0]:
        print(f"(losses and alignment: the median over the {rows[0]['networks']} networks of "
              "each rule; results.csv has every network)")
        for r in rows:
            if r["diverged"]:
                print(f"{r['rule']}: {len(r['diverged'])} network(s) diverged and were frozen at "
                      f"their last network within the loss limit (seed, trial): {r['diverged']}")


class Plan(NamedTuple):
    """What the settings of a training run build: its task, cell and optimiser."""

    task: object
    cell: object
    optimizer: object


def _apply_config(args):
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
            raise UserError(f"{args.config}: {key!r} is for 'rflo {'train' if key == 'rule' else 'compare'}'")


def _plan(args) -> Plan:
    """Build (and so check) the run's task, cell and optimiser from its settings."""
    from rflo import runconfig
    from rflo.session import build

    try:
        params = runconfig.parse_set(args.set) if isinstance(args.set, list) else dict(args.set)
        args.set = params
        return Plan(*build(_spec(args)))
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _spec(args):
    """The :class:`rflo.spec.RunSpec` of the command's settings."""
    from rflo.spec import RunSpec, config_keys

    data = {k: getattr(args, k) for k in config_keys() if hasattr(args, k)}
    if data.get("init") is not None:
        data["init"] = str(data["init"])
    if isinstance(data.get("set"), list):
        from rflo import runconfig

        data["set"] = runconfig.parse_set(data["set"])
    return RunSpec.from_dict(data, "settings")


def _setting_keys():
    from rflo.spec import config_keys

    return tuple(k for k in config_keys() if k not in ("rule", "init"))


#: the run settings every training command takes (the fields of rflo.spec.RunSpec
#: but the rule and the initial network)
SETTING_KEYS = _setting_keys()


def _settings(args, **extra):
    s = {k: getattr(args, k) for k in SETTING_KEYS if hasattr(args, k)}
    s["lr"] = None if s.get("lr") is None else _plain_rates(s["lr"])
    if getattr(args, "rule_lr", None) is not None:
        s["rule_lr"] = dict(args.rule_lr)
    s.update(extra)
    return s


# the session's parts, where they were (rflo.session has them)
from rflo.segments import (  # noqa: E402,F401
    MAX_SEGMENT, SEGMENT_SECONDS, Diverged, Interrupted, Segments, StopRequest,
)


def _network_files(settings) -> list:
    """How a run names its trained networks after the rule: ``[""]`` (RULE.npz),
    or ``[".seed0", ".seed1", ...]`` for an ensemble's (RULE.seedS.npz)."""
    seeds = settings.get("seeds")
    return [""] if not seeds else [f".seed{s}" for s in seeds]


def _seeds(args):
    """The seeds of an ensemble run (``--seeds``), or None for one network."""
    return getattr(args, "seeds", None)


def _rule_lr(args, name):
    """The rates of rule ``name`` in this run: (in, rec, out), or a dict by
    parameter name."""
    lr = getattr(args, "lr", None)
    if lr is None:
        saved = getattr(args, "rule_lr", None) or {}
        lr = saved.get(name, TUNED_LR.get(name, _default("lr")))
    return dict(lr) if isinstance(lr, dict) else tuple(lr)


def _three(lr):
    """``(lr_in, lr_rec, lr_out)`` of rates: the three, or those of w_in,
    w_rec, w_out among rates by name (0 where not named)."""
    if isinstance(lr, dict):
        return tuple(float(lr.get(n, 0.0)) for n in ("w_in", "w_rec", "w_out"))
    return tuple(float(x) for x in lr)


def _plain_rates(lr):
    """Rates as plain data (a list of three, or a dict by name)."""
    return dict(lr) if isinstance(lr, dict) else list(lr)


def _train_rules(session, args, stop, log):
    """Train each rule of the session; write networks, curves and figures."""
    import rflo
    from rflo import results

    task, net, out, run_id, rules = (session.task, session.network, session.folder,
                                     session.run_id, session.rules)
    seeds = _seeds(args)
    mode = _show_progress(args)

    def progress(rule, total, done):
        bar = ProgressBar(rule, total, mode, log)
        bar.done = done
        return bar

    losses, aligns, outputs, summary, seconds, diverged = {}, {}, {}, [], {}, {}
    for name in rules:
        prog = session.train_rule(name, stop, progress)
        seconds[name] = prog.seconds
        losses[name], aligns[name] = prog.loss, prog.alignment
        if seeds is None:
            log.write(f"{name}: done, {prog.done} trials, final loss {float(prog.loss[-1]):.4g}")
            session.save_networks(name, prog)
            outputs[name] = rflo.evaluate(prog.network, task).y
            summary.append(dict(rule=name, lr_rec=_three(_rule_lr(args, name))[1],
                                final_loss=float(prog.loss[-1]), best_loss=float(prog.loss.min()),
                                final_alignment=float(prog.alignment[-1]),
                                seconds=float(prog.seconds)))
            continue
        diverged[name] = np.asarray(prog.frozen_at) + 1
        members = session.save_networks(name, prog)
        outputs[name] = rflo.evaluate(members[0], task).y
        final = prog.loss[:, -1]
        bad = [(s, int(d)) for s, d in zip(seeds, diverged[name]) if d > 0]
        log.write(f"{name}: done, {prog.done} trials, {len(seeds)} networks, median final loss "
                  f"{float(np.nanmedian(final)):.4g}"
                  + (f"; diverged and frozen (seed, trial): {bad}" if bad else ""))
        summary.append(dict(rule=name, lr_rec=_three(_rule_lr(args, name))[1],
                            final_loss=float(np.nanmedian(final)),
                            best_loss=float(np.nanmedian(np.nanmin(prog.loss, axis=1))),
                            final_alignment=float(np.nanmedian(prog.alignment[:, -1])),
                            seconds=float(prog.seconds), networks=len(seeds),
                            diverged=[list(b) for b in bad]))
    results.write_curves(out / "results.csv",
                         {name: _setting_columns(args, task, name, net) for name in rules},
                         losses, aligns, run_id=run_id,
                         diverged_at=diverged if seeds is not None else None)
    _figures(out, losses, aligns, outputs, task, _settings(args))
    return summary, seconds


def _setting_columns(args, task, rule, net):
    """A rule's settings as the tidy table's columns (those of a sweep's table:
    the spec's table fields, then those of its optional fields that differ
    from their defaults, then rates by name); a list, one per network, for an
    ensemble."""
    from rflo import runconfig
    from rflo.spec import grid_keys, table_keys

    values = _spec(args).as_dict()
    params = runconfig.task_record(task)["params"]
    lr = _rule_lr(args, rule)
    three = dict(zip(("lr_in", "lr_rec", "lr_out"), _three(lr)))
    mine = {"rule": rule, "task": task.name, "cell": net.cell.name, "units": net.n_rec}
    cols = {}
    for key in table_keys():
        cols["loss_function" if key == "loss" else key] = (
            three[key] if key in three else mine.get(key, values.get(key)))
        if key == "task":  # its parameters follow it
            cols.update({f"set.{k}": v for k, v in params.items() if k != "n_steps"})
    cols.update({k: values[k] for k in grid_keys() if k not in table_keys() and k != "lr"
                 and values[k] != _default(k)})  # columns only where set, as in sweeps
    if isinstance(lr, dict):
        cols.update({f"lr.{k}": float(v) for k, v in lr.items()
                     if k not in ("w_in", "w_rec", "w_out")})
    seeds = _seeds(args)
    return cols if seeds is None else [{**cols, "seed": s} for s in seeds]


def _task_params(task):
    from rflo import runconfig

    return runconfig.task_record(task)["params"]


def _task_of(info):
    """The task a network's record names, or None."""
    from rflo import runconfig

    task = (info or {}).get("task") or {}
    try:
        return runconfig.make_run_task(task["name"], task["params"])
    except (TypeError, ValueError, KeyError):
        return None


def _random_feedback_rules(names):
    from rflo.rules import get_rule

    return [n for n in names if getattr(get_rule(n), "feedback", None) == "random"]


def _title(task, settings):
    """What a run's figures say it was: task, mode, rates (and optimiser)."""
    from rflo.style import mode_title

    if settings.get("lr") is None:  # compare's rates per rule
        rates = ", ".join(f"{r} {_three(v)[1]:g}"
                          for r, v in (settings.get("rule_lr") or {}).items())
        title = (f"{task.name}, {'online' if settings.get('online') else 'offline'}, "
                 f"lr_rec = lr_out per rule (tuned): {rates}")
    else:
        title = f"{task.name}, {mode_title(settings.get('online', False), settings['lr'])}"
    if settings.get("optimizer"):
        title += f" ({settings['optimizer']} {settings.get('optimizer_rate'):g})"
    return title


def _figures(out, losses, aligns, outputs, task, settings):
    from rflo import plots

    plots.plot_losses(losses, out / "loss.png", title_suffix=_title(task, settings))
    plots.plot_outputs(outputs, task.trial(0)[1], out / "outputs.png")
    rf = _random_feedback_rules(list(losses))
    if rf:  # an ensemble's: the median over its networks
        plots.plot_alignment({r: np.nanmedian(aligns[r], axis=0) if np.ndim(aligns[r]) == 2
                              else aligns[r] for r in rf}, out / "alignment.png")


def _check_rules(names, online, flag="--rules"):
    from rflo.rules import get_rule

    rules = []
    for n in names:
        try:
            r = get_rule(n)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if online and not r.online:
            online_ok = [m for m in names if get_rule(m).online] if all(
                _known(m) for m in names) else []
            if flag == "--rule":
                online_ok = ["rflo"]
            raise UserError(f"rule {r.name!r} cannot learn online; drop --online or use "
                            f"{flag} {' '.join(online_ok) or 'rflo rtrl'}")
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


# --------------------------------------------------------------------------
# subcommands


RESUMABLE = SETTING_KEYS + ("rules", "rule", "init", "rule_lr")


def _open_session(args, kind, rules, network=None):
    """The run's :class:`rflo.session.Session`: a new one (its folder locked and
    cleared, its initial network drawn and saved), or on --resume the saved
    run's, whose settings ``args`` then take."""
    from rflo.session import Session, open_saved

    if args.resume is None:
        try:
            return Session.start(_spec(args), _default_out(args.out, kind), rules=rules,
                                 command=kind, rule_lr=getattr(args, "rule_lr", None),
                                 network=network, overwrite=args.overwrite)
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
        session = Session.reopen(_spec(args), out, lock, saved)
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
            raise UserError(f"--trials {mine} is fewer than the run's {theirs}; --resume can "
                            "only extend a run")
        if mine != theirs:
            flag = "--" + k.replace("_", "-")
            raise UserError(f"{flag} {mine} conflicts with the run's {theirs!r}: --resume "
                            "continues a run with its own settings (start a new run with "
                            "another --out to change them)")


def _check_memory(args, rules, task, cell=None):
    """Refuse, before any folder or array is made, a run that cannot fit (and,
    for a ``cell`` that owns its synapses, rates or rules that do not fit it)."""
    from rflo.segments import check_run

    try:
        check_run(_spec(args), task, cell, rules, lambda name: _rule_lr(args, name))
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _finish(args, kind, session, **extra_settings):
    from rflo import results, runconfig

    t0 = time.perf_counter()
    task, rules, out, run_id = session.task, session.rules, session.folder, session.run_id
    log = RunLog(out, run_id)
    with StopRequest() as stop:
        try:
            summary, seconds = _train_rules(session, args, stop, log)
        except (Diverged, Interrupted) as exc:
            print(f"rflo {kind}: {exc}", file=sys.stderr)
            log.write(str(exc))
            return 3 if isinstance(exc, Diverged) else stop.status
    results.write_metadata(out / "metadata.json", dict(
        command=kind, run_id=run_id, rules=rules,
        settings=_settings(args, task_record=runconfig.task_record(task), **extra_settings),
        seconds=seconds, summary=summary, total_seconds=time.perf_counter() - t0,
        versions=results.versions(), argv=sys.argv[1:]))
    _summary(summary, args.quiet)
    if not args.quiet:
        print(f"results in {out}")
    return 0


def _default(key):
    from rflo import runconfig

    return runconfig.DEFAULTS.get(key)


def _check_init(args):
    """--init starts from a saved network: refuse the settings that draw one."""
    if getattr(args, "init", None) is None:
        return
    given = getattr(args, "given", set())
    for key in ("dale", "connectivity"):
        if key in given and getattr(args, key) is not None:
            raise UserError(f"--{key} draws a new network; --init starts from a saved one "
                            f"(drop one of them)")


def _check_seeds(args):
    """--seeds trains an ensemble: refuse what only makes sense for one network."""
    seeds = _seeds(args)
    if seeds is None:
        return
    given = getattr(args, "given", set())
    if "seed" in given:
        raise UserError("give --seed N (one network) or --seeds N ... (one network per seed), "
                        "not both")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds lists a seed twice: {seeds}")
    if getattr(args, "init", None) is not None:
        raise UserError("--init starts one network; with --seeds each network is drawn from "
                        "its seed (drop one of them)")
    if getattr(args, "save", None) is not None:
        raise UserError("--save writes one network; an ensemble's networks are in the run "
                        "folder as RULE.seedS.npz (drop --save)")


def cmd_compare(args):
    _apply_config(args)
    _check_seeds(args)
    rules = _check_rules(args.rules, args.online)
    plan = _plan(args)
    if args.resume is None:
        _check_memory(args, rules, plan.task, plan.cell)
        args.rule_lr = {r: _plain_rates(_rule_lr(args, r)) for r in rules}
    session = _open_session(args, "compare", rules)  # on --resume, args hold the saved settings
    with session:
        _check_rules(session.rules, args.online)
        return _finish(args, "compare", session)


def cmd_train(args):
    import rflo

    _apply_config(args)
    _check_seeds(args)
    _check_init(args)
    _check_rules([args.rule], args.online, "--rule")
    plan = _plan(args)
    if args.save is not None and args.save.exists() and not args.overwrite:
        raise UserError(f"--save {args.save} exists; pass --overwrite to replace it")
    if args.resume is None:
        cell = plan.cell
        if args.init is not None:  # check it before creating the folder
            init = _load_for_task(args.init, plan.task, args.dtype)
            args.units, cell = init.n_rec, init.cell
        _check_memory(args, [args.rule], plan.task, cell)
    (rule,) = _check_rules([args.rule], args.online, "--rule")
    session = _open_session(args, "train", [rule])  # on --resume, args hold the saved settings
    with session:
        (rule,) = _check_rules(session.rules, args.online, "--rule")
        net = session.network
        status = _finish(args, "train", session,
                         init=None if args.init is None else str(args.init),
                         units=int(net.n_rec))
    if status == 0 and args.save is not None:
        from rflo.io import network_info

        trained = session.folder / f"{rule}.npz"
        rflo.save_network(args.save, rflo.load_network(trained), info=network_info(trained))
    return status


def _load_for_task(path, task, dtype):
    from rflo.session import load_for_task

    try:
        return load_for_task(path, task, dtype)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def cmd_eval(args):
    import rflo
    from rflo import plots

    from rflo.io import network_info

    try:
        net = rflo.load_network(args.network)
        recorded = _task_of(network_info(args.network))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if recorded is not None and "period" not in getattr(args, "given", ()):
        task = recorded
        params = ", ".join(f"{k} {v}" for k, v in _task_params(task).items())
        print(f"task: the one the network was trained on ({task.name}: {params}; "
              "--period overrides it with the periodic task)")
    else:
        task = rflo.periodic_task(period=args.period, n_in=net.n_in, n_out=net.n_out)
    png = args.png or args.network.with_name(args.network.stem + ".eval.png")
    if png.exists() and not args.overwrite:
        raise UserError(f"{png} exists; pass --overwrite to replace it")
    ev = rflo.evaluate(net, task)
    plots.plot_evaluation(ev.y, ev.target, png, title=f"{args.network.name}: loss {ev.loss:.3g}")
    print(f"loss {ev.loss:.6g}")
    print(f"figure {png}")
    return 0


def cmd_plot(args):
    import rflo
    from rflo import results

    folder = args.results
    if not folder.is_dir():
        raise UserError(f"{folder} is not a results folder")
    for needed in ("metadata.json", "results.csv"):
        if not (folder / needed).is_file():
            raise UserError(f"{folder} has no {needed}; is it a folder written by 'rflo compare'?")
    try:
        meta = results.read_metadata(folder / "metadata.json")
        losses, aligns = results.read_curves(folder / "results.csv")
        _check_one_run(folder, meta, list(losses))
        s = meta["settings"]
        task = (_task_of({"task": s["task_record"]}) if "task_record" in s
                else rflo.periodic_task(period=s["period"]))  # folders of rflo 0.1
        if task is None:
            raise ValueError(f"cannot rebuild its task {s['task_record']}")
        first = _network_files(s)[0]
        outputs = {r: rflo.evaluate(rflo.load_network(folder / f"{r}{first}.npz"), task).y
                   for r in losses}
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{folder}: cannot redraw ({exc})") from None
    _figures(folder, losses, aligns, outputs, task, s)
    print(f"figures redrawn in {folder}")
    return 0


def _check_one_run(folder, meta, rules):
    """Every file ``plot`` reads must come from the same run."""
    from rflo import results
    from rflo.io import network_run_id

    ids = {"metadata.json": meta.get("run_id"),
           "results.csv": results.read_run_id(folder / "results.csv")}
    ids.update({f"{r}{tail}.npz": network_run_id(folder / f"{r}{tail}.npz")
                for r in rules for tail in _network_files(meta.get("settings", {}))})
    if len(set(ids.values())) != 1:
        raise UserError(f"{folder} mixes files of different runs "
                        f"({', '.join(f'{k}: {v}' for k, v in ids.items())}); run it again "
                        "with --overwrite")


COMMANDS = {"completion": cmd_completion, "compare": cmd_compare, "train": cmd_train, "eval": cmd_eval, "plot": cmd_plot}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        _unknown_options(parser, args, extra)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command in EXTERNAL:  # parsed above (checks, suggestions); the module runs it
        return importlib.import_module(EXTERNAL[args.command][0]).main(argv[1:])
    args.given = _given(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"rflo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # the library's own input checks
        print(f"rflo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
