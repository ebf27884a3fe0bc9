"""The leaky rate unit of Murray (2019), the library's default cell::

    h[t] = h[t-1] + (f(u[t]) - h[t-1]) / tau,    u[t] = w_rec @ h[t-1] + w_in @ x[t]

with ``f = tanh``; the unit sends its rate (``z = h``).  ``derivative`` picks
the f' that every rule (and autodiff) uses: ``"seed"`` (the notebook's
approximation, default) or ``"exact"``.  ``tau`` is one number for all units.
Every rule has a closed-form route for this cell (chosen automatically).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from rflo.cells.base import Cell, register_cell

__all__ = ["LeakyTanh", "df_seed", "df_exact", "DERIVATIVES", "tanh_with"]


def df_seed(u):
    """The seed notebook's f': ``1 / cosh(10 tanh(u / 10))**2``.

    The inner ``tanh`` keeps ``cosh`` from overflowing, but it also makes this an
    approximation of tanh'(u): equal at u = 0, 0.4 % larger at |u| = 1, 18 %
    larger at |u| = 3.  It is the default so that results match the paper's
    code; use ``derivative="exact"`` for the true derivative.

    Computed as ``4 e / (1 + e)^2`` with ``z = 10 tanh(u / 10)`` and
    ``e = exp(-2 |z|)``: one exponential instead of cosh's two (|z| < 10, so
    nothing overflows); equal to the notebook's formula to float rounding.
    """
    z = 10.0 * jnp.tanh(u / 10.0)
    e = jnp.exp(-2.0 * jnp.abs(z))
    return 4.0 * e / (1.0 + e) ** 2


def df_exact(u):
    """The exact derivative of tanh, ``1 - tanh(u)**2`` (never overflows)."""
    return 1.0 - jnp.tanh(u) ** 2


DERIVATIVES = {"seed": df_seed, "exact": df_exact}


@jax.custom_jvp
def _tanh_seed(u):
    return jnp.tanh(u)


@_tanh_seed.defjvp
def _tanh_seed_jvp(primals, tangents):
    (u,), (du,) = primals, tangents
    return jnp.tanh(u), df_seed(u) * du


def tanh_with(derivative: str):
    """``tanh`` whose derivative (for autodiff) is ``DERIVATIVES[derivative]``."""
    return _tanh_seed if derivative == "seed" else jnp.tanh


#: the smallest stable ``tau`` of the leaky (Euler) units, and why
LEAKY_MIN_TAU = (
    1.0,
    "h moves 1/tau of the way to tanh(u) each step, so with tau < 1 it "
    "overshoots and below tau = 1/2 it is unstable",
)


@register_cell
@dataclass(frozen=True)
class LeakyTanh(Cell):
    """Leaky tanh rate unit (the paper's); ``derivative``: ``"seed"`` or ``"exact"``."""

    name = "leaky_tanh"
    min_tau = LEAKY_MIN_TAU
    derivative: str = "seed"

    def __post_init__(self):
        if self.derivative not in DERIVATIVES:
            raise ValueError(
                f"unknown derivative {self.derivative!r}: use one of {sorted(DERIVATIVES)}"
            )

    @property
    def fprime(self):
        """f' as a function of the current ``u``."""
        return DERIVATIVES[self.derivative]

    def neuron(self, net, state, current):
        return state + (tanh_with(self.derivative)(current) - state) / net.tau


LEAKY_TANH = LeakyTanh()
