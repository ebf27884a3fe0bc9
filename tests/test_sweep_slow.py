"""Sweeps under faults and on several devices (slow: real processes)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from rflo.sweep import Sweep, collect, load_networks, status  # noqa: E402
from rflo.sweep.spec import spec_from_dict, spec_toml  # noqa: E402

pytestmark = pytest.mark.slow

#: six chunks of four networks, each a second or so
SPEC = {
    "name": "faults",
    "trials": 3000,
    "record_every": 500,
    "max_networks": 4,
    "grid": {
        "rule": ["rflo", "bptt"],
        "units": 32,
        "lr": [0.01, 0.03, 0.1],
        "seed": [0, 1, 2, 3],
        "set": {"period": 40},
    },
    "backend": {"devices": 1},
}


def _rflo(*args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("XLA_FLAGS", None)
    return subprocess.Popen(
        [sys.executable, "-m", "rflo", *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "faults.toml"
    path.write_text(spec_toml(spec_from_dict(SPEC)))
    return path


@pytest.fixture(scope="module")
def reference(spec_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    proc = _rflo("sweep", "run", spec_file, "--out", out, "--devices", "1")
    text, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, text
    return out


def test_killed_sweep_resumes_to_the_same_table(spec_file, reference, tmp_path):
    out = tmp_path / "run"
    proc = _rflo("sweep", "run", spec_file, "--out", out, "--devices", "1")
    deadline = time.time() + 300
    while time.time() < deadline and len(list((out / "chunks").glob("*.parquet"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    st = status(out)
    assert 2 <= st["done"] < st["total"], st  # killed mid-run
    proc = _rflo("sweep", "run", out)
    text, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, text
    assert f"{st['done']} of {st['total']} chunks already done" in text
    assert collect(out).equals(collect(reference))


def test_cancelled_submitit_job_runs_again(spec_file, reference, tmp_path):
    pytest.importorskip("submitit")
    sweep = Sweep.from_dict({**SPEC, "backend": {"name": "submitit_local", "devices": 1}})
    # The job is killed as Slurm's scancel ends a job that outlives its grace
    # (SIGKILL): submitit's local cancel sends SIGINT, which the chunk takes as
    # a request to stop after its current segment, and a one-segment chunk
    # then finishes anyway, so whether that cancel landed depended on the
    # machine's load (it did not, five times over, in a full slow run).  A
    # chunk can still finish before the kill reaches it (its job starts on
    # submission): then try again in a new folder, a few times.
    for attempt in range(5):
        out = tmp_path / f"run{attempt}"
        jobs = sweep.run(out, wait=False)
        assert len(jobs) == 6
        process = getattr(jobs[-1], "_process", None)  # submitit's LocalJob's subprocess
        if process is None:
            pytest.skip("this submitit's local job has no process to kill")
        process.kill()
        for job in jobs[:-1]:
            job.wait()
        st = status(out)
        if st["done"] < st["total"]:
            break
    assert st["done"] < st["total"], "no cancel landed before its chunk finished, in 5 tries"
    table = sweep.run(out)  # only the cancelled chunk is submitted again
    assert status(out)["done"] == 6
    assert table.equals(collect(reference))


def test_two_host_devices_give_the_same_weights(spec_file, reference, tmp_path):
    out = tmp_path / "run"
    proc = _rflo("sweep", "run", spec_file, "--out", out, "--devices", "2")
    text, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, text
    assert "devices: 2" in text
    one, two = load_networks(reference), load_networks(out)
    assert sorted(one) == sorted(two) == list(range(24))
    for k in one:
        for name in ("w_in", "w_rec", "w_out"):
            np.testing.assert_array_equal(getattr(one[k], name), getattr(two[k], name))
    assert collect(out).drop_columns(["chunk"]).equals(collect(reference).drop_columns(["chunk"]))


def test_device_benchmark_row(tmp_path):
    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "b.json"
    env = {**os.environ}
    env.pop("XLA_FLAGS", None)
    run = subprocess.run(
        [
            sys.executable,
            str(root / "benchmarks" / "sweep_devices.py"),
            "--networks",
            "8",
            "--trials",
            "50",
            "--rounds",
            "1",
            "--repeats",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert "ratio 2 devices / 1 core" in run.stdout
    import json

    data = json.loads(out.read_text())
    assert set(data["best_network_trials_per_s"]) == {"1 core", "1 device", "2 devices"}
    assert data["ratio"] > 0


def test_a_sweep_runs_on_a_real_single_node_slurm(tmp_path):
    """Starts Slurm here (tests/slurm/start_slurm.sh: Debian's slurm-wlm and
    munge, installed if missing); skips, saying why, where that cannot be done."""
    pytest.importorskip("submitit")
    script = Path(__file__).resolve().parent / "slurm" / "start_slurm.sh"
    try:
        up = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"could not start a single-node Slurm here: {exc}")
    if up.returncode != 0:
        pytest.skip(
            "could not start a single-node Slurm here: "
            + (up.stderr.strip().splitlines() or ["no reason given"])[-1]
        )
    small = {
        "name": "slurm",
        "trials": 50,
        "record_every": 25,
        "max_networks": 2,
        "grid": {"rule": "rflo", "units": 8, "seed": [0, 1, 2, 3], "set": {"period": 40}},
    }
    local = Sweep.from_dict({**small, "backend": {"devices": 1}}).run(tmp_path / "local")
    on_slurm = Sweep.from_dict(
        {
            **small,
            "backend": {"name": "slurm", "devices": 1, "slurm": {"time": 10, "cpus_per_task": 1}},
        }
    )
    jobs = on_slurm.run(tmp_path / "slurm", wait=False)
    deadline = time.time() + 300  # a job that never starts must not hang the test run
    while time.time() < deadline and not all(job.done() for job in jobs):
        time.sleep(1)
    if not all(job.done() for job in jobs):
        queue = subprocess.run(["squeue"], capture_output=True, text=True).stdout
        for job in jobs:
            job.cancel()
        pytest.fail(f"the Slurm jobs did not finish within 300 s; squeue:\n{queue}")
    table = on_slurm.run(tmp_path / "slurm")  # nothing left to run: collects
    assert status(tmp_path / "slurm")["done"] == 2
    assert any(p.name.endswith("_log.out") for p in (tmp_path / "slurm" / "jobs").iterdir())
    assert table.equals(local)
