"""The tasks of Marschall, Cho & Savin (2020), as built-in generators.

* :func:`add` ("Add"): Bernoulli inputs, a target that depends additively on
  the inputs ``lag1`` and ``lag2`` steps back, scored by cross-entropy;
* :func:`mimic` ("Mimic"): reproduce the outputs of a fixed random RNN that
  receives the same Bernoulli inputs, scored by squared error.

Both are in :data:`rflo.tasks.TASKS` (``make_task("add")``, ``rflo task show
mimic``); ``MARSCHALL_TASKS`` maps their names to the factories.
Row 0 of a trial is the initial state and its input is never fed to the
network, so it is 0 and the tasks' formulas take the inputs before step 1 as 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rflo._checks import check_int, check_positive
from rflo.tasks.builtin import TASKS
from rflo.tasks.generator import TaskGenerator

__all__ = ["add", "mimic", "add_target", "mimic_teacher", "MARSCHALL_TASKS"]


def _bits(key, batch, n_steps, n, p):
    """(batch, T, n) Bernoulli(p) inputs, 0 at row 0 (never fed)."""
    b = jax.random.bernoulli(key, p, (batch, n_steps, n)).astype(jnp.float32)
    return b.at[:, 0].set(0.0)


def add_target(bits, lag1: int = 5, lag2: int = 9):
    """``y[t] = 0.5 + 0.5 bits[t - lag1] - 0.25 bits[t - lag2]`` along axis -1
    (``bits[s] = 0`` for ``s < 0``); numpy or JAX arrays."""
    xp = jnp if isinstance(bits, jax.Array) else np

    def lagged(lag):
        pad = [(0, 0)] * (bits.ndim - 1) + [(lag, 0)]
        return xp.pad(bits, pad)[..., : bits.shape[-1]]

    return 0.5 + 0.5 * lagged(lag1) - 0.25 * lagged(lag2)


def _add_sample(key, batch, *, n_steps, lag1, lag2, deterministic):
    k1, k2 = jax.random.split(key)
    bits = _bits(k1, batch, n_steps, 1, 0.5)[..., 0]  # (batch, T)
    first = (jnp.arange(n_steps) >= 1)[None, :]
    x = jnp.stack([bits, jnp.where(first, 1.0 - bits, 0.0)], axis=-1)
    p = add_target(bits, lag1, lag2)
    y = p if deterministic else jax.random.bernoulli(k2, p).astype(p.dtype)
    return x, jnp.stack([y, 1.0 - y], axis=-1), jnp.ones((batch, n_steps))


def add(
    lag1: int = 5, lag2: int = 9, n_steps: int = 100, *, deterministic: bool = True
) -> TaskGenerator:
    """The "Add" task (Marschall, Cho & Savin 2020; after Pitis 2016).

    Input bit ``x[t]`` is Bernoulli(0.5) at every step; the target is the
    probability ``y[t] = 0.5 + 0.5 x[t - lag1] - 0.25 x[t - lag2]`` (inputs
    before step 1 count as 0).  As in Marschall et al.'s code, both sides are
    two channels, a value and its complement: inputs ``(x, 1 - x)`` and
    targets ``(y, 1 - y)``, to be read as the softmax of the two outputs with
    the ``cross_entropy`` loss (``train(..., loss="cross_entropy")``): the
    target row is a distribution, which the loss takes as soft labels (its
    error is ``y* - softmax(y)``).  ``deterministic=False`` draws one-hot labels
    ``(b, 1 - b)`` with ``b ~ Bernoulli(y[t])`` instead (the same expected
    loss gradient, noisier).  ``n_steps`` is the trial length ``T``; every
    step counts.  The best predictor that knows neither input scores
    ``H(0.625)`` ~ 0.66 nats per step, one that knows ``x[t - lag1]`` ~ 0.52,
    one that knows both ~ 0.45 (the targets' own entropy, the minimum; the
    baselines Marschall et al. plot).  Values: ``x`` in {0, 1}, ``y`` in [0.25, 1].
    """
    lag1 = check_int("lag1", lag1)
    lag2 = check_int("lag2", lag2)
    n_steps = check_int("n_steps", n_steps, minimum=2)
    if n_steps <= max(lag1, lag2):
        raise ValueError(f"n_steps={n_steps} must exceed the longer lag ({max(lag1, lag2)})")
    if not isinstance(deterministic, (bool, np.bool_)):
        raise ValueError(f"deterministic must be True or False, got {deterministic!r}")
    return TaskGenerator(
        "add",
        2,
        2,
        n_steps,
        _add_sample,
        dict(n_steps=n_steps, lag1=lag1, lag2=lag2, deterministic=bool(deterministic)),
        inputs=("bit", "1 - bit"),
        outputs=("y", "1 - y"),
    )


# --------------------------------------------------------------------------
# Mimic


def mimic_teacher(
    n_in: int = 2, n_rec: int = 32, n_out: int = 2, *, gain: float = 1.2, seed: int = 0, xp=np
):
    """The teacher's weights ``(w_in, w_rec, w_out)``: ``w_in ~ N(0, 1)``,
    ``w_rec ~ N(0, gain^2 / n_rec)``, ``w_out ~ N(0, 1 / n_rec)``, drawn from
    ``PRNGKey(seed)`` (as numpy arrays, or JAX with ``xp=jnp``)."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    w_in = jax.random.normal(k1, (n_rec, n_in))
    w_rec = gain * jax.random.normal(k2, (n_rec, n_rec)) / np.sqrt(n_rec)
    w_out = jax.random.normal(k3, (n_out, n_rec)) / np.sqrt(n_rec)
    return tuple(xp.asarray(w) for w in (w_in, w_rec, w_out))


def _mimic_sample(key, batch, *, n_in, n_rec, n_out, n_steps, gain, tau, p_input, teacher_seed):
    w_in, w_rec, w_out = mimic_teacher(n_in, n_rec, n_out, gain=gain, seed=teacher_seed, xp=jnp)
    x = _bits(key, batch, n_steps, n_in, p_input)

    def body(h, x_t):  # the leaky tanh cell, from h = 0
        h = h + (jnp.tanh(h @ w_rec.T + x_t @ w_in.T) - h) / tau
        return h, h @ w_out.T

    _, y = jax.lax.scan(body, jnp.zeros((batch, n_rec)), jnp.swapaxes(x[:, 1:], 0, 1))
    y = jnp.concatenate([jnp.zeros((batch, 1, n_out)), jnp.swapaxes(y, 0, 1)], axis=1)
    return x, y, jnp.ones((batch, n_steps))


def mimic(
    n_in: int = 2,
    n_out: int = 2,
    n_steps: int = 100,
    *,
    n_rec: int = 32,
    gain: float = 1.2,
    tau: float = 10.0,
    p_input: float = 0.5,
    teacher_seed: int = 0,
) -> TaskGenerator:
    """The "Mimic" task (Marschall, Cho & Savin 2020): match a fixed random RNN.

    The ``n_in`` inputs are independent Bernoulli(``p_input``) bits at every
    step; the ``n_out`` targets are the outputs of a fixed *teacher*: a leaky
    tanh network (the library's cell, ``h[0] = 0``, time constant ``tau``
    steps) of ``n_rec`` units driven by the same inputs, with weights from
    :func:`mimic_teacher` (``gain`` scales its recurrent weights, drawn from
    ``teacher_seed``; the same teacher every trial).  Squared-error loss; every
    one of the ``n_steps`` steps counts.  A student of the same cell and size
    can match it exactly.  Values: ``x`` in {0, 1}; ``|y|`` is of order 1.
    """
    n_in = check_int("n_in", n_in)
    n_out = check_int("n_out", n_out)
    n_steps = check_int("n_steps", n_steps, minimum=2)
    n_rec = check_int("n_rec", n_rec)
    gain = check_positive("gain", gain)
    tau = check_positive("tau", tau)
    if tau < 1:
        raise ValueError(f"tau must be >= 1 step (the leaky update is unstable below), got {tau}")
    p_input = check_positive("p_input", p_input)
    if p_input > 1:
        raise ValueError(f"p_input is a probability and must be <= 1, got {p_input}")
    teacher_seed = check_int("teacher_seed", teacher_seed, minimum=0)
    return TaskGenerator(
        "mimic",
        n_in,
        n_out,
        n_steps,
        _mimic_sample,
        dict(
            n_in=n_in,
            n_rec=n_rec,
            n_out=n_out,
            n_steps=n_steps,
            gain=gain,
            tau=tau,
            p_input=p_input,
            teacher_seed=teacher_seed,
        ),
        inputs=tuple(f"bit {k}" for k in range(n_in)),
        outputs=tuple(f"teacher output {k}" for k in range(n_out)),
    )


#: the factories by name (as in :data:`rflo.tasks.TASKS`)
MARSCHALL_TASKS = {"add": add, "mimic": mimic}
TASKS.update(MARSCHALL_TASKS)
