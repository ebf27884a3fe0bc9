"""Optimisers: the seed's plain SGD with one learning rate per matrix, or any optax
gradient transformation.

Rules produce a direction ``D ~ -dL/dW`` for the summed trial loss; the trainer
hands optax the gradient ``-D / T`` (``T`` = timesteps per trial), so plain SGD
with rates ``lr = (lr_in, lr_rec, lr_out)`` gives the seed's update
``W += lr / T * D``.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import optax

from rflo.network import Weights

__all__ = ["per_matrix_sgd", "check_learning_rates"]


def per_matrix_sgd(lr) -> optax.GradientTransformation:
    """Plain SGD with learning rates ``lr = (lr_in, lr_rec, lr_out)``.

    ``lr`` may be a traced array, so that learning rates can be swept with
    ``jax.vmap``.
    """
    lr = jnp.asarray(lr)

    def init(params):
        return optax.EmptyState()

    def update(grads, state, params=None):
        return Weights(*(-lr[i] * g for i, g in enumerate(grads))), state

    return optax.GradientTransformation(init, update)


def check_learning_rates(lr):
    """``lr`` as a tuple of three finite, non-negative floats ``(in, rec, out)``.

    A single number applies to all three matrices.
    """
    if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        lr = (lr, lr, lr)
    try:
        values = tuple(lr)
    except TypeError:
        raise ValueError(
            f"lr must be a number or three numbers (lr_in, lr_rec, lr_out), got {lr!r}"
        ) from None
    if len(values) != 3:
        raise ValueError(
            f"lr must have three entries (lr_in, lr_rec, lr_out), got {len(values)}: {lr!r}"
        )
    out = []
    for name, v in zip(("lr_in", "lr_rec", "lr_out"), values):
        if isinstance(v, bool) or not isinstance(v, (numbers.Real, jax.Array)):
            raise ValueError(f"{name} must be a number, got {v!r}")
        v = float(v)
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
        out.append(v)
    return tuple(out)
