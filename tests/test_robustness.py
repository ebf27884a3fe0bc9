"""Divergence detection and determinism."""

import warnings

import numpy as np
import pytest

import rflo


@pytest.fixture(scope="module")
def problem():
    return rflo.init_network(1, 20, 1, seed=0), rflo.periodic_task(period=40)


def test_divergence_stops_and_keeps_the_last_finite_network(problem):
    """The network kept is the one from before the trial that diverged (whatever
    the chunking), and the curves end at that trial."""
    net, task = problem
    with pytest.warns(RuntimeWarning, match=r"rule 'rflo' diverged at trial \d+.*lr_in, lr_rec, lr_out"):
        res = rflo.train(net, task, "rflo", trials=400, lr=(0, 50.0, 50.0), chunk=20)
    assert res.diverged is not None
    assert res.trials_done < 400
    assert len(res.loss) == res.trials_done + 1
    assert f"diverged at trial {res.trials_done + 1}:" in res.diverged
    assert np.all(np.isfinite(res.loss[:-1]))
    bad = res.loss[-1]
    assert not np.isfinite(bad) or bad > 1e4 * np.min(res.loss[:-1])
    for w in (res.network.w_in, res.network.w_rec, res.network.w_out):
        assert np.all(np.isfinite(w))
    # the kept network is the one after trials_done trials: replaying gives it
    replay = rflo.train(net, task, "rflo", trials=res.trials_done, lr=(0, 50.0, 50.0), chunk=20,
                        max_loss_growth=None) if res.trials_done else None
    if replay is not None:
        np.testing.assert_array_equal(replay.network.w_rec, res.network.w_rec)


def test_growth_check_can_be_turned_off_but_nan_always_stops(problem):
    net, task = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = rflo.train(net, task, "bptt", trials=300, lr=(0, 1e3, 1e3), max_loss_growth=None)
        grows = rflo.train(net, task, "bptt", trials=300, lr=(0, 1e3, 1e3))
    assert res.diverged is not None and "NaN or inf" in res.diverged
    assert res.trials_done < 300 and np.all(np.isfinite(res.network.w_rec))
    # with the growth test on, the same run stops no later
    assert grows.diverged is not None and grows.trials_done <= res.trials_done


def test_healthy_run_is_not_flagged(problem):
    net, task = problem
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = rflo.train(net, task, "bptt", trials=300)
    assert res.diverged is None and res.trials_done == 300


def test_bad_growth_factor(problem):
    net, task = problem
    with pytest.raises(ValueError, match="max_loss_growth"):
        rflo.train(net, task, trials=1, max_loss_growth=-1)


@pytest.mark.parametrize("rule,online", [("rflo", True), ("bptt", False), ("rtrl", False)])
def test_same_seed_bit_identical(rule, online):
    net = rflo.init_network(1, 8, 1, seed=7)
    task = rflo.periodic_task(period=20)
    a = rflo.train(net, task, rule, trials=15, online=online, seed=3)
    b = rflo.train(net, task, rule, trials=15, online=online, seed=3)
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.network.w_rec, b.network.w_rec)
    c = rflo.init_network(1, 8, 1, seed=7)
    np.testing.assert_array_equal(c.w_rec, net.w_rec)
    d = rflo.init_network(1, 8, 1, seed=8)
    assert not np.array_equal(d.w_rec, net.w_rec)
