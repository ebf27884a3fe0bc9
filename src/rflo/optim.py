"""Optimisers: the seed's plain SGD with one learning rate per parameter, or any
optax gradient transformation.

Rules produce a direction ``D ~ -dL/dW`` for the summed trial loss; the trainer
hands optax the gradient ``-D / T`` (``T`` = timesteps per trial) as a dict
by parameter name (``{"w_in", "w_rec", "w_out"}`` by default, plus e.g.
``"tau"`` or ``"h0"`` when they are trained), so plain SGD with rates
``lr = (lr_in, lr_rec, lr_out)`` gives the seed's update ``W += lr / T * D``,
and ``optax.masked`` / ``optax.multi_transform`` take labels by name.
"""

from __future__ import annotations

import math
import numbers

import jax

from rflo.trainer import per_param_sgd

__all__ = ["per_param_sgd", "check_learning_rates", "MATRICES"]

MATRICES = ("w_in", "w_rec", "w_out")


def _rate(name, v):
    if isinstance(v, bool) or not isinstance(v, (numbers.Real, jax.Array)):
        raise ValueError(f"{name} must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
    return v


def _label(name):
    return f"lr_{name[2:]}" if name in MATRICES else f"lr[{name!r}]"


def check_learning_rates(lr, available=None, default=MATRICES) -> dict:
    """``lr`` as a dict ``{parameter name: rate}`` of finite, non-negative floats.

    ``lr`` may be one number (every parameter in ``default``), three numbers
    ``(lr_in, lr_rec, lr_out)``, or a dict by name (the parameters it names are
    trained, the others frozen).  ``available``: the network's parameter names.
    """
    if isinstance(lr, dict):
        if not lr:
            raise ValueError("lr names no parameter to train; give e.g. {'w_rec': 0.03}")
        unknown = sorted(set(lr) - set(available if available is not None else lr))
        if unknown:
            raise ValueError(
                f"lr names parameters the network does not have: {unknown}; "
                f"it has {list(available)}"
            )
        out = {k: _rate(_label(k), v) for k, v in lr.items()}
        order = [k for k in MATRICES if k in out] + sorted(k for k in out if k not in MATRICES)
        return {k: out[k] for k in order}
    if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        return {k: _rate(_label(k), lr) for k in default}
    try:
        values = tuple(lr)
    except TypeError:
        raise ValueError(
            f"lr must be a number, three numbers (lr_in, lr_rec, lr_out) or a dict by "
            f"parameter name, got {lr!r}"
        ) from None
    if len(values) != 3:
        raise ValueError(
            f"lr must have three entries (lr_in, lr_rec, lr_out), got {len(values)}: {lr!r}"
        )
    missing = [k for k in MATRICES if available is not None and k not in available]
    if missing:
        raise ValueError(
            f"lr as three numbers names (w_in, w_rec, w_out), but the network has "
            f"no {missing}; give a dict by name from {list(available)}"
        )
    return {k: _rate(_label(k), v) for k, v in zip(MATRICES, values)}
