"""e-prop (Bellec et al. 2020) for the leaky rate network.

e-prop splits the gradient into a *learning signal* ``L[t]`` (the error fed back
to each unit, here through ``F = w_out^T`` or the random ``b``) and an
*eligibility trace* that each synapse computes from local quantities only.
For a unit with hidden state ``h_i`` and output ``z_i`` the eligibility vector
follows the unit's *internal* dynamics, i.e. the partial derivative
``D_i = dh_i[t] / dh_i[t-1]`` taken with the recurrent input (which arrives
through the outputs ``z[t-1]``) held fixed::

    eps[t] = D eps[t-1] + dh_i[t] / dW_ij          (eligibility vector)
    e[t]   = (dz_i[t] / dh_i[t]) eps[t]             (eligibility trace)
    dW_ij += L_i[t] e_ij[t],   L[t] = F err[t]

For the leaky rate unit ``h[t] = c h[t-1] + a f(u[t])`` the output is the
state itself (``z = h``, so ``dz/dh = 1``) and the internal dynamics is the leak
alone (``D = c``), hence::

    e_rec[t] = c e_rec[t-1] + a d[t] h[t-1]^T       (n_rec, n_rec)
    e_in[t]  = c e_in[t-1]  + a d[t] x[t]^T         (n_rec, n_in)

which is exactly RFLO's trace ``p`` / ``q`` (Murray 2019, eq. 14-15).  With
symmetric feedback (``F = w_out^T``) e-prop is therefore Murray's "locality
without random feedback" (rule ``local``), and with random feedback
(``F = b``) it is RFLO; ``tests/test_rules_extra.py`` checks both to rounding.
(Bellec's readout is low-pass filtered, which adds a second filter to the
trace; this network's readout is instantaneous, so that filter is absent.)
The dropped term is the recurrent path ``a d_i w_rec[i, :] dh[t-1]/dW``: on a
network with ``w_rec = 0`` e-prop is the exact gradient.

Cost per step: O(n_rec (n_rec + n_in)) time and memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rflo.network import Weights
from rflo.rules.base import FEEDBACKS, Rule, feedback_matrix, register

__all__ = ["EligibilityVectors", "EProp", "EPROP", "EPROP_RANDOM"]


class EligibilityVectors(NamedTuple):
    rec: jax.Array  # (n_rec, n_rec) eligibility vectors of w_rec (z = h: also the traces)
    inp: jax.Array  # (n_rec, n_in)  eligibility vectors of w_in


@dataclass(frozen=True)
class EProp(Rule):
    """e-prop with learning signals through ``w_out^T`` (``"readout"``) or ``b`` (``"random"``)."""

    name: str = "eprop"
    online: bool = True
    feedback: str = "readout"

    def __post_init__(self):
        if self.feedback not in FEEDBACKS:
            raise ValueError(f"feedback must be one of {FEEDBACKS}, got {self.feedback!r}")

    def init(self, net, key):
        return EligibilityVectors(jnp.zeros_like(net.w_rec), jnp.zeros_like(net.w_in))

    def step(self, state, net, s):
        a = 1.0 / net.tau
        internal = 1.0 - a  # D = dh_i[t]/dh_i[t-1] with z[t-1] fixed: the leak only
        post = a * s.d  # dh_i[t]/du_i[t]
        return EligibilityVectors(
            internal * state.rec + post[:, None] * s.h_prev[None, :],
            internal * state.inp + post[:, None] * s.x[None, :],
        )

    def direction(self, state, net, s, err):
        learning_signal = feedback_matrix(net, self.feedback) @ err  # L[t], (n_rec,)
        # z = h: the eligibility trace equals the eligibility vector (dz/dh = 1)
        return Weights(learning_signal[:, None] * state.inp,
                       learning_signal[:, None] * state.rec,
                       jnp.outer(err, s.h))


EPROP = register(EProp(name="eprop", feedback="readout"))
"""e-prop with symmetric feedback ``w_out^T``."""

EPROP_RANDOM = register(EProp(name="eprop_random", feedback="random"))
"""e-prop with random feedback ``b`` (Bellec et al. 2020's "random e-prop")."""
