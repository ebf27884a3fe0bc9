"""UORO: unbiased online recurrent optimisation (Tallec & Ollivier 2017).

The RTRL influence ``M[t] = dh[t]/dtheta`` (n_rec x P, ``theta = (w_rec, w_in)``)
obeys ``M[t] = J[t] M[t-1] + F[t]`` with ``J[t] = c I + a diag(d[t]) w_rec`` and
the immediate influence ``F[t]``, ``F[k, (i, j)] = delta_ki a d_i[t] pre_j``
(``pre = h[t-1]`` for ``w_rec``, ``x[t]`` for ``w_in``).  UORO keeps a rank-one
estimate ``M ~ h~ theta~^T`` and, with fresh random signs ``nu`` (n_rec,) at
every step::

    h~[t]     = rho0 J[t] h~[t-1] + rho1 nu
    theta~[t] = theta~[t-1] / rho0 + (nu^T F[t]) / rho1
    rho0 = sqrt(|theta~[t-1]| / |J h~[t-1]|),  rho1 = sqrt(|nu^T F[t]| / |nu|)

where ``nu^T F[t]`` is ``outer(nu * a d[t], h[t-1])`` for ``w_rec`` and
``outer(nu * a d[t], x[t])`` for ``w_in``.  Since ``E[nu nu^T] = I`` and the
``rho`` do not depend on ``nu`` (``|nu * a d| = |a d|``),
``E[h~ theta~^T] = M`` at every step, so the update
``dW += ((w_out^T err[t]) . h~[t]) theta~[t]`` is an unbiased estimate of
RTRL's (``w_out`` gets the exact ``err[t] h[t]^T``).  The signs come from the
trial's PRNG key, split at every step.

Cost per step: O(n_rec (n_rec + n_in)) time and memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

import rflo.rules.generic as generic
from rflo.rules.base import ClosedFormStepRule, feedback_matrix, register

__all__ = ["UOROState", "UORORule", "UORO"]

#: keeps the variance-balancing factors finite when a norm is zero (at t = 1)
EPS = 1e-7


class UOROState(NamedTuple):
    h_tilde: jax.Array  # (n_rec,)
    theta_rec: jax.Array  # (n_rec, n_rec)
    theta_in: jax.Array  # (n_rec, n_in)
    key: jax.Array  # PRNG key for the next step's signs


def _norm(*arrays):
    return jnp.sqrt(sum(jnp.sum(x * x) for x in arrays))


@dataclass(frozen=True)
class UORORule(ClosedFormStepRule):
    name: str = "uoro"
    online: bool = True
    feedback: str = "readout"

    def check(self, net, setup):
        if "h0" in setup.params:
            raise ValueError(
                f"rule {self.name!r} does not train h0; use 'rtrl', 'bptt' or a local rule"
            )

    def generic_init(self, net, key, setup):
        return generic.uoro_init(net, key, setup)

    def generic_advance(self, state, net, h, x_t, y_t, m_t, setup):
        return generic.uoro_advance(state, net, h, x_t, y_t, m_t, setup, self.feedback)

    def closed_init(self, net, key):
        n = net.n_rec
        dt = net.w_rec.dtype
        return UOROState(
            jnp.zeros((n,), dt), jnp.zeros_like(net.w_rec), jnp.zeros_like(net.w_in), key
        )

    def step(self, state, net, s):
        a = 1.0 / net.tau
        key, sub = jax.random.split(state.key)
        nu = jax.random.rademacher(sub, s.d.shape, dtype=s.d.dtype)
        ad = a * s.d
        jh = (1.0 - a) * state.h_tilde + ad * (net.w_rec @ state.h_tilde)
        nu_ad = nu * ad
        rho0 = jnp.sqrt((_norm(state.theta_rec, state.theta_in) + EPS) / (_norm(jh) + EPS))
        # |nu^T F| = |nu * a d| |(h[t-1], x[t])|
        rho1 = jnp.sqrt((_norm(nu_ad) * _norm(s.h_prev, s.x) + EPS) / (_norm(nu) + EPS))
        return UOROState(
            rho0 * jh + rho1 * nu,
            state.theta_rec / rho0 + jnp.outer(nu_ad, s.h_prev) / rho1,
            state.theta_in / rho0 + jnp.outer(nu_ad, s.x) / rho1,
            key,
        )

    def direction(self, state, net, s, err):
        scale = (feedback_matrix(net, self.feedback) @ err) @ state.h_tilde
        return {
            "w_in": scale * state.theta_in,
            "w_rec": scale * state.theta_rec,
            "w_out": jnp.outer(err, s.h),
        }


UORO = register(UORORule())
