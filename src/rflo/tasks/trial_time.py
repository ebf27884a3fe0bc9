"""The time axis of a built-in task's trials (:mod:`rflo.tasks.builtin`,
:mod:`rflo.tasks.memory`, :mod:`rflo.tasks.motor`): step indices
(:func:`steps`), windows of steps (:func:`window`), a trial's length
(:func:`trial_length`) and the checks of a ``min_``/``max_`` pair
(:func:`check_range`)."""

from __future__ import annotations

import jax.numpy as jnp

from rflo._checks import check_int

__all__ = ["steps", "window", "trial_length", "check_range"]


def steps(n_steps):
    return jnp.arange(n_steps)[None, :]  # (1, T), broadcasts against (batch, 1)


def window(t, start, length):
    """(batch, T) booleans ``start <= t < start + length`` (``start`` (batch,))."""
    return (t >= start[:, None]) & (t < start[:, None] + length)


def trial_length(need: int, n_steps, what: str) -> int:
    """``n_steps`` (default ``need``), refused when shorter than ``need``."""
    n_steps = need if n_steps is None else check_int("n_steps", n_steps, minimum=2)
    if n_steps < need:
        raise ValueError(f"n_steps={n_steps} is too short: {what} needs {need} steps")
    return n_steps


def check_range(name, lo, hi, minimum=0):
    lo = check_int(f"min_{name}", lo, minimum=minimum)
    hi = check_int(f"max_{name}", hi, minimum=minimum)
    if hi < lo:
        raise ValueError(f"max_{name} ({hi}) must be >= min_{name} ({lo})")
    return lo, hi
