"""BPTT: exact backpropagation through time (offline only).

With ``delta[t] = -dL/dh[t]`` (the adjoint, through all later steps) and
``v[t] = a d[t] * delta[t]``::

    delta[T-1] = w_out^T err[T-1]
    delta[t]   = w_out^T err[t] + c delta[t+1] + w_rec^T v[t+1]
    dW_rec = sum_t v[t] h[t-1]^T,   dW_in = sum_t v[t] x[t]^T,   dW_out = sum_t err[t] h[t]^T

The seed notebook's backward pass adds ``err[t]`` into the adjoint of step
``t-1`` and counts the last error twice; this is the corrected recursion (see
docs/departures.md).  The whole trial's activity is stored: O(T n_rec) memory.
With ``feedback="random"`` the output errors enter through ``b`` instead of
``w_out^T`` (the recurrence is still backpropagated exactly): Murray's "random
feedback without locality", summed over the trial.  On any cell the backward
pass is ``jax.vjp`` of the trial (:func:`rflo.rules.generic.backward_trial`).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

import rflo.rules.generic as generic
from rflo.rules.base import (
    DEFAULT_SETUP,
    Rule,
    closed_form,
    closed_trial,
    feedback_matrix,
    forward,
    fused_offline_step,
    readout_error,
    register,
)

__all__ = ["BPTT", "BackpropThroughTime", "adjoint_backward", "adjoint_products"]


def adjoint_backward(net, e, ad, unroll=1, keep=None):
    """``v[t] = a d[t] * delta[t]`` (S, n_rec) of the adjoint recursion of the
    leaky tanh network, from the errors fed back to the units ``e`` (S, n_rec)
    and ``ad = a f'(u)`` (S, n_rec).  ``keep`` (S,), if given, is 0 where the
    adjoint of step ``t+1`` does not flow into step ``t`` (truncation)."""
    return _adjoint_scan(net.w_rec, e, ad, net.tau, keep, unroll)


def _adjoint_scan(w_rec, e, ad, tau, keep=None, unroll=1):
    a = 1.0 / tau

    def body(carry, inp):
        delta_next, v_next = carry
        if keep is None:
            e_t, ad_t = inp
            delta = e_t + (1.0 - a) * delta_next + v_next @ w_rec  # = w_rec^T v, no transpose
        else:
            e_t, ad_t, keep_t = inp
            delta = e_t + keep_t * ((1.0 - a) * delta_next + v_next @ w_rec)
        v = ad_t * delta
        return (delta, v), v

    zero = jnp.zeros_like(e[0])
    inputs = (e, ad) if keep is None else (e, ad, keep)
    _, v = jax.lax.scan(body, (zero, zero), inputs, reverse=True, unroll=unroll)
    return v


def adjoint_products(v, x, h_prev):
    """``(dW_in, dW_rec) = (sum_t v[t] x[t]^T, sum_t v[t] h[t-1]^T)`` from the
    adjoint's ``v`` (S, n_rec) and the inputs (S, n_in) and previous states
    (S, n_rec) of the same steps, in one product.

    ``v^T`` is formed in memory first (``optimization_barrier``).  ``v`` is a
    loop's stacked output, laid out (S, n_rec); where XLA's CPU compiler runs
    the whole trial loop as one function (:mod:`rflo.xla_options`), it emits
    a product that reads it transposed as a scalar loop: BPTT at n_rec 50 took
    214 us per trial, against 89 us with the copy (the same with and without
    the option where the loop is not hoisted)."""
    n_in = x.shape[1]
    d = jax.lax.optimization_barrier(v.T) @ jnp.concatenate([x, h_prev], axis=1)
    return d[:, :n_in], d[:, n_in:]


@dataclass(frozen=True)
class BackpropThroughTime(Rule):
    name: str = "bptt"
    online: bool = False
    feedback: str = "readout"

    def fused_offline(self, net, setup):
        """The compiled offline update (:func:`rflo.kernels.leaky_tanh.offline_step`)
        where :meth:`trial` is the closed form's kernel."""
        if type(self) is not BackpropThroughTime:
            return None
        return fused_offline_step(net, setup, backprop=True, feedback=self.feedback)

    def trial(self, net, x, y_target, mask, key, setup=DEFAULT_SETUP):
        if not closed_form(net, setup):
            return generic.backward_trial(net, x, y_target, mask, setup, self.feedback)
        return closed_trial(
            net, x, y_target, mask, setup, _closed_trial, backprop=True, feedback=self.feedback
        )


def _closed_trial(net, x, y_target, mask, feedback, setup):
    """BPTT's closed form on the leaky tanh cell: ``(d_in, d_rec, d_out, y)``."""
    u, h = forward(net, x, setup.unroll)
    y, err = readout_error(net, h, y_target[1:], mask[1:], setup.loss)
    h_prev = jnp.concatenate([net.h0[None], h[:-1]])
    ad = (1.0 / net.tau) * net.cell.fprime(u)  # (T-1, n_rec)
    e = err @ feedback_matrix(net, feedback).T  # w_out^T err[t] (or b err[t]), per row
    v = adjoint_backward(net, e, ad, setup.unroll)
    return (*adjoint_products(v, x[1:], h_prev), err.T @ h, y)


BPTT = register(BackpropThroughTime())
