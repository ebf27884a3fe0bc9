"""What every command of the command line shares: its error, and a run's
settings as the command's arguments hold them (the spec, the rates of each
rule, how a run names its networks, the task a network records)."""

from __future__ import annotations

__all__ = [
    "UserError",
    "TUNED_LR",
    "SETTING_KEYS",
    "spec",
    "settings",
    "rule_lr",
    "three",
    "plain_rates",
    "seeds",
    "network_files",
    "default",
    "task_params",
    "task_of",
    "random_feedback_rules",
]

#: learning rates (in, rec, out) of ``rflo compare`` without ``--lr``: each rule's
#: best on the default experiment (periodic task, 50 units, 10,000 offline trials,
#: networks of seeds 0-4) among 0.01, 0.03, 0.1, 0.3 and 1 that did not diverge:
#: median final loss BPTT 3.8e-5 at 0.3 (1 diverged 5 of 5), RFLO 5.0e-4 at 0.03
#: (0.1 diverged 2 of 5); RTRL is BPTT's gradient.  Other rules: the seed's 0.03.
TUNED_LR = {"bptt": (0.0, 0.3, 0.3), "rtrl": (0.0, 0.3, 0.3), "rflo": (0.0, 0.03, 0.03)}


class UserError(Exception):
    """A problem with the command's input; reported in one line, without a
    traceback (exit status 2)."""


def spec(args):
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


def settings(args, **extra):
    """The run's settings as its metadata records them."""
    s = {k: getattr(args, k) for k in SETTING_KEYS if hasattr(args, k)}
    s["lr"] = None if s.get("lr") is None else plain_rates(s["lr"])
    if getattr(args, "rule_lr", None) is not None:
        s["rule_lr"] = dict(args.rule_lr)
    s.update(extra)
    return s


def default(key):
    """The default of setting ``key``."""
    from rflo import runconfig

    return runconfig.DEFAULTS.get(key)


def seeds(args):
    """The seeds of an ensemble run (``--seeds``), or None for one network."""
    return getattr(args, "seeds", None)


def network_files(settings) -> list:
    """How a run names its trained networks after the rule: ``[""]`` (RULE.npz),
    or ``[".seed0", ".seed1", ...]`` for an ensemble's (RULE.seedS.npz)."""
    chosen = settings.get("seeds")
    return [""] if not chosen else [f".seed{s}" for s in chosen]


def rule_lr(args, name):
    """The rates of rule ``name`` in this run: (in, rec, out), or a dict by
    parameter name."""
    lr = getattr(args, "lr", None)
    if lr is None:
        saved = getattr(args, "rule_lr", None) or {}
        lr = saved.get(name, TUNED_LR.get(name, default("lr")))
    return dict(lr) if isinstance(lr, dict) else tuple(lr)


def three(lr):
    """``(lr_in, lr_rec, lr_out)`` of rates: the three, or those of w_in,
    w_rec, w_out among rates by name (0 where not named)."""
    if isinstance(lr, dict):
        return tuple(float(lr.get(n, 0.0)) for n in ("w_in", "w_rec", "w_out"))
    return tuple(float(x) for x in lr)


def plain_rates(lr):
    """Rates as plain data (a list of three, or a dict by name)."""
    return dict(lr) if isinstance(lr, dict) else list(lr)


def task_params(task):
    from rflo import runconfig

    return runconfig.task_record(task)["params"]


def task_of(info):
    """The task a network's record names, or None."""
    from rflo import runconfig

    task = (info or {}).get("task") or {}
    try:
        return runconfig.make_run_task(task["name"], task["params"])
    except (TypeError, ValueError, KeyError):
        return None


def random_feedback_rules(names):
    """Those of ``names`` that send errors through the random feedback ``b``."""
    from rflo.rules import get_rule

    return [n for n in names if getattr(get_rule(n), "feedback", None) == "random"]
