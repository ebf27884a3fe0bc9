"""Every fast path equals the straightforward computation (to float rounding).

* offline RFLO's reorganised sum (``reverse_filter``: matrix, blocked and scan
  routes) against the step-by-step trace of the base ``Rule.trial``;
* RTRL's fused, scatter-free influence update against the textbook update;
* online trials, which carry only O(1)-in-T state, against offline trials;
* the scan ``unroll`` factor changes nothing but speed.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_network, random_task, session_args

import rflo
from rflo.rules import Rule, get_rule
from rflo.rules.rflo import FILTER_MATRIX_MAX_STEPS, reverse_filter
from rflo.rules.rtrl import _propagate
from rflo.trainer import run_chunk


def scaled_err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def filter_reference(g, c):
    out = np.zeros_like(g, dtype=np.float64)
    acc = np.zeros(g.shape[1:])
    for s in range(g.shape[0] - 1, -1, -1):
        acc = g[s] + c * acc
        out[s] = acc
    return out


_filter = jax.jit(reverse_filter, static_argnames=("use_matrix", "block"))


@pytest.mark.parametrize("steps", [1, 7, 99, 300])
def test_reverse_filter_routes_agree(steps):
    g = np.random.default_rng(steps).normal(size=(steps, 4)).astype(np.float32)
    routes = [
        dict(use_matrix=True),
        dict(use_matrix=False),
        dict(),
        dict(block=1),
        dict(block=3),
        dict(block=steps + 5),
    ]
    for c in (0.9, 0.0, -0.5):
        ref = filter_reference(g.astype(np.float64), c)
        for kw in routes:
            out = np.asarray(_filter(jnp.asarray(g), jnp.float32(c), **kw))
            assert out.shape == g.shape
            assert scaled_err(out, ref) < 2e-6, (c, kw)


def test_reverse_filter_blocked_is_exact_in_float64():
    g = np.random.default_rng(0).normal(size=(1000, 3))
    ref = filter_reference(g, 0.95)
    with jax.enable_x64(True):
        for kw in (dict(), dict(block=17)):
            assert scaled_err(_filter(jnp.asarray(g), 0.95, **kw), ref) < 1e-12


def _trials(rule_name, net, task, dtype):
    """(fast rule.trial, base Rule.trial step by step) of one trial."""
    x, y, m = (np.asarray(a, dtype) for a in task.trial())
    rule = get_rule(rule_name)
    key = jax.random.PRNGKey(0)
    fast, y_fast = rule.trial(net, jnp.asarray(x), jnp.asarray(y), jnp.asarray(m), key)
    slow, y_slow = Rule.trial(rule, net, jnp.asarray(x), jnp.asarray(y), jnp.asarray(m), key)
    assert set(fast) == set(slow) == {"w_in", "w_rec", "w_out"}
    return fast, slow, y_fast, y_slow


@pytest.mark.parametrize("rule", ["rflo", "local"])
@pytest.mark.parametrize("steps", [20, 3 * FILTER_MATRIX_MAX_STEPS + 1])  # matrix / blocked route
def test_offline_rflo_reorganised_sum_equals_step_by_step_float32(rule, steps):
    net = jax.tree_util.tree_map(jnp.asarray, random_network(n_rec=10, dtype="float32"))
    mask = (np.arange(steps) % 4 != 0).astype(float)
    task = random_task(steps=steps, mask=mask)
    fast, slow, yf, ys = _trials(rule, net, task, np.float32)
    for k in fast:
        assert np.max(np.abs(np.asarray(slow[k]))) > 1e-3
        assert scaled_err(fast[k], slow[k]) < 2e-5
    np.testing.assert_allclose(np.asarray(yf), np.asarray(ys), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("steps", [20, 3 * FILTER_MATRIX_MAX_STEPS + 1])
def test_offline_rflo_reorganised_sum_equals_step_by_step_float64(steps):
    with jax.enable_x64(True):
        net = jax.tree_util.tree_map(jnp.asarray, random_network(n_rec=10, dtype="float64"))
        fast, slow, _, _ = _trials("rflo", net, random_task(steps=steps), np.float64)
        for k in fast:
            assert scaled_err(fast[k], slow[k]) < 1e-11


def propagate_reference(influence, w_rec, d, a, pre):
    """The textbook RTRL step: full Jacobian product, then a loop adding the source."""
    n = influence.shape[0]
    jac = (1 - a) * np.eye(n) + a * d[:, None] * w_rec
    new = np.tensordot(jac, influence, axes=1)
    for k in range(n):
        new[k, k, :] += a * d[k] * pre
    return new


@pytest.mark.parametrize("m", [1, 7])
def test_rtrl_fused_step_equals_textbook_step(m):
    rng = np.random.default_rng(m)
    n = 9
    influence = rng.normal(size=(n, n, m))
    w_rec = rng.normal(size=(n, n))
    d, pre = rng.uniform(0.1, 1, size=n), rng.normal(size=m)
    ref = propagate_reference(influence, w_rec, d, 0.1, pre)
    with jax.enable_x64(True):
        got = _propagate(
            jnp.asarray(influence), jnp.asarray(w_rec), jnp.asarray(d), 0.1, jnp.asarray(pre)
        )
        assert scaled_err(got, ref) < 1e-13
    got32 = _propagate(
        *(jnp.asarray(v, jnp.float32) for v in (influence, w_rec, d)),
        0.1,
        jnp.asarray(pre, jnp.float32),
    )
    assert scaled_err(got32, ref) < 1e-5


@pytest.mark.parametrize("rule", ["rflo", "rtrl"])
def test_online_loss_accumulated_in_the_carry_equals_the_trial_loss(rule):
    """With learning off, an online trial sees the same outputs as an offline one."""
    net = random_network(n_rec=8, dtype="float32")
    task = random_task(steps=40, mask=(np.arange(40) % 3 != 0).astype(float))
    on = rflo.train(net, task, rule, trials=2, lr=0.0, online=True)
    off = rflo.train(net, task, rule, trials=2, lr=0.0, online=False)
    ev = rflo.evaluate(net, task)
    np.testing.assert_allclose(on.loss, off.loss, rtol=1e-5)
    np.testing.assert_allclose(on.loss[0], ev.loss, rtol=1e-5)


def _work_bytes(rule, online, steps):
    lr = dict(zip(("w_in", "w_rec", "w_out"), (0, 0.03, 0.03)))
    args = session_args(rflo.init_network(1, 8, 1), rule, online, lr, steps)
    return run_chunk.lower(*args).compile().memory_analysis().temp_size_in_bytes


@pytest.mark.slow  # it clears JAX's caches: the default run's later tests would recompile
def test_online_memory_does_not_grow_with_trial_length_but_bptt_does(monkeypatch):
    assert _work_bytes("rflo", True, 50) == _work_bytes("rflo", True, 2000)
    # XLA's memory analysis does not see inside the compiled kernels (BPTT's
    # kernel keeps its T-long activity in its own memory), so BPTT's growth is
    # checked on the XLA path
    from rflo.kernels import leaky_tanh

    monkeypatch.setattr(leaky_tanh, "available", lambda dtype: False)
    jax.clear_caches()
    try:
        assert _work_bytes("bptt", False, 2000) > 20 * _work_bytes("bptt", False, 50) / 2
    finally:
        jax.clear_caches()  # later tests trace with the kernels again


@pytest.mark.parametrize(
    "rule,online",
    [("rflo", False), ("rflo", True), ("bptt", False), ("rtrl", False), ("rtrl", True)],
)
def test_unroll_changes_nothing_but_speed(rule, online):
    net = random_network(n_rec=6, dtype="float32")
    task = random_task(steps=25)
    a = rflo.train(net, task, rule, trials=3, lr=0.05, online=online, unroll=1)
    b = rflo.train(net, task, rule, trials=3, lr=0.05, online=online, unroll=3)
    for k in ("w_in", "w_rec", "w_out"):
        assert scaled_err(getattr(a.network, k), getattr(b.network, k)) < 1e-5
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-5)


def test_default_unroll_is_one_on_a_cpu_and_more_on_a_gpu(monkeypatch):
    """``unroll=None`` (the default): 1 where the session runs on a CPU, even on
    a machine whose default backend is a GPU, and GPU_UNROLL on a GPU."""
    from rflo import session_checks as sc

    assert sc.default_unroll() == 1
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert sc.default_unroll() == sc.GPU_UNROLL > 1
    with jax.default_device(jax.devices("cpu")[0]):
        assert sc.default_unroll() == 1
    with pytest.raises(ValueError, match="unroll must be an integer"):
        rflo.train(random_network(n_rec=6), random_task(steps=5), "rflo", trials=1, unroll="10")


def test_rtrl_says_what_it_needs():
    from rflo.rules.rtrl import influence_bytes

    assert influence_bytes(100, 1) == (100**3 + 100**2) * 4
    assert influence_bytes(100, 1, "float64") == 2 * influence_bytes(100, 1)


def test_trainer_seed_derivative_equals_the_seed_formula():
    """df_seed's one-exponential form against the notebook's formula in numpy."""
    from rflo.network import df_seed

    u = np.concatenate([np.linspace(-80, 80, 20001), [0.0, 1e-8, -1e-8]])
    want = 1 / np.cosh(10 * np.tanh(u / 10)) ** 2
    with jax.enable_x64(True):
        got = np.asarray(df_seed(jnp.asarray(u)))
        assert np.max(np.abs(got - want) / want) < 1e-13
    got32 = np.asarray(df_seed(jnp.asarray(u, jnp.float32)))
    assert np.max(np.abs(got32 - want) / want) < 2e-5
