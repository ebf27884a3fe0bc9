"""Equinox and Flax modules as cells (rflo.cells.from_equinox, from_flax).

* BPTT and RTRL on networks of eqx.nn.GRUCell, eqx.nn.LSTMCell, a Flax NNX
  GRUCell and a Flax Linen GRUCell are -jax.grad of the summed loss of the
  ORIGINAL module run in a lax.scan (parameters put into it with the
  library's own API, not the adapter's), to 1e-8 in float64;
* e-prop and SnAp-1 run on the built-in cells (their unit axes) and are
  refused on a module without unit_axes, and run once it has them;
* a few trials of rflo.train, size mismatches, names, hashing, files;
* (slow) examples/own_model.py --quick: BPTT and RTRL lower the loss.
"""

import importlib.util
import inspect
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

eqx = pytest.importorskip("equinox")
flax = pytest.importorskip("flax")
from flax import linen, nnx  # noqa: E402

import rflo  # noqa: E402
from rflo.cells import from_equinox, from_flax  # noqa: E402
from rflo.losses import SQUARED_ERROR  # noqa: E402
from rflo.rules import get_rule  # noqa: E402
from rflo.rules.base import Setup  # noqa: E402

N_IN, N_REC, N_OUT, T = 2, 4, 2, 9
ROOT = Path(__file__).resolve().parents[1]


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# --------------------------------------------------------------------------
# each case: the cell, and the original module's step with the network's
# parameters put into it by the library's own API


def eqx_gru():
    module = eqx.nn.GRUCell(N_IN, N_REC, key=jax.random.PRNGKey(1))

    def step(p, h, x):
        m = eqx.tree_at(
            lambda m: (m.weight_ih, m.weight_hh, m.bias, m.bias_n),
            module,
            (p["weight_ih"], p["weight_hh"], p["bias"], p["bias_n"]),
        )
        h = m(x, h)
        return h, h

    return from_equinox(module), step, jnp.zeros(N_REC)


def eqx_lstm():
    module = eqx.nn.LSTMCell(N_IN, N_REC, key=jax.random.PRNGKey(2))

    def step(p, s, x):
        m = eqx.tree_at(
            lambda m: (m.weight_ih, m.weight_hh, m.bias),
            module,
            (p["weight_ih"], p["weight_hh"], p["bias"]),
        )
        h, c = m(x, s)
        return (h, c), h

    return from_equinox(module), step, (jnp.zeros(N_REC), jnp.zeros(N_REC))


def nnx_gru():
    module = nnx.GRUCell(N_IN, N_REC, rngs=nnx.Rngs(3))
    graphdef, state = nnx.split(module, nnx.Param)

    def step(p, h, x):
        pure = {
            "dense_i": {"kernel": p["dense_i.kernel"], "bias": p["dense_i.bias"]},
            "dense_h": {"kernel": p["dense_h.kernel"]},
        }
        new = jax.tree_util.tree_map(lambda a: a, state)
        nnx.replace_by_pure_dict(new, pure)
        return nnx.merge(graphdef, new)(h, x)

    return from_flax(module), step, jnp.zeros(N_REC)


def linen_gru():
    module = linen.GRUCell(features=N_REC)

    def step(p, h, x):
        params = {g: {"kernel": p[f"{g}.kernel"]} for g in ("ir", "iz", "in", "hr", "hz", "hn")}
        for g in ("ir", "iz", "in", "hn"):
            params[g]["bias"] = p[f"{g}.bias"]
        return module.apply({"params": params}, h, x)

    return from_flax(module), step, jnp.zeros(N_REC)


CASES = {"eqx_gru": eqx_gru, "eqx_lstm": eqx_lstm, "nnx_gru": nnx_gru, "linen_gru": linen_gru}
NAMES = {
    "eqx_gru": ["bias", "bias_n", "weight_hh", "weight_ih"],
    "eqx_lstm": ["bias", "weight_hh", "weight_ih"],
    "nnx_gru": ["dense_h.kernel", "dense_i.bias", "dense_i.kernel"],
    "linen_gru": [
        "hn.bias",
        "hn.kernel",
        "hr.kernel",
        "hz.kernel",
        "in.bias",
        "in.kernel",
        "ir.bias",
        "ir.kernel",
        "iz.bias",
        "iz.kernel",
    ],
}


def problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, N_IN))
    y = rng.normal(size=(T, N_OUT))
    m = (np.arange(T) % 3 != 1).astype(float)
    return jnp.asarray(x), jnp.asarray(y), jnp.asarray(m)


def summed_loss(p, step, s0, x, y, m):
    """sum_t loss.step(w_out @ out[t], y[t], m[t]) over t = 1..T-1, the
    original module in a lax.scan."""

    def body(s, x_t):
        s, out = step(p, s, x_t)
        return s, p["w_out"] @ out

    _, out = jax.lax.scan(body, s0, x[1:])
    return jnp.sum(jax.vmap(SQUARED_ERROR.step)(out, y[1:], m[1:]))


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=pytest.mark.slow) if c in ("linen_gru", "eqx_lstm") else c
        for c in sorted(CASES)
    ],
)  # Linen's: in the slow step
def test_exact_rules_are_the_gradient_of_the_original_module(case):
    with jax.enable_x64(True):
        cell, step, s0 = CASES[case]()
        net = rflo.init_network(N_IN, N_REC, N_OUT, cell=cell, dtype="float64", seed=2)
        assert sorted(net.extra) == NAMES[case]
        assert net.cell.unit_axes(net.extra).keys() == set(NAMES[case])
        net = jax.tree_util.tree_map(jnp.asarray, net)
        x, y, m = problem()
        names = tuple(sorted(net.extra)) + ("w_out",)
        params = {**net.extra, "w_out": net.w_out}
        want = jax.grad(summed_loss)(
            params, step, jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), s0), x, y, m
        )
        setup = Setup(loss=SQUARED_ERROR, params=names)

        @jax.jit
        def both(net):
            return {
                r: get_rule(r).trial(net, x, y, m, jax.random.PRNGKey(0), setup)[0]
                for r in ("bptt", "rtrl")
            }

        for rule, got in both(net).items():
            assert set(got) == set(names)
            for k in names:
                assert np.max(np.abs(want[k])) > 1e-8, (case, k)
                assert rel_err(got[k], -want[k]) < 1e-8, (case, rule, k)


# --------------------------------------------------------------------------
# local rules: the built-in cells' unit axes; a generic module refused without them


class Elman(eqx.Module):
    """A module the adapter knows nothing about: h = tanh(w h + u x)."""

    w: jax.Array
    u: jax.Array

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.w = jax.random.normal(k1, (N_REC, N_REC)) / 2
        self.u = jax.random.normal(k2, (N_REC, N_IN))

    def __call__(self, x, h):
        return jnp.tanh(self.w @ h + self.u @ x)


def flip_flop():
    return rflo.make_task("flip_flop", n_bits=2, n_steps=20)


@pytest.mark.slow  # training runs; exactness and refusals stay in the default run
def test_local_rules_train_the_builtin_cells():
    task = flip_flop()
    cell = from_equinox(eqx.nn.GRUCell(N_IN, N_REC, key=jax.random.PRNGKey(0)))
    net = rflo.init_network(N_IN, N_REC, N_OUT, cell=cell, seed=0)
    for rule in ("eprop", "snap1"):
        res = rflo.train(net, task, rule, trials=3, lr=0.05)
        assert np.all(np.isfinite(res.loss))
        moved = {k: float(np.max(np.abs(res.network.extra[k] - net.extra[k]))) for k in net.extra}
        assert all(v > 0 for v in moved.values()), (rule, moved)


@pytest.mark.slow  # trains a module; the refusal of a cell without unit axes is in test_synaptic_cells
def test_a_generic_module_needs_unit_axes_for_local_rules():
    task = flip_flop()
    cell = from_equinox(Elman)  # a function key -> module: each seed draws its own
    net = rflo.init_network(N_IN, N_REC, N_OUT, cell=cell, seed=0)
    other = rflo.init_network(N_IN, N_REC, N_OUT, cell=cell, seed=1)
    assert sorted(net.extra) == ["u", "w"] and net.cell.unit_axes(net.extra) == {}
    assert not np.allclose(net.extra["w"], other.extra["w"])
    for rule in ("eprop", "snap1"):
        with pytest.raises(ValueError, match="shared by all units"):
            rflo.train(net, task, rule, trials=2, lr=0.05)
    res = rflo.train(net, task, "rtrl", trials=2, lr=0.05)
    assert np.all(np.isfinite(res.loss))
    local = from_equinox(Elman, unit_axes={"w": 0, "u": 0})
    net = rflo.init_network(N_IN, N_REC, N_OUT, cell=local, seed=0)
    assert np.all(np.isfinite(rflo.train(net, task, "eprop", trials=2, lr=0.05).loss))
    with pytest.raises(ValueError, match="'v', which the module does not have"):
        from_equinox(Elman, unit_axes={"v": 0})


@pytest.mark.slow  # training runs; exactness and refusals stay in the default run
def test_flax_cells_train_and_find_their_output():
    task = flip_flop()
    lstm = from_flax(nnx.LSTMCell(N_IN, N_REC, rngs=nnx.Rngs(0)))
    net = rflo.init_network(N_IN, N_REC, N_OUT, cell=lstm, seed=0)
    c, h = jnp.arange(4.0), -jnp.arange(4.0)
    assert np.array_equal(net.cell.output(net.extra, (c, h)), h)  # flax's carry is (c, h)
    assert np.all(np.isfinite(rflo.train(net, task, "eprop", trials=2, lr=0.05).loss))

    class Doubled(nnx.Module):  # y is none of the carry's leaves: the state keeps it
        def __init__(self, rngs):
            self.cell = nnx.GRUCell(N_IN, N_REC, rngs=rngs)

        def __call__(self, carry, x):
            carry, y = self.cell(carry, x)
            return carry, 2.0 * y

    net = rflo.init_network(N_IN, N_REC, N_OUT, cell=from_flax(Doubled(nnx.Rngs(0))), seed=0)
    s = net.cell.step(net.extra, net.cell.initial_state(net.extra), jnp.ones(N_IN))
    assert np.allclose(net.cell.output(net.extra, s), 2.0 * s[0])
    assert net.cell.unit_axes(net.extra) == {}
    assert np.all(np.isfinite(rflo.train(net, task, "bptt", trials=2, lr=0.05).loss))


# --------------------------------------------------------------------------
# sizes, names, static data, files


def test_sizes_that_do_not_fit_the_module_are_refused():
    cell = from_equinox(eqx.nn.GRUCell(N_IN, N_REC, key=jax.random.PRNGKey(0)))
    with pytest.raises(ValueError, match=r"n_in=2, n_rec=4.*n_in=3, n_rec=4") as err:
        rflo.init_network(3, N_REC, N_OUT, cell=cell)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"n_in=2, n_rec=4.*n_in=2, n_rec=5"):
        rflo.init_network(
            N_IN, 5, N_OUT, cell=from_flax(nnx.GRUCell(N_IN, N_REC, rngs=nnx.Rngs(0)))
        )
    with pytest.raises(ValueError, match=r"n_rec=4.*n_rec=6"):
        rflo.init_network(N_IN, 6, N_OUT, cell=from_flax(linen.GRUCell(features=N_REC)))
    with pytest.raises(ValueError, match=r"does not run on an input of shape \(3,\)"):
        rflo.init_network(3, N_REC, N_OUT, cell=from_equinox(Elman))


def test_cells_are_static_data():
    module = eqx.nn.GRUCell(N_IN, N_REC, key=jax.random.PRNGKey(0))
    a, b = from_equinox(module), from_equinox(module)
    assert a == b and hash(a) == hash(b)
    assert from_equinox(eqx.nn.GRUCell(N_IN, N_REC, key=jax.random.PRNGKey(0))) != a
    assert jax.tree_util.tree_leaves(a) == []
    net = rflo.init_network(N_IN, N_REC, N_OUT, cell=a, seed=0)
    assert net.n_in == N_IN and net.n_rec == N_REC
    assert net.cell.settings() == {
        "name": "equinox",
        "module": "GRUCell",
        "n_in": N_IN,
        "n_rec": N_REC,
    }
    with pytest.raises(ValueError, match="must be a function"):
        from_flax(nnx.GRUCell(N_IN, N_REC, rngs=nnx.Rngs(0)), output=3)
    with pytest.raises(ValueError, match="equinox.Module or a function"):
        from_equinox(3)


def test_files_hold_the_arrays_not_the_module(tmp_path):
    cell = from_flax(nnx.GRUCell(N_IN, N_REC, rngs=nnx.Rngs(0)))
    net = rflo.init_network(N_IN, N_REC, N_OUT, cell=cell, seed=0)
    why = net.cell.restorable()
    assert "GRUCell" in why and "from_flax" in why
    try:
        path = rflo.save_network(tmp_path / "net", net)
    except ValueError as exc:  # refused: one line, saying why
        assert "\n" not in str(exc) and "GRUCell" in str(exc)
        return
    if "cell" in inspect.signature(rflo.load_network).parameters:
        back = rflo.load_network(path, cell=net.cell)
        for k in net.extra:
            np.testing.assert_array_equal(back.extra[k], net.extra[k])
    else:  # load_network does not take a cell yet: it must refuse in one line
        with pytest.raises(ValueError) as err:
            rflo.load_network(path)
        assert "\n" not in str(err.value)


# --------------------------------------------------------------------------
# the example


@pytest.mark.slow
def test_own_model_example_quick():
    spec = importlib.util.spec_from_file_location("own_model", ROOT / "examples" / "own_model.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    rows = example.run(quick=True)
    for row in rows:
        assert np.isfinite(row["loss_end"]), row
        if row["rule"] in ("bptt", "rtrl"):
            assert row["loss_end"] < row["loss_start"], row
