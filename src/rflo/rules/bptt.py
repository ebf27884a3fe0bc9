"""BPTT: exact backpropagation through time (offline only).

With ``delta[t] = -dL/dh[t]`` (the adjoint, through all later steps) and
``v[t] = a d[t] * delta[t]``::

    delta[T-1] = w_out^T err[T-1]
    delta[t]   = w_out^T err[t] + c delta[t+1] + w_rec^T v[t+1]
    dW_rec = sum_t v[t] h[t-1]^T,   dW_in = sum_t v[t] x[t]^T,   dW_out = sum_t err[t] h[t]^T

The seed notebook's backward pass adds ``err[t]`` into the adjoint of step
``t-1`` and counts the last error twice; this is the corrected recursion (see
docs/departures.md).  The whole trial's activity is stored: O(T n_rec) memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from rflo.network import Weights
from rflo.rules.base import Rule, Trajectory, forward, readout_error, register

__all__ = ["BPTT", "BackpropThroughTime"]


@dataclass(frozen=True)
class BackpropThroughTime(Rule):
    name: str = "bptt"
    online: bool = False

    def trial(self, net, x, y_target, mask, key, fprime, unroll=1):
        u, h = forward(net, x, unroll)
        y, err = readout_error(net, h, y_target[1:], mask[1:])
        h_prev = jnp.concatenate([net.h0[None], h[:-1]])
        a = 1.0 / net.tau
        ad = a * fprime(u)  # (T-1, n_rec)
        e = err @ net.w_out  # w_out^T err[t], per row

        def body(carry, inp):
            delta_next, v_next = carry
            e_t, ad_t = inp
            delta = e_t + (1.0 - a) * delta_next + v_next @ net.w_rec  # = w_rec^T v, no transpose
            v = ad_t * delta
            return (delta, v), v

        zero = jnp.zeros_like(net.h0)
        _, v = jax.lax.scan(body, (zero, zero), (e, ad), reverse=True, unroll=unroll)
        return Weights(v.T @ x[1:], v.T @ h_prev, err.T @ h), Trajectory(u, h, y)


BPTT = register(BackpropThroughTime())
