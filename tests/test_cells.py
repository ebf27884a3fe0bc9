"""The LIF, ALIF and LeakyTau cells: construction, simulation, exact rules
against an independent autodiff reference, e-prop against Bellec et al.'s
ALIF eligibility traces written out by hand, and training smoke tests."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rflo
from rflo.cells import ALIF, LIF, LeakyTau, get_cell
from rflo.cells.lif import spike
from rflo.losses import CROSS_ENTROPY, SQUARED_ERROR
from rflo.network import params_of
from rflo.rules.base import Setup

N_IN, N_REC, N_OUT, T = 2, 6, 3, 14
SPIKING = {"lif": LIF(), "alif": ALIF(beta=0.5, tau_a=10.0)}
NAMES = {
    "lif": ("w_in", "w_rec", "w_out", "tau", "h0"),
    "alif": ("w_in", "w_rec", "w_out", "tau", "h0"),
    "leaky_tau": ("w_in", "w_rec", "w_out", "tau", "bias", "h0"),
}


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def exact_case(name, seed=3):
    """A float64 network of cell ``name`` with weights large enough that the
    spiking cells fire and their surrogate is active, and one trial."""
    rng = np.random.default_rng(seed)
    cell = SPIKING.get(name, name)
    net = rflo.init_network(N_IN, N_REC, N_OUT, cell=cell, dtype="float64", tau=4.0, seed=1)
    net = net._replace(
        w_in=rng.normal(size=(N_REC, N_IN)) * 1.5,
        w_rec=rng.normal(size=(N_REC, N_REC)),
        w_out=rng.normal(size=(N_OUT, N_REC)),
        h0=rng.uniform(0.0, 1.5, N_REC),
    )
    if name == "leaky_tau":
        net = net._replace(
            tau=rng.uniform(1.5, 6.0, N_REC), extra={"bias": rng.normal(size=N_REC) * 0.3}
        )
    net = rflo.network_from_arrays(**net._asdict())
    x = rng.normal(size=(T, N_IN)) + 1.0
    mask = (np.arange(T) % 4 != 1).astype(float)
    y_se = rng.normal(size=(T, N_OUT))
    y_ce = np.eye(N_OUT)[rng.integers(0, N_OUT, T)]
    return net, x, mask, {SQUARED_ERROR: y_se, CROSS_ENTROPY: y_ce}


# --------------------------------------------------------------------------
# the reference: each cell's equations written out again, a Python loop, jax.grad


def reference_loss(p, cell, x, target, mask, loss):
    """sum_t loss.step(y[t], target[t], m[t]) over t = 1..T-1, from the
    equations (not the library's forward or the cell's neuron)."""
    w_in, w_rec, w_out, h0 = p["w_in"], p["w_rec"], p["w_out"], p["h0"]
    total = 0.0
    if isinstance(cell, LeakyTau):
        h = h0
        for t in range(1, x.shape[0]):
            u = w_rec @ h + w_in @ x[t]
            h = h + (jnp.tanh(u + p["bias"]) - h) / p["tau"]
            total = total + loss.step(w_out @ h, target[t], mask[t])
        return total
    alpha = jnp.exp(-1.0 / p["tau"])
    thr, gamma = cell.thr, cell.gamma
    beta = getattr(cell, "beta", 0.0)
    rho = np.exp(-1.0 / getattr(cell, "tau_a", 1.0))
    v, a = h0, jnp.zeros_like(h0)
    z = spike((v - thr - beta * a) / thr, gamma)
    for t in range(1, x.shape[0]):
        v_new = alpha * v + (1 - alpha) * (w_rec @ z + w_in @ x[t]) - jax.lax.stop_gradient(z) * thr
        a = rho * a + z if isinstance(cell, ALIF) else a
        v = v_new
        z = spike((v - thr - beta * a) / thr, gamma)
        total = total + loss.step(w_out @ z, target[t], mask[t])
    return total


@pytest.mark.parametrize("name", ["lif", "alif", "leaky_tau"])
def test_build_jit_simulate(name):
    with jax.enable_x64(True):
        net = rflo.init_network(1, 8, 2, cell=name, dtype="float64")
        assert net.cell == get_cell(name)
        assert net.w_rec.dtype == np.float64
        back = jax.jit(lambda n: jax.tree_util.tree_map(lambda a: a * 1.0, n))(net)
        assert type(back.cell) is type(net.cell)
        assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(net)
        if name == "leaky_tau":
            assert net.tau.shape == (8,) and set(net.extra) == {"bias"}
            np.testing.assert_array_equal(net.extra["bias"], 0.0)
        else:
            assert net.tau.shape == () and net.extra is None
    x = np.full((15, 1), -20.0)  # w_in in [-0.1, 0): a current of up to 2 > thr = 1
    y, h, u = rflo.simulate(net, x)
    assert y.shape == (15, 2) and h.shape == (15, 8) and np.all(np.isfinite(y))
    if name in ("lif", "alif"):
        assert set(np.unique(h)) == {0.0, 1.0}
        assert 0 < h.sum() < h.size  # some units spike, not all always
        np.testing.assert_allclose(y, h @ net.w_out.T)
        # no input, h0 = 0.1 below threshold: silence
        assert rflo.simulate(net, np.zeros((15, 1)))[1].sum() == 0


def test_settings_and_registry():
    assert {"lif", "alif", "leaky_tau"} <= set(rflo.cells.cell_names())
    assert get_cell("alif", beta=1.7).beta == 1.7
    assert LIF().settings() == {"thr": 1.0, "gamma": 0.3}
    for bad in (dict(thr=0.0), dict(gamma=-1.0)):
        with pytest.raises(ValueError):
            LIF(**bad)
    with pytest.raises(ValueError):
        ALIF(tau_a=0.0)
    # constrain keeps tau >= 1 and leaves what is not trained alone
    out = LeakyTau().constrain({"tau": jnp.array([0.2, 1.0, 3.0]), "w_rec": jnp.ones(2)})
    np.testing.assert_array_equal(out["tau"], [1.0, 1.0, 3.0])
    assert LeakyTau().constrain({"w_rec": 1}) == {"w_rec": 1}


def test_surrogate_derivative():
    """dz/dv = gamma max(0, 1 - |v - thr| / thr) / thr through the cell's output."""
    with jax.enable_x64(True):
        cell = LIF(thr=0.5, gamma=0.3)
        v = jnp.array([-0.2, 0.1, 0.4, 0.5 + 1e-9, 0.7, 1.2])
        z = cell.output(None, v)
        np.testing.assert_array_equal(z, [0, 0, 0, 1, 1, 1])
        dz = jax.vmap(jax.grad(lambda s: cell.output(None, s)))(v)
        np.testing.assert_allclose(dz, 0.3 * np.maximum(0, 1 - np.abs(v - 0.5) / 0.5) / 0.5)


@pytest.mark.parametrize("name", [pytest.param("lif", marks=pytest.mark.slow), "alif", "leaky_tau"])
def test_exact_rules_equal_autodiff(name):  # LIF (ALIF without adaptation): slow step
    """bptt, rtrl and snap2 (= RTRL on a fully connected net) give -grad of the
    summed loss of an independent forward loop, for both losses."""
    net, x, mask, targets = exact_case(name)
    names = NAMES[name]
    with jax.enable_x64(True):
        jnet = jax.tree_util.tree_map(jnp.asarray, net)
        p0 = params_of(jnet, names)
        key = jax.random.PRNGKey(0)
        if name != "leaky_tau":  # the case exercises spikes and the surrogate
            h = rflo.simulate(net, x)[1]
            assert 0 < h[1:].sum() < h[1:].size
        for loss, target in targets.items():
            grad = jax.grad(reference_loss)(
                p0, jnet.cell, jnp.asarray(x), jnp.asarray(target), jnp.asarray(mask), loss
            )
            for k in names:
                assert float(jnp.max(jnp.abs(grad[k]))) > 1e-6, (loss.name, k)
            setup = Setup(loss=loss, params=names)
            for rule in ("bptt", "rtrl", "snap2"):
                d, y = rflo.get_rule(rule).trial(
                    jnet, jnp.asarray(x), jnp.asarray(target), jnp.asarray(mask), key, setup
                )
                assert set(d) == set(names)
                for k in names:
                    err = rel_err(d[k], -grad[k])
                    assert err < 1e-8, (rule, loss.name, k, err)


# --------------------------------------------------------------------------
# e-prop on ALIF against Bellec et al. (2020), eq. 25-27, by hand


def eprop_alif_by_hand(net, x, target, mask, adaptation=True):
    """e-prop (readout feedback) for ALIF with the reset outside the gradient:

    eps_v[t] = alpha eps_v[t-1] + (1 - alpha) pre[t]
    eps_a[t] = psi[t-1] eps_v[t-1] + (rho - psi[t-1] beta) eps_a[t-1]
    e[t]     = psi[t] (eps_v[t] - beta eps_a[t]),   dW += L[t] * e[t]

    with pre = z[t-1] (w_rec) or x[t] (w_in); h0 has eps_v[0] = 1, eps_a[0] = 0.
    """
    cell = net.cell
    thr, gamma, beta = cell.thr, cell.gamma, cell.beta
    alpha, rho = np.exp(-1.0 / float(net.tau)), np.exp(-1.0 / cell.tau_a)
    w_in, w_rec, w_out = (np.asarray(a) for a in (net.w_in, net.w_rec, net.w_out))
    n = w_rec.shape[0]

    def spike_psi(v, a):
        s = (v - thr - beta * a) / thr
        return (s > 0).astype(float), gamma * np.maximum(0.0, 1.0 - np.abs(s)) / thr

    v, a = np.asarray(net.h0, float).copy(), np.zeros(n)
    z, psi = spike_psi(v, a)
    ev = {"w_rec": np.zeros((n, n)), "w_in": np.zeros_like(w_in), "h0": np.ones(n)}
    ea = {k: np.zeros_like(e) for k, e in ev.items()}
    d = {k: np.zeros_like(e) for k, e in ev.items()}
    d["w_out"] = np.zeros_like(w_out)
    for t in range(1, x.shape[0]):
        pre = {
            "w_rec": np.broadcast_to(z, (n, n)),
            "w_in": np.broadcast_to(x[t], w_in.shape),
            "h0": np.zeros(n),
        }
        for k in ev:
            col = psi if ev[k].ndim == 1 else psi[:, None]
            ev[k], ea[k] = (
                alpha * ev[k] + (1 - alpha) * pre[k],
                col * ev[k] + (rho - col * beta) * ea[k],
            )
        v_new = alpha * v + (1 - alpha) * (w_rec @ z + w_in @ x[t]) - z * thr
        a = rho * a + z
        v = v_new
        z, psi = spike_psi(v, a)
        err = mask[t] * (target[t] - w_out @ z)
        signal = w_out.T @ err
        for k in ev:
            e = (psi if ev[k].ndim == 1 else psi[:, None]) * (ev[k] - adaptation * beta * ea[k])
            d[k] += (signal if ev[k].ndim == 1 else signal[:, None]) * e
        d["w_out"] += np.outer(err, z)
    return d


def test_eprop_alif_is_bellec_eligibility():
    rng = np.random.default_rng(5)
    n_in, n, n_out, steps = 2, 4, 2, 8
    cell = ALIF(thr=1.0, gamma=0.3, beta=0.6, tau_a=8.0)
    net = rflo.network_from_arrays(
        w_in=rng.normal(size=(n, n_in)) * 1.5,
        w_rec=rng.normal(size=(n, n)),
        w_out=rng.normal(size=(n_out, n)),
        b=rng.normal(size=(n, n_out)),
        h0=rng.uniform(0.3, 1.6, n),
        tau=3.0,
        dtype="float64",
        cell=cell,
    )
    x = rng.normal(size=(steps, n_in)) + 1.2
    target = rng.normal(size=(steps, n_out))
    mask = np.ones(steps)
    names = ("w_in", "w_rec", "w_out", "h0")
    expected = eprop_alif_by_hand(net, x, target, mask)
    h = rflo.simulate(net, x)[1]
    assert h.sum() >= 3  # spikes, so the adaptation component is exercised
    with jax.enable_x64(True):
        jnet = jax.tree_util.tree_map(jnp.asarray, net)
        args = (
            jnp.asarray(x),
            jnp.asarray(target),
            jnp.asarray(mask),
            jax.random.PRNGKey(0),
            Setup(params=names),
        )
        d, _ = rflo.get_rule("eprop").trial(jnet, *args)
        exact, _ = rflo.get_rule("bptt").trial(jnet, *args)
    for k in names:
        assert rel_err(d[k], expected[k]) < 1e-10, k
    # the adaptation component matters here, and e-prop is not the gradient
    no_adaptation = eprop_alif_by_hand(net, x, target, mask, adaptation=False)
    assert rel_err(no_adaptation["w_rec"], expected["w_rec"]) > 1e-3
    assert rel_err(d["w_rec"], exact["w_rec"]) > 1e-3
    assert float(np.max(np.abs(np.asarray(d["w_rec"])))) > 1e-6


# --------------------------------------------------------------------------
# training smoke tests


def test_train_leaky_tau_keeps_tau_at_least_one():
    net = rflo.init_network(1, 8, 1, cell="leaky_tau", dtype="float64", tau=1.5, seed=2)
    task = rflo.periodic_task(period=20)
    lr = {"w_rec": 0.05, "w_out": 0.05, "tau": 200.0, "bias": 0.05}
    res = rflo.train(net, task, "eprop", trials=30, lr=lr, max_loss_growth=None)
    trained = res.network
    assert np.all(np.isfinite(res.loss))
    assert np.all(trained.tau >= 1.0)
    assert np.any(trained.tau == 1.0)  # the large rate pushed some below 1: clipped
    assert not np.allclose(trained.extra["bias"], 0.0)
    # a moderate rate learns
    res = rflo.train(
        net, task, "eprop", trials=200, lr={"w_rec": 0.1, "w_out": 0.1, "tau": 0.1, "bias": 0.1}
    )
    assert np.all(np.isfinite(res.loss)) and res.diverged is None
    assert res.loss[-20:].mean() < res.loss[:20].mean()


@pytest.mark.parametrize("name", ["lif", "alif"])
def test_train_spiking_eprop(name):
    rng = np.random.default_rng(0)
    steps = 20
    x = np.full((steps, 1), -20.0) + rng.normal(size=(steps, 1))
    y = np.sin(np.arange(steps) / 3.0)[:, None]
    task = rflo.Task(x=x, y=y)
    net = rflo.init_network(1, 8, 1, cell=name, dtype="float64")
    res = rflo.train(net, task, "eprop", trials=20, lr={"w_in": 0.01, "w_rec": 0.01, "w_out": 0.05})
    assert res.diverged is None and np.all(np.isfinite(res.loss))
    for k in ("w_in", "w_rec", "w_out"):
        assert np.all(np.isfinite(getattr(res.network, k)))
        assert not np.array_equal(getattr(res.network, k), getattr(net, k)), k


def test_readout_feedback_is_leaky_tanh_with_the_loop_folded_in():
    """u = w_rec h + b (w_out h) + w_in x: the leaky tanh network with w_rec + b w_out;
    training only its readout leaves w_rec as drawn."""
    from rflo.cells import LEAKY_TANH

    net = rflo.init_network(1, 8, 2, cell="readout_feedback", seed=1)
    folded = net._replace(cell=LEAKY_TANH, w_rec=net.w_rec + net.b @ net.w_out)
    x = np.sin(np.arange(30) / 3.0)[:, None]
    np.testing.assert_allclose(rflo.simulate(net, x)[0], rflo.simulate(folded, x)[0], atol=1e-6)
    task = rflo.periodic_task(duration=30)
    net1 = rflo.init_network(1, 8, 1, cell="readout_feedback", seed=1)
    res = rflo.train(net1, task, "rflo", trials=5, lr={"w_out": 0.3})
    np.testing.assert_array_equal(res.network.w_rec, net1.w_rec)
    assert not np.allclose(res.network.w_out, net1.w_out)
    assert res.loss[-1] < res.loss[0]


def test_a_cells_own_parameters_are_checked_with_or_without_a_hash():
    """The declared shapes of a cell's own parameters are drawn once per cell
    and size; a cell that cannot be hashed (a list field) is checked all the same."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Listed(LeakyTau):
        gains: list = None

    for cell in (LeakyTau(), Listed(gains=[1.0])):
        net = rflo.init_network(2, 5, 1, cell=cell)
        good = net._asdict()
        rflo.network_from_arrays(**good)
        bad = {**good, "extra": {"bias": np.zeros(4, np.float32)}}
        with pytest.raises(ValueError, match=r"bias must have shape \(5,\), got \(4,\)"):
            rflo.network_from_arrays(**bad)
        with pytest.raises(ValueError, match="beyond the standard ones"):
            rflo.network_from_arrays(**{**good, "extra": {}})
