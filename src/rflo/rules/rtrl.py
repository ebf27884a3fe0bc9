"""RTRL: real-time recurrent learning (Williams & Zipser 1989), and the
"random feedback without locality" ablation of Murray (2019, Fig. 2d).

The influence tensors ``P[k, i, j] = dh_k / dW_rec[i, j]`` and
``Q[k, i, j] = dh_k / dW_in[i, j]`` are carried forward exactly::

    J[t]   = c I + a diag(d[t]) W_rec                      (n_rec, n_rec)
    P[t]   = J[t] P[t-1] + a delta_{ki} d_i[t] h_j[t-1]     (n_rec, n_rec, n_rec)
    Q[t]   = J[t] Q[t-1] + a delta_{ki} d_i[t] x_j[t]       (n_rec, n_rec, n_in)

and the update is ``dW_rec[i, j] += sum_k (F err[t])_k P[k, i, j, t]`` with
``F = w_out^T`` (RTRL, the exact gradient) or ``F = b`` (the ablation).
Cost per step: O(n_rec^4) time, O(n_rec^3) memory, independent of T.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

import rflo.rules.generic as generic
from rflo.kernels import leaky_tanh
from rflo.rules.base import (
    DEFAULT_SETUP,
    MATRICES,
    ClosedFormStepRule,
    feedback_matrix,
    register,
    select,
)
from rflo.rules.bptt import BackpropThroughTime

__all__ = ["Influence", "InfluenceRule", "RTRL", "RANDOM_FEEDBACK", "influence_bytes"]


class Influence(NamedTuple):
    p: jax.Array  # (n_rec, n_rec, n_rec): dh_k / dW_rec[i, j]
    q: jax.Array  # (n_rec, n_rec, n_in):  dh_k / dW_in[i, j]


def influence_bytes(n_rec: int, n_in: int, dtype="float32") -> int:
    """Bytes of one network's influence tensors ``P`` (n_rec^3) and ``Q``
    (n_rec^2 n_in): the state RTRL carries, whatever the trial length.

    A step also holds one temporary of the same size (the product ``w_rec @ P``);
    e.g. n_rec = 100, n_in = 1, float32: 4.0 MB of state.
    """
    return (n_rec**3 + n_rec**2 * n_in) * jnp.dtype(dtype).itemsize


def _propagate(influence, w_rec, d, a, pre):
    """``J influence + a delta_{ki} d_i pre_j`` for one influence tensor (n, n, m).

    ``J influence = c influence + a d * (w_rec @ influence)``: one (n x n) by
    (n x n m) matrix product (the O(n^4) part), then a single fused elementwise
    pass that also adds the diagonal source term (a dense ``eye`` mask instead
    of a scatter, so the whole update is one loop).
    """
    n = influence.shape[0]
    mixed = (w_rec @ influence.reshape(n, -1)).reshape(influence.shape)
    eye = jnp.eye(n, dtype=influence.dtype)
    source = eye[:, :, None] * pre[None, None, :]
    return (1.0 - a) * influence + (a * d)[:, None, None] * (mixed + source)


@dataclass(frozen=True)
class InfluenceRule(ClosedFormStepRule):
    """Full influence tensors with error feedback through ``w_out^T`` or ``b``
    (any cell: :func:`rflo.rules.generic.influence_advance`)."""

    name: str = "rtrl"
    online: bool = True
    feedback: str = "readout"
    offline_backward: bool = False

    def trial(self, net, x, y_target, mask, key, setup=DEFAULT_SETUP):
        """Offline: with ``offline_backward`` the summed update
        ``sum_t (F err[t])^T dh[t]/dW`` as one backward pass that injects
        ``F err[t]`` (O(T n_rec^2), equal to the forward influence sum);
        otherwise the influence is carried forward as online."""
        if self.offline_backward:
            return BackpropThroughTime(name=self.name, feedback=self.feedback).trial(
                net, x, y_target, mask, key, setup
            )
        if type(self) is InfluenceRule and leaky_tanh.rtrl_route(net, setup):
            full = setup._replace(params=MATRICES)

            def reference(n, x, y, m):
                d, out = super(InfluenceRule, self).trial(n, x, y, m, key, full)
                return d["w_in"], d["w_rec"], d["w_out"], out

            *d, y = leaky_tanh.rtrl_trial(
                net, x, y_target, mask, feedback=self.feedback, reference=reference
            )
            return select(dict(zip(MATRICES, d)), setup), y
        return super().trial(net, x, y_target, mask, key, setup)

    def closed_init(self, net, key):
        n, m = net.w_in.shape
        dt = net.w_rec.dtype
        return Influence(jnp.zeros((n, n, n), dt), jnp.zeros((n, n, m), dt))

    def step(self, state, net, s):
        a = 1.0 / net.tau
        return Influence(
            _propagate(state.p, net.w_rec, s.d, a, s.h_prev),
            _propagate(state.q, net.w_rec, s.d, a, s.x),
        )

    def direction(self, state, net, s, err):
        g = feedback_matrix(net, self.feedback) @ err  # (n_rec,)
        n = g.shape[0]
        return {
            "w_in": (g @ state.q.reshape(n, -1)).reshape(state.q.shape[1:]),
            "w_rec": (g @ state.p.reshape(n, -1)).reshape(state.p.shape[1:]),
            "w_out": jnp.outer(err, s.h),
        }

    def generic_init(self, net, key, setup):
        return generic.influence_init(net, setup)

    def generic_advance(self, state, net, h, x_t, y_t, m_t, setup):
        return generic.influence_advance(state, net, h, x_t, y_t, m_t, setup, self.feedback)


RTRL = register(InfluenceRule(name="rtrl", feedback="readout"))
"""Exact RTRL: full influence, feedback through ``w_out^T``."""

RANDOM_FEEDBACK = register(
    InfluenceRule(name="random_feedback", feedback="random", offline_backward=True)
)
"""Random feedback without locality: full influence, feedback through ``b``
(Murray 2019, Fig. 2d).  Online it carries the influence tensors (O(n_rec^4)
per step); offline its summed update is one backward pass (O(T n_rec^2))."""
