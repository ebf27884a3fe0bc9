"""One description of a run (rflo.spec.RunSpec) and the library's Session:
the command line's options, the config file's keys and the sweep grid's keys
all come from the spec's fields."""

import numpy as np
import pytest
from conftest import run_cli


def test_cli_options_config_keys_and_grid_keys_are_the_spec_fields():
    from rflo import runconfig
    from rflo.cli import build_parser
    from rflo.spec import cli_options, config_keys, grid_elsewhere, grid_keys, spec_fields
    from rflo.sweep.spec import GRID_KEYS, OPTIONAL_KEYS

    fields = {f.name for f in spec_fields()}
    train = {dest for dest, _ in cli_options("train").values()}
    compare = {dest for dest, _ in cli_options("compare").values()}
    assert train == set(config_keys()) == fields
    assert compare == fields - {"rule", "init"}  # compare takes --rules; it draws its network
    assert set(runconfig.KEYS) == fields | {"rules"}
    # the parser the command line builds has every one of them
    sub = build_parser()._subparsers._group_actions[0].choices
    for command, options in (("train", cli_options("train")), ("compare", cli_options("compare"))):
        dests = {a.dest: a.option_strings for a in sub[command]._actions}
        for option, (dest, _) in options.items():
            assert option in dests[dest], (command, option)
    # a sweep grids over every field but those it takes elsewhere (and says where)
    assert set(grid_keys()) | set(grid_elsewhere()) == fields
    assert not set(grid_keys()) & set(grid_elsewhere())
    expanded = {k for k in grid_keys() if k != "lr"} | {"lr_in", "lr_rec", "lr_out"}
    assert set(GRID_KEYS) | set(OPTIONAL_KEYS) == expanded


def test_runspec_round_trips_through_toml_and_refuses_bad_values(tmp_path):
    from rflo import runconfig
    from rflo.spec import RunSpec

    spec = RunSpec(
        units=7, tau=5, lr={"w_rec": 0.03, "tau": 0.1}, dale=0.8, seeds=[1, 2], set={"period": 30}
    )
    assert spec.tau == 5.0 and RunSpec.from_toml(spec.to_toml()) == spec
    three = RunSpec(lr=[0, 0.1, 0.1])
    assert three.lr == (0.0, 0.1, 0.1) and RunSpec.from_toml(three.to_toml()) == three
    # a config file holds the same names (and rates by name as an [lr] table)
    path = tmp_path / "c.toml"
    path.write_text(spec.to_toml())
    assert RunSpec.from_dict(runconfig.read_config(path)) == spec
    with pytest.raises(ValueError, match="'units' must be a positive integer"):
        RunSpec(units=0)
    with pytest.raises(ValueError, match="did you mean 'units'"):
        RunSpec.from_dict({"unit": 3})
    with pytest.raises(ValueError, match="'lr' must be three learning rates"):
        RunSpec(lr={"w_rec": -1.0})


_cli = run_cli


SMALL = ("--trials", 20, "--units", 8, "--period", 20, "--quiet")


@pytest.mark.slow  # 6 s of CLI runs; Dale, connectivity and named rates have API tests in the default run
def test_cli_trains_under_dale_and_connectivity_and_rates_by_name(tmp_path):
    import rflo

    code, err = _cli("train", *SMALL, "--dale", 0.5, "--out", tmp_path / "d")
    assert code == 0, err
    net = rflo.load_network(tmp_path / "d" / "rflo.npz")
    start = rflo.load_network(tmp_path / "d" / "initial.npz")
    assert net.sign is not None and sorted(set(np.asarray(net.sign).tolist())) == [-1.0, 1.0]
    assert np.all(np.asarray(net.w_rec) * np.asarray(net.sign)[None, :] >= 0)
    assert not np.array_equal(net.w_rec, start.w_rec)  # it trained

    code, err = _cli("train", *SMALL, "--connectivity", 0.5, "--out", tmp_path / "c")
    assert code == 0, err
    net = rflo.load_network(tmp_path / "c" / "rflo.npz")
    mask = np.asarray(net.mask)
    assert 0 < mask.mean() < 1 and np.all(np.asarray(net.w_rec)[mask == 0] == 0)

    code, err = _cli(
        "train",
        *SMALL,
        "--rule",
        "bptt",
        "--lr",
        "w_rec=0.03",
        "w_out=0.03",
        "tau=0.5",
        "--max-loss-growth",
        1e6,
        "--out",
        tmp_path / "t",
    )
    assert code == 0, err
    net = rflo.load_network(tmp_path / "t" / "bptt.npz")
    assert float(net.tau) != 10.0  # tau trained, by name
    text = (tmp_path / "t" / "config.toml").read_text()
    assert "[lr]" in text and "max_loss_growth" in text
    header = (tmp_path / "t" / "results.csv").read_text().splitlines()[0].split(",")
    assert {"max_loss_growth", "lr.tau"} <= set(header)  # as a sweep's table has them
    # the run's config file repeats it
    code, err = _cli(
        "train", "--config", tmp_path / "t" / "config.toml", "--out", tmp_path / "t2", "--quiet"
    )
    assert code == 0, err
    np.testing.assert_array_equal(rflo.load_network(tmp_path / "t2" / "bptt.npz").tau, net.tau)
    # a rate by a name the network does not have: one line naming the fix, before any folder
    code, err = _cli("train", *SMALL, "--lr", "w_recc=0.1", "--out", tmp_path / "bad")
    assert code == 2 and "w_recc" in err and not (tmp_path / "bad").exists()
    code, err = _cli("train", *SMALL, "--lr", "w_rec=0.1", "0.2", "--out", tmp_path / "bad")
    assert code == 2 and "not a mix" in err


@pytest.mark.slow  # 6 s: a sweep end to end; rates by name are checked in the default run
def test_a_sweep_over_a_tau_rate_trains_tau(tmp_path):
    pytest.importorskip("pyarrow")
    from rflo.sweep import Sweep, collect, load_networks

    spec = {
        "trials": 20,
        "record_every": 10,
        "grid": {
            "rule": "bptt",
            "units": 8,
            "connectivity": 0.5,
            "max_loss_growth": 1e6,
            "lr": {"tau": [0.0, 0.5]},
            "seed": [0, 1],
            "set": {"period": 20},
        },
    }
    sweep = Sweep.from_dict(spec)
    assert sweep.spec.columns()[-3:] == ["connectivity", "max_loss_growth", "lr.tau"]
    sweep.run(tmp_path / "s")
    table = collect(tmp_path / "s").to_pydict()
    nets = load_networks(tmp_path / "s")
    points = sweep.spec.points()
    assert len(points) == 4 and len(nets) == 4
    for i, p in enumerate(points):
        tau = float(nets[i].tau)
        assert (tau == 10.0) == (p["lr.tau"] == 0.0), (p, tau)
        assert np.all(np.asarray(nets[i].w_rec)[np.asarray(nets[i].mask) == 0] == 0)
    assert set(table["lr.tau"]) == {0.0, 0.5}
    # written back and read again, the spec is the same (rates by name as a table)
    assert Sweep.from_dict(sweep.spec.as_dict()).spec.points() == points


@pytest.mark.parametrize(
    "seeds", [None, pytest.param([0, 3], marks=pytest.mark.slow)], ids=["one", "ensemble"]
)
def test_session_resumes_a_stopped_run_bit_identically_from_python(tmp_path, seeds):
    import rflo
    from rflo.session import Interrupted, Session
    from rflo.spec import RunSpec

    spec = RunSpec(
        rule="bptt",
        trials=40,
        units=8,
        set={"period": 20},
        seeds=seeds,
        lr={"w_rec": 0.03, "w_out": 0.03, "tau": 0.1},
        optimizer="adam",
        optimizer_rate=1e-3,
    )
    with Session.start(spec, tmp_path / "whole") as s:
        whole = s.run()["bptt"]

    class Stop:  # what SIGINT does: stop after the current segment
        signum = None

    stop = Stop()

    def progress(rule, total, done):
        def report(done, total, loss):
            if done >= 15:
                stop.signum = 2

        return report

    with Session.start(spec, tmp_path / "cut") as s:
        with pytest.raises(Interrupted, match="the checkpoint is saved"):
            s.run(progress=progress, stop=stop)
    with Session.resume(tmp_path / "cut") as s:
        assert s.spec == spec and s.rules == ["bptt"]
        again = s.run()["bptt"]
    np.testing.assert_array_equal(again.loss, whole.loss)
    for k in ("w_rec", "w_out", "tau"):
        np.testing.assert_array_equal(getattr(again.network, k), getattr(whole.network, k))
    assert not np.all(np.asarray(whole.network.tau) == 10.0)  # tau trained by name
    name = "bptt.npz" if seeds is None else "bptt.seed3.npz"
    np.testing.assert_array_equal(
        rflo.load_network(tmp_path / "cut" / name).w_rec,
        rflo.load_network(tmp_path / "whole" / name).w_rec,
    )
    # the folder is locked while a session holds it; a finished run resumes to no work
    with Session.resume(tmp_path / "cut") as s:
        with pytest.raises(ValueError, match="choose another"):
            Session.resume(tmp_path / "cut")
        assert s.run()["bptt"].done == 40


@pytest.mark.parametrize(
    "bad",
    [
        dict(max_loss_growth=-1.0),
        dict(batch=0),
        dict(trials=0),
        dict(rule="bptt", online=True),
        dict(lr={"w_recc": 0.1}),
    ],
)
def test_train_and_train_ensemble_refuse_alike(bad):
    import rflo
    from rflo.ensemble import train_ensemble

    task = rflo.periodic_task(period=10)
    net = rflo.init_network(task.n_in, 4, task.n_out)
    kw = {"trials": 2, **bad}
    with pytest.raises(ValueError) as one:
        rflo.train(net, task, **kw)
    with pytest.raises(ValueError) as many:
        train_ensemble([net, net], task, **kw)
    assert str(one.value) == str(many.value)


def test_a_session_refuses_what_cannot_run_before_making_its_folder(tmp_path):
    from rflo.session import Session
    from rflo.spec import RunSpec

    with pytest.raises(ValueError, match="w_recc"):
        Session.start(RunSpec(units=4, lr={"w_recc": 0.1}), tmp_path / "a")
    with pytest.raises(ValueError, match="unknown task"):
        Session.start(RunSpec(task="flipflop"), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow  # two runs and two resumes; the default run resumes from Python
def test_the_command_line_resumes_a_python_session_and_back(tmp_path):
    import rflo
    from rflo.session import Interrupted, Session
    from rflo.spec import RunSpec

    spec = RunSpec(trials=30, units=6, set={"period": 20}, dale=0.5)

    class Stop:
        signum = None

    stop = Stop()

    def progress(rule, total, done):
        return lambda done, total, loss: setattr(stop, "signum", 15) if done >= 10 else None

    with Session.start(spec, tmp_path / "py") as s:
        with pytest.raises(Interrupted):
            s.run(progress=progress, stop=stop)
    code, err = _cli("train", "--resume", tmp_path / "py", "--quiet")
    assert code == 0, err
    code, err = _cli(
        "train",
        "--trials",
        30,
        "--units",
        6,
        "--period",
        20,
        "--dale",
        0.5,
        "--quiet",
        "--out",
        tmp_path / "cli",
    )
    assert code == 0, err
    a, b = (rflo.load_network(tmp_path / f / "rflo.npz") for f in ("py", "cli"))
    np.testing.assert_array_equal(a.w_rec, b.w_rec)
    with Session.resume(tmp_path / "cli") as s:  # a command-line run, from Python
        assert s.spec.dale == 0.5 and s.run()["rflo"].done == 30
