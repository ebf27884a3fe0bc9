"""The compiled updates with the divergence guard (rflo.kernels.leaky_tanh
offline_step and online_step) equal what the trainer computes without them:
the rule's trial (offline: its direction, plain SGD and the network's
constraints; online: the per-step loop) and rflo.guard.guard_step, in every
state of the guard; and training with them equals training without them.
float64 to 1e-10, float32 to float32 rounding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rflo
from rflo.ensemble import init_ensemble, train_ensemble
from rflo.guard import guard_step, new_guard
from rflo.kernels import leaky_tanh
from rflo.network import params_of
from rflo.rules import get_rule
from rflo.rules.base import Rule, Setup
from rflo.rules.bptt import BackpropThroughTime
from rflo.rules.rflo import LocalTraceRule
from rflo.trainer import Config, _offline_update, _online_update, per_param_sgd

pytestmark = pytest.mark.skipif(
    not leaky_tanh.available("float64"), reason="no C++ compiler: the kernels are not built"
)

TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=2e-5, atol=2e-6)}


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _problem(dtype, dale=None, connectivity=None, steps=30):
    net = rflo.init_network(2, 12, 2, seed=0, dtype=dtype, dale=dale, connectivity=connectivity)
    net = jax.tree_util.tree_map(jnp.asarray, net)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(steps, 2))
    y = np.sin(np.arange(steps)[:, None] / 4.0 + np.arange(2))
    m = (rng.random(steps) > 0.2).astype(float)
    return net, tuple(jnp.asarray(a, dtype) for a in (x, y, m))


def _guard(kind, w, dtype):
    """A guard in the state ``kind`` names (the update's loss is about 0.3-0.6)."""
    g = new_guard(w, per_param_sgd({}).init(w), 1e4, dtype, start=3)
    good = jax.tree_util.tree_map(lambda a: a * 0.5, g.good)  # a distinct last good network
    best_w = jax.tree_util.tree_map(lambda a: a * 0.25, g.best_w)
    g = g._replace(good=good, best_w=best_w)
    if kind == "healthy":
        return g._replace(best=jnp.asarray(0.9, dtype), best_w_loss=jnp.asarray(0.9, dtype))
    if kind == "not_lowest":  # within the limit, not below the best network's loss
        return g._replace(best=jnp.asarray(0.9, dtype), best_w_loss=jnp.asarray(1e-3, dtype))
    if kind == "loss_too_high":  # past growth x best: set back to good, frozen
        return g._replace(best=jnp.asarray(1e-6, dtype), growth=jnp.asarray(10.0, dtype))
    if kind == "frozen":
        return g._replace(frozen_at=jnp.asarray(2, jnp.int32))
    return g


def _both(
    rule_name,
    dtype,
    kind,
    params=("w_in", "w_rec", "w_out"),
    lr_scale=1.0,
    online=False,
    keep=True,
    **net_kw,
):
    net, (x, y, m) = _problem(dtype, **net_kw)
    rule = get_rule(rule_name)
    setup = Setup(params=params)
    w = params_of(net, params)
    lr = {k: jnp.asarray(v * lr_scale, dtype) for k, v in zip(params, (0.3, 0.5, 0.2))}
    guard = _guard(kind, w, dtype)
    trial = 7
    if online:
        fused = rule.fused_online(net, setup)
        assert fused is not None
        got = jax.jit(fused, static_argnums=8)(net, w, guard, lr, trial, x, y, m, keep)
    else:
        fused = rule.fused_offline(net, setup)
        assert fused is not None
        got = jax.jit(fused)(net, w, guard, lr, trial, x, y, m)

    def reference(net, w, guard, lr, trial, x, y, m):
        opt = per_param_sgd(lr)
        cfg = Config(rule, online, setup)
        opt_state = opt.init(w)
        keys = jax.random.PRNGKey(0)[None]
        data = (x[None], y[None], m[None])
        if online:
            new_w, new_opt, loss, out = _online_update(
                cfg, opt, net, w, opt_state, *data, keys, keep
            )
        else:
            new_w, new_opt, loss, out, _ = _offline_update(cfg, opt, net, w, opt_state, *data, keys)
        (kept, _), guard, loss = guard_step(guard, trial, (w, opt_state), (new_w, new_opt), loss)
        return kept, guard, loss, (out[0] if out is not None else None)

    want = jax.jit(reference)(net, w, guard, lr, trial, x, y, m)
    return got, want


def _assert_same(got, want, dtype):
    (w1, g1, l1, o1), (w2, g2, l2, o2) = got, want
    assert set(w1) == set(w2)
    for k in w2:
        np.testing.assert_allclose(w1[k], w2[k], **TOL[dtype], err_msg=k)
    np.testing.assert_allclose(l1, l2, **TOL[dtype])  # NaN where both are NaN
    assert (o1 is None) == (o2 is None)
    if o2 is not None:
        np.testing.assert_allclose(o1, o2, **TOL[dtype])
    for name in ("frozen_at", "good_at", "best_at"):
        assert int(getattr(g1, name)) == int(getattr(g2, name)), name
    for name in ("best", "growth", "best_w_loss"):
        np.testing.assert_allclose(getattr(g1, name), getattr(g2, name), **TOL[dtype])
    for a, b in zip(jax.tree_util.tree_leaves(g1.good), jax.tree_util.tree_leaves(g2.good)):
        np.testing.assert_allclose(a, b, **TOL[dtype])
    for k in g2.best_w:
        np.testing.assert_allclose(g1.best_w[k], g2.best_w[k], **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("rule", ["rflo", "bptt", "local", "eprop"])
@pytest.mark.parametrize("kind", ["healthy", "not_lowest", "loss_too_high", "frozen"])
def test_one_update_equals_the_trainer_in_every_guard_state(dtype, rule, kind):
    _assert_same(*_both(rule, dtype, kind), dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("rule", ["rflo", "local", "eprop"])
@pytest.mark.parametrize("kind", ["healthy", "not_lowest", "loss_too_high", "frozen"])
def test_one_online_trial_equals_the_per_step_loop_in_every_guard_state(dtype, rule, kind):
    _assert_same(*_both(rule, dtype, kind, online=True, keep=kind != "frozen"), dtype)


@pytest.mark.parametrize("online", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_an_update_that_is_not_finite_sets_the_network_back(dtype, online):
    got, want = _both("rflo", dtype, "healthy", lr_scale=np.inf, online=online)
    assert int(want[1].frozen_at) == 7  # the reference froze: the case is exercised
    _assert_same(got, want, dtype)


def _has_fma():
    try:
        with open("/proc/cpuinfo") as fh:
            return any(line.startswith("flags") and " fma" in line for line in fh)
    except OSError:
        return False


@pytest.mark.slow  # the default run compiles at XLA's optimisation level 0 (conftest): no FMA
@pytest.mark.skipif(
    not _has_fma(), reason="XLA fuses the update into an FMA only where the CPU has one"
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("rule", ["rflo", "bptt", "eprop"])
@pytest.mark.parametrize("net_kw", [{}, {"dale": 0.75, "connectivity": 0.5}])
def test_the_offline_update_is_xlas_bit_for_bit(dtype, rule, net_kw):
    """Training is chaotic enough that a last-bit difference in an update
    changes a network's loss after thousands of trials (Figure 2's quick
    networks moved by up to 100x), so the kernel's SGD step rounds exactly as
    the trainer's XLA update compiled as users' runs are (one fused
    multiply-add of the folded rate ``lr / T``): runs reproduce with or without
    the kernel."""
    (w1, *_), (w2, *_) = _both(rule, dtype, "healthy", **net_kw)
    for k in w2:
        assert np.asarray(w1[k]).tobytes() == np.asarray(w2[k]).tobytes(), k


@pytest.mark.parametrize(
    "params, net_kw",
    [
        (("w_rec", "w_out"), {}),
        (("w_rec",), {"dale": 0.8}),
        (("w_in", "w_rec", "w_out"), {"dale": 0.75, "connectivity": 0.5}),
    ],
)
def test_trained_subsets_masks_and_dale_are_kept(params, net_kw):
    _assert_same(*_both("bptt", "float64", "healthy", params=params, **net_kw), "float64")
    got, want = _both("rflo", "float64", "healthy", params=params, online=True, **net_kw)
    _assert_same(got, want, "float64")


def _train(monkeypatch, fused, **kw):
    if not fused:
        for cls in (LocalTraceRule, BackpropThroughTime):
            monkeypatch.setattr(cls, "fused_offline", Rule.fused_offline)
        monkeypatch.setattr(LocalTraceRule, "fused_online", Rule.fused_online)
    jax.clear_caches()  # the trainer traced with the other route otherwise
    task = rflo.periodic_task(duration=40)
    try:
        if "seeds" in kw:
            nets = init_ensemble(1, 16, 1, seeds=kw.pop("seeds"), dtype="float64")
            return train_ensemble(nets, task, dtype="float64", **kw)
        net = rflo.init_network(1, 16, 1, seed=3, dtype="float64")
        return rflo.train(net, task, dtype="float64", **kw)
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("online", [False, True])
def test_training_with_the_compiled_update_equals_training_without(monkeypatch, online):
    calls = []
    name = "online_step" if online else "offline_step"
    real = getattr(leaky_tanh, name)

    def counted(*args, **kw):
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(leaky_tanh, name, counted)
    kw = dict(rule="rflo", trials=15, lr=(0.1, 0.2, 0.1), online=online)
    fast = _train(monkeypatch, True, **kw)
    assert calls, "the compiled update was not used"
    slow = _train(monkeypatch, False, **kw)
    np.testing.assert_allclose(fast.loss, slow.loss, rtol=1e-10)
    np.testing.assert_allclose(fast.alignment, slow.alignment, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.network.w_rec, slow.network.w_rec, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("online", [False, True])
def test_divergence_and_ensembles_are_the_same_with_the_compiled_update(monkeypatch, online):
    """Networks of an ensemble that diverge at different trials (rates per
    network), frozen and set back exactly as without the compiled update."""
    if online:  # an update per step, each 1/T of the trial's: larger rates diverge
        lr, seeds = (
            np.array([[0.05, 0.1, 0.05], [15.0, 200.0, 15.0], [20.0, 250.0, 20.0]]),
            [0, 2, 3],
        )
    else:
        lr, seeds = np.array([[0.05, 0.1, 0.05], [3.0, 30.0, 3.0], [0.5, 8.0, 0.5]]), [0, 1, 2]
    kw = dict(rule="rflo", trials=20, lr=lr, seeds=seeds, online=online)
    with pytest.warns(RuntimeWarning, match="diverged"):
        fast = _train(monkeypatch, True, **kw)
    with pytest.warns(RuntimeWarning, match="diverged"):
        slow = _train(monkeypatch, False, **kw)
    assert np.array_equal(fast.diverged_at, slow.diverged_at)
    assert slow.diverged_at[0] == 0 and slow.diverged_at[1:].all()  # the case is exercised
    assert np.array_equal(np.isnan(fast.loss), np.isnan(slow.loss))
    ok = ~np.isnan(slow.loss)
    sane = ok & (slow.loss < 1.0)  # the exploding trials amplify rounding (1e-7 apart)
    np.testing.assert_allclose(fast.loss[sane], slow.loss[sane], rtol=1e-9)
    np.testing.assert_allclose(fast.loss[ok], slow.loss[ok], rtol=1e-6)
    # rates of 20-250 amplify the float64 rounding of another summation order
    # (1e-16) to about 1e-9 within a few trials: the networks agree to 1e-7
    np.testing.assert_allclose(fast.networks.w_rec, slow.networks.w_rec, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(
        fast.best_networks.w_rec, slow.best_networks.w_rec, rtol=1e-7, atol=1e-12
    )
    assert np.array_equal(fast.best_trials, slow.best_trials)
