"""Rules as pure functions, for your own JAX training loop.

``rflo.value_and_grad(rule)`` is to a learning rule what ``jax.value_and_grad``
is to a loss: it returns a function of one trial that gives the trial's loss
and the rule's estimate of the gradient, jit- and vmap-able, so that RFLO (or
any rule) drops into an existing optax loop (the README shows one in ten
lines).

The estimate is of the gradient of ``L = (1/T) sum_t loss.step(y[t], y*[t], m[t])``
(the trial's loss summed over outputs, averaged over steps), which is what the
returned ``loss`` is: for BPTT and RTRL it equals ``jax.grad(L)``; for RFLO and
the other approximate rules it is their estimate.  :func:`rflo.train` applies
exactly these estimates (plain SGD: ``w -= lr * grads``).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp

from rflo.losses import get_loss
from rflo.network import param_names, trainable_names
from rflo.rules import get_rule
from rflo.rules.base import ROUTES, Setup
from rflo.trainer import gradients

__all__ = ["value_and_grad", "grad"]


def value_and_grad(
    rule="rflo",
    *,
    loss="squared_error",
    params: Optional[Sequence[str]] = None,
    route: str = "auto",
) -> Callable:
    """``fn(net, x, y, mask=None, key=None) -> (loss, grads)`` for one trial.

    rule : a rule name or :class:`~rflo.rules.Rule`.
    loss : ``"squared_error"``, ``"cross_entropy"`` or a :class:`~rflo.losses.Loss`.
    params : names of the parameters to estimate (default: the cell's trainable
        ones that the network has, e.g. ``("w_in", "w_rec", "w_out")``).
    route : as in :func:`rflo.train`.

    ``fn`` takes the network (a pytree; its parameters are traced), ``x``
    (T, n_in), ``y`` (T, n_out), ``mask`` (T,) (default ones) and ``key`` (a
    ``jax.random.PRNGKey``, for rules that draw random numbers; default
    ``PRNGKey(0)``), and returns the scalar loss and a dict of gradient
    estimates shaped like the parameters.  It is pure: wrap it in ``jax.jit``
    and ``jax.vmap`` (over trials or networks) as you like.
    """
    rule = get_rule(rule)
    loss = get_loss(loss)
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    fixed = None if params is None else tuple(params)

    def fn(net, x, y, mask=None, key=None):
        names = (
            fixed
            if fixed is not None
            else tuple(n for n in trainable_names(net) if n in param_names(net))
        )
        unknown = [n for n in names if n not in param_names(net)]
        if unknown:
            raise ValueError(
                f"params {unknown} are not parameters of this network "
                f"(it has {list(param_names(net))})"
            )
        setup = Setup(loss, names, 1, route)
        rule.check(net, setup)
        x, y = jnp.asarray(x), jnp.asarray(y)
        if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"one trial: x (T, n_in) and y (T, n_out), got {x.shape} and {y.shape}"
            )
        mask = jnp.ones(x.shape[0], y.dtype) if mask is None else jnp.asarray(mask, y.dtype)
        key = jax.random.PRNGKey(0) if key is None else key
        direction, out = rule.trial(net, x, y, mask, key, setup)
        n_steps = x.shape[0]
        value = jnp.sum(jax.vmap(loss.step)(out, y[1:], mask[1:])) / n_steps
        return value, gradients(direction, n_steps)

    return fn


def grad(
    rule, net, x, y, mask=None, key=None, *, loss="squared_error", params=None, route="auto"
) -> dict:
    """The rule's gradient estimate for one trial (see :func:`value_and_grad`)."""
    return value_and_grad(rule, loss=loss, params=params, route=route)(net, x, y, mask, key)[1]
