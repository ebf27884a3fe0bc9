"""Rules as pure functions: rflo.value_and_grad / rflo.grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rflo
from rflo.cells.base import forward
from rflo.network import params_of, with_params


@pytest.fixture(scope="module")
def problem():
    with jax.enable_x64(True):
        net = rflo.init_network(2, 7, 2, seed=3, dtype="float64")
        rng = np.random.default_rng(0)
        x = rng.normal(size=(15, 2))
        y = rng.normal(size=(15, 2))
        mask = (rng.random(15) > 0.3).astype(float)
    return net, x, y, mask


def test_exact_rules_give_the_autodiff_gradient_of_the_returned_loss(problem):
    net, x, y, mask = problem
    with jax.enable_x64(True):
        jnet = jax.tree_util.tree_map(jnp.asarray, net)

        def loss_of(params):
            out = forward(with_params(jnet, params), jnp.asarray(x)).y
            return 0.5 * jnp.sum(mask[1:, None] * (y[1:] - out) ** 2) / x.shape[0]

        params = params_of(jnet)
        want_value, want = jax.value_and_grad(loss_of)(params)
        for rule in ("bptt", "rtrl"):
            value, grads = jax.jit(rflo.value_and_grad(rule))(jnet, x, y, mask)
            np.testing.assert_allclose(value, want_value, rtol=1e-12)
            for k in ("w_in", "w_rec", "w_out"):
                np.testing.assert_allclose(grads[k], want[k], rtol=1e-8, atol=1e-12, err_msg=rule)


def test_vmap_over_trials_and_the_trainer_applies_the_same_estimates(problem):
    net, x, y, mask = problem
    with jax.enable_x64(True):
        jnet = jax.tree_util.tree_map(jnp.asarray, net)
        fn = jax.jit(jax.vmap(rflo.value_and_grad("rflo"), in_axes=(None, 0, 0, 0)))
        xs, ys, ms = np.stack([x, -x]), np.stack([y, y]), np.stack([mask, mask])
        values, grads = fn(jnet, xs, ys, ms)
        one = rflo.grad("rflo", jnet, -x, y, mask)
        np.testing.assert_allclose(grads["w_rec"][1], one["w_rec"], rtol=1e-12)
        # one SGD step of rflo.train is w - lr * grads
        task = rflo.Task(x, y, mask)
        trained = rflo.train(net, task, "rflo", trials=1, lr=0.1, dtype="float64")
        g = rflo.grad("rflo", jnet, x, y, mask)
        np.testing.assert_allclose(trained.network.w_rec, net.w_rec - 0.1 * g["w_rec"], rtol=1e-10)
        np.testing.assert_allclose(trained.network.w_in, net.w_in - 0.1 * g["w_in"], rtol=1e-10)


def test_bad_arguments():
    net = rflo.init_network(1, 4, 1)
    with pytest.raises(ValueError, match="unknown learning rule"):
        rflo.value_and_grad("nope")
    with pytest.raises(ValueError, match="not parameters of this network"):
        rflo.grad("rflo", net, np.zeros((5, 1)), np.zeros((5, 1)), params=("tau_m",))
    with pytest.raises(ValueError, match="one trial"):
        rflo.grad("rflo", net, np.zeros((2, 5, 1)), np.zeros((2, 5, 1)))


def test_train_takes_a_key_where_it_takes_a_seed():
    net, task = rflo.init_network(1, 5, 1, seed=0), rflo.periodic_task(period=12)
    by_seed = rflo.train(net, task, "uoro", trials=3, seed=5)
    by_key = rflo.train(net, task, "uoro", trials=3, seed=jax.random.PRNGKey(5))
    np.testing.assert_array_equal(by_seed.network.w_rec, by_key.network.w_rec)
    other = rflo.train(net, task, "uoro", trials=3, seed=6)
    assert not np.array_equal(other.network.w_rec, by_key.network.w_rec)
