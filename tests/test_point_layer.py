"""A point-neuron cell wrapped as a cell that owns its synapses (PointLayer)
trains exactly as the point-neuron network with the same arrays."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rflo
from rflo.cells import PointLayer, Stack
from rflo.network import network_from_arrays
from rflo.rules import Setup, get_rule


def pair(cell_name, n_in=2, n_rec=5, n_out=2):
    """A point-neuron network and the same arrays as a PointLayer network (float64)."""
    point = rflo.init_network(n_in, n_rec, n_out, cell=cell_name, dtype="float64", seed=3)
    params = {
        "w_in": point.w_in,
        "w_rec": point.w_rec,
        "h0": point.h0,
        "tau": point.tau,
        **(point.extra or {}),
    }
    layer = network_from_arrays(
        w_in=None,
        w_rec=None,
        w_out=point.w_out,
        b=point.b,
        h0=None,
        tau=None,
        dtype="float64",
        cell=PointLayer(cell_name),
        extra=params,
    )
    return point, layer


def trial(n_in=2, n_out=2, steps=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(steps, n_in))
    y = rng.normal(size=(steps, n_out))
    return x, y, np.ones(steps)


@pytest.mark.parametrize(
    "cell_name,rule,names",
    [
        pytest.param("leaky_tanh", "bptt", ("w_in", "w_rec", "w_out"), marks=pytest.mark.slow),
        pytest.param(
            "leaky_tanh", "rtrl", ("w_in", "w_rec", "h0", "w_out"), marks=pytest.mark.slow
        ),
        ("leaky_tanh", "rflo", ("w_in", "w_rec", "w_out")),
        pytest.param("leaky_tanh", "snap1", ("w_in", "w_rec", "w_out"), marks=pytest.mark.slow),
        ("leaky_tau", "eprop", ("w_rec", "tau", "bias", "w_out")),
        ("alif", "eprop", ("w_in", "w_rec", "w_out")),
        pytest.param("lif", "bptt", ("w_in", "w_rec", "w_out"), marks=pytest.mark.slow),
    ],
)
def test_point_layer_equals_the_point_network(cell_name, rule, names):
    point, layer = pair(cell_name)
    x, y, m = trial()
    rule = get_rule(rule)
    with jax.enable_x64(True):
        args = (jnp.asarray(x), jnp.asarray(y), jnp.asarray(m), jax.random.PRNGKey(0))
        to_jax = lambda net: jax.tree_util.tree_map(jnp.asarray, net)  # noqa: E731
        want, y_want = rule.trial(to_jax(point), *args, Setup(params=names, route="generic"))
        got, y_got = rule.trial(to_jax(layer), *args, Setup(params=names))
    np.testing.assert_allclose(y_got, y_want, rtol=0, atol=1e-12)
    for k in names:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.slow  # a training run; the wrapped cells' equality stays in the default run
def test_a_stack_wraps_point_cells_and_trains():
    net = rflo.init_network(1, 6, 1, cell=Stack(layers=("leaky_tanh", "gru")), seed=1)
    assert isinstance(net.cell.layers[0], PointLayer)
    assert {"layer0.w_rec", "layer0.tau", "layer1.w_rec"} <= set(net.extra)
    res = rflo.train(
        net,
        rflo.periodic_task(period=20),
        "bptt",
        trials=40,
        lr={"layer0.w_rec": 0.05, "layer1.w_rec": 0.05, "w_out": 0.05},
    )
    assert res.loss[-1] < res.loss[0]


def test_readout_feedback_cannot_be_a_layer():
    with pytest.raises(ValueError, match="cannot be a layer"):
        PointLayer("readout_feedback")
