"""Bad input gets a clear error, raised before anything is computed or changed."""

import numpy as np
import pytest
from conftest import random_network, random_task

import rflo


@pytest.fixture
def net():
    return random_network(n_in=3, n_rec=8, n_out=2)


@pytest.fixture
def task():
    return random_task(steps=20, n_in=3, n_out=2)


def test_unknown_rule(net, task):
    with pytest.raises(ValueError, match=r"unknown learning rule 'rfo'.*rflo"):
        rflo.train(net, task, "rfo", trials=1)


def test_online_bptt(net, task):
    with pytest.raises(ValueError, match="cannot learn online"):
        rflo.train(net, task, "bptt", trials=1, online=True)


@pytest.mark.parametrize(
    "lr,match",
    [
        ((0, -0.1, 0.1), "lr_rec must be finite and >= 0"),
        ((0, np.nan, 0.1), "lr_rec must be finite"),
        ((np.inf, 0.1, 0.1), "lr_in must be finite"),
        ((0.1, 0.1), "three entries"),
        ("fast", "three entries"),
        (-1.0, "lr_in must be finite and >= 0"),
    ],
)
def test_bad_learning_rates(net, task, lr, match):
    with pytest.raises(ValueError, match=match):
        rflo.train(net, task, trials=1, lr=lr)


@pytest.mark.parametrize("trials", [0, -5, 2.5, True])
def test_bad_trial_counts(net, task, trials):
    with pytest.raises(ValueError, match="trials"):
        rflo.train(net, task, trials=trials)


@pytest.mark.parametrize("tau", [0, -1, np.nan, np.inf])
def test_bad_tau(tau):
    with pytest.raises(ValueError, match="tau must be finite and > 0"):
        rflo.init_network(1, 5, 1, tau=tau)
    good = random_network()
    with pytest.raises(ValueError, match="tau"):
        rflo.network_from_arrays(**{**good._asdict(), "tau": tau})


@pytest.mark.parametrize("field", ["x", "y"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_task_data(field, bad):
    x = np.zeros((10, 1))
    y = np.zeros((10, 1))
    arrays = {"x": x, "y": y}
    arrays[field][4, 0] = bad
    with pytest.raises(
        ValueError, match=rf"task {field} contains NaN or inf \(first at index \(4, 0\)\)"
    ):
        rflo.Task(**arrays)


def test_task_shapes():
    with pytest.raises(ValueError, match="same number of timesteps"):
        rflo.Task(x=np.zeros((10, 1)), y=np.zeros((11, 1)))
    with pytest.raises(ValueError, match="dimensions"):
        rflo.Task(x=np.zeros(10), y=np.zeros((10, 1)))
    with pytest.raises(ValueError, match="mask must have 10 timesteps"):
        rflo.Task(x=np.zeros((10, 1)), y=np.zeros((10, 1)), mask=np.ones(9))
    with pytest.raises(ValueError, match="disagree on the number of trials"):
        rflo.Task(x=np.zeros((3, 10, 1)), y=np.zeros((2, 10, 1)))
    with pytest.raises(ValueError, match="at least 2 timesteps"):
        rflo.Task(x=np.zeros((1, 1)), y=np.zeros((1, 1)))


def test_task_does_not_fit_network(net):
    with pytest.raises(ValueError, match="the task has 1 inputs but the network has n_in=3"):
        rflo.train(net, rflo.periodic_task(period=20, n_out=2), trials=1)
    with pytest.raises(ValueError, match="the task has 1 outputs but the network has n_out=2"):
        rflo.train(net, rflo.periodic_task(period=20, n_in=3), trials=1)


def test_wrong_weight_shapes():
    good = random_network(n_in=3, n_rec=8, n_out=2)._asdict()
    cases = {
        "w_rec": (np.zeros((8, 7)), "square"),
        "w_in": (np.zeros((7, 3)), r"w_in must have shape \(n_rec=8, n_in\)"),
        "w_out": (np.zeros((2, 7)), r"w_out must have shape \(n_out, n_rec=8\)"),
        "b": (np.zeros((8, 3)), r"feedback b must have shape"),
        "h0": (np.zeros(7), r"h0 must have shape"),
    }
    for key, (value, match) in cases.items():
        with pytest.raises(ValueError, match=match):
            rflo.network_from_arrays(**{**good, key: value})
    with pytest.raises(ValueError, match="w_rec contains NaN"):
        w = good["w_rec"].copy()
        w[0, 0] = np.nan
        rflo.network_from_arrays(**{**good, "w_rec": w})


def test_nan_in_network_rejected_by_train(net, task):
    broken = net._replace(w_out=np.full_like(net.w_out, np.nan))
    with pytest.raises(ValueError, match="w_out contains NaN"):
        rflo.train(broken, task, trials=1)


def test_bad_options(net, task):
    with pytest.raises(ValueError, match="unknown derivative"):
        rflo.train(net, task, trials=1, derivative="tanh")
    with pytest.raises(ValueError, match="dtype must be"):
        rflo.train(net, task, trials=1, dtype="float16")
    with pytest.raises(ValueError, match="optax"):
        rflo.train(net, task, trials=1, optimizer="adam")
    with pytest.raises(ValueError, match="expected an rflo Task"):
        rflo.train(net, "periodic", trials=1)
    with pytest.raises(ValueError, match="expected an rflo Network"):
        rflo.train({"w_rec": 1}, task, trials=1)


def test_nothing_is_modified_by_a_rejected_call(net, task):
    before = {k: np.array(v, copy=True) for k, v in net._asdict().items() if v is not None}
    with pytest.raises(ValueError):
        rflo.train(net, task, "bptt", trials=3, online=True)
    rflo.train(net, task, "rflo", trials=3, lr=0.1)  # a real run does not modify its input either
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(net, k), v)


def test_init_network_arguments():
    with pytest.raises(ValueError, match="n_rec must be a positive integer"):
        rflo.init_network(1, 0, 1)
    with pytest.raises(ValueError, match="dale must be a fraction"):
        rflo.init_network(1, 5, 1, dale=1.5)
    with pytest.raises(ValueError, match="connectivity"):
        rflo.init_network(1, 5, 1, connectivity=0)


def test_values_too_large_for_float32():
    net = rflo.init_network(1, 4, 1)
    task = rflo.Task(x=np.full((5, 1), 1e300), y=np.zeros((5, 1)))
    with pytest.raises(ValueError, match="task x has values too large for float32"):
        rflo.train(net, task, trials=1)
    with pytest.raises(ValueError, match="x contains values too large for float32"):
        rflo.simulate(net, np.full((3, 1), 1e300))
