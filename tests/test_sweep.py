"""Sweeps: spec, planner, chunks equal to a direct ensemble call, resuming,
failures, folder ownership, the table and its summary, the command line."""

import numpy as np
import pytest

pytest.importorskip("pyarrow")

import rflo  # noqa: E402
from rflo.ensemble import init_ensemble, train_ensemble  # noqa: E402
from rflo.sweep import Sweep, collect, load_networks, make_plan, status, summarize  # noqa: E402
from rflo.sweep.spec import read_spec, spec_from_dict, spec_toml  # noqa: E402

#: a small sweep shared by the tests that train (one compilation for all)
SMALL = {
    "name": "small",
    "trials": 20,
    "record_every": 10,
    "max_networks": 3,
    "grid": {
        "rule": "rflo",
        "units": 8,
        "lr_rec": [0.01, 0.03],
        "lr_out": 0.02,
        "seed": [0, 1, 2],
        "set": {"period": 40},
    },
    "backend": {"devices": 1},
}


def test_grid_is_every_combination_with_the_seed_fastest():
    spec = spec_from_dict(
        {
            "grid": {
                "rule": ["rflo", "bptt"],
                "lr": [0.01, 0.1],
                "seed": [3, 4],
                "set": {"period": [50, 100]},
            }
        }
    )
    points = spec.points()
    assert len(points) == 2 * 2 * 2 * 2
    assert [p["seed"] for p in points[:4]] == [3, 4, 3, 4]
    assert all(p["lr_out"] == p["lr_rec"] for p in points)  # `lr` sweeps both together
    assert {p["set.period"] for p in points} == {50, 100}
    assert spec.columns()[:3] == ["rule", "task", "set.period"]


def test_spec_round_trips_through_toml(tmp_path):
    spec = spec_from_dict(
        {
            "trials": 50,
            "grid": {"lr": [0.01, 0.1], "units": [8, 16], "set": {"period": 40}},
            "backend": {"name": "slurm", "slurm": {"partition": "cpu"}},
        }
    )
    path = tmp_path / "s.toml"
    path.write_text(spec_toml(spec))
    again = read_spec(path)
    assert again.points() == spec.points()
    assert again.backend == spec.backend and again.trials == 50


@pytest.mark.parametrize(
    "data, message",
    [
        ({"grid": {"rul": "rflo"}}, "did you mean 'rule'"),
        ({"trails": 10}, "did you mean 'trials'"),
        ({"grid": {"units": [8, 0]}}, "'units' must be a positive integer"),
        ({"grid": {"seed": []}}, "empty list"),
        ({"grid": {"seed": [1, 1]}}, "lists a value twice"),
        ({"grid": {"lr": 0.1, "lr_rec": 0.1}}, "not both"),
        ({"grid": {"lr_rec": -1}}, "learning rate >= 0"),
        ({"backend": {"name": "ray"}}, "one of local, slurm"),
        ({"backend": {"slurm": {"partitoin": "x"}}}, "did you mean 'partition'"),
        ({"trials": 0}, "'trials' must be an integer >= 1"),
    ],
)
def test_bad_specs_are_refused_with_the_fix(data, message):
    with pytest.raises(ValueError, match=message):
        spec_from_dict(data)


def test_bad_points_are_refused_before_anything_runs(tmp_path):
    sweep = Sweep.from_dict({"trials": 5, "grid": {"rule": ["rflo", "bptt"], "online": True}})
    with pytest.raises(ValueError, match="rule 'bptt' cannot learn online"):
        sweep.run(tmp_path / "out")
    assert not (tmp_path / "out" / "sweep.toml").exists()


def test_planner_groups_by_shape_and_splits_evenly():
    spec = spec_from_dict(
        {
            "trials": 10,
            "max_networks": 4,
            "grid": {"rule": ["rflo", "bptt"], "lr": [0.01, 0.1], "seed": [0, 1, 2, 3, 4]},
        }
    )
    chunks = make_plan(spec)
    # two groups (rule) of 10 lanes each -> 3 chunks of 4, 3, 3 networks, 4 lanes each
    assert [len(c.points) for c in chunks] == [4, 3, 3, 4, 3, 3]
    assert {c.lanes for c in chunks} == {4}
    assert all(len({p["rule"] for p in c.points}) == 1 for c in chunks)
    assert sorted(i for c in chunks for i in c.index) == list(range(20))
    assert len({c.id for c in chunks}) == 6
    # ids depend on what is computed: same spec, same ids; more trials, new ids
    assert [c.id for c in make_plan(spec)] == [c.id for c in chunks]
    longer = spec_from_dict({**spec.as_dict(), "trials": 11})
    assert not {c.id for c in make_plan(longer)} & {c.id for c in chunks}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "small"
    table = Sweep.from_dict(SMALL).run(out)
    return out, table


def test_a_chunks_rows_equal_a_direct_ensemble_call(small_run):
    out, table = small_run
    cols = table.to_pydict()
    spec = spec_from_dict(SMALL)
    points = spec.points()
    assert table.num_rows == len(points) * 2
    assert cols["point"] == [i for i in range(len(points)) for _ in range(2)]
    assert cols["trial"][:2] == [10, 20]
    task = rflo.periodic_task(period=40)
    first = make_plan(spec)[0]
    nets = init_ensemble(task.n_in, 8, task.n_out, seeds=[p["seed"] for p in first.points])
    res = train_ensemble(
        nets,
        task,
        "rflo",
        trials=20,
        seeds=[p["seed"] for p in first.points],
        lr={"w_in": 0.0, "w_rec": np.array([p["lr_rec"] for p in first.points]), "w_out": 0.02},
    )
    k = len(first.points)
    loss = np.asarray(cols["loss"][: 2 * k]).reshape(k, 2)
    np.testing.assert_array_equal(loss, res.loss.astype(float).reshape(k, 2, 10).mean(axis=2))
    align = np.asarray(cols["alignment"][: 2 * k]).reshape(k, 2)
    np.testing.assert_allclose(
        align, res.alignment.astype(float).reshape(k, 2, 10).mean(axis=2), rtol=1e-12
    )
    assert cols["final_loss"][: 2 * k : 2] == list(loss[:, 1])
    nets_back = load_networks(out)
    assert sorted(nets_back) == list(range(len(points)))
    for i in range(k):
        np.testing.assert_array_equal(nets_back[first.index[i]].w_rec, res.networks.w_rec[i])
    assert cols["loss_function"][0] == "squared_error" and cols["set.period"][0] == 40
    from rflo.results import MEASURE_COLUMNS, SETTING_COLUMNS

    # the library's one tidy format (results.csv of train/compare has the same columns)
    assert table.column_names == [
        *SETTING_COLUMNS[:2],
        "set.period",
        *SETTING_COLUMNS[2:],
        *MEASURE_COLUMNS,
        "chunk",
    ]


def test_rerun_runs_only_missing_chunks_and_gives_the_same_table(small_run, tmp_path):
    import shutil

    out, table = small_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    chunks = sorted((copy / "chunks").glob("*.parquet"))
    kept = chunks[0].stat().st_mtime_ns
    chunks[1].unlink()
    assert status(copy)["missing"] == 1
    again = Sweep.from_folder(copy).run(copy)
    assert chunks[0].stat().st_mtime_ns == kept  # not run again
    assert again.equals(table)
    assert status(copy)["done"] == status(copy)["total"]


def test_a_failed_chunk_is_recorded_and_retried(small_run, tmp_path, monkeypatch):
    import shutil

    from rflo.sweep import chunk as chunk_mod

    out, table = small_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for f in (copy / "chunks").glob("*.parquet"):
        f.unlink()
    real = chunk_mod.train_chunk
    bad = make_plan(spec_from_dict(SMALL))[1].id

    def flaky(chunk, spec, devices=1):
        if chunk.id == bad:
            raise FloatingPointError("node lost")
        return real(chunk, spec, devices)

    monkeypatch.setattr(chunk_mod, "train_chunk", flaky)
    with pytest.raises(RuntimeError, match="1 of 2 chunks failed"):
        Sweep.from_folder(copy).run(copy)
    assert "FloatingPointError: node lost" in (copy / "failed" / f"{bad}.txt").read_text()
    st = status(copy)
    assert (st["done"], st["failed"]) == (1, 1)
    with pytest.warns(UserWarning, match="1 of 2 chunks are not finished"):
        assert collect(copy).num_rows == table.num_rows // 2
    monkeypatch.setattr(chunk_mod, "train_chunk", real)
    assert Sweep.from_folder(copy).run(copy).equals(table)
    assert not (copy / "failed" / f"{bad}.txt").exists()


def test_a_folder_belongs_to_one_sweep(small_run, tmp_path):
    import shutil

    out, _ = small_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    other = Sweep.from_dict({**SMALL, "trials": 30})
    with pytest.raises(ValueError, match="holds another sweep"):
        other.run(copy)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and holds no sweep"):
        other.run(tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_the_table_writes_as_parquet_and_csv(small_run, tmp_path):
    import pyarrow.parquet as pq

    out, table = small_run
    collect(out, tmp_path / "t.parquet")
    assert pq.read_table(tmp_path / "t.parquet").equals(table)
    collect(out, tmp_path / "t.csv")
    header = (tmp_path / "t.csv").read_text().splitlines()[0]
    assert header.split(",")[:2] == ['"rule"', '"task"']
    with pytest.raises(ValueError, match=".parquet or .csv"):
        collect(out, tmp_path / "t.xlsx")


def test_summary_is_median_and_quartiles_over_networks():
    rows = {
        "rule": ["a"] * 5 + ["b"] * 2,
        "lr_rec": [0.1, 0.1, 0.1, 0.1, 0.2, 0.1, 0.1],
        "point": list(range(7)),
        "trial": [10] * 7,
        "final_loss": [1.0, 2.0, 3.0, 4.0, 9.0, 5.0, float("nan")],
    }
    stats = summarize(rows, "lr_rec", "final_loss", "rule")
    xs, med, lo, hi, n = stats["a"]
    assert xs == [0.1, 0.2] and list(n) == [4, 1]
    assert (med[0], lo[0], hi[0]) == (2.5, 1.75, 3.25)
    assert stats["b"][1][0] == 5.0 and list(stats["b"][4]) == [1]  # NaN left out
    with pytest.raises(ValueError, match="no column 'lr'"):
        summarize(rows, "lr")


def test_command_line_plan_status_collect_plot(small_run, tmp_path, capsys):
    from rflo.cli import main

    out, table = small_run
    spec = tmp_path / "s.toml"
    spec.write_text(spec_toml(spec_from_dict(SMALL)))
    assert main(["sweep", "plan", str(spec)]) == 0
    text = capsys.readouterr().out
    assert "6 networks x 20 trials in 2 chunks" in text
    assert main(["sweep", "status", str(out)]) == 0
    assert "2 of 2 chunks done, 0 failed, 0 missing" in capsys.readouterr().out
    assert main(["sweep", "collect", str(out), "-o", str(tmp_path / "t.parquet")]) == 0
    assert main(["sweep", "plot", str(out), "--x", "lr_rec", "-o", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert main(["sweep", "run", str(spec)]) == 2
    assert "give the sweep's folder" in capsys.readouterr().err
    assert main(["sweep", "plot", str(out), "--x", "nope"]) == 2
    assert "no column 'nope'" in capsys.readouterr().err
    assert main(["sweep", "status", str(tmp_path)]) == 2
    assert "not a sweep folder" in capsys.readouterr().err


def test_several_grids_join_their_points(tmp_path):
    text = """
trials = 5
[[grid]]
rule = "bptt"
lr = [0.1, 0.3]
[grid.set]
period = 40

[[grid]]
rule = "rflo"
lr_rec = 0.01
dale = 0.8
seed = [0, 1]
"""
    path = tmp_path / "s.toml"
    path.write_text(text)
    spec = read_spec(path)
    points = spec.points()
    assert [(p["rule"], p["lr_rec"], p["lr_out"], p["seed"]) for p in points] == [
        ("bptt", 0.1, 0.1, 0),
        ("bptt", 0.3, 0.3, 0),
        ("rflo", 0.01, 0.03, 0),
        ("rflo", 0.01, 0.03, 1),
    ]
    assert [p["set.period"] for p in points] == [40, 40, None, None]  # None: the task's default
    assert [p["dale"] for p in points] == [None, None, 0.8, 0.8]
    path.write_text(spec_toml(spec))
    assert read_spec(path).points() == points
    with pytest.raises(ValueError, match="share points"):
        spec_from_dict({"grid": [{"rule": "rflo"}, {"rule": ["rflo", "bptt"]}]})
    with pytest.raises(ValueError, match=r"\[\[grid\]\] #2: 'dale' must be the fraction"):
        spec_from_dict({"grid": [{"rule": "rflo"}, {"dale": 1.5}]})


def test_the_compile_cache_is_the_sweeps_only_while_it_runs(small_run):
    import jax

    out, table = small_run
    before = jax.config.jax_compilation_cache_dir
    again = Sweep.from_folder(out).run(out, compile_cache=True)
    assert again.equals(table)
    assert jax.config.jax_compilation_cache_dir == before


def _damage(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:  # garbage of the same length
        path.write_bytes(np.random.default_rng(0).integers(0, 256, len(data), np.uint8).tobytes())


@pytest.mark.parametrize(
    "part, how",
    [
        ("chunks", "truncated"),
        ("chunks", "garbage"),
        ("networks", "truncated"),
        ("networks", "garbage"),
    ],
)
def test_a_damaged_chunk_is_reported_named_and_run_again(small_run, tmp_path, capsys, part, how):
    import shutil

    from rflo.cli import main

    out, table = small_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    bad = make_plan(spec_from_dict(SMALL))[1].id
    suffix = ".parquet" if part == "chunks" else ".npz"
    path = copy / part / f"{bad}{suffix}"
    _damage(path, how)
    st = status(copy)
    assert (st["done"], st["damaged"], st["missing"]) == (1, 1, 0)
    row = next(r for r in st["chunks"] if r["id"] == bad)
    assert row["state"] == "damaged" and f"{bad}{suffix} does not read back" in row["why"]
    assert main(["sweep", "status", str(copy)]) == 1
    text = capsys.readouterr().out
    assert "1 of 2 chunks done, 0 failed, 0 missing, 1 damaged" in text
    assert f"damaged {bad}:" in text and f"rflo sweep run {copy}" in text
    with pytest.warns(UserWarning, match=f"{bad}{suffix} does not read back .*rflo sweep run"):
        assert collect(copy).num_rows == table.num_rows // 2
    if part == "networks":
        with pytest.raises(ValueError, match=f"{bad}.npz does not read back"):
            load_networks(copy)
    kept = (copy / "chunks" / f"{make_plan(spec_from_dict(SMALL))[0].id}.parquet").stat()
    assert main(["sweep", "run", str(copy)]) == 0
    assert "is damaged, so it runs again" in capsys.readouterr().err
    assert Sweep.from_folder(copy).run(copy).equals(table)  # nothing left to run
    assert (
        copy / "chunks" / f"{make_plan(spec_from_dict(SMALL))[0].id}.parquet"
    ).stat().st_mtime_ns == kept.st_mtime_ns  # the intact chunk was not run again
    assert status(copy)["done"] == 2
    np.testing.assert_array_equal(load_networks(copy)[5].w_rec, load_networks(out)[5].w_rec)


def test_plot_chooses_agg_only_where_nothing_was_chosen_and_no_display_exists():
    from rflo.sweep.table import backend_needed

    assert backend_needed(None, {}, "linux") == "Agg"  # a headless server
    assert backend_needed(None, {"DISPLAY": ":0"}, "linux") is None
    assert backend_needed(None, {"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert backend_needed(None, {}, "darwin") is None
    assert backend_needed(None, {"MPLBACKEND": "svg"}, "linux") is None
    inline = "module://matplotlib_inline.backend_inline"  # what Jupyter sets
    assert backend_needed(inline, {}, "linux") is None


def test_plot_keeps_the_backend_someone_chose():
    import matplotlib
    import matplotlib.pyplot as plt

    from rflo.sweep import plot

    rows = {
        "rule": ["rflo"] * 2,
        "lr_rec": [0.1, 0.2],
        "point": [0, 1],
        "trial": [10, 10],
        "final_loss": [1.0, 2.0],
    }
    old = matplotlib.get_backend()
    plt.switch_backend("svg")
    try:
        fig = plot(rows, "lr_rec")
        assert matplotlib.get_backend() == "svg"
        plt.close(fig)
    finally:
        plt.switch_backend(old)


def test_table_settings_of_a_synaptic_cell_with_or_without_a_named_network():
    """A chunk's rows read the spec's columns once for all its points; a cell
    that owns its synapses has no ``tau``, with or without a named network."""
    from rflo.sweep.store import table_settings

    spec = spec_from_dict({"trials": 2, "grid": {"cell": "gru", "seed": [0, 1]}})
    points = spec.points()
    net = rflo.init_network(1, 3, 1, cell="gru")
    rows = table_settings(spec, points, net)
    assert [r["seed"] for r in rows] == [0, 1] and {r["cell"] for r in rows} == {"gru"}
    named = [{**p, "network": "saved.npz"} for p in points]
    rows = table_settings(spec, named, net)
    assert {(r["cell"], r["units"]) for r in rows} == {("gru", 3)}
    assert [r["tau"] for r in rows] == [p["tau"] for p in named]  # the grid's: no tau to read
