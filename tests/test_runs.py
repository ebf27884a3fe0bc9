"""Runs that cannot be mixed up or lost: divergence across segments, run
folders that belong to one run, exact checkpoints, hostile checkpoint files,
memory refused up front, signals, and clear API errors."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from test_cli import assert_user_error, run

import rflo
from rflo import checkpoint

SMALL = ["--units", 8, "--period", 20, "--quiet"]


# --------------------------------------------------------------------------
# 1. one divergence test for the whole run, CLI and API alike


def test_command_line_divergence_is_the_apis(tmp_path):
    """The command line trains in segments; its divergence test must still be
    the one of a single session: same trial, same best, same network kept."""
    lr = (0, 3.0, 3.0)
    proc = run(
        "train", "--units", 30, "--lr", *lr, "--trials", 200, "--out", tmp_path / "d", "--quiet"
    )
    assert proc.returncode == 3, proc.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        api = rflo.train(
            rflo.init_network(1, 30, 1, seed=0), rflo.periodic_task(), "rflo", trials=200, lr=lr
        )
    assert api.diverged is not None
    assert api.diverged in proc.stderr  # same trial, same best loss, same kept network
    assert proc.stderr.count("diverged at trial") == 1  # said once, not as a warning too
    saved = rflo.load_network(tmp_path / "d" / "rflo.npz")
    np.testing.assert_array_equal(saved.w_rec, api.network.w_rec)
    # the kept network is the last whose loss was within the limit
    ev = rflo.evaluate(saved, rflo.periodic_task()).loss
    assert ev <= 1e4 * np.min(api.loss[:-1])


# --------------------------------------------------------------------------
# 2. a results folder belongs to one run


def _terminal_sigint():
    """SIGINT as a terminal gives it (a background job inherits it ignored, and
    rflo, like any well-behaved program, stays deaf to an ignored signal)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(out, *extra, trials=1_000_000):
    args = ["train", "--trials", trials, "--out", out, *SMALL, *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "rflo"] + [str(a) for a in args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_terminal_sigint,
    )


def _wait_for(path, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_second_writer_is_refused_and_sigint_stops_with_a_checkpoint(tmp_path):
    """Two real processes on one --out: the second exits 2 while the first runs;
    SIGINT then stops the first cleanly (130, a checkpoint, how to resume)."""
    out = tmp_path / "shared"
    first = _start(out)
    try:
        _wait_for(out / "checkpoint" / "run.json", first)
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "rflo",
                "train",
                "--trials",
                "10",
                "--out",
                str(out),
                "--overwrite",
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert_user_error(second, "another rflo process", "is writing to")
        time.sleep(0.5)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 130, err
    assert "Traceback" not in err and "Resume with: rflo train --resume" in err
    prog = checkpoint.load_progress(out, "rflo")
    assert prog.done > 0
    assert not (out / "results.csv").exists()


@pytest.mark.slow  # 6 s of CLI runs; --overwrite and --resume have their own default tests
def test_overwrite_removes_the_earlier_run_and_resume_follows_the_new_one(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert run("train", "--trials", 30, "--out", out, "--overwrite", *SMALL).returncode == 0
    old_meta = json.loads((out / "metadata.json").read_text())
    # a diverging --overwrite run: nothing of the old run stays beside the new network
    div = run(
        "train",
        "--trials",
        300,
        "--units",
        10,
        "--lr",
        0,
        80,
        80,
        "--out",
        out,
        "--overwrite",
        "--quiet",
        "--period",
        30,
    )
    assert div.returncode == 3, div.stderr
    assert not (out / "results.csv").exists() and not (out / "metadata.json").exists()
    assert not (out / "loss.png").exists()
    assert rflo.load_network(out / "rflo.npz").n_rec == 10
    assert (out / "notes.txt").read_text() == "mine"  # not the run's: left alone
    assert_user_error(run("plot", out), "has no metadata.json")
    # --overwrite onto that run, then --resume: the new run's settings and checkpoint
    new = run(
        "train",
        "--trials",
        12,
        "--units",
        6,
        "--period",
        20,
        "--out",
        out,
        "--overwrite",
        "--quiet",
    )
    assert new.returncode == 0
    again = run("train", "--resume", out, "--quiet")
    assert again.returncode == 0, again.stderr
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["run_id"] != old_meta["run_id"] and meta["settings"]["units"] == 6
    assert len(checkpoint.load_progress(out, "rflo").loss) == 12


@pytest.mark.slow  # 3 s of CLI runs; rflo plot's other checks stay in the default run
def test_plot_refuses_a_folder_that_mixes_runs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert run("train", "--trials", 5, "--out", out, *SMALL).returncode == 0
    assert run("plot", a).returncode == 0
    (a / "rflo.npz").write_bytes((b / "rflo.npz").read_bytes())
    assert_user_error(run("plot", a), "mixes files of different runs")


# --------------------------------------------------------------------------
# 3. checkpoints at the trials asked for


def test_checkpoints_come_at_the_trials_asked_for(tmp_path, monkeypatch):
    saved = []
    real = checkpoint.save_progress

    def record(folder, rule, progress, run_id):
        saved.append(progress.done)
        return real(folder, rule, progress, run_id)

    monkeypatch.setattr(checkpoint, "save_progress", record)
    proc = run("train", "--trials", 100, "--checkpoint-every", 7, "--out", tmp_path / "c", *SMALL)
    assert proc.returncode == 0, proc.stderr
    assert saved == [0] + list(range(7, 100, 7)) + [100]


def test_segments_are_bounded_by_time():
    from rflo.cli import MAX_SEGMENT, SEGMENT_SECONDS, Segments

    plan = Segments(10**9, 0)
    assert plan.cap == MAX_SEGMENT
    sizes = []
    for _ in range(6):  # 1 ms per trial: grows 8x a segment up to about 2 s
        n = plan.next(0, 10**9)
        sizes.append(n)
        plan.observe(n, n * 1e-3)
    assert sizes == [1, 8, 64, 512, 2000, 2000]
    assert SEGMENT_SECONDS == 2.0
    slow = Segments(10**6, 0)
    slow.observe(1, 5.0)  # a trial longer than a segment: one trial at a time
    assert slow.next(1, 10**6) == 1
    cut = Segments(1000, 7)
    cut.size = 100
    assert [cut.next(d, 1000) for d in (0, 5, 994)] == [7, 2, 6]


# --------------------------------------------------------------------------
# 8, 9. what resume accepts


@pytest.fixture
def finished(tmp_path):
    out = tmp_path / "run"
    proc = run("train", "--trials", 20, "--checkpoint-every", 5, "--out", out, *SMALL)
    assert proc.returncode == 0, proc.stderr
    return out, checkpoint.load_settings(out)["run_id"]


def _progress(net, loss):
    loss = np.asarray(loss, dtype=np.float32)
    return checkpoint.Progress(net, loss, np.zeros_like(loss), 1.0)


def test_resume_refuses_checkpoints_that_do_not_fit(finished):
    out, run_id = finished
    ckpt = out / "checkpoint" / "rflo.npz"
    # a checkpoint of another size
    checkpoint.save_progress(out, "rflo", _progress(rflo.init_network(1, 4, 1), [0.3]), run_id)
    assert_user_error(run("train", "--resume", out, "--quiet"), "does not match", "n_rec=4")
    # a NaN loss curve
    checkpoint.save_progress(out, "rflo", _progress(rflo.init_network(1, 8, 1), [np.nan]), run_id)
    assert_user_error(run("train", "--resume", out, "--quiet"), "NaN or inf")
    # a curve of strings
    arrays = dict(np.load(ckpt))
    arrays["loss"] = np.array(["a"] * len(arrays["alignment"]))
    np.savez(ckpt, **arrays)
    assert_user_error(run("train", "--resume", out, "--quiet"), "'loss' must be a curve of floats")
    # a checkpoint of another run
    checkpoint.save_progress(out, "rflo", _progress(rflo.init_network(1, 8, 1), [0.3]), "other")
    assert_user_error(run("train", "--resume", out, "--quiet"), "belongs to run other")
    # a deleted checkpoint is not a restart from trial 0
    ckpt.unlink()
    assert_user_error(run("train", "--resume", out, "--quiet"), "is missing")


def test_resume_refuses_bad_settings_and_cleans_temporaries(finished):
    out, _ = finished
    settings = out / "checkpoint" / "run.json"
    good = settings.read_text()
    settings.write_text(good.replace('"trials": 20', '"trials": "abc"'))
    assert_user_error(
        run("train", "--resume", out, "--quiet"), "'trials' must be a positive integer"
    )
    settings.write_text(good)
    junk = [out / ".rflo.npz.x1.tmp", out / "checkpoint" / ".rflo.npz.x2.tmp"]
    for j in junk:
        j.write_bytes(b"half a file")
    proc = run("train", "--resume", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert not any(j.exists() for j in junk)


def test_atomic_write_flushes_file_and_folder(tmp_path, monkeypatch):
    from rflo import files

    synced = []
    real = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: synced.append(fd) or real(fd))
    rflo.save_network(tmp_path / "n.npz", rflo.init_network(1, 3, 1))
    assert len(synced) == 2  # the file before the rename, the folder after
    assert [p.name for p in tmp_path.iterdir()] == ["n.npz"]


# --------------------------------------------------------------------------
# 5. memory refused up front


def test_runs_that_cannot_fit_are_refused_before_anything_is_made(tmp_path, monkeypatch):
    huge = run("train", "--units", 1_000_000, "--out", tmp_path / "huge")
    assert_user_error(huge, "a network of 1000000 units needs about", "TiB", "available")
    assert not (tmp_path / "huge").exists()
    monkeypatch.setenv("RFLO_MEMORY_LIMIT", "1G")
    rtrl = run("train", "--rule", "rtrl", "--units", 500, "--out", tmp_path / "rtrl")
    assert_user_error(
        rtrl, "rule 'rtrl' (n_rec=500, 100 steps) needs about", "1.0 GiB is available"
    )
    assert not (tmp_path / "rtrl").exists()
    net = rflo.init_network(1, 500, 1)
    with pytest.raises(
        ValueError, match=r"training with rule 'rtrl' \(n_rec=500, 100 steps\) needs"
    ):
        rflo.train(net, rflo.periodic_task(), "rtrl", trials=1, online=True)
    from rflo.ensemble import init_ensemble, train_ensemble

    nets = init_ensemble(1, 200, 1, seeds=range(32))
    with pytest.raises(ValueError, match="32 networks"):
        train_ensemble(nets, rflo.periodic_task(), "rtrl", trials=1, online=True)
    monkeypatch.setenv("RFLO_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="RFLO_MEMORY_LIMIT must be a number of bytes"):
        rflo.init_network(1, 5, 1)


# --------------------------------------------------------------------------
# 10. API errors are clear ValueErrors


def test_out_of_range_integers_are_clear_errors():
    net, task = rflo.init_network(1, 5, 1), rflo.periodic_task(period=10)
    with pytest.raises(ValueError, match=r"seed must be <= 4294967295"):
        rflo.train(net, task, trials=1, seed=2**64)
    with pytest.raises(ValueError, match=r"seed must be <= 4294967295"):
        rflo.init_network(1, 5, 1, seed=2**32)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        rflo.init_network(1, 5, 1, seed=-1)
    with pytest.raises(ValueError, match=r"trials must be <= 2147483647"):
        rflo.train(net, task, trials=10**10)
    with pytest.raises(ValueError, match=r"start_trial \+ trials must be <= 2147483647"):
        rflo.train(net, task, trials=10, start_trial=2**31 - 5)
    from rflo.ensemble import train_ensemble

    with pytest.raises(ValueError, match="expected a stacked network"):
        train_ensemble(net, task, trials=1)
    with pytest.raises(ValueError, match="guard must be the GuardState"):
        rflo.train(net, task, trials=1, start_trial=3, guard=(1.0, net))
    with pytest.raises(ValueError, match="give its start_trial"):
        rflo.train(net, task, trials=1, guard=rflo.GuardState(1.0, net))
    assert_user_error(run("train", "--seed", 2**32), "a seed from 0 to 4294967295")
    assert_user_error(run("train", "--trials", 2**31), "up to 2147483647")
