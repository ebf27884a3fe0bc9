"""Divergence detection and determinism."""

import warnings

import numpy as np
import pytest

import rflo


@pytest.fixture(scope="module")
def problem():
    return rflo.init_network(1, 20, 1, seed=0), rflo.periodic_task(period=40)


def test_divergence_stops_and_keeps_the_last_network_within_the_limit(problem):
    """The network kept is the last one whose loss was within the limit (a
    trial's loss is measured on the network from before its update), whatever
    the chunking, and the curves end at the trial that diverged."""
    net, task = problem
    with pytest.warns(
        RuntimeWarning, match=r"rule 'rflo' diverged at trial \d+.*lr_in, lr_rec, lr_out"
    ):
        res = rflo.train(net, task, "rflo", trials=400, lr=(0, 50.0, 50.0), chunk=20)
    assert res.diverged is not None
    k = len(res.loss)  # the trial that diverged, counted from 1
    assert k < 400 and f"diverged at trial {k}:" in res.diverged
    assert f"the one after trial {res.trials_done}," in res.diverged
    # the advice names the likely cause, here the rates and rflo's random feedback
    assert "Likely cause: the learning rates too large for this network (n_rec=20)" in res.diverged
    assert "random feedback b" in res.diverged
    assert np.all(np.isfinite(res.loss[:-1]))
    bad = res.loss[-1]
    assert not np.isfinite(bad) or bad > 1e4 * np.min(res.loss[:-1])
    # the loss was bad, so the network that produced it (after k - 1 trials) is not kept
    assert res.trials_done == k - 2
    assert res.loss[res.trials_done] <= 1e4 * np.min(res.loss[: res.trials_done + 1])
    for w in (res.network.w_in, res.network.w_rec, res.network.w_out):
        assert np.all(np.isfinite(w))
    # the kept network is the one after trials_done trials: replaying gives it
    replay = (
        rflo.train(
            net,
            task,
            "rflo",
            trials=res.trials_done,
            lr=(0, 50.0, 50.0),
            chunk=20,
            max_loss_growth=None,
        )
        if res.trials_done
        else None
    )
    if replay is not None:
        np.testing.assert_array_equal(replay.network.w_rec, res.network.w_rec)


@pytest.mark.parametrize("segment", [1, 2])
def test_sessions_continued_with_their_guard_diverge_as_one(problem, segment):
    """A run split into sessions (as the command line does) stops at the same
    trial with the same network as one session, also when the trial that
    diverges is the first of a session (the kept network is then from the
    session before)."""
    net, task = problem
    lr = (0, 50.0, 50.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        whole = rflo.train(net, task, "rflo", trials=40, lr=lr)
        current, guard, losses, done = net, None, [], 0
        while True:
            part = rflo.train(
                current, task, "rflo", trials=segment, lr=lr, start_trial=done, guard=guard
            )
            losses.extend(part.loss)
            if part.diverged:
                break
            current, guard, done = part.network, part.guard, done + segment
    assert part.diverged == whole.diverged
    assert part.trials_done == whole.trials_done
    np.testing.assert_array_equal(np.array(losses), whole.loss)
    np.testing.assert_array_equal(part.network.w_rec, whole.network.w_rec)


def test_a_zero_loss_is_not_a_best_to_grow_from():
    """A trial whose loss is exactly 0 (nothing to fit: an all-zero mask) says
    nothing about divergence; the next trial's loss is not 'infinitely' worse."""
    from rflo.tasks import Task

    net = rflo.init_network(1, 10, 1, seed=0)
    x = np.zeros((2, 30, 1))
    y = np.stack([np.zeros((30, 1)), np.sin(np.linspace(0, 6, 30))[:, None]])
    m = np.stack([np.zeros(30), np.ones(30)])
    task = Task(x, y, m, name="mask_zero_then_one")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = rflo.train(net, task, "rflo", trials=10)
    assert res.loss[0] == 0 and res.diverged is None and res.trials_done == 10


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
