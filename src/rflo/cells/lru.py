"""The linear recurrent unit (LRU; Orvieto et al. 2023), a cell that owns its synapses.

Each unit ``k`` is one complex number with its own decay and phase, and the
recurrence is diagonal (no unit feeds another)::

    lambda_k = exp(-exp(nu_log_k)) * exp(i exp(theta_log_k))
    h_k[t]   = lambda_k h_k[t-1] + exp(gamma_log_k) (B x[t])_k,     B = b_re + i b_im
    z[t]     = (Re h[t], Im h[t])                                    (2 n_rec,)

so the readout ``w_out z = Re(C h)`` with ``C = w_out[:, :n] - i w_out[:, n:]``.
The state is stored as two real leaves ``(Re h, Im h)``.

Because the recurrence is diagonal, each unit's state depends only on its own
parameters, and the influence ``dh_k / dtheta`` of every parameter is a
per-unit trace: RTRL costs O(n_rec n_in) per step and is what every local rule
computes here (e-prop, RFLO's traces and SnAp-1 all equal RTRL on this cell,
as Zucchet et al. 2023 use; the tests check it).

Initialisation (Orvieto et al. 2023, Sec. 3.3): ``|lambda|`` uniform on the
ring ``[r_min, r_max]`` of the complex plane, phase uniform on
``[0, max_phase]``, ``B`` complex normal with variance ``1 / n_in``, and
``gamma = sqrt(1 - |lambda|^2)`` (the normalisation, trained as ``gamma_log``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from rflo.cells.base import SynapticCell, register_cell

__all__ = ["LRU"]

PARAMS = ("nu_log", "theta_log", "gamma_log", "b_re", "b_im")


@register_cell
@dataclass(frozen=True)
class LRU(SynapticCell):
    """Linear recurrent unit with diagonal complex recurrence; output ``(Re h, Im h)``."""

    name = "lru"
    r_min: float = 0.4
    r_max: float = 0.99
    max_phase: float = 2 * math.pi

    def __post_init__(self):
        if not 0.0 <= self.r_min < self.r_max <= 1.0:
            raise ValueError(
                f"LRU needs 0 <= r_min < r_max <= 1, got r_min={self.r_min}, r_max={self.r_max}"
            )
        if not self.max_phase > 0:
            raise ValueError(f"LRU max_phase must be positive, got {self.max_phase}")

    def init(self, key, n_in, n_rec, dtype):
        k_r, k_p, k_re, k_im = jax.random.split(key, 4)
        u1 = jax.random.uniform(k_r, (n_rec,), dtype)
        u2 = jax.random.uniform(k_p, (n_rec,), dtype)
        nu_log = jnp.log(-0.5 * jnp.log(u1 * (self.r_max**2 - self.r_min**2) + self.r_min**2))
        theta_log = jnp.log(self.max_phase * u2 + 1e-6)
        modulus = jnp.exp(-jnp.exp(nu_log))
        scale = 1.0 / math.sqrt(2 * n_in)
        return {
            "nu_log": nu_log,
            "theta_log": theta_log,
            "gamma_log": jnp.log(jnp.sqrt(1.0 - modulus**2)),
            "b_re": scale * jax.random.normal(k_re, (n_rec, n_in), dtype),
            "b_im": scale * jax.random.normal(k_im, (n_rec, n_in), dtype),
        }

    def sizes(self, params):
        return params["b_re"].shape[-1], params["nu_log"].shape[-1]

    def initial_state(self, params):
        zero = jnp.zeros_like(params["nu_log"])
        return (zero, zero)

    def output(self, params, state):
        return jnp.concatenate(state)

    def step(self, params, state, x):
        re, im = state
        modulus = jnp.exp(-jnp.exp(params["nu_log"]))
        phase = jnp.exp(params["theta_log"])
        lam_re, lam_im = modulus * jnp.cos(phase), modulus * jnp.sin(phase)
        gamma = jnp.exp(params["gamma_log"])
        return (
            lam_re * re - lam_im * im + gamma * (params["b_re"] @ x),
            lam_im * re + lam_re * im + gamma * (params["b_im"] @ x),
        )

    def step_with(self, params, state, x, z):
        """No unit feeds another: the recurrent input changes nothing."""
        return self.step(params, state, x)

    def unit_axes(self, params):
        return {name: 0 for name in PARAMS}
