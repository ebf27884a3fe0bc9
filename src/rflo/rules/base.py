"""The learning-rule interface and the pieces every rule shares.

A rule turns one trial into an *update direction* ``Weights(w_in, w_rec, w_out)``:
an estimate of ``-dL/dW`` for the summed trial loss
``L = sum_t 0.5 * m[t] * |y*[t] - y[t]|^2``.  The trainer scales it by the
learning rates and ``1 / T`` (the seed's ``eta / t_max``) or hands it to an
optax optimiser; rules know nothing about learning rates.

A rule may work in two ways:

* **per step** (``init``, ``step``, ``direction``, optionally ``observe``): a
  trace state is carried forward in time; after each step it yields that
  step's contribution.  ``observe`` lets a rule keep the step's error in its
  state (truncated BPTT needs the errors of its window).  This is
  what online learning uses, and what offline learning uses by default (summing
  the contributions with the weights held fixed).
* **per trial** (``trial``): the summed direction of a whole trial at once.
  Rules override it when there is a faster exact route (BPTT's backward pass,
  RFLO's reorganised trace sum).

A new rule is one module defining a :class:`Rule` subclass and calling
:func:`register`.  Notation: ``a = 1 / tau``, ``c = 1 - a``,
``d[t] = f'(u[t])``, ``err[t] = m[t] * (y*[t] - y[t])``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, NamedTuple, Tuple

import jax
import jax.numpy as jnp

from rflo.network import Network, Weights, f

__all__ = [
    "Step",
    "Trajectory",
    "Rule",
    "register",
    "get_rule",
    "rule_names",
    "forward",
    "cell",
    "readout_error",
    "feedback_matrix",
    "FEEDBACKS",
]

FEEDBACKS = ("random", "readout")


class Step(NamedTuple):
    """What one timestep ``t`` exposes to a rule (all shape (n,) unless noted)."""

    h_prev: jax.Array  # h[t-1]
    x: jax.Array  # x[t], (n_in,)
    u: jax.Array  # u[t]
    d: jax.Array  # f'(u[t])
    h: jax.Array  # h[t]


class Trajectory(NamedTuple):
    """Activity of the steps ``t = 1 .. T-1`` of a trial (step 0 is ``h0``)."""

    u: jax.Array  # (T-1, n_rec)
    h: jax.Array  # (T-1, n_rec)
    y: jax.Array  # (T-1, n_out)


def cell(net: Network, h, x_t):
    """One step of the dynamics from ``h[t-1]`` with input ``x[t]``: returns ``u[t], h[t]``."""
    u = net.w_rec @ h + net.w_in @ x_t
    return u, h + (f(u) - h) / net.tau


def forward(net: Network, x, unroll: int = 1) -> Tuple[jax.Array, jax.Array]:
    """Run the network with fixed weights over one trial.

    ``x`` has shape (T, n_in); returns ``u, h`` of shape (T-1, n_rec) for steps
    ``t = 1 .. T-1``.
    """
    drive = x[1:] @ net.w_in.T  # (T-1, n_rec): feedforward input, all at once

    def body(h, drive_t):
        u = net.w_rec @ h + drive_t
        h = h + (f(u) - h) / net.tau
        return h, (u, h)

    _, (u, h) = jax.lax.scan(body, net.h0, drive, unroll=unroll)
    return u, h


def readout_error(net: Network, h, y_target, mask):
    """``y = h w_out^T`` and the masked error ``m * (y* - y)`` (rows are steps)."""
    y = h @ net.w_out.T
    return y, mask[..., None] * (y_target - y)


def feedback_matrix(net: Network, feedback: str):
    """(n_rec, n_out) matrix that carries output errors to the units.

    ``"random"``: the fixed random ``b`` (feedback alignment, RFLO);
    ``"readout"``: the current ``w_out.T`` (the true gradient's path).
    """
    return net.b if feedback == "random" else net.w_out.T


@dataclass(frozen=True)
class Rule:
    """Base class of learning rules; subclasses are frozen (hashable) dataclasses.

    Attributes
    ----------
    name : registry name.
    online : whether the rule can update the weights at every step.
    """

    name: str = "rule"
    online: bool = True

    # ---- per-step form -------------------------------------------------
    def init(self, net: Network, key: jax.Array) -> Any:
        """Trace state at the start of a trial (``key``: this trial's PRNG key,
        for rules that draw random numbers)."""
        raise NotImplementedError(f"rule {self.name!r} has no per-step form")

    def step(self, state: Any, net: Network, s: Step) -> Any:
        """Trace state after step ``s`` (using the network's current weights)."""
        raise NotImplementedError(f"rule {self.name!r} has no per-step form")

    def direction(self, state: Any, net: Network, s: Step, err) -> Weights:
        """This step's contribution to ``-dL/dW`` given its error ``err`` (n_out,)."""
        raise NotImplementedError(f"rule {self.name!r} has no per-step form")

    def observe(self, state: Any, net: Network, s: Step, err) -> Any:
        """Trace state once step ``s``'s error ``err`` is known (called after
        ``direction``).  Default: unchanged; rules that need past errors store
        them here."""
        return state

    def advance(self, state: Any, net: Network, h, x_t, y_t, m_t, fprime: Callable):
        """One timestep of the per-step form, from ``h[t-1]`` with input ``x[t]``.

        Runs the network, then ``step``, ``direction`` and ``observe``; returns
        ``(state, h[t], y[t], u[t], direction)``.  Every per-step loop (offline
        default, online training, minibatches, gradient diagnostics) uses it.
        """
        u, h_new = cell(net, h, x_t)
        y = net.w_out @ h_new
        err = m_t * (y_t - y)
        s = Step(h, x_t, u, fprime(u), h_new)
        state = self.step(state, net, s)
        d = self.direction(state, net, s, err)
        return self.observe(state, net, s, err), h_new, y, u, d

    # ---- per-trial form ------------------------------------------------
    def trial(self, net: Network, x, y_target, mask, key: jax.Array, fprime: Callable,
              unroll: int = 1) -> Tuple[Weights, Trajectory]:
        """Summed direction of one trial with the weights held fixed.

        ``x`` (T, n_in), ``y_target`` (T, n_out), ``mask`` (T,); ``key`` is the
        trial's PRNG key and ``fprime`` the derivative f' to use.  The default
        runs the per-step form forward; rules with a faster exact route override.
        """

        def body(carry, inp):
            h, state, acc = carry
            state, h_new, y, u, d = self.advance(state, net, h, *inp, fprime)
            acc = jax.tree_util.tree_map(jnp.add, acc, d)
            return (h_new, state, acc), (u, h_new, y)

        zero = Weights(*(jnp.zeros_like(w) for w in (net.w_in, net.w_rec, net.w_out)))
        (_, _, acc), (u, h, y) = jax.lax.scan(
            body, (net.h0, self.init(net, key), zero), (x[1:], y_target[1:], mask[1:]), unroll=unroll
        )
        return acc, Trajectory(u, h, y)


_REGISTRY: Dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    """Add a rule to the registry under ``rule.name``; returns it."""
    _REGISTRY[rule.name] = rule
    return rule


def rule_names():
    """Names of the registered rules."""
    return sorted(_REGISTRY)


def get_rule(rule) -> Rule:
    """A :class:`Rule` from a registered name (or a rule, returned as is)."""
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, str) and rule.lower() in _REGISTRY:
        return _REGISTRY[rule.lower()]
    raise ValueError(f"unknown learning rule {rule!r}: use one of {rule_names()}")
