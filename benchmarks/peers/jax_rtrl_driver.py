"""Drives FranzKnut/jax_rtrl through its public API on rflo's benchmark problem.

Imported only by ``benchmarks/peers.py``, in the environment that
``benchmarks/peers/install_jax_rtrl.sh`` makes (jax_rtrl needs flax and
friends, which are not rflo's dependencies).  Nothing here is copied from the
peer: it builds the peer's own cells and trains them the way its README and
``train_rnn_online`` do.

The problem is rflo's: one input, ``n_rec`` units, one output, a trial of
``steps`` steps (the periodic task's x and y), float32, plain SGD.  The peer's
cell is its CTRNN with the paper's ODE (``ode_type="murray"``:
``h += (tanh(W [x, h, 1]) - h) / tau``, ``dt = 1``), the readout its
``FADense`` (feedback alignment on for the random-feedback rules).

Each driver returns ``run(n)``, a compiled call that trains ``n`` trials in a
``lax.fori_loop`` (as rflo's session does), each trial a ``lax.scan`` over its
steps:

* ``rflo_online``: the peer's ``OnlineCTRNNCell(plasticity="rflo")``, the loss
  and gradient of every step by ``jax.value_and_grad`` (the peer's custom VJP
  carries the traces), an SGD update every step (``train_rnn_online``'s loop);
* ``rflo_offline``: the same cell, the step gradients summed over the trial,
  one update per trial;
* ``rtrl_offline``: ``OnlineCTRNNCell(plasticity="rtrl")``, summed, one update;
* ``bptt_offline``: ``CTRNNCell`` and ``nn.Dense`` in a ``lax.scan``,
  ``jax.grad`` of the trial's loss, one update.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax_rtrl.models.cells.ctrnn import CTRNNCell, OnlineCTRNNCell
from jax_rtrl.models.feedforward import FADense

RULES = ("rflo_online", "rflo_offline", "rtrl_offline", "bptt_offline")


class _Online(nn.Module):
    n_rec: int
    n_out: int
    plasticity: str

    def setup(self):
        self.rnn = OnlineCTRNNCell(self.n_rec, plasticity=self.plasticity, ode_type="murray")
        self.out = FADense(self.n_out, f_align=self.plasticity == "rflo")

    def initialize_carry(self, rng, input_shape):
        return self.rnn.initialize_carry(rng, input_shape)

    def __call__(self, carry, x):
        carry, h = self.rnn(carry, x)
        return carry, self.out(h)


class _Offline(nn.Module):
    n_rec: int
    n_out: int

    @nn.compact
    def __call__(self, xs):
        cell = CTRNNCell(self.n_rec, ode_type="murray")
        h = jnp.zeros((self.n_rec,), xs.dtype)
        scan = nn.scan(
            lambda c, carry, x: c(carry, x),
            variable_broadcast="params",
            split_rngs={"params": False},
        )
        _, hs = scan(cell, h, xs)
        return nn.Dense(self.n_out)(hs)


def _tau(params, tau):
    """Every unit's ``tau`` set to rflo's (the peer draws them at random)."""
    p = jax.tree_util.tree_map(lambda a: a, params)
    p["params"]["rnn"]["tau"] = jnp.full_like(p["params"]["rnn"]["tau"], tau)
    return p


def make(rule, n_rec, x, y, lr=0.03, tau=10.0, seed=0):
    """``run(n)`` for ``rule`` (one of :data:`RULES`) on the trial ``x`` (T, n_in), ``y`` (T, n_out)."""
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    n_out = y.shape[1]
    key = jax.random.PRNGKey(seed)
    opt = optax.sgd(lr)
    steps = x.shape[0] - 1

    if rule == "bptt_offline":
        model = _Offline(n_rec, n_out)
        params = model.init(key, x[1:])
        cell = next(k for k in params["params"] if "CTRNN" in k)
        params["params"][cell]["tau"] = jnp.full((n_rec,), tau)

        def loss(p):
            return 0.5 * jnp.sum((model.apply(p, x[1:]) - y[1:]) ** 2)

        def trial(p, o):
            g = jax.grad(loss)(p)
            g = jax.tree_util.tree_map(lambda a: a / steps, g)
            u, o = opt.update(g, o, p)
            return optax.apply_updates(p, u), o
    else:
        plasticity = rule.split("_")[0]
        model = _Online(n_rec, n_out, plasticity)
        params = model.init(key, None, x[0])
        params = _tau(params, tau)
        carry0 = model.apply(params, key, x[0].shape, method=model.initialize_carry)
        trainable = {"params": params["params"]}
        fixed = {k: v for k, v in params.items() if k != "params"}

        def step_loss(p, carry, x_t, y_t):
            carry, out = model.apply({**fixed, **p}, carry, x_t)
            return 0.5 * jnp.sum((out - y_t) ** 2), carry

        grad = jax.value_and_grad(step_loss, has_aux=True)
        online = rule.endswith("online")

        def trial(p, o):
            def body(c, xy):
                p, o, carry, acc = c
                (_, carry), g = grad(p, carry, *xy)
                if online:
                    g = jax.tree_util.tree_map(lambda a: a / steps, g)
                    u, o = opt.update(g, o, p)
                    p = optax.apply_updates(p, u)
                else:
                    acc = jax.tree_util.tree_map(jnp.add, acc, g)
                return (p, o, carry, acc), None

            zero = jax.tree_util.tree_map(jnp.zeros_like, p)
            (p, o, _, acc), _ = jax.lax.scan(body, (p, o, carry0, zero), (x[1:], y[1:]))
            if not online:
                acc = jax.tree_util.tree_map(lambda a: a / steps, acc)
                u, o = opt.update(acc, o, p)
                p = optax.apply_updates(p, u)
            return p, o

        params = trainable

    opt_state = opt.init(params)

    @jax.jit
    def run(p, o, n):
        return jax.lax.fori_loop(0, n, lambda i, c: trial(*c), (p, o))

    def call(n=1):
        out = run(params, opt_state, n)
        jax.block_until_ready(out)
        return out

    return call
