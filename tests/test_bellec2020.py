"""Bellec et al. (2020)'s spiking cells: refractory period and mixed LIF/ALIF
populations (exact rules against an independent autodiff loop, e-prop against
their eligibility traces by hand), and the firing-rate regulariser."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rflo
from rflo.cells import ALIF, LIF
from rflo.cells.lif import spike
from rflo.losses import CROSS_ENTROPY
from rflo.network import params_of
from rflo.rules.base import Setup

N_IN, N_REC, N_OUT, T = 2, 6, 2, 16
NAMES = ("w_in", "w_rec", "w_out", "h0")
CELLS = {
    "alif": ALIF(beta=0.5, tau_a=10.0, n_refractory=3, n_regular=2),
    "lif": LIF(n_refractory=2),
}


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def case(cell, seed=3):
    rng = np.random.default_rng(seed)
    net = rflo.network_from_arrays(
        w_in=rng.normal(size=(N_REC, N_IN)) * 1.5,
        w_rec=rng.normal(size=(N_REC, N_REC)),
        w_out=rng.normal(size=(N_OUT, N_REC)),
        b=rng.normal(size=(N_REC, N_OUT)),
        h0=rng.uniform(0.0, 1.5, N_REC),
        tau=4.0,
        dtype="float64",
        cell=cell,
    )
    x = rng.normal(size=(T, N_IN)) + 1.0
    mask = (np.arange(T) % 4 != 1).astype(float)
    target = np.eye(N_OUT)[rng.integers(0, N_OUT, T)]
    return net, x, mask, target


def reference_loss(p, cell, x, target, mask):
    """The cells' equations written out again (a scan over the steps):
    refractory counter one step late, per-unit beta, reset outside the gradient."""
    alpha = jnp.exp(-1.0 / 4.0)
    thr, gamma, n_ref = cell.thr, cell.gamma, float(cell.n_refractory)
    adaptive = isinstance(cell, ALIF)
    beta = jnp.where(jnp.arange(N_REC) < cell.n_regular, 0.0, cell.beta) if adaptive else 0.0
    rho = np.exp(-1.0 / cell.tau_a) if adaptive else 0.0

    def body(carry, inp):
        v, a, r, z = carry
        x_t, target_t, m_t = inp
        v = (
            alpha * v
            + (1 - alpha) * (p["w_rec"] @ z + p["w_in"] @ x_t)
            - jax.lax.stop_gradient(z) * thr
        )
        a = rho * a + z
        r = jax.lax.stop_gradient(jnp.clip(r + n_ref * z - 1.0, 0.0, n_ref))
        z = jnp.where(r > 0, 0.0, spike((v - thr - beta * a) / thr, gamma))
        return (v, a, r, z), CROSS_ENTROPY.step(p["w_out"] @ z, target_t, m_t)

    zeros = jnp.zeros(N_REC)
    z0 = spike((p["h0"] - thr) / thr, gamma)
    _, steps = jax.lax.scan(body, (p["h0"], zeros, zeros, z0), (x[1:], target[1:], mask[1:]))
    return jnp.sum(steps)


@pytest.mark.parametrize(
    "name,rules",
    [
        # the default run checks ALIF's exactness in test_cells (and e-prop with
        # refractoriness and mixed units below); these in the slow step
        pytest.param("alif", ("bptt",), marks=pytest.mark.slow),
        pytest.param("alif", ("rtrl",), marks=pytest.mark.slow),
        pytest.param("lif", ("bptt", "rtrl"), marks=pytest.mark.slow),
    ],
)
def test_exact_rules_equal_autodiff(name, rules):
    net, x, mask, target = case(CELLS[name])
    h = rflo.simulate(net, x)[1]
    assert 0 < h[1:].sum() < h[1:].size
    free = dataclasses.replace(net.cell, n_refractory=0)
    assert np.any(rflo.simulate(net._replace(cell=free), x)[1] != h)  # refractoriness acts
    with jax.enable_x64(True):
        jnet = jax.tree_util.tree_map(jnp.asarray, net)
        args = tuple(map(jnp.asarray, (x, target, mask)))
        grad = jax.grad(reference_loss)(params_of(jnet, NAMES), jnet.cell, *args)
        setup = Setup(loss=CROSS_ENTROPY, params=NAMES)
        for rule in rules:
            d, _ = rflo.get_rule(rule).trial(jnet, *args, jax.random.PRNGKey(0), setup)
            for k in NAMES:
                assert float(jnp.max(jnp.abs(grad[k]))) > 1e-6, k
                assert rel_err(d[k], -grad[k]) < 1e-8, (rule, k)


def test_refractory_period_spaces_spikes():
    n = 5
    cell = ALIF(thr=0.6, beta=0.0, n_refractory=n, drive=50.0)  # driven far above threshold
    net = rflo.network_from_arrays(
        w_in=np.zeros((3, 1)),
        w_rec=np.zeros((3, 3)),
        w_out=np.zeros((1, 3)),
        b=np.zeros((3, 1)),
        h0=np.zeros(3),
        tau=20.0,
        cell=cell,
    )
    z = rflo.simulate(net, np.zeros((60, 1)))[1][:, 0]
    times = np.flatnonzero(z)
    assert len(times) > 5 and np.all(np.diff(times) == n)
    free = rflo.simulate(net._replace(cell=ALIF(thr=0.6, beta=0.0, drive=50.0)), np.zeros((60, 1)))[
        1
    ][:, 0]
    assert np.min(np.diff(np.flatnonzero(free))) < n


def test_mixed_population_and_settings():
    cell = ALIF(beta=0.5, n_regular=2)
    np.testing.assert_array_equal(cell.betas(4), [0.0, 0.0, 0.5, 0.5])
    assert "n_regular" not in ALIF().settings() and "n_refractory" not in LIF().settings()
    assert ALIF(n_regular=2, n_refractory=5).settings()["n_refractory"] == 5
    for bad in (dict(n_regular=-1), dict(n_refractory=1.5), dict(n_refractory=True)):
        with pytest.raises(ValueError):
            ALIF(**bad)


def eprop_by_hand(net, x, target, mask):
    """Bellec et al. (2020) eq. 25-27 with per-unit beta and psi = 0 while
    refractory (their compute_eligibility_traces); readout feedback, CE loss."""
    cell = net.cell
    thr, gamma, n_ref = cell.thr, cell.gamma, cell.n_refractory
    beta = np.where(np.arange(N_REC) < cell.n_regular, 0.0, cell.beta)
    alpha, rho = np.exp(-1.0 / float(net.tau)), np.exp(-1.0 / cell.tau_a)
    w_in, w_rec, w_out = (np.asarray(a) for a in (net.w_in, net.w_rec, net.w_out))

    def spike_psi(v, a, r):
        s = (v - thr - beta * a) / thr
        free = r == 0
        return ((s > 0) & free).astype(float), free * gamma * np.maximum(0.0, 1.0 - np.abs(s)) / thr

    v, a, r = np.asarray(net.h0, float).copy(), np.zeros(N_REC), np.zeros(N_REC)
    z, psi = spike_psi(v, a, r)
    ev = {"w_rec": np.zeros((N_REC, N_REC)), "w_in": np.zeros_like(w_in)}
    ea = {k: np.zeros_like(e) for k, e in ev.items()}
    d = {k: np.zeros_like(e) for k, e in ev.items()}
    esum = {k: np.zeros_like(e) for k, e in ev.items()}  # sum_t e[t]
    zs = []
    for t in range(1, x.shape[0]):
        pre = {
            "w_rec": np.broadcast_to(z, (N_REC, N_REC)),
            "w_in": np.broadcast_to(x[t], w_in.shape),
        }
        for k in ev:
            ev[k], ea[k] = (
                alpha * ev[k] + (1 - alpha) * pre[k],
                psi[:, None] * ev[k] + (rho - psi[:, None] * beta[:, None]) * ea[k],
            )
        v = alpha * v + (1 - alpha) * (w_rec @ z + w_in @ x[t]) - z * thr
        a = rho * a + z
        r = np.clip(r + n_ref * z - 1.0, 0.0, n_ref)
        z, psi = spike_psi(v, a, r)
        y = w_out @ z
        err = mask[t] * (target[t] - np.exp(y) / np.exp(y).sum() * target[t].sum())
        signal = w_out.T @ err
        zs.append(z)
        for k in ev:
            e = psi[:, None] * (ev[k] - beta[:, None] * ea[k])
            d[k] += signal[:, None] * e
            esum[k] += e
    return d, esum, np.array(zs)


def test_eprop_is_bellec_eligibility_with_refractory_and_mixed_units():
    net, x, mask, target = case(CELLS["alif"])
    expected = eprop_by_hand(net, x, target, mask)[0]
    with jax.enable_x64(True):
        jnet = jax.tree_util.tree_map(jnp.asarray, net)
        d, _ = rflo.get_rule("eprop").trial(
            jnet,
            *map(jnp.asarray, (x, target, mask)),
            jax.random.PRNGKey(0),
            Setup(loss=CROSS_ENTROPY, params=("w_in", "w_rec")),
        )
    for k in ("w_in", "w_rec"):
        assert float(np.max(np.abs(expected[k]))) > 1e-6
        assert rel_err(d[k], expected[k]) < 1e-10, k


# --------------------------------------------------------------------------
# the firing-rate regulariser


@pytest.mark.slow
def test_rate_regulariser_eprop_form_and_exact_form():
    from rflo.cells.base import forward
    from rflo.losses_rate import RateRegularized, rate_penalty

    net, x, mask, target = case(CELLS["alif"])
    _, esum, z = eprop_by_hand(net, x, target, mask)
    f0, strength = 0.05, 2.0
    steps, scale = x.shape[0] - 1, mask[1:].sum()
    # e-prop's form: the learning signal dE/dz_j[t] = 2 s (f_j - f0) / T at every step
    signal = 2 * strength * (z.mean(0) - f0) / steps
    names = ("w_in", "w_rec", "w_out")
    with jax.enable_x64(True):
        jnet = jax.tree_util.tree_map(jnp.asarray, net)
        args = (
            *map(jnp.asarray, (x, target, mask)),
            jax.random.PRNGKey(0),
            Setup(loss=CROSS_ENTROPY, params=names),
        )
        diffs = {}
        for base, exact in (("eprop", False), ("bptt", True)):
            plain, _ = rflo.get_rule(base).trial(jnet, *args)
            reg = RateRegularized(base=base, target=f0, strength=strength)
            assert reg.name == f"{base}+rate" and reg.local == (not exact)
            d, _ = reg.trial(jnet, *args)
            assert np.all(np.asarray(d["w_out"]) == np.asarray(plain["w_out"]))
            for k in ("w_in", "w_rec"):
                got = diffs[base, k] = np.asarray(d[k] - plain[k])
                if exact:  # the gradient of the penalty through the library's forward
                    g = jax.grad(
                        lambda p: rate_penalty(forward(jnet._replace(**p), args[0]).z, f0, strength)
                    )(params_of(jnet, ("w_in", "w_rec")))[k]
                    want = -scale * np.asarray(g)
                else:
                    want = -scale * signal[:, None] * esum[k]
                assert float(np.max(np.abs(want))) > 1e-8, (base, k)
                assert rel_err(got, want) < 1e-9, (base, k)
        # e-prop's form is not the gradient here (the recurrent path is dropped)
        assert rel_err(diffs["eprop", "w_rec"], diffs["bptt", "w_rec"]) > 1e-3


# --------------------------------------------------------------------------
# rflo reproduce bellec2020


def test_full_mode_has_the_papers_settings():
    from rflo.paper import bellec2020 as b

    cell, full = b.bellec_cell(), b.FULL
    assert (cell.thr, cell.gamma, cell.tau_a, cell.n_refractory, cell.n_regular) == (
        0.6,
        0.3,
        2000.0,
        5,
        50,
    )
    assert abs(cell.beta - 1.7 * (1 - np.exp(-1 / 2000)) / (1 - np.exp(-1 / 20))) < 1e-12
    assert (full.iterations, full.batch, full.delay, full.lr, full.reg_rate, full.reg_strength) == (
        2000,
        64,
        1050,
        0.005,
        0.01,
        1.0,
    )
    assert set(full.rules) == {"eprop", "eprop_random", "bptt"} and b.CRITERION == 0.07
    curves = np.array([[0.5] * 20 + [0.05] * 12, [0.5] * 32])
    assert b.criterion_met_at(curves) == [30, None]


@pytest.mark.slow
def test_bellec2020_quick_eprop_below_chance(tmp_path):
    """The quick mode (2 networks, 40 iterations of batch 8, 150 ms delay; 170 s on
    2 shared cores):
    e-prop with symmetric and with random feedback ends below chance."""
    import csv

    from rflo.paper.reproduce import main

    assert main(["bellec2020", "--quick", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "bellec2020.csv") as f:
        rows = {r["rule"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"eprop", "eprop_random", "bptt"}
    for rule in ("eprop", "eprop_random"):
        assert float(rows[rule]["median"]) < 0.5, rows[rule]
    assert (tmp_path / "bellec2020.png").stat().st_size > 10000


def test_rules_option_takes_a_subset_and_refuses_unknown_names(tmp_path, capsys):
    from rflo.paper import bellec2020, marschall2020
    from rflo.paper.common import apply_arguments

    assert bellec2020.main(["--quick", "--rules", "eprop,foo", "--out", str(tmp_path)]) == 2
    assert "unknown rule(s) ['foo']" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before anything ran
    for mod in (bellec2020, marschall2020):
        import argparse

        args = mod.add_arguments(argparse.ArgumentParser()).parse_args(
            ["--rules", f"{mod.RULES[-1]},{mod.RULES[0]}"]
        )
        cfg = apply_arguments(mod.QUICK, args)
        assert cfg.rules == (mod.RULES[-1], mod.RULES[0])


def test_a_run_without_eprop_claims_nothing():
    """``--rules bptt`` checks no e-prop claim (it used to say "reproduced" of none)."""
    from rflo.paper import bellec2020 as b

    curves = np.full((1, 20), 0.5)
    r = {
        "config": b.QUICK,
        "errors": {"bptt": curves},
        "rates_hz": {"bptt": [30.0]},
        "seconds": {"bptt": 1.0},
        "seeds": [0],
        "total_seconds": 1.0,
        "steps_per_trial": 100,
    }
    assert b.summarize(r)["claims"] == {}
    r["errors"]["eprop"], r["rates_hz"]["eprop"], r["seconds"]["eprop"] = curves, [9.0], 1.0
    assert "not reproduced" in b.summarize(r)["claims"]["eprop_below_chance"]["verdict"]
