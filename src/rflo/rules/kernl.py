"""KeRNL: kernel RNN learning (Roth, Kanitscheider & Fiete 2019), in the form of
Marschall, Cho & Savin (2020).

KeRNL approximates the influence of ``W = [w_rec, w_in]`` (acting on
``z[t] = [h[t-1]; x[t]]``) as ``dh_k[t] / dW[i, j] ~ beta[k, i] B[i, j]``: a
learned *sensitivity* matrix ``beta`` (n_rec, n_rec) -- how a nudge to unit
``i`` shows up in unit ``k`` -- times a per-synapse eligibility trace that
forgets at a learned per-unit rate ``gamma_i`` (kernel ``k_i = exp(-gamma_i)``
per step)::

    B[t] = diag(k) B[t-1] + a d[t] z[t]^T                      (eligibility trace)
    D_W[i, j] += (beta^T q[t])_i B[i, j][t],   q[t] = w_out^T err[t]

``beta`` and ``gamma`` are learned online, at every step, from a perturbed
copy of the network that runs beside it with the same weights and inputs and
Gaussian noise added to its state::

    h~[t]  = h~[t-1] + (f(w_rec h~[t-1] + w_in x[t]) - h~[t-1]) / tau + sigma xi[t],  xi ~ N(0, I)
    omega[t] = k omega[t-1] + xi[t]                            (the noise, filtered by the kernel)
    Gamma[t] = k (Gamma[t-1] - omega[t-1])                     (= d omega[t] / d gamma)
    delta[t] = (h~[t] - h[t]) / sigma                          (the noise's observed effect)
    e[t] = beta omega[t] - delta[t]                            (prediction error)
    beta  <- beta  - lr_beta  e[t] omega[t]^T                  (SGD on |e|^2 / 2)
    gamma <- max(0, gamma - lr_gamma (beta^T e[t]) * Gamma[t])

(the kernel used at step ``t`` and in ``e``'s derivative is the one before the
step's update).  The noise is measured in units of ``sigma`` so that the
learning rates do not depend on it.  ``w_out`` gets the exact
``err[t] h[t]^T``.

Initial values: ``beta = I`` and ``k = c = 1 - 1/tau``: the trace is then
RFLO's, and until ``beta`` and ``gamma`` move KeRNL is the ``local`` rule (RFLO
with ``w_out^T`` feedback); tested equal with the learning rates at 0.

``beta`` and ``gamma`` are learned state (:class:`rflo.rules.learned.LearnedState`):
the trainer carries them from trial to trial through a session (Marschall et
al. train them continuously over one long stream); the traces ``B``,
``omega``, ``Gamma`` and the perturbed state start afresh at every trial.  Code
that drives :meth:`~rflo.rules.base.Rule.advance` itself carries them with
:meth:`KeRNL.next_trial`.

Settings (fields): ``noise`` (sigma, 1e-3), ``lr_beta`` (1e-3), ``lr_gamma``
(1e-4).  Only the leaky tanh cell with one ``tau``, training ``w_in``,
``w_rec``, ``w_out``.

Cost per step: O(n_rec (n_rec + n_in)) time and memory (a second forward
step, the trace, and the rank-one update of ``beta``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rflo._checks import check_positive
from rflo.network import f
from rflo.rules.base import ClosedFormOnlyRule, feedback_matrix, register
from rflo.rules.learned import LearnedState

__all__ = ["KeRNLState", "KeRNL", "KERNL"]


class KeRNLState(NamedTuple):
    B: jax.Array  # (n_rec, n_rec + n_in) eligibility trace B[i, j]
    beta: jax.Array  # (n_rec, n_rec) learned sensitivity beta[k, i]
    gamma: jax.Array  # (n_rec,) learned forgetting rates, kernel exp(-gamma)
    h_noisy: jax.Array  # (n_rec,) the perturbed network's state
    omega: jax.Array  # (n_rec,) filtered noise (units of sigma)
    Gamma: jax.Array  # (n_rec,) d omega / d gamma
    key: jax.Array  # PRNG key for the next step's noise


@dataclass(frozen=True)
class KeRNL(LearnedState, ClosedFormOnlyRule):
    """KeRNL (see the module docstring)."""

    name: str = "kernl"
    online: bool = True
    feedback: str = "readout"
    noise: float = 1e-3
    lr_beta: float = 1e-3
    lr_gamma: float = 1e-4

    def __post_init__(self):
        super().__post_init__()
        check_positive("noise", self.noise)
        for field in ("lr_beta", "lr_gamma"):
            check_positive(field, getattr(self, field), allow_zero=True)

    def closed_init(self, net, key):
        n, m = net.w_in.shape
        dt = net.w_rec.dtype
        zero = jnp.zeros((n,), dt)
        gamma = jnp.full((n,), -jnp.log1p(-1.0 / net.tau), dt)  # exp(-gamma) = 1 - 1/tau
        return KeRNLState(
            jnp.zeros((n, n + m), dt),
            jnp.eye(n, dtype=dt),
            gamma,
            jnp.asarray(net.h0, dt),
            zero,
            zero,
            key,
        )

    def carried(self, state):
        """What lasts across trials: ``(beta, gamma)``."""
        return state.beta, state.gamma

    def resume(self, state, carried):
        beta, gamma = carried
        return state._replace(beta=beta, gamma=gamma)

    def step(self, state, net, s):
        a = 1.0 / net.tau
        k = jnp.exp(-state.gamma)
        B = k[:, None] * state.B + jnp.outer(a * s.d, jnp.concatenate([s.h_prev, s.x]))
        key, sub = jax.random.split(state.key)
        xi = jax.random.normal(sub, s.h.shape, s.h.dtype)
        hp = state.h_noisy
        h_noisy = hp + (f(net.w_rec @ hp + net.w_in @ s.x) - hp) * a + self.noise * xi
        Gamma = k * (state.Gamma - state.omega)
        omega = k * state.omega + xi
        delta = (h_noisy - s.h) / self.noise
        e = state.beta @ omega - delta
        beta = state.beta - self.lr_beta * jnp.outer(e, omega)
        gamma = jnp.maximum(state.gamma - self.lr_gamma * (state.beta.T @ e) * Gamma, 0.0)
        return KeRNLState(B, beta, gamma, h_noisy, omega, Gamma, key)

    def direction(self, state, net, s, err):
        post = state.beta.T @ (feedback_matrix(net, self.feedback) @ err)  # (n_rec,)
        n = net.n_rec
        return {
            "w_in": post[:, None] * state.B[:, n:],
            "w_rec": post[:, None] * state.B[:, :n],
            "w_out": jnp.outer(err, s.h),
        }


KERNL = register(KeRNL())
