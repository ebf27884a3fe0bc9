"""The kernels' worker threads (``src/rflo/kernels/workers.h``) under
ThreadSanitizer: calls from several threads at once, with changing thread
counts, give every item once and race on nothing.  (A worker that joins calls
it was not asked to, a race no Python-level test catches reliably, makes
ThreadSanitizer report.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rflo import kernels

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_workers_race_on_nothing_under_thread_sanitizer(tmp_path):
    compiler = kernels._compiler()
    if compiler is None:
        pytest.skip("no C++ compiler")
    program = tmp_path / "workers_check"
    built = subprocess.run(
        [
            compiler,
            "-O1",
            "-g",
            "-std=c++17",
            "-pthread",
            "-fsanitize=thread",
            f"-I{kernels._HERE}",
            str(HERE / "kernel_workers_check.cc"),
            "-o",
            str(program),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if built.returncode != 0 and any(w in built.stderr for w in ("sanitize", "tsan")):
        pytest.skip(f"{compiler} cannot build with ThreadSanitizer: {built.stderr[-200:]}")
    assert built.returncode == 0, built.stderr
    done = subprocess.run([str(program)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "wrong: 0" in done.stdout
