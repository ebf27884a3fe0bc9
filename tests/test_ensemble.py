"""Ensembles: one compiled call, the same result as separate runs."""

import numpy as np
import pytest

import rflo
from rflo.ensemble import init_ensemble, train_ensemble, unstack_networks


@pytest.mark.parametrize("rule,online", [("rflo", False), ("bptt", False), ("rflo", True)])
def test_ensemble_equals_separate_runs(rule, online):
    task = rflo.periodic_task(period=30)
    nets = init_ensemble(1, 12, 1, seeds=[0, 1, 2])
    lr = np.array([[0, 0.03, 0.03], [0, 0.05, 0.02], [0, 0.01, 0.04]])
    ens = train_ensemble(nets, task, rule, trials=20, lr=lr, online=online, seeds=[5, 6, 7])
    assert ens.loss.shape == (3, 20)
    for k, net in enumerate(unstack_networks(nets)):
        single = rflo.train(net, task, rule, trials=20, lr=tuple(lr[k]), online=online, seed=5 + k)
        np.testing.assert_allclose(ens.network(k).w_rec, single.network.w_rec, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ens.network(k).w_out, single.network.w_out, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ens.loss[k], single.loss, rtol=1e-4)
    # the networks really differ
    assert not np.allclose(ens.loss[0], ens.loss[1])


def test_ensemble_rates_by_name_equal_separate_runs():
    """lr as a dict by parameter name, one rate per network for w_rec: the
    parameters it does not name (w_in) stay as they were."""
    task = rflo.periodic_task(period=30)
    nets = init_ensemble(1, 10, 1, seeds=[0, 1])
    lr = {"w_rec": [0.01, 0.05], "w_out": 0.03}
    ens = train_ensemble(nets, task, "rflo", trials=10, lr=lr, seeds=[0, 1])
    for k, net in enumerate(unstack_networks(nets)):
        single = rflo.train(
            net, task, "rflo", trials=10, lr={"w_rec": lr["w_rec"][k], "w_out": 0.03}, seed=k
        )
        np.testing.assert_allclose(ens.network(k).w_rec, single.network.w_rec, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(ens.network(k).w_in, net.w_in)
    with pytest.raises(ValueError, match="one per network"):
        train_ensemble(nets, task, "rflo", trials=1, lr={"w_rec": [0.1, 0.2, 0.3]})


def test_ensemble_over_tasks_of_equal_length():
    tasks = [rflo.periodic_task(period=p, duration=40) for p in (20, 40)]
    nets = init_ensemble(1, 10, 1, seeds=[0, 0])
    ens = train_ensemble(nets, tasks, "rflo", trials=5)
    for k, t in enumerate(tasks):
        single = rflo.train(unstack_networks(nets)[k], t, "rflo", trials=5, seed=k)
        np.testing.assert_allclose(ens.loss[k], single.loss, rtol=1e-4)


def test_ensemble_rejects_mismatched_inputs():
    nets = init_ensemble(1, 10, 1, seeds=[0, 1])
    task = rflo.periodic_task(period=20)
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        train_ensemble(nets, task, lr=np.zeros((3, 3)), trials=2)
    with pytest.raises(ValueError, match="one seed per network"):
        train_ensemble(nets, task, trials=2, seeds=[1])
    with pytest.raises(ValueError, match="online"):
        train_ensemble(nets, task, "bptt", trials=2, online=True)


def test_a_diverging_network_is_frozen_without_stopping_the_others():
    task = rflo.periodic_task(period=30)
    nets = init_ensemble(1, 12, 1, seeds=[0, 1, 2])
    lr = np.array([[0, 0.03, 0.03], [0, 80.0, 80.0], [0, 0.05, 0.02]])
    with pytest.warns(RuntimeWarning, match=r"1 of 3 networks diverged and were frozen"):
        ens = train_ensemble(nets, task, "rflo", trials=200, lr=lr, seeds=[5, 6, 7])
    assert ens.diverged_at[0] == 0 and ens.diverged_at[2] == 0
    bad = int(ens.diverged_at[1])
    assert 1 <= bad <= 200
    # frozen: finite weights, NaN losses after the trial that diverged
    for w in (ens.network(1).w_rec, ens.network(1).w_out):
        assert np.all(np.isfinite(w))
    assert np.all(np.isnan(ens.loss[1, bad:]))
    assert np.all(np.isfinite(ens.loss[1, :bad]))
    # the healthy networks are exactly what separate runs give
    for k in (0, 2):
        single = rflo.train(
            unstack_networks(nets)[k], task, "rflo", trials=200, lr=tuple(lr[k]), seed=5 + k
        )
        np.testing.assert_allclose(ens.network(k).w_rec, single.network.w_rec, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_ensemble_sessions_continued_with_their_guard_equal_one_session(split):
    """Network 2 diverges at trial 3: split before, at and after it, the two
    sessions give the same networks, curves and divergence as one."""
    import warnings

    from rflo.ensemble import init_ensemble, train_ensemble

    task = rflo.periodic_task(period=30)
    nets = init_ensemble(task.n_in, 10, task.n_out, seeds=[0, 1, 2])
    lr = {
        "w_in": 0.0,
        "w_rec": np.array([0.03, 0.01, 100.0]),
        "w_out": np.array([0.03, 0.01, 100.0]),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        full = train_ensemble(nets, task, "rflo", trials=12, lr=lr, seeds=[0, 1, 2])
        a = train_ensemble(nets, task, "rflo", trials=split, lr=lr, seeds=[0, 1, 2])
        b = train_ensemble(
            a.networks,
            task,
            "rflo",
            trials=12 - split,
            lr=lr,
            seeds=[0, 1, 2],
            start_trial=split,
            opt_state=a.opt_state,
            guard=a.guard,
        )
    assert list(full.diverged_at) == [0, 0, 3]
    np.testing.assert_array_equal(b.diverged_at, full.diverged_at if split < 3 else [0, 0, 3])
    for name in ("w_rec", "w_out"):
        np.testing.assert_array_equal(getattr(b.networks, name), getattr(full.networks, name))
    np.testing.assert_array_equal(np.concatenate([a.loss, b.loss], axis=1), full.loss)
    with pytest.raises(ValueError, match="give its start_trial"):
        train_ensemble(a.networks, task, "rflo", trials=2, lr=lr, guard=a.guard)
