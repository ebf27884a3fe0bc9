"""End-to-end: the command line, in-process (``rflo.cli.main``) and, where it
matters (the console script itself, kill and resume), in a subprocess."""

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

import rflo

BIN = Path(sys.executable).parent / "rflo"


class Done(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def run(*args, cwd=None, env=None, script=False):
    """The command's exit status and output: through the installed console
    script in a subprocess (``script=True``), else ``rflo.cli.main`` in this
    process (same code, no interpreter start-up)."""
    argv = [str(a) for a in args]
    if script:
        return subprocess.run(
            [str(BIN)] + argv,
            capture_output=True,
            text=True,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            timeout=600,
        )
    from rflo.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_env = os.getcwd(), dict(os.environ)
    try:
        if cwd is not None:
            os.chdir(cwd)
        os.environ.update(env or {})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's own errors
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
    return Done(int(code or 0), out.getvalue(), err.getvalue())


def assert_png(path, min_px=200):
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    img = imread(path)
    assert img.shape[0] >= min_px and img.shape[1] >= min_px, img.shape
    assert img.std() > 0.01  # not a blank canvas


def assert_user_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def compare_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "res"
    proc = run(
        "compare",
        "--trials",
        40,
        "--units",
        12,
        "--period",
        30,
        "--rules",
        "bptt",
        "rflo",
        "rtrl",
        "--out",
        out,
        script=True,
    )
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_compare_writes_every_output(compare_run):
    out, proc = compare_run
    names = {p.name for p in out.iterdir()}
    assert {
        "results.csv",
        "metadata.json",
        "loss.png",
        "outputs.png",
        "alignment.png",
        "initial.npz",
        "bptt.npz",
        "rflo.npz",
        "rtrl.npz",
    } <= names
    with open(out / "results.csv") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    # the tidy table, with the sweep table's columns: a row per rule and trial
    from rflo.results import MEASURE_COLUMNS, SETTING_COLUMNS

    params = ["set.period", "set.amplitudes", "set.harmonics", "set.duration"]
    assert reader.fieldnames == [
        *SETTING_COLUMNS[:2],
        *params,
        *SETTING_COLUMNS[2:],
        *MEASURE_COLUMNS,
        "run_id",
    ]
    assert len(rows) == 3 * 40
    for i, rule in enumerate(("bptt", "rflo", "rtrl")):
        mine = [r for r in rows if r["rule"] == rule]
        assert [int(r["trial"]) for r in mine] == list(range(1, 41))
        assert {r["point"] for r in mine} == {str(i)}
        assert {(r["units"], r["set.period"], r["lr_rec"]) for r in mine} == {
            ("12", "30.0", "0.03" if rule == "rflo" else "0.3")
        }
        loss = np.array([float(r["loss"]) for r in mine])
        assert np.all(np.isfinite(loss)) and np.all(loss > 0)
        assert {float(r["final_loss"]) for r in mine} == {loss[-1]}
        align = np.array([float(r["alignment"]) for r in mine])
        assert np.all(np.abs(align) <= 1)
        net = rflo.load_network(out / f"{rule}.npz")
        assert net.n_rec == 12
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["settings"]["trials"] == 40 and meta["settings"]["period"] == 30
    # without --lr each rule gets its rates tuned on the default experiment, and says so
    assert meta["settings"]["lr"] is None
    assert meta["settings"]["rule_lr"] == {
        "bptt": [0, 0.3, 0.3],
        "rflo": [0, 0.03, 0.03],
        "rtrl": [0, 0.3, 0.3],
    }
    assert "lr_rec" in proc.stdout
    assert set(meta["seconds"]) == {"bptt", "rflo", "rtrl"}
    assert {"rflo", "jax", "numpy", "python"} <= set(meta["versions"])
    for png in ("loss.png", "outputs.png", "alignment.png"):
        assert_png(out / png)
    # the closing summary table
    assert "final loss" in proc.stdout and "rtrl" in proc.stdout


def test_plot_redraws_from_saved_results(compare_run):
    out, _ = compare_run
    (out / "loss.png").unlink()
    proc = run("plot", out)
    assert proc.returncode == 0, proc.stderr
    assert_png(out / "loss.png")


def test_train_save_and_eval(tmp_path):
    net_file = tmp_path / "trained.npz"
    proc = run(
        "train",
        "--rule",
        "rflo",
        "--online",
        "--trials",
        20,
        "--units",
        10,
        "--period",
        25,
        "--out",
        tmp_path / "t",
        "--save",
        net_file,
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # --quiet
    net = rflo.load_network(net_file)
    assert net.n_rec == 10
    again = run(
        "train",
        "--rule",
        "bptt",
        "--init",
        net_file,
        "--trials",
        5,
        "--period",
        25,
        "--out",
        tmp_path / "t2",
        "--quiet",
    )
    assert again.returncode == 0, again.stderr
    ev = run("eval", net_file, "--period", 25)
    assert ev.returncode == 0, ev.stderr
    assert "loss" in ev.stdout
    assert_png(tmp_path / "trained.eval.png")


@pytest.mark.slow  # a display option; the default run keeps the runs it draws over
def test_progress_bar_on_request(tmp_path):
    proc = run(
        "train",
        "--trials",
        50,
        "--units",
        8,
        "--period",
        20,
        "--out",
        tmp_path / "p",
        "--progress",
        env={"RFLO_PROGRESS_NO_DELAY": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "rflo" in proc.stderr and "trial/s" in proc.stderr and "loss" in proc.stderr
    quiet = run("train", "--trials", 50, "--units", 8, "--period", 20, "--out", tmp_path / "q")
    assert "trial/s" not in quiet.stderr  # stderr is not a terminal here


def test_user_errors_exit_2_without_traceback(tmp_path):
    assert_user_error(
        run("compare", "--rules", "bptt", "nope", "--out", tmp_path / "a"),
        "unknown learning rule 'nope'",
    )
    assert not (tmp_path / "a").exists()  # nothing written
    assert_user_error(run("compare", "--trials", "-3"), "positive integer")
    assert_user_error(run("compare", "--lr", "0", "-1", "0"), "learning rates must be")
    assert_user_error(run("compare", "--online", "--out", tmp_path / "b"), "cannot learn online")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    assert_user_error(run("train", "--init", bad, "--out", tmp_path / "c"), "not a readable .npz")
    assert_user_error(run("eval", tmp_path / "missing.npz"), "no network file")
    two_inputs = tmp_path / "two.npz"
    rflo.save_network(two_inputs, rflo.init_network(2, 6, 1))
    assert_user_error(run("train", "--init", two_inputs, "--out", tmp_path / "d"), "n_in=2")
    # an existing, non-empty folder is left alone without --overwrite
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert_user_error(run("compare", "--trials", 2, "--out", full), "--overwrite")
    assert sorted(p.name for p in full.iterdir()) == ["keep.txt"]
    ok = run(
        "compare",
        "--trials",
        2,
        "--units",
        5,
        "--period",
        10,
        "--out",
        full,
        "--overwrite",
        "--quiet",
    )
    assert ok.returncode == 0, ok.stderr
    assert (full / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_compare_defaults_reach_the_seeds_quality(tmp_path):
    """The notebook prints final losses 4.5e-4 (BPTT) and 5.2e-4 (RFLO)."""
    proc = run("compare", "--out", tmp_path / "seed", "--quiet")
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "seed" / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 10_000
    for rule in ("bptt", "rflo"):
        final = float([r for r in rows if r["rule"] == rule][-1]["loss"])
        assert final < 2e-3, (rule, final)


@pytest.mark.slow
def test_kill_and_resume_gives_the_uninterrupted_result(tmp_path):
    """Kill a real run mid-way; --resume ends with the same weights and curves
    (slow: tests/test_fault_injection.py does it 20 times over)."""
    import time

    from rflo import checkpoint

    common = [
        "train",
        "--rule",
        "rflo",
        "--online",
        "--trials",
        6000,
        "--units",
        16,
        "--period",
        40,
        "--checkpoint-every",
        60,
        "--quiet",
    ]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rflo"] + [str(a) for a in common] + ["--out", str(killed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            prog = checkpoint.load_progress(killed, "rflo")
        except ValueError:
            prog = None
        done = 0 if prog is None else prog.done
        if done >= 600:
            break
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert 600 <= done < 6000, f"could not catch the run mid-way (done={done})"
    assert not (killed / "results.csv").exists()

    resumed = run("train", "--resume", killed, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    full = run(*common, "--out", tmp_path / "full")
    assert full.returncode == 0, full.stderr
    assert _without_run_id(killed / "results.csv") == _without_run_id(
        tmp_path / "full" / "results.csv"
    )
    a = rflo.load_network(killed / "rflo.npz")
    b = rflo.load_network(tmp_path / "full" / "rflo.npz")
    for k in ("w_in", "w_rec", "w_out"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))


def _without_run_id(path):
    """The text of a results.csv without its run id column (ids differ between runs)."""
    lines = path.read_text().splitlines()
    assert lines[0].endswith(",run_id")
    return [line.rsplit(",", 1)[0] for line in lines]


def test_resume_errors(tmp_path):
    assert_user_error(run("train", "--resume", tmp_path), "not a run that can be resumed")
    ok = run(
        "train", "--trials", 4, "--units", 5, "--period", 10, "--out", tmp_path / "t", "--quiet"
    )
    assert ok.returncode == 0, ok.stderr
    assert_user_error(run("compare", "--resume", tmp_path / "t"), "is a 'train' run")


def test_divergence_exits_3_and_keeps_the_last_finite_network(tmp_path):
    proc = run(
        "train",
        "--trials",
        400,
        "--units",
        10,
        "--period",
        30,
        "--lr",
        0,
        80,
        80,
        "--out",
        tmp_path / "d",
        "--quiet",
    )
    assert proc.returncode == 3, proc.stderr
    assert "diverged at trial" in proc.stderr and "Traceback" not in proc.stderr
    net = rflo.load_network(tmp_path / "d" / "rflo.npz")  # checked: finite
    assert net.n_rec == 10


def test_resume_refuses_conflicting_flags_but_extends_trials(tmp_path):
    out = tmp_path / "r"
    base = ["--units", 8, "--period", 20, "--quiet"]
    assert run("train", "--trials", 30, "--out", out, *base).returncode == 0
    assert_user_error(
        run("train", "--resume", out, "--rule", "bptt"),
        "--rule bptt conflicts with the run's 'rflo'",
    )
    assert_user_error(run("train", "--resume", out, "--units", 9), "--units 9 conflicts")
    assert_user_error(run("train", "--resume", out, "--trials", 10), "can only extend a run")
    assert_user_error(run("train", "--resume", out, "--out", tmp_path / "x"), "drop --out")
    # the same values are no conflict; more trials extend the run, exactly
    ok = run("train", "--resume", out, "--tri", 50, "--units", 8, "--quiet")  # abbreviated too
    assert ok.returncode == 0, ok.stderr
    straight = run("train", "--trials", 50, "--out", tmp_path / "s", *base)
    assert straight.returncode == 0
    assert _without_run_id(out / "results.csv") == _without_run_id(tmp_path / "s" / "results.csv")
    assert json.loads((out / "metadata.json").read_text())["settings"]["trials"] == 50


def test_tau_below_one_is_refused_with_the_reason(tmp_path):
    assert_user_error(
        run("train", "--tau", 0.5, "--out", tmp_path / "t"), "time constant >= 1", "overshoots"
    )
    assert not (tmp_path / "t").exists()
    with pytest.raises(ValueError, match=r"tau must be >= 1 timesteps for the leaky_tanh cell"):
        rflo.init_network(1, 5, 1, tau=0.5)
    assert_user_error(run("train", "--rule", "bptt", "--online"), "use --rule rflo")


def test_without_a_terminal_progress_is_a_line_now_and_then_and_a_log(tmp_path):
    out = tmp_path / "p"
    proc = run(
        "train",
        "--trials",
        200,
        "--units",
        8,
        "--period",
        20,
        "--out",
        out,
        env={"RFLO_PROGRESS_EVERY": "0"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("rflo: ")]
    assert lines and "/200 trials (" in lines[-1] and "trials/s, ETA" in lines[-1]
    log = (out / "run.log").read_text()
    assert "run " in log and "trials/s" in log and "rflo: done, 200 trials" in log


def test_eval_uses_the_task_the_network_was_trained_on(tmp_path):
    net_file = tmp_path / "p50.npz"
    proc = run(
        "train",
        "--period",
        50,
        "--trials",
        30,
        "--units",
        8,
        "--out",
        tmp_path / "t",
        "--save",
        net_file,
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    from rflo.io import network_info

    info = network_info(net_file)
    assert info["task"]["params"]["period"] == 50 and info["rule"] == "rflo"
    net = rflo.load_network(net_file)
    own = rflo.evaluate(net, rflo.periodic_task(period=50)).loss
    other = rflo.evaluate(net, rflo.periodic_task(period=100)).loss
    ev = run("eval", net_file)
    assert ev.returncode == 0, ev.stderr
    assert "period 50" in ev.stdout and f"loss {own:.6g}" in ev.stdout
    told = run("eval", net_file, "--period", 100, "--overwrite")
    assert f"loss {other:.6g}" in told.stdout


def test_train_takes_any_task_cell_loss_and_optimizer_and_repeats_from_its_config(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    flags = [
        "--task",
        "flip_flop",
        "--set",
        "n_bits=1",
        "pulse_width=2",
        "--units",
        12,
        "--batch",
        2,
        "--optimizer",
        "adam",
        "--optimizer-rate",
        0.01,
        "--lr",
        0,
        1,
        1,
        "--derivative",
        "exact",
        "--checkpoint-every",
        10,
        "--quiet",
    ]
    proc = run("train", "--trials", 30, "--out", a, *flags)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((a / "metadata.json").read_text())
    s = meta["settings"]
    assert s["task"] == "flip_flop" and s["optimizer"] == "adam" and s["batch"] == 2
    assert s["task_record"]["params"]["n_bits"] == 1 and s["derivative"] == "exact"
    assert rflo.load_network(a / "rflo.npz").cell.derivative == "exact"
    # the run's config.toml repeats it; a flag overrides the file
    again = run("train", "--config", a / "config.toml", "--out", b, "--trials", 50, "--quiet")
    assert again.returncode == 0, again.stderr
    # extending run a by --resume (the optimiser's state comes from the checkpoint)
    # gives the same 50 trials as run b in one go
    more = run("train", "--resume", a, "--trials", 50, "--quiet")
    assert more.returncode == 0, more.stderr
    assert _without_run_id(a / "results.csv") == _without_run_id(b / "results.csv")
    np.testing.assert_array_equal(
        rflo.load_network(a / "rflo.npz").w_rec, rflo.load_network(b / "rflo.npz").w_rec
    )


@pytest.mark.slow  # --cell is covered by test_train_takes_any_task_cell_loss_and_optimizer_and_repeats_from_its_config
def test_compare_takes_a_cell_by_name(tmp_path):
    c = tmp_path / "c"
    other = run(
        "compare",
        "--rules",
        "bptt",
        "--cell",
        "leaky_tau",
        "--loss",
        "squared_error",
        "--task",
        "reach",
        "--trials",
        3,
        "--units",
        6,
        "--out",
        c,
        "--quiet",
    )
    assert other.returncode == 0, other.stderr
    assert rflo.load_network(c / "bptt.npz").cell.name == "leaky_tau"


def test_bad_run_settings_are_one_line_errors(tmp_path):
    out = tmp_path / "x"
    assert_user_error(run("train", "--task", "nope", "--out", out), "unknown task 'nope'")
    assert_user_error(run("train", "--set", "n_bits", "--out", out), "KEY=VALUE")
    assert_user_error(
        run("train", "--task", "flip_flop", "--set", "colour=2", "--out", out),
        "bad parameters for task 'flip_flop'",
    )
    assert_user_error(run("train", "--optimizer", "adamm", "--out", out), "did you mean adam")
    assert_user_error(run("train", "--optimizer", "adam", "--out", out), "--optimizer-rate")
    assert_user_error(
        run("train", "--cell", "lif", "--derivative", "exact", "--out", out),
        "applies to the leaky_tanh cell",
    )
    assert_user_error(
        run("train", "--task", "flip_flop", "--period", 50, "--out", out),
        "--period applies to the periodic task",
    )
    assert_user_error(run("train", "--loss", "hinge", "--out", out), "hinge")
    assert_user_error(
        run("train", "--loss", "cross_entropy", "--out", out), "needs at least 2 outputs"
    )
    cfg = tmp_path / "c.toml"
    cfg.write_text("unitz = 5\n")
    assert_user_error(run("train", "--config", cfg, "--out", out), "did you mean 'units'")
    cfg.write_text("units = 'many'\n")
    assert_user_error(
        run("train", "--config", cfg, "--out", out), "'units' must be a positive integer"
    )
    assert not out.exists()


def test_one_parser_suggests_close_matches_and_completes(tmp_path):
    assert_user_error(run("train", "--trails", 5), "--trails (did you mean --trials?)")
    assert_user_error(run("trian"), "did you mean 'train'?")
    assert_user_error(run("gradients", "--unitz", 3), "did you mean --units?")
    assert_user_error(run("task"), "required: {list,show}")
    # the same spellings everywhere: --units, --rules A B, --set KEY=VALUE ...
    from rflo.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices
    for name in ("train", "compare", "gradients"):
        assert "--units" in sub[name]._option_string_actions
    assert sub["gradients"]._option_string_actions["--rules"].nargs == "+"
    listed = run("task", "list")
    assert listed.returncode == 0 and "``" not in listed.stdout and ":func:" not in listed.stdout
    script = run("completion", "bash")
    assert (
        script.returncode == 0
        and "--optimizer-rate" in script.stdout
        and "figure2" in script.stdout
    )


@pytest.mark.slow  # 5 s; ensembles (test_ensemble.py) and resuming (test_kill_and_resume_...) have default tests
def test_seeds_train_an_ensemble_that_resumes_exactly(tmp_path):
    """--seeds: one network per seed in one compiled call; its K-network
    checkpoints extend a run to exactly the run made at once; the networks are
    train_ensemble's; results.csv has a row per network and trial."""
    from rflo.ensemble import init_ensemble, train_ensemble

    common = ("--rule", "rflo", "--units", 8, "--period", 30, "--quiet", "--seeds", 3, 5)
    whole = run("train", *common, "--trials", 24, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    part = run("train", *common, "--trials", 10, "--checkpoint-every", 4, "--out", tmp_path / "p")
    assert part.returncode == 0, part.stderr
    more = run("train", "--resume", tmp_path / "p", "--trials", 24)
    assert more.returncode == 0, more.stderr
    task = rflo.periodic_task(period=30)
    direct = train_ensemble(
        init_ensemble(task.n_in, 8, task.n_out, seeds=[3, 5]), task, "rflo", trials=24, seeds=[3, 5]
    )
    for k, s in enumerate((3, 5)):
        a = rflo.load_network(tmp_path / "whole" / f"rflo.seed{s}.npz")
        b = rflo.load_network(tmp_path / "p" / f"rflo.seed{s}.npz")
        np.testing.assert_array_equal(a.w_rec, b.w_rec)
        np.testing.assert_allclose(a.w_rec, direct.networks.w_rec[k], rtol=1e-5, atol=1e-7)
        assert rflo.io.network_info(tmp_path / "whole" / f"rflo.seed{s}.npz")["seed"] == s
    assert _without_run_id(tmp_path / "whole" / "results.csv") == _without_run_id(
        tmp_path / "p" / "results.csv"
    )
    with open(tmp_path / "whole" / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 24 and [r["seed"] for r in rows[::24]] == ["3", "5"]
    assert {r["point"] for r in rows[:24]} == {"0"} and {r["point"] for r in rows[24:]} == {"1"}
    assert run("plot", tmp_path / "whole").returncode == 0


def test_seeds_refuse_what_only_fits_one_network(tmp_path):
    base = ("train", "--trials", 2, "--units", 4, "--out", tmp_path / "x")
    assert_user_error(run(*base, "--seeds", 1, 2, "--seed", 3), "not both")
    assert_user_error(run(*base, "--seeds", 1, 1), "lists a seed twice")
    assert_user_error(run(*base, "--seeds", 1, 2, "--save", tmp_path / "n.npz"), "drop --save")
    assert not (tmp_path / "x").exists()
