"""The paper's leaky tanh unit with its own readout fed back through ``B``::

    h[t] = h[t-1] + (tanh(u[t]) - h[t-1]) / tau,
    u[t] = w_rec @ h[t-1] + b @ (w_out @ h[t-1]) + w_in @ x[t]

The network's output ``y[t-1] = w_out h[t-1]`` reaches the units as a second
input current through the fixed random feedback weights ``b`` (n_rec, n_out).
Murray (2019, Figure 2-figure supplement 2) trains only the readout of such a
network: the loop through ``b`` keeps its activity from dying out or turning
chaotic while ``w_rec`` stays as it was drawn.  Rules train its readout with
the delta rule ``err h^T`` (the path through the loop is not differentiated by
the local rules; the exact ones, through the cell's Jacobian-vector products,
include it).  ``derivative`` as for ``leaky_tanh``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rflo.cells.base import Cell, register_cell
from rflo.cells.leaky_tanh import DERIVATIVES, LEAKY_MIN_TAU, tanh_with

__all__ = ["ReadoutFeedback"]


@register_cell
@dataclass(frozen=True)
class ReadoutFeedback(Cell):
    """Leaky tanh unit that also receives the network's readout through ``b``."""

    name = "readout_feedback"
    min_tau = LEAKY_MIN_TAU
    derivative: str = "seed"

    def __post_init__(self):
        if self.derivative not in DERIVATIVES:
            raise ValueError(
                f"unknown derivative {self.derivative!r}: use one of {sorted(DERIVATIVES)}"
            )

    def neuron(self, net, state, current):
        fed_back = net.b @ (net.w_out @ state)
        return state + (tanh_with(self.derivative)(current + fed_back) - state) / net.tau
