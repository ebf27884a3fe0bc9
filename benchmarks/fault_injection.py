"""Fault injection: kill `rflo train` at random moments, resume, compare.

    python benchmarks/fault_injection.py [--kills 20] [--seed 0] [--out DIR]

Trains a reference run without interruption, then the same run again, killed
with SIGKILL, SIGTERM or SIGINT (drawn at random, SIGKILL half the time) at
a random moment between start-up and 60 % of an uninterrupted run, resumed
with ``--resume``, killed again, and so on until it finishes; as many runs as
it takes to deliver ``--kills`` kills.  The run checkpoints every 10 trials;
half the SIGKILLs wait for a checkpoint write to be under way (its temporary
file to appear) and land during it (counted when the temporary file is left
behind).  Checks, for every run: the final ``results.csv`` (less
its run id) and network equal the reference bit for bit, and no temporary file
is left.  Prints a JSON tally; exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ARGS = [
    "train",
    "--rule",
    "rflo",
    "--online",
    "--trials",
    "20000",
    "--units",
    "16",
    "--period",
    "40",
    "--checkpoint-every",
    "10",
    "--quiet",
]
SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)
WEIGHTS = (2, 1, 1)  # SIGKILL most often: it is the one that can land mid-write


def default_signals():
    """In the child: SIGINT as in a terminal (a background shell job inherits
    it ignored, and rflo stays deaf to an ignored signal, as nohup asks)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def rflo(*args):
    return [sys.executable, "-m", "rflo", *map(str, args)]


def curves(folder):
    """results.csv without its run id column."""
    return [line.rsplit(",", 1)[0] for line in (folder / "results.csv").read_text().splitlines()]


def weights(folder):
    with np.load(folder / "rflo.npz") as data:
        return {k: data[k] for k in ("w_in", "w_rec", "w_out")}


def temporaries(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*.tmp*"))


def wait_for_a_write(folder, proc, timeout=5.0):
    """Return as soon as a checkpoint write is under way (its temporary file
    exists), or after ``timeout`` seconds."""
    ckpt = folder / "checkpoint"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if any(n.startswith(".") and ".tmp" in n for n in os.listdir(ckpt)):
                return
        except FileNotFoundError:
            pass
        time.sleep(0.0002)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--kills", type=int, default=20, help="kills to deliver (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill times and signals")
    p.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    work = args.out or Path(tempfile.mkdtemp(prefix="rflo-faults-"))
    work.mkdir(parents=True, exist_ok=True)

    ref = work / "reference"
    shutil.rmtree(ref, ignore_errors=True)
    t0 = time.monotonic()
    subprocess.run(rflo(*ARGS, "--out", ref), check=True, preexec_fn=default_signals)
    full_seconds = time.monotonic() - t0
    ref_curves, ref_weights = curves(ref), weights(ref)

    tally = collections.Counter()
    codes = collections.Counter()
    failures = []
    runs = 0
    while tally["kills"] < args.kills:
        runs += 1
        out = work / f"run{runs}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = rflo(*ARGS, "--out", out)
        while True:
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=default_signals,
            )
            if tally["kills"] < args.kills:
                # from start-up to well into training, so that most attempts are killed
                time.sleep(rng.uniform(0.2, 0.6 * full_seconds))
                sig = rng.choices(SIGNALS, WEIGHTS)[0]
                if sig == signal.SIGKILL and rng.random() < 0.5:
                    tally["aimed_at_a_write"] += 1
                    wait_for_a_write(out, proc)
                if proc.poll() is None:
                    proc.send_signal(sig)
                    tally["kills"] += 1
                    tally[signal.Signals(sig).name] += 1
            _, err = proc.communicate()
            codes[proc.returncode] += 1
            if "Traceback" in err:
                tally["tracebacks"] += 1
                if "KeyboardInterrupt" not in err:
                    failures.append(f"run {runs}: traceback\n{err[-2000:]}")
            if proc.returncode == 0:
                break
            if temporaries(out):
                tally["killed_mid_write"] += 1
            if (out / "checkpoint" / "run.json").exists():
                cmd = rflo("train", "--resume", out, "--quiet")
            else:  # killed before the run existed: start it again
                tally["restarted_before_start"] += 1
                cmd = rflo(*ARGS, "--out", out, "--overwrite")
        same = curves(out) == ref_curves and all(
            np.array_equal(a, ref_weights[k]) for k, a in weights(out).items()
        )
        left = temporaries(out)
        tally["runs_identical" if same else "runs_different"] += 1
        if not same:
            failures.append(f"run {runs}: results differ from the uninterrupted run")
        if left:
            failures.append(f"run {runs}: temporary files left: {left}")
    report = dict(
        kills=tally["kills"],
        runs=runs,
        identical=tally["runs_identical"],
        different=tally["runs_different"],
        signals={s.name: tally[s.name] for s in SIGNALS},
        aimed_at_a_write=tally["aimed_at_a_write"],
        killed_mid_write=tally["killed_mid_write"],
        restarted_before_start=tally["restarted_before_start"],
        exit_codes={str(k): v for k, v in sorted(codes.items())},
        tracebacks_during_startup=tally["tracebacks"],
        uninterrupted_seconds=round(full_seconds, 1),
        failures=failures,
    )
    print(json.dumps(report, indent=2))
    if args.out is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
