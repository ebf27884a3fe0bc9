"""KF-RTRL: Kronecker-factored RTRL (Mujika, Meier & Steger 2018).

Write the recurrent and input weights as one matrix ``W = [w_rec, w_in]``
(n_rec x m, ``m = n_rec + n_in``) acting on ``z[t] = [h[t-1]; x[t]]``.  Its
influence ``G[k, (i, j)] = dh_k[t] / dW[i, j]`` obeys
``G[t] = J[t] G[t-1] + z[t] (x) a diag(d[t])`` (``J[t] = c I + a diag(d[t]) w_rec``),
whose immediate term is a Kronecker product.  KF-RTRL keeps
``G ~ u (x) A``, i.e. ``G[k, (i, j)] ~ u_j A[k, i]`` with ``u`` (m,) and
``A`` (n_rec, n_rec), and folds the sum of two Kronecker products back into one
with two random signs ``s1, s2`` (+-1, fresh every step)::

    u[t] = s1 rho1 u[t-1] + s2 rho2 z[t]
    A[t] = s1 / rho1 J[t] A[t-1] + s2 / rho2 a diag(d[t])
    rho1 = sqrt(|J A[t-1]| / |u[t-1]|),  rho2 = sqrt(|a d[t]| / |z[t]|)

so that ``E[u[t] (x) A[t]] = u[t-1] (x) J A[t-1] + z[t] (x) a diag(d[t])``: the
estimate is unbiased.  The update is
``dW[i, j] += (A[t]^T w_out^T err[t])_i u_j[t]``.  The signs come from the
trial's PRNG key, split at every step.

Cost per step: O(n_rec^3) time (the product ``J A``), O(n_rec^2 + n_in) memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

import rflo.rules.generic as generic
from rflo.rules.base import ClosedFormStepRule, feedback_matrix, register

__all__ = ["KFState", "KroneckerFactoredRTRL", "KFRTRL"]

EPS = 1e-7


class KFState(NamedTuple):
    u: jax.Array  # (n_rec + n_in,) presynaptic factor
    A: jax.Array  # (n_rec, n_rec) postsynaptic factor: A[k, i]
    key: jax.Array


@dataclass(frozen=True)
class KroneckerFactoredRTRL(ClosedFormStepRule):
    name: str = "kf_rtrl"
    online: bool = True
    feedback: str = "readout"

    def check(self, net, setup):
        generic.check_kronecker(self.name, setup, net)

    def generic_init(self, net, key, setup):
        return generic.kf_init(net, key, setup)

    def generic_advance(self, state, net, h, x_t, y_t, m_t, setup):
        return generic.kf_advance(state, net, h, x_t, y_t, m_t, setup, self.feedback)

    def closed_init(self, net, key):
        n, m = net.w_in.shape
        dt = net.w_rec.dtype
        return KFState(jnp.zeros((n + m,), dt), jnp.zeros((n, n), dt), key)

    def step(self, state, net, s):
        a = 1.0 / net.tau
        key, sub = jax.random.split(state.key)
        s1, s2 = jax.random.rademacher(sub, (2,), dtype=s.d.dtype)
        ad = a * s.d
        ja = (1.0 - a) * state.A + ad[:, None] * (net.w_rec @ state.A)
        z = jnp.concatenate([s.h_prev, s.x])
        rho1 = jnp.sqrt((jnp.linalg.norm(ja) + EPS) / (jnp.linalg.norm(state.u) + EPS))
        rho2 = jnp.sqrt((jnp.linalg.norm(ad) + EPS) / (jnp.linalg.norm(z) + EPS))
        return KFState(
            s1 * rho1 * state.u + s2 * rho2 * z,
            (s1 / rho1) * ja + (s2 / rho2) * jnp.diag(ad),
            key,
        )

    def direction(self, state, net, s, err):
        post = state.A.T @ (feedback_matrix(net, self.feedback) @ err)  # (n_rec,)
        n = net.n_rec
        return {
            "w_in": jnp.outer(post, state.u[n:]),
            "w_rec": jnp.outer(post, state.u[:n]),
            "w_out": jnp.outer(err, s.h),
        }


KFRTRL = register(KroneckerFactoredRTRL())
