"""Gated cells that own their synapses: GRU (Cho et al. 2014) and LSTM
(Hochreiter & Schmidhuber 1997, with a forget gate), in the form e-prop
(Bellec et al. 2020) and SnAp (Menick et al. 2021) train online.

With ``z[t-1]`` the units' previous outputs (the recurrent input) and the gates
of every unit stacked along axis 0 of ``w_in`` (G n_rec, n_in), ``w_rec``
(G n_rec, n_rec) and ``bias`` (G n_rec,)::

    a[t] = w_in @ x[t] + w_rec @ z[t-1] + bias          (G n_rec,), one block per gate

GRU (G = 3; gates r, u and the candidate c; ``z = h``)::

    r = sigmoid(a_r),  u = sigmoid(a_u)
    c = tanh(w_in_c @ x + bias_c + r * (w_rec_c @ z[t-1]))
    h[t] = (1 - u) * c + u * h[t-1]

LSTM (G = 4; gates i, f, g, o; state ``(c, h)``, ``z = h``)::

    c[t] = sigmoid(a_f) * c[t-1] + sigmoid(a_i) * tanh(a_g)
    h[t] = sigmoid(a_o) * tanh(c[t])

Both define ``step_with`` (the step with the recurrent input given apart), so
e-prop's trace follows each unit's internal dynamics with ``z[t-1]`` held
fixed: for the LSTM ``eps_c[t] = f[t] eps_c[t-1] + dc[t]/dW``, Bellec et al.'s
LSTM eligibility vector.  Every parameter is per-unit (rows ``r`` belong to
unit ``r % n_rec``).  Initial weights: uniform on ``+-1/sqrt(n_rec)`` (as
PyTorch and Equinox); the LSTM's forget-gate bias starts at 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from rflo.cells.base import SynapticCell, register_cell

__all__ = ["GRU", "LSTM"]


def _uniform_init(key, n_in, n_rec, gates, dtype):
    k_in, k_rec = jax.random.split(key)
    s = 1.0 / np.sqrt(n_rec)
    return {
        "w_in": jax.random.uniform(k_in, (gates * n_rec, n_in), dtype, -s, s),
        "w_rec": jax.random.uniform(k_rec, (gates * n_rec, n_rec), dtype, -s, s),
        "bias": jnp.zeros((gates * n_rec,), dtype),
    }


class _Gated(SynapticCell):
    """What the gated cells share: parameter layout, sizes and unit axes."""

    def sizes(self, params):
        return params["w_in"].shape[-1], params["w_rec"].shape[-1]

    def unit_axes(self, params):
        return {"w_in": 0, "w_rec": 0, "bias": 0}


@register_cell
@dataclass(frozen=True)
class GRU(_Gated):
    """Gated recurrent unit; state and output ``h`` (n_rec,)."""

    name = "gru"

    def init(self, key, n_in, n_rec, dtype):
        return _uniform_init(key, n_in, n_rec, 3, dtype)

    def step_with(self, params, h, x, z):
        n = h.shape[-1]
        a = params["w_in"] @ x + params["bias"]
        b = params["w_rec"] @ z
        r = jax.nn.sigmoid(a[:n] + b[:n])
        u = jax.nn.sigmoid(a[n : 2 * n] + b[n : 2 * n])
        c = jnp.tanh(a[2 * n :] + r * b[2 * n :])
        return (1.0 - u) * c + u * h

    def step(self, params, h, x):
        return self.step_with(params, h, x, h)


@register_cell
@dataclass(frozen=True)
class LSTM(_Gated):
    """Long short-term memory unit; state ``(c, h)``, output ``h`` (n_rec,)."""

    name = "lstm"
    forget_bias: float = 1.0

    def init(self, key, n_in, n_rec, dtype):
        params = _uniform_init(key, n_in, n_rec, 4, dtype)
        params["bias"] = params["bias"].at[n_rec : 2 * n_rec].set(self.forget_bias)
        return params

    def initial_state(self, params):
        n = self.sizes(params)[1]
        zero = jnp.zeros((n,), params["w_rec"].dtype)
        return (zero, zero)

    def output(self, params, state):
        return state[1]

    def step_with(self, params, state, x, z):
        c, _ = state
        n = c.shape[-1]
        a = params["w_in"] @ x + params["w_rec"] @ z + params["bias"]
        i = jax.nn.sigmoid(a[:n])
        f = jax.nn.sigmoid(a[n : 2 * n])
        g = jnp.tanh(a[2 * n : 3 * n])
        o = jax.nn.sigmoid(a[3 * n :])
        c = f * c + i * g
        return (c, o * jnp.tanh(c))

    def step(self, params, state, x):
        return self.step_with(params, state, x, state[1])
