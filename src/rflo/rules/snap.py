"""SnAp-n: sparse n-step approximation of RTRL (Menick et al. 2021).

RTRL's influence ``P[k, i, j] = dh_k / dW[i, j]`` (see :mod:`rflo.rules.rtrl`)
is kept only on the entries that can be nonzero ``n`` steps after the
parameter acts: a parameter of unit ``i`` first moves ``h_i`` (one step), then
every unit that ``i`` projects to, and so on.  With ``M[k, i] = 1`` where the
connection ``i -> k`` exists (the network's ``mask``; all ones when it has
none), the kept pattern is::

    S_n[k, i] = [ ((I + M)^(n-1))[k, i] > 0 ]

and the influence recursion of RTRL is projected onto it at every step::

    P[t] = S_n * ( J[t] P[t-1] + a delta_ki d_i[t] h_j[t-1] )     (same for Q, w_in)
    dW[i, j] += sum_k (w_out^T err[t])_k P[k, i, j, t]

SnAp-1 keeps the diagonal ``k = i`` only, which needs no tensor::

    p[t] = (c + a d[t] * diag(w_rec)) p[t-1] + a d[t] h[t-1]^T,   dW_rec += (w_out^T err) * p

(RFLO / e-prop drop the self-connection ``w_rec[i, i]`` from that factor.)
When every unit reaches every other within ``n - 1`` steps (``n >= 2`` on a
fully connected network) ``S_n`` is all ones and SnAp-n *is* RTRL.

Cost per step: SnAp-1 O(n_rec (n_rec + n_in)) time and memory.  SnAp-n for
n >= 2 is stored here as a dense masked tensor (O(n_rec^3) memory, O(n_rec^4)
time, as RTRL): correct, but without the savings a sparse-storage
implementation gets on a sparse network (there, O(s n_rec^2) memory for a
pattern of density s).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp

import rflo.rules.generic as generic
import rflo.rules.traces as traces
from rflo.cells.base import owns_synapses
from rflo.rules.base import ClosedFormStepRule, feedback_matrix, register
from rflo.rules.rflo import LocalTraces
from rflo.rules.rtrl import Influence, _propagate

__all__ = ["SnAp", "SNAP1", "SNAP2", "snap_pattern"]


def snap_pattern(net, order: int):
    """The (n_rec, n_rec) 0/1 pattern ``S_n[k, i]`` of SnAp-``order`` for ``net``."""
    n = net.n_rec
    eye = jnp.eye(n, dtype=net.w_rec.dtype)
    if net.mask is None:
        return eye if order == 1 else jnp.ones((n, n), net.w_rec.dtype)
    step = ((eye + jnp.asarray(net.mask, net.w_rec.dtype)) > 0).astype(net.w_rec.dtype)
    reach = eye
    for _ in range(order - 1):
        reach = ((step @ reach) > 0).astype(net.w_rec.dtype)
    return reach


@dataclass(frozen=True)
class SnAp(ClosedFormStepRule):
    """SnAp-``order`` (``order`` >= 1); feedback through ``w_out^T`` (or ``b``).

    On any cell SnAp-1 keeps per-unit traces with the full diagonal Jacobian
    (:func:`rflo.rules.traces.local_advance` with ``diagonal=True``) and
    SnAp-n the influence projected on the pattern ``S_n``.
    """

    name: str = "snap1"
    online: bool = True
    feedback: str = "readout"
    order: int = 1

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.order, bool) or not isinstance(self.order, int) or self.order < 1:
            raise ValueError(f"SnAp order must be an integer >= 1, got {self.order!r}")

    def check(self, net, setup):
        if self.order == 1:
            traces.check_local(self.name, net, setup)

    def closed_init(self, net, key):
        if self.order == 1:
            return LocalTraces(jnp.zeros_like(net.w_rec), jnp.zeros_like(net.w_in))
        n, m = net.w_in.shape
        dt = net.w_rec.dtype
        return Influence(jnp.zeros((n, n, n), dt), jnp.zeros((n, n, m), dt))

    def step(self, state, net, s):
        a = 1.0 / net.tau
        if self.order == 1:
            keep = (1.0 - a) + a * s.d * jnp.diagonal(net.w_rec)  # J[i, i]
            return LocalTraces(
                keep[:, None] * state.p + (a * s.d)[:, None] * s.h_prev[None, :],
                keep[:, None] * state.q + (a * s.d)[:, None] * s.x[None, :],
            )
        pattern = snap_pattern(net, self.order)[:, :, None]
        return Influence(
            pattern * _propagate(state.p, net.w_rec, s.d, a, s.h_prev),
            pattern * _propagate(state.q, net.w_rec, s.d, a, s.x),
        )

    def direction(self, state, net, s, err):
        g = feedback_matrix(net, self.feedback) @ err
        if self.order == 1:
            return {
                "w_in": g[:, None] * state.q,
                "w_rec": g[:, None] * state.p,
                "w_out": jnp.outer(err, s.h),
            }
        n = g.shape[0]
        return {
            "w_in": (g @ state.q.reshape(n, -1)).reshape(state.q.shape[1:]),
            "w_rec": (g @ state.p.reshape(n, -1)).reshape(state.p.shape[1:]),
            "w_out": jnp.outer(err, s.h),
        }

    def generic_init(self, net, key, setup):
        if self.order == 1:
            return traces.local_init(net, setup, diagonal=True)
        return generic.influence_init(net, setup)

    def generic_advance(self, state, net, h, x_t, y_t, m_t, setup):
        if self.order == 1:
            return traces.local_advance(
                state, net, h, x_t, y_t, m_t, setup, self.feedback, diagonal=True
            )
        pattern = None  # a cell that owns its synapses: every unit may reach every other
        if not owns_synapses(net.cell):
            pattern = generic.influence_pattern(net, setup, snap_pattern(net, self.order))
        return generic.influence_advance(
            state, net, h, x_t, y_t, m_t, setup, self.feedback, pattern
        )


SNAP1 = register(SnAp(name="snap1", order=1))
SNAP2 = register(SnAp(name="snap2", order=2))
