"""The checks and help texts of :class:`rflo.spec.RunSpec`'s fields, and
:func:`setting`, which makes a field of them (its metadata: check, what the
value must be, help text, command-line flag, sweep grid key, table column)."""

from __future__ import annotations

import math
from dataclasses import field

__all__ = ["setting", "check_rates", "FLOAT_FIELDS"]

#: settings that are floats, but may be written as integers (``dale = 1`` in TOML)
FLOAT_FIELDS = (
    "tau",
    "dale",
    "connectivity",
    "max_loss_growth",
    "optimizer_rate",
    "rate_target",
    "rate_strength",
)


def _int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _name(v):
    return isinstance(v, str) and 0 < len(v) <= 100


def _fraction(low_open=True):
    return lambda v: v is None or (_num(v) and (0 < v if low_open else 0 <= v) and v < 1)


def _named_rates(v) -> bool:
    return (
        isinstance(v, dict)
        and bool(v)
        and all(isinstance(k, str) and k and _num(x) and x >= 0 for k, x in v.items())
    )


def check_rates(v) -> bool:
    """Three rates ``[IN, REC, OUT]`` >= 0, or ``{parameter name: rate >= 0}``."""
    if isinstance(v, dict):
        return _named_rates(v)
    return isinstance(v, (list, tuple)) and len(v) == 3 and all(_num(x) and x >= 0 for x in v)


def setting(
    default, check, need, help, *, flag=None, grid=True, column=True, only=None, factory=False
):
    """A field of :class:`RunSpec`.

    check, need : the value's check and what it must be (for the error).
    help : the option's help text (a callable for texts that list names).
    flag : argparse keywords of its command-line option (default: the type
        of the default); None default for booleans -> ``store_true``.
    grid : True (a sweep grid key of this name) or text saying where a sweep
        takes it instead.  column : False when a sweep's table shows the
        setting only if a grid sets it (keeps older tables' columns).
    only : the commands that take the option (None: train and compare).
    """
    meta = dict(
        check=check, need=need, help=help, flag=flag or {}, grid=grid, column=column, only=only
    )
    if factory:
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


def _help_task():
    from rflo.tasks import task_names

    return f"the task (default periodic, the paper's; any of {', '.join(task_names())})"


def _help_cell():
    from rflo.cells import cell_names

    return (
        f"the unit model (default leaky_tanh; any of {', '.join(cell_names())}; a cell with "
        "other settings, e.g. a stack of other layers: build it in Python, save it, and "
        "start from it with --init)"
    )


def _help_loss():
    from rflo.losses import loss_names

    return f"the loss (default squared_error; any of {', '.join(loss_names())})"


def _help_network():
    from rflo.networks import network_names

    return (
        f"draw a paper's initial network by name ({', '.join(network_names())}) instead "
        "of a random one; it decides the cell, units, tau and constraints (leave those "
        "at their defaults)"
    )


def _help_rule():
    from rflo.rules import rule_names

    return f"learning rule (default rflo; any of {', '.join(rule_names())})"
