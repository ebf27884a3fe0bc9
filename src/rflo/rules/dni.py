"""DNI: synthetic gradients (Jaderberg et al. 2017), in the online form of
Marschall, Cho & Savin (2020).

The true gradient of the summed trial loss reaches ``W = [w_rec, w_in]``
(acting on ``z[t] = [h[t-1]; x[t]]``) through the *credit*
``c[t] = -dL_{>=t} / dh[t]`` (the current step's loss and all later ones), which
obeys the backward recursion ``c[t] = q[t] + J[t+1]^T c[t+1]`` with
``q[t] = w_out^T err[t]`` and ``J[t] = c I + a diag(d[t]) w_rec``; BPTT's
update is ``sum_t diag(a d[t]) c[t] z[t]^T``.  DNI predicts the credit forward
in time with a linear *synthetic-gradient* module of the state and the
target::

    s[t] = A h~[t],   h~[t] = [h[t]; y*[t]; 1]                 (A: n_rec x (n_rec + n_out + 1))
    D_W[i, j] += s_i[t] a d_i[t] z_j[t]                        (the immediate Jacobian)

and trains ``A`` online by bootstrapping, one step late (when ``h[t]`` is
known), towards the target ``q[t-1] + J[t]^T s'[t]`` of the previous step::

    e[t] = A h~[t-1] - (q[t-1] + J[t]^T A h~[t])               (prediction error)
    A   <- A - lr_sg e[t] h~[t-1]^T              (SGD on |e|^2 / 2, A's target held fixed)

The step's direction uses ``A`` after this update.  ``w_out`` gets the exact
``err[t] h[t]^T``.  With a perfect module (``s[t] = c[t]``) the target equals
the prediction (``e = 0``) and the summed update is BPTT's (tested).

``A`` starts at ``[-F w_out, F, 0]`` (``F = w_out^T``, or ``b`` with
``feedback="random"``): the synthetic gradient is then exactly the step's own
squared-error signal ``q[t] = F (y*[t] - w_out h[t])`` (unmasked), the
credit of a network with no future, and it learns the future part from the
bootstrapped targets.  (Marschall et al. start it at random; this start
gives the immediate part of the credit from the first step.)  ``A`` is learned state
(:class:`rflo.rules.learned.LearnedState`): the trainer carries it from
trial to trial through a session, as Marschall et al. train it continuously
over one long stream (they bootstrap from a target copy of ``A`` refreshed
every few steps; here the target uses the current ``A``).  Code that drives
:meth:`~rflo.rules.base.Rule.advance` itself carries it with
:meth:`SyntheticGradients.next_trial`.

Settings (field): ``lr_sg`` (3e-3), the module's learning rate (1e-2 runs
away once the module is carried from trial to trial: docs/rules/dni.md).  Only the
leaky tanh cell with one ``tau``, training ``w_in``, ``w_rec``, ``w_out``.

Cost per step: O(n_rec (n_rec + n_in + n_out)) time, O(n_rec (n_rec + n_out))
memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rflo._checks import check_positive
from rflo.rules.base import (
    DEFAULT_SETUP,
    ClosedFormOnlyRule,
    cell,
    feedback_matrix,
    register,
    select,
)
from rflo.rules.learned import LearnedState

__all__ = ["DNIState", "SyntheticGradients", "DNI"]


class DNIState(NamedTuple):
    A: jax.Array  # (n_rec, n_rec + n_out + 1) the synthetic-gradient module
    prev_in: jax.Array  # (n_rec + n_out + 1,) the module's input at the previous step
    prev_q: jax.Array  # (n_rec,) the learning signal q at the previous step
    t: jax.Array  # () int: steps done in this trial (0 at t = 1)


@dataclass(frozen=True)
class SyntheticGradients(LearnedState, ClosedFormOnlyRule):
    """DNI (see the module docstring)."""

    name: str = "dni"
    online: bool = True
    feedback: str = "readout"
    lr_sg: float = 3e-3

    def __post_init__(self):
        super().__post_init__()
        check_positive("lr_sg", self.lr_sg, allow_zero=True)

    def initial_module(self, net):
        """``A`` at the start: ``[-F w_out, F, 0]`` (the step's own squared-error signal)."""
        F = feedback_matrix(net, self.feedback)
        n = net.n_rec
        return jnp.concatenate([-F @ net.w_out, F, jnp.zeros((n, 1), F.dtype)], axis=1)

    def closed_init(self, net, key):
        n, o = net.n_rec, net.w_out.shape[0]
        dt = net.w_rec.dtype
        return DNIState(
            self.initial_module(net).astype(dt),
            jnp.zeros((n + o + 1,), dt),
            jnp.zeros((n,), dt),
            jnp.zeros((), jnp.int32),
        )

    def carried(self, state):
        """What lasts across trials: the module ``A``."""
        return state.A

    def resume(self, state, carried):
        return state._replace(A=carried)

    def credit(self, A, module_in, t):
        """The synthetic gradient ``A h~`` for the module input ``h~`` of step
        ``t`` (0-based within the trial).  A subclass may replace it (the tests
        put the true credit here)."""
        return A @ module_in

    def advance(self, state, net, h, x_t, y_t, m_t, setup=DEFAULT_SETUP):
        a = 1.0 / net.tau
        u, h_new = cell(net, h, x_t)
        d = net.cell.fprime(u)
        y = net.w_out @ h_new
        err = setup.loss.error(y, y_t, m_t)
        q = feedback_matrix(net, self.feedback) @ err
        module_in = jnp.concatenate([h_new, y_t, jnp.ones((1,), h_new.dtype)])
        # bootstrapped update of A for the previous step (none at the trial's first step)
        ad = a * d
        s_next = self.credit(state.A, module_in, state.t)
        target = state.prev_q + (1.0 - a) * s_next + net.w_rec.T @ (ad * s_next)
        e = self.credit(state.A, state.prev_in, state.t - 1) - target
        started = (state.t > 0).astype(h_new.dtype)
        A = state.A - (started * self.lr_sg) * jnp.outer(e, state.prev_in)
        s = self.credit(A, module_in, state.t)
        z = jnp.concatenate([h, x_t])
        post = s * ad
        n = net.n_rec
        direction = {
            "w_in": jnp.outer(post, z[n:]),
            "w_rec": jnp.outer(post, z[:n]),
            "w_out": jnp.outer(err, h_new),
        }
        new = DNIState(A, module_in, q, state.t + 1)
        return new, h_new, y, select(direction, setup)


DNI = register(SyntheticGradients())
