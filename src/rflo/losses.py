"""Losses: what the output ``y[t]`` is scored against, and the error a rule feeds back.

A :class:`Loss` is a NamedTuple of pure functions of one timestep:

* ``step(y, target, m)``: the step's loss (a number); ``m`` is the step's mask;
* ``error(y, target, m)``: ``-dL/dy`` (n_out,), the output error every rule
  sends back (through ``w_out^T`` or the random feedback ``b``).

A trial's loss is ``sum_t step(y[t], target[t], m[t]) / (T n_out)`` (the
seed's normalisation) when ``per_output``, else ``/ T``.  Rules estimate
``-d/dW sum_t step``; the trainer divides by ``T``.

====================  ==========================================  =========================
name                  step loss                                   error ``-dL/dy``
====================  ==========================================  =========================
``squared_error``     ``0.5 m |y* - y|^2``                        ``m (y* - y)``
``cross_entropy``     ``-m sum_k y*_k log softmax(y)_k``          ``m (y* - softmax(y) sum_k y*_k)``
====================  ==========================================  =========================

``cross_entropy`` takes class targets as one-hot rows of ``target`` (a row of
zeros, or ``m = 0``, scores nothing); its outputs ``y`` are the logits.
A new loss is a ``Loss(...)`` passed to ``train(loss=...)`` or added with
:func:`register_loss`.
"""

from __future__ import annotations

from typing import Callable, Dict, NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "Loss",
    "SQUARED_ERROR",
    "CROSS_ENTROPY",
    "get_loss",
    "loss_names",
    "register_loss",
    "trial_loss",
]


class Loss(NamedTuple):
    """A loss as pure per-step functions (see the module docstring)."""

    name: str
    step: Callable
    error: Callable
    per_output: bool = True
    #: the fewest outputs the loss means something for (cross-entropy: 2 classes)
    min_outputs: int = 1


def _se_step(y, target, m):
    diff = target - y
    return 0.5 * m * jnp.sum(diff * diff)


def _se_error(y, target, m):
    return m * (target - y)


def _ce_step(y, target, m):
    return -m * jnp.sum(target * jax.nn.log_softmax(y))


def _ce_error(y, target, m):
    return m * (target - jax.nn.softmax(y) * jnp.sum(target))


SQUARED_ERROR = Loss("squared_error", _se_step, _se_error, True)
CROSS_ENTROPY = Loss("cross_entropy", _ce_step, _ce_error, False, min_outputs=2)

_LOSSES: Dict[str, Loss] = {}


def register_loss(loss: Loss) -> Loss:
    """Add ``loss`` to the registry under ``loss.name`` (a name can be taken once)."""
    if not isinstance(loss, Loss):
        raise ValueError(f"expected an rflo.losses.Loss, got {type(loss).__name__}")
    if loss.name in _LOSSES and _LOSSES[loss.name] is not loss:
        raise ValueError(f"a loss named {loss.name!r} is already registered")
    _LOSSES[loss.name] = loss
    return loss


register_loss(SQUARED_ERROR)
register_loss(CROSS_ENTROPY)


def loss_names():
    """Names of the registered losses."""
    return sorted(_LOSSES)


def get_loss(loss) -> Loss:
    """A :class:`Loss` from a registered name (or a Loss, returned as is)."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss.lower() in _LOSSES:
        return _LOSSES[loss.lower()]
    raise ValueError(f"unknown loss {loss!r}: use one of {loss_names()}")


def check_outputs(loss: Loss, n_out: int) -> None:
    """Refuse a loss on a network with too few outputs for it to mean anything."""
    if n_out < loss.min_outputs:
        raise ValueError(
            f"the {loss.name} loss needs at least {loss.min_outputs} outputs (one per "
            f"class, with one-hot targets), but the task has {n_out}; use "
            "squared_error"
        )


def trial_loss(loss: Loss, y, target, mask):
    """A trial's loss from its outputs ``y`` (T-1 rows: steps 1..T-1) and the
    trial's ``target`` (T, n_out) and ``mask`` (T,)."""
    t, n_out = target.shape
    total = jnp.sum(jax.vmap(loss.step)(y, target[1:], mask[1:]))
    return total / (t * n_out if loss.per_output else t)
