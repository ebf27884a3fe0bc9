"""The learning-rule interface and the pieces every rule shares.

A rule turns one trial into an *update direction*: a dict of arrays, one per
trained parameter (``{"w_in", "w_rec", "w_out"}`` by default), estimating
``-dL/dW`` for the summed trial loss ``L = sum_t loss.step(y[t], y*[t], m[t])``.
The trainer scales it by ``1 / T`` and hands it to the optimiser (plain SGD
with one rate per parameter is the seed's ``eta / t_max``); rules know nothing
about learning rates.

A rule is a point on two axes (Marschall et al. 2020; braintrace):

* **feedback**: how the output error ``e[t] = -dL/dy[t]`` reaches the units:
  ``"readout"`` (``w_out^T e``, the true gradient's path) or ``"random"``
  (the fixed random matrix ``b``, feedback alignment);
* **credit**: how each parameter's influence on the units is tracked
  (backward pass, full influence, sparse / diagonal / rank-one / Kronecker
  approximations, local eligibility traces).

Its interface (:class:`Rule`) is three pure functions:

* ``init(net, key, setup)``: the trace state at the start of a trial;
* ``advance(state, net, s, x_t, y_t, m_t, setup)``: one timestep from the
  cell state ``s`` with input ``x_t``; returns ``(state, s_new, y, direction)``
  (the step's contribution) -- the per-step (online) form;
* ``trial(net, x, y_target, mask, key, setup)``: the summed direction of a
  whole trial with the parameters fixed, and the outputs ``y`` (T-1, n_out).
  The default runs ``advance`` over the trial; rules override it with a faster
  exact route.

``setup`` (:class:`Setup`) says what is trained, the loss and the route.
Every rule works on every cell (:mod:`rflo.cells`) through the cell's
Jacobian-vector products (:mod:`rflo.rules.generic`); on the paper's leaky
tanh cell the closed forms of the papers are used instead (``route="auto"``),
tested equal.  A new rule is one module defining a :class:`Rule` subclass and
calling :func:`register`.  Notation of the closed forms: ``a = 1 / tau``,
``c = 1 - a``, ``d[t] = f'(u[t])``, ``err[t] = m[t] (y*[t] - y[t])`` (or the
loss's error).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Dict, NamedTuple, Tuple

import jax
import jax.numpy as jnp

from rflo.cells.base import initial_state
from rflo.cells.leaky_tanh import LeakyTanh
from rflo.kernels import leaky_tanh
from rflo.losses import SQUARED_ERROR, Loss
from rflo.network import Network, f, params_of
from rflo.rules.interface import (  # noqa: F401  (importable from here, as they were)
    DEFAULT_SETUP,
    FEEDBACKS,
    MATRICES,
    ROUTES,
    LearningRule,
    Setup,
    check_feedback,
    get_rule,
    register,
    rule_names,
)

__all__ = [
    "Setup",
    "Step",
    "Rule",
    "register",
    "get_rule",
    "rule_names",
    "forward",
    "cell",
    "readout_error",
    "feedback_matrix",
    "learning_signal",
    "FEEDBACKS",
    "ROUTES",
    "DEFAULT_SETUP",
]


class Step(NamedTuple):
    """What one timestep ``t`` of the leaky tanh cell exposes to a closed-form
    rule (all shape (n,) unless noted)."""

    h_prev: jax.Array  # h[t-1]
    x: jax.Array  # x[t], (n_in,)
    u: jax.Array  # u[t]
    d: jax.Array  # f'(u[t])
    h: jax.Array  # h[t]


def closed_form(net: Network, setup: Setup) -> bool:
    """Whether the closed-form (leaky tanh) route applies to ``net`` and ``setup``.

    It does for the leaky tanh cell with one ``tau`` when only ``w_in``,
    ``w_rec`` and ``w_out`` are trained.  ``route="closed_form"`` where it
    does not apply is an error.
    """
    if setup.route == "generic":
        return False
    ok = (
        isinstance(net.cell, LeakyTanh)
        and jnp.ndim(net.tau) == 0
        and set(setup.params) <= set(MATRICES)
    )
    if setup.route == "closed_form" and not ok:
        raise ValueError(
            "route='closed_form' needs the leaky_tanh cell with one tau and only "
            f"w_in, w_rec, w_out trained (got cell {net.cell.name!r}, "
            f"params {list(setup.params)}); use route='auto'"
        )
    return ok


def select(direction: Dict[str, jax.Array], setup: Setup) -> Dict[str, jax.Array]:
    """The entries of a closed-form direction that ``setup`` trains."""
    return {k: direction[k] for k in setup.params}


def cell(net: Network, h, x_t):
    """One leaky tanh step from ``h[t-1]`` with input ``x[t]``: returns ``u[t], h[t]``."""
    u = net.w_rec @ h + net.w_in @ x_t
    return u, h + (f(u) - h) / net.tau


def forward(net: Network, x, unroll: int = 1) -> Tuple[jax.Array, jax.Array]:
    """Run a leaky tanh network with fixed weights over one trial.

    ``x`` has shape (T, n_in); returns ``u, h`` of shape (T-1, n_rec) for steps
    ``t = 1 .. T-1``.
    """
    drive = x[1:] @ net.w_in.T  # (T-1, n_rec): feedforward input, all at once

    def reference(w_rec, drive, h0, tau):
        def body(h, drive_t):
            u = w_rec @ h + drive_t
            h = h + (f(u) - h) / tau
            return h, (u, h)

        return jax.lax.scan(body, h0, drive, unroll=unroll)[1]

    if not kernels_for(drive.dtype) or not leaky_tanh.small_enough(net.w_rec.shape[-1]):
        return reference(net.w_rec, drive, net.h0, net.tau)
    return leaky_tanh.forward(net.w_rec, drive, net.h0, net.tau, reference)


def closed_trial(net, x, y_target, mask, setup, closed, *, backprop: bool, feedback: str):
    """An offline closed-form trial on the leaky tanh cell: the compiled kernel
    (:func:`rflo.kernels.leaky_tanh.offline_trial`) where it applies, else
    ``closed(net, x, y, m, feedback, setup) -> (d_in, d_rec, d_out, y)``
    (which is also the kernel's XLA reference).
    Returns ``(direction, y)``."""
    if leaky_tanh.offline_route(net, setup):
        *d, y = leaky_tanh.offline_trial(
            net,
            x,
            y_target,
            mask,
            backprop=backprop,
            feedback=feedback,
            reference=partial(closed, feedback=feedback, setup=setup),
        )
    else:
        *d, y = closed(net, x, y_target, mask, feedback=feedback, setup=setup)
    return select(dict(zip(MATRICES, d)), setup), y


def fused_offline_step(net, setup, *, backprop: bool, feedback: str):
    """:func:`rflo.kernels.leaky_tanh.offline_step` for a closed-form rule
    (``backprop``: BPTT's adjoint, else local traces) where it applies, else None."""
    if not closed_form(net, setup) or not leaky_tanh.offline_route(net, setup):
        return None
    return partial(leaky_tanh.offline_step, setup=setup, backprop=backprop, feedback=feedback)


def kernels_for(dtype) -> bool:
    """Whether the compiled CPU kernels (:mod:`rflo.kernels.leaky_tanh`) run
    the leaky tanh loops for arrays of ``dtype``."""
    return leaky_tanh.available(dtype)


def readout_error(net: Network, h, y_target, mask, loss: Loss = SQUARED_ERROR):
    """``y = h w_out^T`` and the loss's error ``-dL/dy`` (rows are steps)."""
    y = h @ net.w_out.T
    return y, jax.vmap(loss.error)(y, y_target, mask)


def feedback_matrix(net: Network, feedback: str):
    """(n_rec, n_out) matrix that carries output errors to the units.

    ``"random"``: the fixed random ``b`` (feedback alignment, RFLO);
    ``"readout"``: the current ``w_out.T`` (the true gradient's path).
    """
    return net.b if feedback == "random" else net.w_out.T


def learning_signal(net: Network, feedback: str, err):
    """The error ``err`` (n_out,) carried to the units' outputs (n_rec,)."""
    return feedback_matrix(net, feedback) @ err


@dataclass(frozen=True)
class Rule:
    """Base class of learning rules; subclasses are frozen (hashable) dataclasses.

    Attributes
    ----------
    name : registry name.
    online : whether the rule can update the weights at every step.
    feedback : ``"readout"`` or ``"random"`` (how errors reach the units).
    """

    name: str = "rule"
    online: bool = True
    feedback: str = "readout"

    def __post_init__(self):
        check_feedback(self.feedback)
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a rule's name must be a non-empty string, got {self.name!r}")

    def check(self, net: Network, setup: Setup):
        """Raise (before compiling) if the rule cannot train ``setup.params`` of ``net``."""

    # ---- per-step form -------------------------------------------------
    def init(self, net: Network, key: jax.Array, setup: Setup = DEFAULT_SETUP) -> Any:
        """Trace state at the start of a trial (``key``: this trial's PRNG key,
        for rules that draw random numbers)."""
        raise NotImplementedError(f"rule {self.name!r} has no per-step form")

    def advance(self, state, net: Network, h, x_t, y_t, m_t, setup: Setup = DEFAULT_SETUP):
        """One timestep from the cell state ``h`` with input ``x[t]``.

        Returns ``(state, h[t], y[t], direction)``.  Every per-step loop
        (offline default, online training, minibatches, gradient diagnostics)
        uses it.
        """
        raise NotImplementedError(f"rule {self.name!r} has no per-step form")

    def fused_online(self, net: Network, setup: Setup):
        """An optional whole-trial route for online learning with plain SGD.

        ``None`` (the default): the trainer runs :meth:`advance` step by step.
        Otherwise ``fn(net, w, guard, lr, trial, x, y_target, mask,
        keep_outputs) -> (w, guard, loss, outputs (T-1, n_out) or None)``: one
        trial from the parameters ``w`` with an SGD update of rate ``lr[name] /
        T`` after every step, and the divergence guard, exactly what the
        per-step loop and :func:`rflo.guard.guard_step` compute (tested equal).
        The trainer uses it on the CPU backend only, for one trial per update.
        """
        return None

    def fused_offline(self, net: Network, setup: Setup):
        """An optional compiled route for one offline update with plain SGD.

        ``None`` (the default): the trainer runs :meth:`trial`, the optimiser
        and the divergence guard.  Otherwise ``fn(net, w, guard, lr, trial, x,
        y_target, mask) -> (w, guard, loss, outputs)``: the update and the
        guard in one call, what the trainer computes (tested equal), used on
        the CPU backend for one trial per update.
        """
        return None

    # ---- per-trial form ------------------------------------------------
    def trial(self, net: Network, x, y_target, mask, key: jax.Array, setup: Setup = DEFAULT_SETUP):
        """Summed direction of one trial with the parameters held fixed, and the
        outputs ``y`` (T-1, n_out) of steps 1..T-1.

        ``x`` (T, n_in), ``y_target`` (T, n_out), ``mask`` (T,); ``key`` is the
        trial's PRNG key.  The default runs the per-step form forward.
        """

        def body(carry, inp):
            h, state, acc = carry
            state, h_new, y, d = self.advance(state, net, h, *inp, setup)
            acc = jax.tree_util.tree_map(jnp.add, acc, d)
            return (h_new, state, acc), y

        zero = jax.tree_util.tree_map(jnp.zeros_like, params_of(net, setup.params))
        (_, _, acc), y = jax.lax.scan(
            body,
            (initial_state(net), self.init(net, key, setup), zero),
            (x[1:], y_target[1:], mask[1:]),
            unroll=setup.unroll,
        )
        return acc, y


class ClosedFormStepRule(Rule):
    """A rule whose per-step closed form on the leaky tanh cell is written as
    ``step`` (trace update) and ``direction`` (the step's contribution), with
    ``observe`` to keep the step's error; ``generic_*`` give the route for
    any cell."""

    def step(self, state, net, s: Step):
        raise NotImplementedError

    def direction(self, state, net, s: Step, err):
        raise NotImplementedError

    def observe(self, state, net, s: Step, err):
        return state

    def closed_init(self, net, key):
        raise NotImplementedError

    def init(self, net, key, setup=DEFAULT_SETUP):
        if closed_form(net, setup):
            return self.closed_init(net, key)
        return self.generic_init(net, key, setup)

    def advance(self, state, net, h, x_t, y_t, m_t, setup=DEFAULT_SETUP):
        if not closed_form(net, setup):
            return self.generic_advance(state, net, h, x_t, y_t, m_t, setup)
        u, h_new = cell(net, h, x_t)
        y = net.w_out @ h_new
        err = setup.loss.error(y, y_t, m_t)
        s = Step(h, x_t, u, net.cell.fprime(u), h_new)
        state = self.step(state, net, s)
        d = self.direction(state, net, s, err)
        return self.observe(state, net, s, err), h_new, y, select(d, setup)

    def generic_init(self, net, key, setup):
        raise NotImplementedError

    def generic_advance(self, state, net, h, x_t, y_t, m_t, setup):
        raise NotImplementedError


class ClosedFormOnlyRule(ClosedFormStepRule):
    """A rule written for the leaky tanh closed form only (KeRNL, DNI): every
    other cell, parameter or route is refused in one line, before compiling."""

    def check(self, net, setup):
        if setup.route == "generic" or not closed_form(net, setup._replace(route="auto")):
            raise ValueError(
                f"rule {self.name!r} is written for the leaky tanh cell with one tau, training "
                f"w_in, w_rec, w_out (got cell {net.cell.name!r}, params {list(setup.params)}, "
                f"route {setup.route!r}); use 'rtrl', 'uoro' or 'bptt'"
            )

    def generic_init(self, net, key, setup):
        self.check(net, setup)

    def generic_advance(self, state, net, h, x_t, y_t, m_t, setup):
        self.check(net, setup)


__all__ += [
    "LearningRule",
    "closed_form",
    "closed_trial",
    "select",
    "ClosedFormStepRule",
    "ClosedFormOnlyRule",
    "check_feedback",
]
