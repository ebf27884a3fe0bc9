"""What a user waits for at the command line (issue #25's targets (a) and (b)).

Each command runs in a fresh process in a temporary folder, once to warm the
caches (the operating system's, JAX's persistent compilation cache, rflo's
kernels), then ``repeats`` more times; the best wall time counts:

* ``import``: ``python -c "import rflo"`` (the floor every command pays);
* ``train``: ``rflo train --trials 1``;
* ``compare``: ``rflo compare`` on its defaults;
* ``compare_1``: ``rflo compare --trials 1``: the same command without its
  training, so that ``compare - compare_1`` is the training's share and
  ``compare_1 - import`` the command's fixed cost beyond the import.

The children's CPU time (user + system) is recorded beside the wall time.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _rflo():
    script = Path(sys.executable).parent / "rflo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rflo"]


def commands(folder):
    out = Path(folder)
    return {
        "import": [sys.executable, "-c", "import rflo"],
        "train": _rflo()
        + ["train", "--trials", "1", "--out", str(out / "train"), "--overwrite", "--quiet"],
        "compare": _rflo() + ["compare", "--out", str(out / "compare"), "--overwrite", "--quiet"],
        "compare_1": _rflo()
        + ["compare", "--trials", "1", "--out", str(out / "compare_1"), "--overwrite", "--quiet"],
    }


def run_once(argv, cwd, timeout=300):
    """(wall seconds, children's CPU seconds, return code, stderr's last line)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "MPLBACKEND": os.environ.get("MPLBACKEND", "Agg")},
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    return wall, cpu, proc.returncode, last


def cli_rows(repeats=2, names=("import", "train", "compare", "compare_1"), log=print):
    """Rows of kind "cli": one per command, warm best of ``repeats``."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="rflo-cli-bench-") as folder:
        cmds = commands(folder)
        for name in names:
            argv = cmds[name]
            row = {
                "kind": "cli",
                "name": name,
                "command": " ".join(
                    "python"
                    if a == sys.executable
                    else Path(a).name
                    if a.endswith("/rflo")
                    else a.replace(folder, "TMP")
                    for a in argv
                ),
                "load_average": list(os.getloadavg()),
            }
            first = run_once(argv, folder)
            if first[2] != 0:
                row["failed"] = f"exit {first[2]}: {first[3]}"
                rows.append(row)
                log(f"{name:<10} failed: {row['failed']}")
                continue
            runs = [run_once(argv, folder) for _ in range(repeats)]
            best = min(runs)
            row.update(
                {
                    "first_s": first[0],
                    "wall_s": best[0],
                    "cpu_s": best[1],
                    "walls_s": [r[0] for r in runs],
                }
            )
            rows.append(row)
            log(
                f"{name:<10}{best[0]:>8.2f} s warm (cold-ish first {first[0]:.2f} s; CPU {best[1]:.2f} s)"
                f"   {row['command']}",
                flush=True,
            )
    return rows
