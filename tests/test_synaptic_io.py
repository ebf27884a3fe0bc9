"""Networks of cells that own their synapses (GRU, LSTM, LRU, stacks, your own
functions) through every layer above the rules: network files, ensembles,
checkpoints, the command line (train, eval, --resume) and sweeps.

Tiny networks and few trials: the runs share their compilations where they can
(the ensemble, the sweep's chunk; the command line's runs)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_cli import assert_user_error, run

import rflo
from rflo import checkpoint, runconfig
from rflo.cells import GRU, LRU, LSTM, Stack, from_function
from rflo.ensemble import init_ensemble, stack_networks, train_ensemble, unstack_networks
from rflo.io import network_arrays, network_info, networks_from_stacked_arrays

CELLS = ["gru", "lstm", "lru", "stack", Stack(layers=("lstm", "lru"), widths=(3,))]


def _task():
    return rflo.make_task("flip_flop", n_bits=1, n_steps=20)


def assert_same_network(a, b):
    assert a.cell == b.cell
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c if isinstance(c, str) else "lstm_lru")
def test_round_trip_is_bit_identical(tmp_path, cell):
    net = rflo.init_network(2, 4, 3, seed=1, cell=cell)
    path = rflo.save_network(tmp_path / "net.npz", net, run_id="r", info={"rule": "rtrl"})
    back = rflo.load_network(path)
    assert_same_network(back, net)
    with np.load(path, allow_pickle=False) as data:  # plain numpy reads it
        assert not {"w_in", "w_rec", "h0", "tau"} & set(data.files)
        assert {f"extra.{k}" for k in net.extra} | {"w_out", "b", "cell"} <= set(data.files)
        spec = json.loads(str(data["cell"]))
    assert spec["name"] == net.cell.name and "cannot_rebuild" not in spec
    assert network_info(path) == {"rule": "rtrl"} and rflo.io.network_run_id(path) == "r"
    assert rflo.load_network(path, dtype="float64").extra[sorted(net.extra)[0]].dtype == np.float64
    # the caller may name the cell; it must be the file's
    assert_same_network(rflo.load_network(path, cell=net.cell), net)
    with pytest.raises(ValueError, match="holds a network of cell"):
        rflo.load_network(path, cell="leaky_tanh")


def test_a_stacks_layers_and_settings_come_back():
    net = rflo.init_network(1, 4, 1, cell=Stack(layers=(LSTM(forget_bias=2.0), "lru"), widths=(5,)))
    arrays = network_arrays(net)
    spec = json.loads(str(arrays["cell"]))
    assert spec["settings"]["layers"][0] == {"name": "lstm", "settings": {"forget_bias": 2.0}}
    assert "extra.layer1.nu_log" in arrays and arrays["extra.layer0.w_rec"].shape == (20, 5)
    back = rflo.io.network_from_npz_arrays(arrays, "mem")
    assert back.cell == net.cell and back.cell.layers[0].forget_bias == 2.0


def test_files_that_do_not_fit_their_cell_are_refused_from_the_headers(tmp_path):
    good = network_arrays(rflo.init_network(2, 4, 3, cell="gru"))

    def load(**arrays):
        np.savez(tmp_path / "bad.npz", **arrays)
        return rflo.load_network(tmp_path / "bad.npz")

    with pytest.raises(ValueError, match=r"do not fit cell 'gru'.*extra.w_rec \(1000, 4\), not"):
        load(**{**good, "extra.w_rec": np.zeros((1000, 4), np.float32)})
    with pytest.raises(ValueError, match=r"has the parameters \['bias', 'w_in', 'w_rec'\]"):
        load(**{k: v for k, v in good.items() if k != "extra.bias"})
    with pytest.raises(ValueError, match=r"missing arrays \['b'\]"):
        load(**{k: v for k, v in good.items() if k != "b"})
    with pytest.raises(ValueError, match="belong to point-neuron networks"):
        load(**good, sign=np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"b has shape \(3, 4\), which does not fit w_out"):
        load(**{**good, "b": np.zeros((3, 4), np.float32)})
    with pytest.raises(ValueError, match="not a registered cell.*cell="):
        load(**{**good, "cell": np.asarray('{"name": "nope", "settings": {}}')})


def _own_cell(name="mine"):
    def init(key, n_in, n_rec):
        return {"w": 0.5 * jax.random.normal(key, (n_rec, n_in)), "u": 0.5 * jnp.eye(n_rec)}

    def step(p, h, x):
        return jnp.tanh(p["u"] @ h + p["w"] @ x)

    return from_function(init, step, name=name, unit_axes={"w": 0, "u": 0})


def test_an_own_cell_is_saved_and_comes_back_only_from_the_caller(tmp_path):
    cell = _own_cell()
    net = rflo.init_network(2, 4, 1, cell=cell)
    path = rflo.save_network(tmp_path / "own.npz", net, info={"rule": "bptt"})
    with np.load(path) as data:
        spec = json.loads(str(data["cell"]))
    assert spec["name"] == "mine" and "from_function" in spec["cannot_rebuild"]
    with pytest.raises(ValueError, match="cell 'mine' .*load_network\\(path, cell=") as err:
        rflo.load_network(path)
    assert "\n" not in str(err.value)
    assert network_info(path) == {"rule": "bptt"}  # the record needs no cell
    assert_same_network(rflo.load_network(path, cell=cell), net)
    # a fresh cell of the same functions, not yet sized: the file sizes it
    back = rflo.load_network(path, cell=_own_cell())
    assert (back.cell.n_in, back.cell.n_rec) == (2, 4)
    np.testing.assert_array_equal(back.extra["u"], net.extra["u"])
    with pytest.raises(ValueError, match="holds a network of cell 'mine', but cell= is 'other'"):
        rflo.load_network(path, cell=_own_cell("other"))


def test_the_clis_three_rates_for_cells_that_own_their_synapses():
    gru = rflo.init_network(1, 4, 1, cell="gru")
    assert runconfig.cell_rates(gru, (0.0, 0.1, 0.2)) == {"w_in": 0.0, "w_rec": 0.1, "w_out": 0.2}
    lru = rflo.init_network(1, 4, 1, cell=LRU())
    assert runconfig.cell_rates(lru, (0.0, 0.1, 0.2)) == {
        "b_im": 0.0,
        "b_re": 0.0,
        "gamma_log": 0.1,
        "nu_log": 0.1,
        "theta_log": 0.1,
        "w_out": 0.2,
    }
    stack = rflo.init_network(1, 4, 1, cell=Stack(layers=("gru", "lru")))
    rates = runconfig.cell_rates(stack, (1.0, 2.0, 3.0))
    assert rates["layer0.w_in"] == 1.0 and rates["layer0.w_rec"] == 2.0
    assert rates["layer1.b_re"] == 2.0 and rates["layer1.nu_log"] == 2.0  # between layers: REC
    assert "layer0.bias" not in rates and rates["w_out"] == 3.0
    point = rflo.init_network(1, 4, 1)
    assert runconfig.cell_rates(point, (0.0, 0.1, 0.2)) == (0.0, 0.1, 0.2)  # unchanged
    with pytest.raises(ValueError, match="none of its parameters"):
        runconfig.cell_rates(rflo.init_network(1, 4, 1, cell=_own_cell()), (0.0, 0.1, 0.2))


SWEEP = {
    "name": "gru",
    "trials": 6,
    "record_every": 3,
    "max_networks": 2,
    "grid": {
        "rule": "rtrl",
        "cell": "gru",
        "units": 3,
        "lr_rec": [0.05, 0.1],
        "lr_out": 0.1,
        "set": {"n_bits": 1, "n_steps": 20},
        "task": "flip_flop",
    },
    "backend": {"devices": 1},
}


@pytest.mark.slow  # several runs each; round trips and the gru CLI run stay in the default run
def test_an_ensemble_and_a_sweep_of_gru_networks(tmp_path):
    """train_ensemble stacks GRU networks (2 seeds); its networks save, and a
    sweep with cell gru trains the same networks (one compilation for both)."""
    pytest.importorskip("pyarrow")
    from rflo.sweep import Sweep, load_networks

    task = _task()
    nets = init_ensemble(task.n_in, 3, task.n_out, seeds=[0, 0], cell="gru")
    assert nets.extra["w_rec"].shape == (2, 9, 3) and len(unstack_networks(nets)) == 2
    lr = {"w_in": np.zeros(2), "w_rec": np.array([0.05, 0.1]), "w_out": np.full(2, 0.1)}
    res = train_ensemble(nets, task, "rtrl", trials=6, lr=lr, seeds=[0, 0])
    assert res.loss.shape == (2, 6) and np.all(np.isfinite(res.loss))
    first, second = unstack_networks(res.networks)
    assert not np.array_equal(first.extra["w_rec"], second.extra["w_rec"])  # their own rates
    np.testing.assert_array_equal(first.extra["bias"], nets.extra["bias"][0])  # frozen
    for k, member in enumerate((first, second)):
        path = rflo.save_network(tmp_path / f"m{k}.npz", member)
        assert_same_network(rflo.load_network(path), member)
    arrays = network_arrays(res.networks)
    assert arrays["extra.w_rec"].shape == (2, 9, 3)
    back = networks_from_stacked_arrays(arrays, "stacked")
    assert_same_network(stack_networks(back), res.networks)
    # a checkpoint of the stacked networks, as --seeds writes it
    prog = checkpoint.Progress(
        res.networks,
        res.loss,
        res.alignment,
        1.0,
        res.guard.best_loss,
        res.guard.previous,
        frozen_at=res.guard.frozen_at,
    )
    checkpoint.save_progress(tmp_path, "rtrl", prog, "run")
    again = checkpoint.load_progress(tmp_path, "rtrl", "run")
    assert_same_network(again.network, res.networks)
    assert_same_network(again.previous, res.guard.previous)
    # the sweep: lr_rec swept, the seed 0 for both: the same two networks
    table = Sweep.from_dict(SWEEP).run(tmp_path / "sweep")
    assert set(table.column("cell").to_pylist()) == {"gru"} and table.num_rows == 4
    swept = load_networks(tmp_path / "sweep")
    for k in (0, 1):
        assert_same_network(swept[k], (first, second)[k])


@pytest.mark.slow  # three command-line runs; round trips stay in the default run
def test_cli_train_eval_and_resume_a_gru_run(tmp_path):
    common = (
        "--cell",
        "gru",
        "--rule",
        "rtrl",
        "--task",
        "flip_flop",
        "--set",
        "n_bits=1",
        "n_steps=20",
        "--units",
        3,
        "--lr",
        0.05,
        0.1,
        0.1,
        "--quiet",
    )
    whole = run("train", *common, "--trials", 20, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    net = rflo.load_network(tmp_path / "whole" / "rtrl.npz")
    initial = rflo.load_network(tmp_path / "whole" / "initial.npz")
    assert isinstance(net.cell, GRU) and net.n_rec == 3
    assert not np.array_equal(net.extra["w_in"], initial.extra["w_in"])  # IN 0.05 trains w_in
    np.testing.assert_array_equal(net.extra["bias"], initial.extra["bias"])  # biases: no rate
    ev = run("eval", tmp_path / "whole" / "rtrl.npz")
    assert ev.returncode == 0 and "loss" in ev.stdout and "flip_flop" in ev.stdout, ev.stderr
    # a run cut short, then resumed from its checkpoints: bit-identical
    part = run("train", *common, "--trials", 8, "--checkpoint-every", 4, "--out", tmp_path / "p")
    assert part.returncode == 0, part.stderr
    more = run("train", "--resume", tmp_path / "p", "--trials", 20, "--quiet")
    assert more.returncode == 0, more.stderr
    assert_same_network(rflo.load_network(tmp_path / "p" / "rtrl.npz"), net)
    # a rule that cannot train the cell is refused before a folder is made
    assert_user_error(
        run("train", "--cell", "stack", "--rule", "rflo", "--out", tmp_path / "s"), "cell 'stack'"
    )
    assert not (tmp_path / "s").exists()


@pytest.mark.slow  # several runs each; round trips and the gru CLI run stay in the default run
def test_cli_lru_ensemble_rates_and_a_stack_from_init(tmp_path):
    """--cell lru: IN trains B, REC the recurrence; --seeds and --resume as for
    any cell.  A stack built in Python comes in through --init (its cell is the
    file's) and trains with an exact rule."""
    common = (
        "--cell",
        "lru",
        "--rule",
        "rtrl",
        "--task",
        "flip_flop",
        "--set",
        "n_bits=1",
        "n_steps=20",
        "--units",
        3,
        "--lr",
        0,
        0.1,
        0.1,
        "--seeds",
        0,
        1,
        "--quiet",
    )
    part = run("train", *common, "--trials", 4, "--checkpoint-every", 2, "--out", tmp_path / "l")
    assert part.returncode == 0, part.stderr
    more = run("train", "--resume", tmp_path / "l", "--trials", 6, "--quiet")
    assert more.returncode == 0, more.stderr
    first = rflo.load_network(tmp_path / "l" / "initial.seed1.npz")
    trained = rflo.load_network(tmp_path / "l" / "rtrl.seed1.npz")
    assert isinstance(trained.cell, LRU)
    np.testing.assert_array_equal(trained.extra["b_re"], first.extra["b_re"])  # IN = 0
    assert not np.array_equal(trained.extra["nu_log"], first.extra["nu_log"])  # REC
    assert network_info(tmp_path / "l" / "rtrl.seed1.npz")["trials"] == 6
    # a stack of its own shape, from a file
    task = _task()
    stacked = rflo.init_network(
        task.n_in, 3, task.n_out, cell=Stack(layers=("lstm", "lru"), widths=(2,))
    )
    rflo.save_network(tmp_path / "stack.npz", stacked)
    proc = run(
        "train",
        "--init",
        tmp_path / "stack.npz",
        "--rule",
        "bptt",
        "--task",
        "flip_flop",
        "--set",
        "n_bits=1",
        "n_steps=20",
        "--trials",
        3,
        "--quiet",
        "--out",
        tmp_path / "s",
    )
    assert proc.returncode == 0, proc.stderr
    back = rflo.load_network(tmp_path / "s" / "bptt.npz")
    assert back.cell == stacked.cell and back.extra["layer0.w_rec"].shape == (8, 2)
    assert run("plot", tmp_path / "s").returncode == 0


@pytest.mark.slow  # several runs each; round trips and the gru CLI run stay in the default run
def test_gradient_quality_compares_every_parameter_of_such_a_cell():
    """rflo.gradients compares the cell's own parameters; on the LRU (a
    diagonal recurrence) e-prop's per-unit traces are RTRL's exact gradient."""
    from rflo.gradients import gradient_quality
    from rflo.gradients_cli import format_table

    rng = np.random.default_rng(0)
    task = rflo.Task(x=rng.normal(size=(12, 1)), y=rng.normal(size=(12, 1)))
    net = rflo.init_network(1, 3, 1, cell="lru", dtype="float64")
    q = gradient_quality(net, task, ["rtrl", "eprop"])
    assert set(q["eprop"]["cos"]) == {
        "b_im",
        "b_re",
        "gamma_log",
        "nu_log",
        "theta_log",
        "w_out",
        "rec+in",
    }
    for rule in ("rtrl", "eprop"):
        assert q[rule]["cos"]["rec+in"] == pytest.approx(1.0, abs=1e-9)
    assert "eprop" in format_table(q)
