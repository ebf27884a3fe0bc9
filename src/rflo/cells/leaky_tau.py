"""A leaky tanh rate unit with its own time constant and bias, both learnable::

    h[t] = h[t-1] + (tanh(u[t] + bias) - h[t-1]) / tau,    u[t] = w_rec @ h[t-1] + w_in @ x[t]

``tau`` (n_rec,) is one time constant per unit (in timesteps) and ``bias``
(n_rec,) one offset per unit (the cell's ``extra`` parameter, initially 0);
the unit sends its rate (``z = h``).  f' is the exact ``1 - tanh^2`` (plain
autodiff of ``tanh``).  Both are per-unit parameters, so local rules (RFLO,
e-prop, SnAp-1) train them with one trace per unit.  Training keeps
``tau >= 1`` (:meth:`LeakyTau.constrain`): with ``tau < 1`` the update
overshoots (the leak factor ``1 - 1/tau`` is negative, and below ``tau = 1/2``
the unit is unstable).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp

from rflo.cells.base import Cell, register_cell
from rflo.cells.leaky_tanh import LEAKY_MIN_TAU

__all__ = ["LeakyTau", "TAU_MIN"]

#: smallest time constant training leaves (``h[t] = tanh(u[t] + bias)`` at ``tau = 1``)
TAU_MIN = LEAKY_MIN_TAU[0]


@register_cell
@dataclass(frozen=True)
class LeakyTau(Cell):
    """Leaky tanh rate unit with a learnable ``tau`` per unit and a learnable ``bias``."""

    name = "leaky_tau"
    min_tau = LEAKY_MIN_TAU
    trainable = ("w_in", "w_rec", "w_out", "tau", "bias")
    unit_params = ("w_in", "w_rec", "h0", "bias")  # "tau" is added for vector_tau cells
    vector_tau = True

    def neuron(self, net, state, current):
        return state + (jnp.tanh(current + net.extra["bias"]) - state) / net.tau

    def extra_params(self, key, n_rec, dtype):
        return {"bias": jnp.zeros((n_rec,), dtype)}

    def constrain(self, params):
        if "tau" not in params:
            return params
        return {**params, "tau": jnp.maximum(params["tau"], TAU_MIN)}
