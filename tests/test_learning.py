"""Learning works on the seed's task; chunking and dtypes behave."""

import numpy as np
import pytest

import rflo
from rflo.rules.rflo import reverse_filter


@pytest.fixture(scope="module")
def seed_problem():
    return rflo.init_network(1, 50, 1, seed=0), rflo.periodic_task()


@pytest.mark.parametrize("rule", ["rflo", "bptt"])
def test_two_thousand_trials_cut_the_loss_tenfold(seed_problem, rule):
    net, task = seed_problem
    res = rflo.train(net, task, rule, trials=2000, lr=(0, 0.03, 0.03))
    assert res.loss.shape == (2000,)
    assert np.all(np.isfinite(res.loss))
    assert res.loss[-1] < res.loss[0] / 10


def test_rflo_aligns_readout_with_feedback(seed_problem):
    net, task = seed_problem
    res = rflo.train(net, task, "rflo", trials=2000)
    assert res.alignment[-1] > res.alignment[0] + 0.3


def test_online_rflo_learns(seed_problem):
    net, task = seed_problem
    res = rflo.train(net, task, "rflo", trials=500, online=True)
    assert res.loss[-1] < res.loss[0] / 5


def test_chunking_does_not_change_the_result(seed_problem):
    net, task = seed_problem
    calls = []
    whole = rflo.train(net, task, "rflo", trials=57)
    chunked = rflo.train(
        net,
        task,
        "rflo",
        trials=57,
        chunk=10,
        callback=lambda done, total, loss: calls.append((done, total)),
    )
    assert calls == [(10, 57), (20, 57), (30, 57), (40, 57), (50, 57), (57, 57)]
    np.testing.assert_array_equal(whole.loss, chunked.loss)
    np.testing.assert_array_equal(whole.network.w_rec, chunked.network.w_rec)


def test_continuing_a_session_equals_one_session(seed_problem):
    net, task = seed_problem
    whole = rflo.train(net, task, "rflo", trials=30)
    first = rflo.train(net, task, "rflo", trials=12)
    rest = rflo.train(
        first.network, task, "rflo", trials=18, opt_state=first.opt_state, start_trial=12
    )
    np.testing.assert_array_equal(np.concatenate([first.loss, rest.loss]), whole.loss)
    np.testing.assert_array_equal(rest.network.w_rec, whole.network.w_rec)


def test_float32_by_default_float64_on_request(seed_problem):
    net, task = seed_problem
    assert net.w_rec.dtype == np.float32
    r32 = rflo.train(net, task, "rflo", trials=3)
    r64 = rflo.train(net, task, "rflo", trials=3, dtype="float64")
    assert r32.network.w_rec.dtype == np.float32
    assert r64.network.w_rec.dtype == np.float64
    np.testing.assert_allclose(r32.network.w_rec, r64.network.w_rec, atol=1e-5)


def test_reverse_filter_matrix_and_scan_agree():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(300, 5)).astype(np.float32)
    for c in (0.9, 0.0, -0.5):
        a = np.asarray(reverse_filter(g, c, use_matrix=True))
        b = np.asarray(reverse_filter(g, c, use_matrix=False))
        ref = np.zeros_like(g)
        acc = np.zeros(5)
        for s in range(299, -1, -1):
            acc = g[s] + c * acc
            ref[s] = acc
        np.testing.assert_allclose(a, ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(b, ref, rtol=1e-4, atol=1e-5)


def test_evaluate_returns_the_seed_layout(seed_problem):
    net, task = seed_problem
    ev = rflo.evaluate(net, task)
    assert ev.y.shape == (100, 1) and ev.h.shape == (100, 50) and ev.u.shape == (100, 50)
    np.testing.assert_allclose(ev.h[0], net.h0)
    np.testing.assert_allclose(ev.u[0], 0)
    res = rflo.train(net, task, "rflo", trials=1, lr=0)  # no learning: same loss
    np.testing.assert_allclose(ev.loss, res.loss[0], rtol=1e-5)
