"""Structural zeros of a step's Jacobian (:func:`rflo.rules.dependence.dependence`),
checked against the Jacobian itself (``jax.jacfwd``) on random states."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rflo
from rflo.cells import ALIF
from rflo.cells.base import current, initial_state, output
from rflo.rules.dependence import dependence


def _blocks(fn, state):
    """``nonzero[o][c]``: whether block (o, c) of ``fn``'s Jacobian has a nonzero entry."""
    jac = jax.jacfwd(lambda s: jax.tree_util.tree_leaves(fn(s)))(state)
    return [
        [bool(np.any(np.asarray(b) != 0)) for b in jax.tree_util.tree_leaves(row)] for row in jac
    ]


def _lstm():
    net = rflo.init_network(3, 5, 1, cell="lstm", seed=0)
    rng = np.random.default_rng(0)
    state = tuple(jnp.asarray(rng.normal(size=5), jnp.float32) for _ in range(2))
    return net, state, jnp.ones(3, jnp.float32)


def test_lstm_state_under_a_held_recurrent_input():
    """e-prop's LSTM: ``c`` and ``h`` follow ``c[t-1]`` only (``h[t-1]`` enters
    through the recurrent input, held fixed); the whole step reads both; the
    output is ``h``."""
    net, state, x = _lstm()
    cell, p = net.cell, net.extra

    def held(s):
        return cell.step_with(p, s, x, state[1])

    assert dependence(held, state) == [[True, False], [True, False]]
    assert dependence(held, state) == _blocks(held, state)
    assert dependence(lambda s: cell.step(p, s, x), state) == [[True, True], [True, True]]
    assert dependence(lambda s: output(net, s), state) == [[False, True]]


def test_alif_refractory_counter_moves_nothing():
    """The ALIF neuron with its current held fixed: no leaf depends on the
    refractory counter (it carries no gradient), and ``v`` not on the adaptation."""
    cell = ALIF(beta=0.5, tau_a=10.0, n_refractory=2, n_regular=2)
    net = rflo.init_network(3, 4, 1, cell=cell, seed=0, dtype="float64")
    h = initial_state(net)
    rng = np.random.default_rng(1)
    h = type(h)(*(jnp.asarray(rng.uniform(0.2, 1.2, 4)) for _ in h))
    drive = current(net, cell.output(net, h), jnp.ones(3))

    def held(s):
        return cell.neuron(net, s, drive)

    dep = dependence(held, h)
    assert [row[2] for row in dep] == [False, False, False]
    assert not dep[0][1]
    # every block it calls zero is zero
    for row, nonzero in zip(dep, _blocks(held, h)):
        assert all(d or not z for d, z in zip(row, nonzero))


def test_nested_programs_are_walked_into():
    """A jitted inner function and ``stop_gradient`` do not link leaves that
    the arithmetic keeps apart (a blanket rule for nested calls would)."""
    inner = jax.jit(lambda a, b: (2.0 * a, jnp.sin(b)))

    def fn(s):
        a, b = inner(s[0], s[1])
        return a + jax.lax.stop_gradient(b), b * s[1]

    s = (jnp.ones(3), jnp.ones(3))
    assert dependence(fn, s) == [[True, False], [False, True]]


def test_inside_a_trace_and_from_shapes():
    """It only traces: under ``jax.jit`` and on ``ShapeDtypeStruct`` leaves."""
    net, state, x = _lstm()

    def held(s, z):
        return net.cell.step_with(net.extra, s, x, z)

    @jax.jit
    def pattern(s):
        return jnp.asarray(dependence(lambda t: held(t, s[1]), s))

    np.testing.assert_array_equal(pattern(state), [[True, False], [True, False]])
    shapes = tuple(jax.ShapeDtypeStruct((5,), jnp.float32) for _ in range(2))
    assert dependence(lambda t: held(t, state[1]), shapes) == [[True, False], [True, False]]


@pytest.mark.parametrize("cell", ["leaky_tanh", "lif", "gru"])
def test_one_leaf_cells_depend_on_themselves(cell):
    net = rflo.init_network(2, 4, 1, cell=cell, seed=0)
    h = initial_state(net)
    assert dependence(lambda s: output(net, s), h) == [[True]]
