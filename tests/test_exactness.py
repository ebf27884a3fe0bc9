"""Offline BPTT and RTRL against jax.grad of the summed trial loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_network, random_task, rel_err

import rflo


@jax.custom_jvp
def tanh_seed_derivative(u):
    return jnp.tanh(u)


@tanh_seed_derivative.defjvp
def _tanh_jvp(primals, tangents):
    (u,), (du,) = primals, tangents
    return jnp.tanh(u), du / jnp.cosh(10 * jnp.tanh(u / 10)) ** 2


def summed_loss(weights, net, x, y_target, mask, act):
    """L = sum_{t>=1} 0.5 m[t] |y*[t] - y[t]|^2, written independently of the library."""
    w_in, w_rec, w_out = weights

    def body(h, x_t):
        h = h + (act(w_rec @ h + w_in @ x_t) - h) / net.tau
        return h, w_out @ h

    _, y = jax.lax.scan(body, jnp.asarray(net.h0), x[1:])
    return 0.5 * jnp.sum(mask[1:, None] * (y_target[1:] - y) ** 2)


def autodiff_updates(net, task, lr, derivative="exact"):
    """-lr / T * dL/dW for the three matrices (a dict), in float64."""
    act = jnp.tanh if derivative == "exact" else tanh_seed_derivative
    x, y, m = task.trial()  # numpy float64
    with jax.enable_x64(True):
        weights = tuple(
            jnp.asarray(getattr(net, k), jnp.float64) for k in ("w_in", "w_rec", "w_out")
        )
        grads = jax.grad(summed_loss)(
            weights,
            net,
            jnp.asarray(x, jnp.float64),
            jnp.asarray(y, jnp.float64),
            jnp.asarray(m, jnp.float64),
            act,
        )
        return {
            k: np.asarray(-lr / x.shape[0] * g) for k, g in zip(("w_in", "w_rec", "w_out"), grads)
        }


def autodiff_update(net, task, which, lr, derivative="exact"):
    """-lr / T * dL/dW for one matrix, in float64."""
    return autodiff_updates(net, task, lr, derivative)[which]


def library_updates(net, task, rule, lr, derivative):
    """One offline trial's change of each matrix (the three updates of one trial
    depend only on the weights before it)."""
    res = rflo.train(
        net, task, rule, trials=1, lr=(lr, lr, lr), derivative=derivative, dtype="float64"
    )
    return {k: getattr(res.network, k) - getattr(net, k) for k in ("w_in", "w_rec", "w_out")}


@pytest.mark.parametrize("steps", [12, 200])
@pytest.mark.parametrize("rule", ["bptt", "rtrl"])
@pytest.mark.parametrize("derivative", ["exact", "seed"])
def test_offline_update_is_the_gradient(rule, steps, derivative):
    net = random_network(n_in=3, n_rec=6, n_out=2)
    mask = (np.arange(steps) % 3 != 0).astype(float)  # some steps do not count
    task = random_task(steps=steps, n_in=3, n_out=2, mask=mask)
    got = library_updates(net, task, rule, 0.2, derivative)
    want = autodiff_updates(net, task, 0.2, derivative)
    for which in ("w_in", "w_rec", "w_out"):
        assert np.max(np.abs(want[which])) > 1e-6, which
        assert rel_err(got[which], want[which]) < 1e-8, which


def test_rtrl_and_bptt_agree_on_all_matrices():
    net = random_network()
    task = random_task(steps=50)
    a = rflo.train(net, task, "rtrl", trials=1, lr=0.1, dtype="float64").network
    b = rflo.train(net, task, "bptt", trials=1, lr=0.1, dtype="float64").network
    for k in ("w_in", "w_rec", "w_out"):
        np.testing.assert_allclose(getattr(a, k), getattr(b, k), rtol=0, atol=1e-12)


def test_seed_derivative_is_not_tanh_prime():
    """The documented difference: the seed's f' (what the leaky tanh cell's
    autodiff and closed forms use by default) approximates tanh'."""
    from rflo.cells import LeakyTanh

    u = np.array([0.0, 1.0, 3.0])
    with jax.enable_x64(True):

        def slope(derivative):
            cell = LeakyTanh(derivative)
            net = rflo.init_network(1, 3, 1, tau=1.0, dtype="float64")._replace(cell=cell)
            # tau = 1: h' = f(I), so dh'/dI = f'(I) elementwise
            _, tangent = jax.jvp(
                lambda i: cell.neuron(net, jnp.zeros(3), i), (jnp.asarray(u),), (jnp.ones(3),)
            )
            return np.asarray(tangent), np.asarray(cell.fprime(jnp.asarray(u)))

        seed, seed_closed = slope("seed")
        exact, exact_closed = slope("exact")
    np.testing.assert_allclose(seed, 1 / np.cosh(10 * np.tanh(u / 10)) ** 2, rtol=1e-13)
    np.testing.assert_allclose(exact, 1 - np.tanh(u) ** 2, rtol=1e-13)
    np.testing.assert_allclose(seed_closed, seed, rtol=1e-13)
    np.testing.assert_allclose(exact_closed, exact, rtol=1e-13)
    assert seed[0] == exact[0]
    assert 0.003 < seed[1] / exact[1] - 1 < 0.006
    assert 0.15 < seed[2] / exact[2] - 1 < 0.2


def test_random_feedback_rules_equal_their_readout_twins_when_b_is_w_out():
    """With b = w_out^T, rflo = local and random_feedback = rtrl (one trial)."""
    net = random_network()
    net = net._replace(b=np.asarray(net.w_out).T.copy())
    task = random_task()
    for random_rule, twin in (("rflo", "local"), ("random_feedback", "rtrl")):
        a = rflo.train(net, task, random_rule, trials=1, lr=0.1).network
        b = rflo.train(net, task, twin, trials=1, lr=0.1).network
        np.testing.assert_allclose(a.w_rec, b.w_rec, atol=1e-13)
        np.testing.assert_allclose(a.w_in, b.w_in, atol=1e-13)
