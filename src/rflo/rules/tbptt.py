"""Truncated BPTT with window ``k`` (Williams & Peng 1990; BPTT(k, k)).

The trial's steps ``t = 1 .. T-1`` are cut into consecutive windows of ``k``
steps.  Within a window the errors are backpropagated exactly (as in
:mod:`rflo.rules.bptt`), but the adjoint is not carried across a window's
start: with ``v[t] = a d[t] * delta[t]``::

    delta[t] = w_out^T err[t] + [t+1 in the same window] (c delta[t+1] + w_rec^T v[t+1])
    dW_rec = sum_t v[t] h[t-1]^T,  dW_in = sum_t v[t] x[t]^T,  dW_out = sum_t err[t] h[t]^T

With ``k >= T - 1`` there is one window and this is BPTT exactly.

Online, the rule stores its window (``h[t-1]``, ``x[t]``, ``d[t]``, ``h[t]``
and, through :meth:`~rflo.rules.base.Rule.observe`, ``err[t]``) and returns the
window's whole update at its last step, zero at the others: the weights change
every ``k`` steps.  A trailing partial window (when ``k`` does not divide
``T - 1``) gets no update online (the rule cannot know the trial ends); offline
(:meth:`TruncatedBPTT.trial`) it is included.

Cost: O(k n_rec^2) time per window, i.e. O(n_rec^2) per step on average, and
O(k (n_rec + n_in + n_out)) memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

import rflo.rules.generic as generic
from rflo.rules.base import (
    DEFAULT_SETUP,
    ClosedFormStepRule,
    closed_form,
    feedback_matrix,
    forward,
    readout_error,
    register,
    select,
)
from rflo.rules.bptt import adjoint_backward, adjoint_products

__all__ = ["WindowBuffer", "TruncatedBPTT", "TBPTT", "DEFAULT_WINDOW", "truncated_backward"]

DEFAULT_WINDOW = 10


class WindowBuffer(NamedTuple):
    h_prev: jax.Array  # (k, n_rec)
    x: jax.Array  # (k, n_in)
    d: jax.Array  # (k, n_rec)
    h: jax.Array  # (k, n_rec)
    err: jax.Array  # (k, n_out)
    pos: jax.Array  # () int: this step's slot in the window


def truncated_backward(net, err, d, keep, unroll=1, feedback="readout"):
    """``v[t] = a d[t] * delta[t]`` (S, n_rec) of the truncated adjoint recursion.

    ``err`` (S, n_out), ``d`` (S, n_rec); ``keep`` (S,) is 1 where the adjoint of
    step ``t+1`` flows into step ``t`` and 0 at window ends.
    """
    e = err @ feedback_matrix(net, feedback).T
    return adjoint_backward(net, e, (1.0 / net.tau) * d, unroll, keep)


@dataclass(frozen=True)
class TruncatedBPTT(ClosedFormStepRule):
    """Truncated BPTT with window ``window`` (k >= 1 steps)."""

    name: str = "tbptt"
    online: bool = True
    feedback: str = "readout"
    window: int = DEFAULT_WINDOW

    def __post_init__(self):
        super().__post_init__()
        k = self.window
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"tbptt window must be an integer >= 1 (steps), got {k!r}")

    # ---- per-step (online) form: store the window, update at its end
    def closed_init(self, net, key):
        k, (n, m) = self.window, net.w_in.shape
        dt = net.w_rec.dtype
        z = lambda *shape: jnp.zeros(shape, dt)  # noqa: E731
        return WindowBuffer(
            z(k, n), z(k, m), z(k, n), z(k, n), z(k, net.n_out), jnp.zeros((), jnp.int32)
        )

    def step(self, state, net, s):
        i = state.pos
        return state._replace(
            h_prev=state.h_prev.at[i].set(s.h_prev),
            x=state.x.at[i].set(s.x),
            d=state.d.at[i].set(s.d),
            h=state.h.at[i].set(s.h),
        )

    def direction(self, state, net, s, err):
        k = self.window

        def flush(_):
            errs = state.err.at[k - 1].set(err)
            keep = jnp.ones((k,), errs.dtype)
            v = truncated_backward(net, errs, state.d, keep, feedback=self.feedback)
            return {"w_in": v.T @ state.x, "w_rec": v.T @ state.h_prev, "w_out": errs.T @ state.h}

        def wait(_):
            return {
                "w_in": jnp.zeros_like(net.w_in),
                "w_rec": jnp.zeros_like(net.w_rec),
                "w_out": jnp.zeros_like(net.w_out),
            }

        return jax.lax.cond(state.pos == k - 1, flush, wait, None)

    def observe(self, state, net, s, err):
        return state._replace(
            err=state.err.at[state.pos].set(err), pos=(state.pos + 1) % self.window
        )

    def generic_init(self, net, key, setup):
        return generic.window_init(net, self.window)

    def generic_advance(self, state, net, h, x_t, y_t, m_t, setup):
        return generic.window_advance(
            state, net, h, x_t, y_t, m_t, setup, self.feedback, self.window
        )

    # ---- per-trial (offline) form
    def trial(self, net, x, y_target, mask, key, setup=DEFAULT_SETUP):
        if not closed_form(net, setup):
            return generic.truncated_trial(
                net, x, y_target, mask, setup, self.feedback, self.window
            )
        u, h = forward(net, x, setup.unroll)
        y, err = readout_error(net, h, y_target[1:], mask[1:], setup.loss)
        h_prev = jnp.concatenate([net.h0[None], h[:-1]])
        steps = h.shape[0]
        keep = ((jnp.arange(steps) + 1) % self.window != 0).astype(h.dtype)
        v = truncated_backward(net, err, net.cell.fprime(u), keep, setup.unroll, self.feedback)
        d_in, d_rec = adjoint_products(v, x[1:], h_prev)
        d = {"w_in": d_in, "w_rec": d_rec, "w_out": err.T @ h}
        return select(d, setup), y


TBPTT = register(TruncatedBPTT())
"""Truncated BPTT with the default window of 10 steps; for another window use
``TruncatedBPTT(window=k)`` (a new name, e.g. ``name=f"tbptt{k}"``, if registered)."""
