"""rflo on a GPU, and the GPU benchmark (benchmarks/gpu.py) kept runnable.

The ``needs_gpu`` tests run only where ``jax.devices()[0]`` is a GPU (install
``jax[cuda12]`` there): the library's XLA paths on the GPU equal the CPU's
(float32, 2e-5, matrix products at full float32 precision: a GPU's default may
use TF32), and a small ensemble trains.  Without a GPU they are skipped, and
the script's own checks run instead: it refuses in one line without
``--allow-cpu`` (default run, about a second), and its smoke grid runs on the
CPU (slow run, a few seconds).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import rflo
from rflo.ensemble import init_ensemble, train_ensemble

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.py"

on_gpu = jax.devices()[0].platform == "gpu"
needs_gpu = pytest.mark.skipif(not on_gpu, reason="no GPU (jax.devices()[0] is not a GPU)")

TOL = 2e-5


def _train_on(device, rule, online, cell="leaky_tanh", route="auto"):
    net = rflo.init_network(1, 20, 1, seed=0, cell=cell)
    task = rflo.periodic_task(duration=50)
    with jax.default_device(device), jax.default_matmul_precision("highest"):
        res = rflo.train(net, task, rule, trials=5, online=online, dtype="float32", route=route)
    return res


@needs_gpu
@pytest.mark.parametrize(
    "rule,online,cell,route",
    [
        ("rflo", False, "leaky_tanh", "auto"),
        ("rflo", True, "leaky_tanh", "auto"),
        ("bptt", False, "leaky_tanh", "auto"),
        ("rflo", False, "leaky_tanh", "generic"),
        (
            "eprop",
            True,
            "leaky_tau",
            "auto",
        ),  # the generic path (a spiking cell could flip a spike)
    ],
)
def test_gpu_equals_cpu(rule, online, cell, route):
    gpu = _train_on(jax.devices("gpu")[0], rule, online, cell, route)
    cpu = _train_on(jax.devices("cpu")[0], rule, online, cell, route)
    np.testing.assert_allclose(gpu.loss, cpu.loss, rtol=TOL, atol=TOL)
    for name in ("w_rec", "w_out"):
        a, b = np.asarray(getattr(gpu.network, name)), np.asarray(getattr(cpu.network, name))
        np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL * np.abs(b).max())


@needs_gpu
def test_gpu_unrolls_its_time_loop_by_default_and_that_changes_nothing_but_speed():
    from rflo.session_checks import GPU_UNROLL, default_unroll

    assert default_unroll() == GPU_UNROLL
    net = rflo.init_network(1, 20, 1, seed=0)
    task = rflo.periodic_task(duration=50)
    with jax.default_matmul_precision("highest"):
        a = rflo.train(net, task, "bptt", trials=5, dtype="float32")
        b = rflo.train(net, task, "bptt", trials=5, dtype="float32", unroll=1)
    np.testing.assert_allclose(a.loss, b.loss, rtol=TOL, atol=TOL)


@needs_gpu
def test_tiny_ensemble_trains_on_gpu():
    nets = init_ensemble(1, 20, 1, seeds=range(4))
    with jax.default_device(jax.devices("gpu")[0]):
        res = train_ensemble(nets, rflo.periodic_task(), "rflo", trials=300)
    loss = np.asarray(res.loss)
    assert loss.shape == (4, 300) and np.isfinite(loss).all()
    assert (loss[:, -20:].mean(axis=1) < loss[:, :20].mean(axis=1)).all()


def _script(*args, env=None):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow  # a subprocess that imports JAX
@pytest.mark.skipif(on_gpu, reason="a GPU is present")
def test_script_without_gpu_says_so_in_one_line():
    proc = _script(env={"JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 2
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("no GPU present") and "jax[cuda12]" in lines[0]


def test_case_order_and_table_without_jax():
    sys.path.insert(0, str(SCRIPT.parent))
    import gpu

    order = gpu.case_order([1, 8, 64], [50, 100, 1000])
    assert order[:3] == [(50, 1), (50, 8), (50, 64)] and order[3:5] == [(100, 1), (1000, 1)]
    assert order[-1] == (1000, 64) and len(set(order)) == 9
    report = {
        "device": {
            "device_kind": "NVIDIA H200",
            "platform": "gpu",
            "jax": "x",
            "memory_gib": 139.0,
        },
        "settings": {"ks": [1, 8], "sizes": [50], "steps": 100, "precision": "highest"},
        "date_utc": "now",
        "wall_s": 1.0,
        "command": "gpu.py",
        "cpu_processor": "a CPU",
        "cpu_source": "results.json",
        "cpu": {("rflo", "offline", 50, 1, 100): 5e-5},
        "results": [
            {
                "rule": "rflo",
                "mode": "offline",
                "n_rec": 50,
                "K": 1,
                "seconds_per_network_trial": 1e-3,
                "network_trials_per_s": 1e3,
            },
            {
                "rule": "rflo",
                "mode": "offline",
                "n_rec": 50,
                "K": 8,
                "skipped": "time guard: 3 s left",
            },
        ],
    }
    md = gpu.markdown(report)
    assert (
        "**NVIDIA H200**" in md
        and "| rflo | offline | 50 | 1.00 ms | time guard | 1,000 | 50.0 us | 20,000 |" in md
    )


@pytest.mark.slow
def test_script_smoke_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    proc = _script("--allow-cpu", "--smoke", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    timed = [r for r in report["results"] if "seconds_per_network_trial" in r]
    assert len(timed) == 6 and all(r["seconds_per_network_trial"] > 0 for r in timed)
    assert report["device"]["device_kind"] == jax.devices()[0].device_kind
    assert "| rflo | online | 8 |" in out.with_suffix(".md").read_text()


def test_render_fills_skipped_cells_from_a_later_run(tmp_path):
    """``--render A B``: B's timed cells fill A's skipped ones, marked and named;
    A's own figures stand; runs on another device are refused."""
    sys.path.insert(0, str(SCRIPT.parent))
    import gpu

    def report(command, rows, kind="NVIDIA H200"):
        return {
            "command": command,
            "date_utc": "today",
            "wall_s": 1.0,
            "device": {"device_kind": kind, "platform": "gpu", "jax": "x", "memory_gib": 1.0},
            "settings": {"ks": [1, 8], "sizes": [50], "steps": 100, "precision": "highest"},
            "cpu_processor": None,
            "cpu_source": None,
            "cpu": [],
            "results": [dict(rule="rflo", mode="offline", n_rec=50, **r) for r in rows],
        }

    timed = {"seconds_per_network_trial": 2e-3, "network_trials_per_s": 500.0}
    first = report("gpu.py A", [dict(K=1, **timed), dict(K=8, skipped="time guard: 1 s left")])
    later = report(
        "gpu.py B",
        [
            dict(K=1, seconds_per_network_trial=9.0, network_trials_per_s=0.1),
            dict(K=8, seconds_per_network_trial=5e-4, network_trials_per_s=16000.0),
        ],
    )
    a, b = tmp_path / "gpu-a.json", tmp_path / "gpu-b.json"
    a.write_text(json.dumps(first))
    b.write_text(json.dumps(later))
    assert gpu.main(["--render", str(a), str(b)]) == 0
    md = a.with_suffix(".md").read_text()
    assert "| rflo | offline | 50 | 2.00 ms | 500.0 us* | 16,000 |" in md
    assert (
        "*: from a later run on the same device, today UTC, as `python benchmarks/gpu.py B`" in md
    )
    b.write_text(json.dumps(report("gpu.py C", [], kind="NVIDIA A100")))
    with pytest.raises(SystemExit, match="differ in device"):
        gpu.main(["--render", str(a), str(b)])


def test_stored_gpu_table_is_in_the_readme():
    """The stored GPU run (benchmarks/gpu-*.md) gives the README its GPU line,
    and the README carries it (``python benchmarks/make_table.py`` was run)."""
    sys.path.insert(0, str(SCRIPT.parent))
    import gpu_table

    if not sorted(SCRIPT.parent.glob("gpu-*.md")):
        pytest.skip("no GPU run is stored")
    lines = gpu_table.gpu_readme_lines()
    assert lines and lines[0].startswith("On a GPU (NVIDIA H200")
    assert lines[0] in (ROOT / "README.md").read_text()


def test_stored_gpu_table_is_rendered_from_its_runs(tmp_path):
    """benchmarks/gpu-h200.md is what ``gpu.py --render`` makes of the stored runs."""
    import shutil

    sys.path.insert(0, str(SCRIPT.parent))
    import gpu

    runs = [SCRIPT.parent / "gpu-h200.json", SCRIPT.parent / "gpu-h200-large.json"]
    if not all(p.exists() for p in runs):
        pytest.skip("no GPU run is stored")
    copies = [Path(shutil.copy(p, tmp_path)) for p in runs]
    assert gpu.main(["--render", *map(str, copies)]) == 0
    assert copies[0].with_suffix(".md").read_text() == runs[0].with_suffix(".md").read_text()
