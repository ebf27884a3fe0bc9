"""A run's named network (``network``), firing-rate regulariser
(``rate_target``, ``rate_strength``) and optimiser rates by parameter name
(``optimizer_rate = {...}``): fields of rflo.spec.RunSpec, so settings of
``rflo train``, config files and sweeps -- what Bellec et al.'s reproduction
needs to be a sweep."""

import numpy as np
import pytest
from conftest import run_cli

from rflo.spec import RunSpec

#: the evidence-accumulation task cut to 36 steps (one short cue)
TINY_TASK = {"n_cues": 1, "t_cue": 10, "t_interval": 15, "delay": 10, "recall": 10}

BELLEC = dict(
    network="bellec2020",
    task="evidence_accumulation",
    loss="cross_entropy",
    optimizer="adam",
    optimizer_rate={"w_in": 0.1, "w_rec": 0.1, "w_out": 0.005},
    rate_target=0.01,
    rate_strength=2.0,
    lr=(1.0, 1.0, 1.0),
)


_cli = run_cli


def _parse(*args):
    """The RunSpec ``rflo train ARGS`` makes of its flags (nothing runs)."""
    from rflo.cli import build_parser
    from rflo.cli.common import spec

    return spec(build_parser(["train"]).parse_args(["train", *map(str, args)]))


def test_new_fields_round_trip_through_toml_config_files_and_flags(tmp_path):
    from rflo import runconfig

    spec = RunSpec(**BELLEC, set={"delay": 50})
    assert RunSpec.from_toml(spec.to_toml()) == spec
    assert "[optimizer_rate]" in spec.to_toml()
    path = tmp_path / "config.toml"
    runconfig.write_config(path, spec.as_dict())
    assert RunSpec.from_dict(runconfig.read_config(path)) == spec
    # integers in a file are rates all the same
    one = RunSpec.from_toml('optimizer = "sgd"\noptimizer_rate = {w_rec = 1, w_out = 0}\n')
    assert one.optimizer_rate == {"w_rec": 1.0, "w_out": 0.0}
    # the command line's flags
    flags = (
        *("--network", "bellec2020", "--task", "evidence_accumulation", "--set", "delay=50"),
        *("--loss", "cross_entropy", "--optimizer", "adam", "--lr", 1, 1, 1),
        *("--optimizer-rate", "w_in=0.1", "w_rec=0.1", "w_out=0.005"),
        *("--rate-target", 0.01, "--rate-strength", 2),
    )
    assert _parse(*flags) == spec
    assert _parse("--optimizer", "adam", "--optimizer-rate", "1e-3").optimizer_rate == 1e-3


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--optimizer-rate", "w_in=-1"), "finite and >= 0"),
        (("--optimizer-rate", "0"), "rate > 0"),
        (("--optimizer-rate", "0.1", "w_in=0.1"), "one rate X or NAME=RATE pairs"),
        (("--optimizer-rate", "w_in=0.1", "w_in=0.2"), "given once"),
        (("--rate-target", "2"), "a number in [0, 1]"),
        (("--rate-strength", "-1"), "a finite number >= 0"),
    ],
)
def test_bad_flags_are_refused_in_one_line(flags, message):
    code, err = _cli("train", *flags)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()[-1]) > 0 and "Traceback" not in err


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(network=3), "'network' must be a network's name"),
        (dict(rate_target=1.5), "'rate_target' must be spikes per step, in [0, 1]"),
        (dict(rate_target=-0.1), "'rate_target' must be spikes per step"),
        (dict(rate_strength=-1), "'rate_strength' must be a number >= 0"),
        (dict(optimizer_rate=0), "'optimizer_rate' must be a number > 0, or a table"),
        (dict(optimizer_rate={"w_in": -1}), "'optimizer_rate' must be"),
        (dict(optimizer_rate={}), "'optimizer_rate' must be"),
    ],
)
def test_fields_refuse_bad_values_in_one_line(settings, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
        RunSpec(**settings)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(network="bellec"), "unknown network 'bellec' (did you mean 'bellec2020'?); known:"),
        (dict(network="bellec2020"), "but the periodic task needs n_in=1, n_out=1"),
        ({**BELLEC, "units": 64}, "'units': network 'bellec2020' decides it"),
        ({**BELLEC, "cell": "lif"}, "'cell': network 'bellec2020' decides it"),
        ({**BELLEC, "tau": 20.0}, "'tau': network 'bellec2020' decides it"),
        ({**BELLEC, "dale": 0.8}, "'dale': network 'bellec2020' decides it"),
        ({**BELLEC, "connectivity": 0.5}, "'connectivity': network"),
        ({**BELLEC, "derivative": "exact"}, "'derivative': network"),
        ({**BELLEC, "init": "x.npz"}, "drop one of them"),
        (dict(rate_strength=2.0), "give 'rate_target' too"),
        (dict(cell="lif", rate_target=0.01, online=True), "not online"),
        (dict(rate_target=0.01), "needs a spiking cell (lif, alif)"),
        (dict(optimizer_rate={"w_out": 0.1}), "--optimizer-rate needs --optimizer"),
    ],
)
def test_settings_that_do_not_go_together_are_refused_when_built(settings, message):
    from rflo.session import build

    with pytest.raises(ValueError) as e:
        build(RunSpec(**settings))
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_the_named_network_is_bellec_network_and_a_registry_of_builders(monkeypatch):
    from rflo import networks
    from rflo.paper.bellec2020 import bellec_cell, bellec_network
    from rflo.session import build, draw_network

    assert "bellec2020" in networks.network_names()
    assert networks.get_network_builder("bellec2020") is bellec_network
    spec = RunSpec(**{**BELLEC, "dtype": "float64"}, set=TINY_TASK)
    task, cell, _ = build(spec)
    assert cell == bellec_cell()
    for seed in (0, 7):
        net, theirs = draw_network(spec, task, cell, seed), bellec_network(seed)
        for k in ("w_in", "w_rec", "w_out", "b", "h0", "tau", "mask"):
            np.testing.assert_array_equal(getattr(net, k), getattr(theirs, k))
        assert net.cell == theirs.cell
    # in the spec's precision (float32 by default)
    single = draw_network(spec.replace(dtype="float32"), task, cell, 0)
    assert single.w_rec.dtype == np.float32
    np.testing.assert_array_equal(single.w_rec, bellec_network(0).w_rec.astype(np.float32))
    # a builder of one's own, by name
    import rflo

    monkeypatch.setattr(networks, "_BUILDERS", dict(networks._BUILDERS))
    mine = lambda seed, task: rflo.init_network(task.n_in, 6, task.n_out, seed=seed)  # noqa: E731
    networks.register_network("six", mine)
    networks.register_network("six", mine)  # the same again: fine
    with pytest.raises(ValueError, match="already registered"):
        networks.register_network("six", lambda seed, task: None)
    six = RunSpec(network="six", period=20)
    task, cell, _ = build(six)
    assert draw_network(six, task, cell, 3).n_rec == 6


def test_optimizer_rates_by_name_are_bellecs_optimizer():
    """The sweep's Adam rates by name update as the reproduction's own optimiser."""
    import jax

    from rflo import runconfig
    from rflo.paper.bellec2020 import _optimizer, optimizer_rates

    rng = np.random.default_rng(0)
    params = {k: rng.normal(size=(3, 4)) for k in ("w_in", "w_rec", "w_out")}
    ours, theirs = runconfig.make_optimizer("adam", optimizer_rates(0.005)), _optimizer(0.005)
    s1, s2 = ours.init(params), theirs.init(params)
    for _ in range(3):
        grads = {k: rng.normal(size=(3, 4)) for k in params}
        u1, s1 = ours.update(grads, s1, params)
        u2, s2 = theirs.update(grads, s2, params)
        for k in params:
            np.testing.assert_allclose(u1[k], u2[k], rtol=1e-12)
    assert abs(float(jax.tree_util.tree_leaves(u1["w_out"])[0][0, 0])) <= 0.005 + 1e-12


def test_optimizer_rates_by_name_train_each_parameter_at_its_rate(tmp_path):
    """Adam moves a weight by at most its rate per update (about the rate where
    the gradient keeps its sign): w_in at 0 stays, w_out moves at its own rate."""
    import rflo
    from rflo.session import Session

    spec = RunSpec(
        task="flip_flop",
        set={"n_bits": 1},
        units=8,
        trials=2,
        lr=(1.0, 1.0, 1.0),
        optimizer="adam",
        optimizer_rate={"w_in": 0.0, "w_rec": 0.001, "w_out": 0.02},
    )
    with Session.start(spec, tmp_path / "run") as s:
        s.run()
    start = rflo.load_network(tmp_path / "run" / "initial.npz")
    end = rflo.load_network(tmp_path / "run" / "rflo.npz")
    moved = {
        k: float(np.max(np.abs(getattr(end, k) - getattr(start, k))))
        for k in ("w_in", "w_rec", "w_out")
    }
    assert moved["w_in"] == 0.0
    assert 0.0 < moved["w_rec"] <= 2 * 0.001 * (1 + 1e-4)
    assert 0.02 < moved["w_out"] <= 2 * 0.02 * (1 + 1e-4)
    # a trained parameter without a rate: refused before the run's folder is made
    bad = spec.replace(optimizer_rate={"w_rec": 0.001, "w_out": 0.02})
    with pytest.raises(ValueError, match="also trains w_in") as e:
        Session.start(bad, tmp_path / "bad")
    assert "\n" not in str(e.value) and not (tmp_path / "bad").exists()


@pytest.mark.slow  # 3 s; the default run keeps under its CPU budget
def test_cli_trains_a_named_network_with_the_regulariser_and_rates_by_name(tmp_path):
    import rflo

    out = tmp_path / "b"
    code, err = _cli(
        "train",
        *("--network", "bellec2020", "--task", "evidence_accumulation", "--rule", "eprop"),
        *("--set", *(f"{k}={v}" for k, v in TINY_TASK.items())),
        *("--loss", "cross_entropy", "--optimizer", "adam", "--lr", 1, 1, 1),
        *("--optimizer-rate", "w_in=0.1", "w_rec=0.1", "w_out=0"),
        *("--rate-target", 0.01, "--trials", 2, "--batch", 2, "--quiet", "--out", out),
    )
    assert code == 0, err
    start, end = rflo.load_network(out / "initial.npz"), rflo.load_network(out / "eprop.npz")
    assert end.cell.name == "alif" and end.n_rec == 100
    np.testing.assert_array_equal(end.w_out, start.w_out)  # its rate is 0
    assert not np.array_equal(end.w_rec, start.w_rec)
    text = (out / "config.toml").read_text()
    assert "[optimizer_rate]" in text and 'network = "bellec2020"' in text
    assert "rate_target = 0.01" in text
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert {"network", "rate_target", "optimizer_rate"} <= set(header)
    # the same with a cell that does not spike: one line, before any folder
    code, err = _cli("train", "--rate-target", 0.01, "--trials", 2, "--out", tmp_path / "x")
    assert code == 2 and "needs a spiking cell" in err and not (tmp_path / "x").exists()


def _tiny_bellec_sweep(rules=("bptt",)):
    from dataclasses import replace

    from rflo.paper import bellec2020

    cfg = replace(bellec2020.QUICK, iterations=2, batch=2, n_networks=1, rules=rules)
    data = bellec2020.sweep_spec(cfg)
    for grid in data["grid"]:
        grid["set"] = dict(TINY_TASK)
    data["backend"] = {"devices": 1}
    return data


@pytest.mark.slow  # the slow sweep-against-run test covers it too
def test_a_bellec_sweep_point_runs_through_the_sweep(tmp_path):
    pytest.importorskip("pyarrow")
    from rflo.paper.bellec2020 import bellec_network
    from rflo.sweep import Sweep, load_networks

    table = Sweep.from_dict(_tiny_bellec_sweep()).run(tmp_path / "s").to_pydict()
    assert table["trial"] == [1, 2] and table["network"] == ["bellec2020"] * 2
    assert table["cell"][0] == "alif" and table["units"][0] == 100 and table["tau"][0] == 20.0
    assert table["rate_target"][0] == 0.01 and table["rate_strength"][0] == 1.0
    assert '"w_out": 0.005' in table["optimizer_rate"][0]
    assert all(0 <= a <= 1 for a in table["accuracy"]) and np.all(np.isfinite(table["loss"]))
    (net,) = load_networks(tmp_path / "s").values()
    first = bellec_network(0)
    assert net.cell == first.cell and not np.array_equal(net.w_rec, first.w_rec)


@pytest.mark.slow
def test_a_bellec_sweep_trains_as_the_reproduction_does(tmp_path):
    """The sweep of a small configuration gives the losses and errors of
    ``rflo reproduce bellec2020``'s own training, bit for bit (about 10 s)."""
    pytest.importorskip("pyarrow")
    from dataclasses import replace

    from rflo.paper import bellec2020
    from rflo.sweep import Sweep

    cfg = replace(bellec2020.QUICK, iterations=3, batch=2, n_networks=1, delay=10)
    cfg = replace(cfg, rules=("eprop",))
    ran = bellec2020.run(cfg)
    data = {**bellec2020.sweep_spec(cfg), "backend": {"devices": 1}}
    table = Sweep.from_dict(data).run(tmp_path / "s").to_pydict()
    np.testing.assert_array_equal(table["loss"], ran["losses"]["eprop"][0])
    np.testing.assert_array_equal(1.0 - np.asarray(table["accuracy"]), ran["errors"]["eprop"][0])


def test_the_optimizer_help_says_how_to_freeze_a_parameter():
    """With an optimiser the rates only name what learns (docs/optimizers.md):
    the help must not promise that a rate of 0 freezes one."""
    from rflo.spec import spec_fields

    text = {f.name: f for f in spec_fields()}["optimizer"].metadata["help"]
    assert "a rate of 0 freezes" not in text and "--lr w_rec=1 w_out=1" in text
