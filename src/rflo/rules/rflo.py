"""RFLO: random feedback local online learning (Murray 2019), and its
"locality without random feedback" ablation.

Each synapse keeps an eligibility trace of its own pre- and postsynaptic
activity, low-pass filtered with the membrane time constant::

    p[t] = c p[t-1] + a d[t] h[t-1]^T        (n_rec, n_rec)
    q[t] = c q[t-1] + a d[t] x[t]^T          (n_rec, n_in)

and the error reaches unit ``i`` through a feedback matrix ``F`` (``b`` for
RFLO, ``w_out^T`` for the ablation)::

    dW_rec[i, j] += (F err[t])_i p[i, j, t]
    dW_in[i, j]  += (F err[t])_i q[i, j, t]
    dW_out       += err[t] h[t]^T

Offline (one update per trial) the sum can be reorganised so that no trace is
ever formed: with ``g[t] = F err[t]`` and the backward-filtered signal
``G[s] = sum_{t >= s} c^(t-s) g[t]``::

    dW_rec = a sum_s (d[s] * G[s]) h[s-1]^T,   dW_in = a sum_s (d[s] * G[s]) x[s]^T

which is two matrix products instead of T outer products.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

import rflo.rules.traces as traces
from rflo.rules.base import (
    DEFAULT_SETUP,
    ClosedFormStepRule,
    Rule,
    closed_form,
    closed_trial,
    feedback_matrix,
    forward,
    fused_offline_step,
    readout_error,
    register,
)

__all__ = ["LocalTraces", "LocalTraceRule", "RFLO", "LOCAL", "reverse_filter"]

#: ``reverse_filter``'s default route: up to this many steps one (S x S)
#: matrix product; above it, the blocked route (O(S sqrt(S) n) work, O(S n) memory).
FILTER_MATRIX_MAX_STEPS = 32


class LocalTraces(NamedTuple):
    p: jax.Array  # (n_rec, n_rec) recurrent-weight traces
    q: jax.Array  # (n_rec, n_in) input-weight traces


def _powers(c, count, dtype):
    """``c^0 .. c^(count-1)`` by repeated multiplication (valid for any sign of ``c``)."""
    return jnp.cumprod(jnp.concatenate([jnp.ones((1,), dtype), jnp.full((count - 1,), c, dtype)]))


def _filter_matrix(c, size, dtype):
    """(size, size) upper-triangular Toeplitz matrix ``K[s, t] = c^(t-s)`` for ``t >= s``."""
    powers = _powers(c, size, dtype)
    lag = jnp.arange(size)[None, :] - jnp.arange(size)[:, None]  # t - s
    return jnp.where(lag >= 0, powers[jnp.clip(lag, 0, size - 1)], 0.0).astype(dtype)


def _blocked_filter(g, c, block):
    """The reverse filter in blocks of ``block`` steps: filter inside each block
    with a (block x block) matrix, then carry the first row of every block into
    the blocks before it (itself a reverse filter, with decay ``c^block``)."""
    steps, rest = g.shape[0], g.shape[1:]
    n_blocks = -(-steps // block)
    pad = n_blocks * block - steps
    gb = jnp.pad(g, [(0, pad)] + [(0, 0)] * len(rest)).reshape((n_blocks, block) + rest)
    inner = jnp.tensordot(_filter_matrix(c, block, g.dtype), gb, axes=([1], [1]))
    inner = jnp.moveaxis(inner, 0, 1)  # (n_blocks, block, ...)
    powers = _powers(c, block + 1, g.dtype)  # c^0 .. c^block
    # first[b] = G at the first step of block b = inner[b, 0] + c^block first[b+1]
    first = _filter_matrix(powers[block], n_blocks, g.dtype) @ inner[:, 0].reshape(n_blocks, -1)
    carry = jnp.concatenate([first[1:], jnp.zeros_like(first[:1])]).reshape((n_blocks,) + rest)
    decay = powers[block - jnp.arange(block)]  # c^(block - i) for the i-th step of a block
    out = inner + decay.reshape((1, block) + (1,) * len(rest)) * carry[:, None]
    return out.reshape((n_blocks * block,) + rest)[:steps]


def reverse_filter(g, c, use_matrix=None, block=None):
    """``G[s] = sum_{t >= s} c^(t-s) g[t]`` along axis 0 of ``g`` (S, n).

    Three exact routes (equal to float rounding):

    * ``use_matrix=True``: one (S x S) upper-triangular Toeplitz product
      (O(S^2 n) work, O(S^2) memory);
    * ``use_matrix=False``: a reverse scan ``G[s] = g[s] + c G[s+1]``
      (S sequential steps);
    * ``use_matrix=None`` (default): the matrix for S <= ``FILTER_MATRIX_MAX_STEPS``,
      else blocks of ``block`` steps (default ``ceil(sqrt(S))``): a (block x block)
      product inside the blocks and an (S/block)-long filter across them.
    """
    steps = g.shape[0]
    if use_matrix is None and block is None and steps <= FILTER_MATRIX_MAX_STEPS:
        use_matrix = True
    if use_matrix:
        return _filter_matrix(c, steps, g.dtype) @ g
    if use_matrix is None:
        if block is None:
            block = max(1, int(math.ceil(math.sqrt(steps))))
        return _blocked_filter(g, c, int(block))

    def body(acc, g_t):
        acc = g_t + c * acc
        return acc, acc

    _, out = jax.lax.scan(body, jnp.zeros_like(g[0]), g, reverse=True)
    return out


@dataclass(frozen=True)
class LocalTraceRule(ClosedFormStepRule):
    """Local eligibility traces with error feedback through ``b`` (``"random"``)
    or ``w_out^T`` (``"readout"``): RFLO, its "local" ablation, e-prop.

    On any cell: each parameter of unit ``i`` keeps a trace of unit ``i``'s own
    state with the recurrent input held fixed (e-prop's eligibility vector;
    :mod:`rflo.rules.generic`), so only per-unit parameters can be trained.
    """

    name: str = "rflo"
    online: bool = True
    feedback: str = "random"

    def check(self, net, setup):
        traces.check_local(self.name, net, setup)

    def closed_init(self, net, key):
        return LocalTraces(jnp.zeros_like(net.w_rec), jnp.zeros_like(net.w_in))

    def step(self, state, net, s):
        a = 1.0 / net.tau
        c = 1.0 - a
        return LocalTraces(
            c * state.p + a * jnp.outer(s.d, s.h_prev),
            c * state.q + a * jnp.outer(s.d, s.x),
        )

    def direction(self, state, net, s, err):
        g = feedback_matrix(net, self.feedback) @ err
        return {
            "w_in": g[:, None] * state.q,
            "w_rec": g[:, None] * state.p,
            "w_out": jnp.outer(err, s.h),
        }

    def fused_online(self, net, setup):
        """The compiled online trial and guard (:func:`rflo.kernels.leaky_tanh.online_step`)
        where it applies: the leaky tanh cell, squared error, this class's own traces."""
        from rflo.kernels import leaky_tanh

        if type(self) is not LocalTraceRule or not leaky_tanh.online_route(
            net, setup, self.feedback
        ):
            return None
        return partial(leaky_tanh.online_step, setup=setup, feedback=self.feedback)

    def fused_offline(self, net, setup):
        """The compiled offline update (:func:`rflo.kernels.leaky_tanh.offline_step`)
        where :meth:`trial` is the closed form's kernel."""
        if type(self) is not LocalTraceRule:
            return None
        return fused_offline_step(net, setup, backprop=False, feedback=self.feedback)

    def generic_init(self, net, key, setup):
        return traces.local_init(net, setup)

    def generic_advance(self, state, net, h, x_t, y_t, m_t, setup):
        return traces.local_advance(state, net, h, x_t, y_t, m_t, setup, self.feedback)

    def trial(self, net, x, y_target, mask, key, setup=None):
        setup = setup or DEFAULT_SETUP
        if not closed_form(net, setup):
            if traces.has_reverse_form(net):  # the traces' sum, by a backward pass
                return traces.eligibility_trial(net, x, y_target, mask, setup, self.feedback)
            return Rule.trial(self, net, x, y_target, mask, key, setup)
        return closed_trial(
            net, x, y_target, mask, setup, _closed_trial, backprop=False, feedback=self.feedback
        )


def _closed_trial(net, x, y_target, mask, feedback, setup):
    """The offline closed form on the leaky tanh cell: ``(d_in, d_rec, d_out, y)``."""
    u, h = forward(net, x, setup.unroll)
    y, err = readout_error(net, h, y_target[1:], mask[1:], setup.loss)
    h_prev = jnp.concatenate([net.h0[None], h[:-1]])
    a = 1.0 / net.tau
    g = err @ feedback_matrix(net, feedback).T  # (T-1, n_rec)
    v = a * net.cell.fprime(u) * reverse_filter(g, 1.0 - a)
    n_in = x.shape[1]
    d_in_rec = v.T @ jnp.concatenate([x[1:], h_prev], axis=1)  # both in one product
    return d_in_rec[:, :n_in], d_in_rec[:, n_in:], err.T @ h, y


RFLO = register(LocalTraceRule(name="rflo", feedback="random"))
"""RFLO: local traces, random feedback ``b`` (Murray 2019, eq. 14-16)."""

LOCAL = register(LocalTraceRule(name="local", feedback="readout"))
"""Locality without random feedback: local traces, feedback through ``w_out^T``
(Murray 2019, Fig. 2d)."""
