"""Sweep throughput on one device against several (every core through JAX host devices).

    python benchmarks/sweep_devices.py [--devices 2] [--networks 64] [--trials 200] [--rounds 3]

Each measurement is a fresh process that splits one chunk of ``--networks``
networks (RFLO offline, n_rec 50, the periodic task, float32) over N host
devices, compiles it, then trains it ``--repeats`` times; the best repeat gives
network-trials per second.  Three setups alternate (``--rounds`` each), so
the ratios hold on a noisy machine: one device pinned to one core (``taskset``:
one core's throughput), one device free to use every core (XLA's own threads),
and N devices.  Prints a table and
writes ``benchmarks/sweep_devices.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

WORKER = r"""
import json, sys, time
import jax
n_dev, networks, trials, repeats = map(int, sys.argv[1:5])
if n_dev > 1:
    jax.config.update("jax_num_cpu_devices", n_dev)
from rflo.sweep import Sweep
from rflo.sweep.chunk import train_chunk
sweep = Sweep.from_dict({"trials": trials, "max_networks": networks,
                         "grid": {"rule": "rflo", "units": 50, "seed": list(range(networks))}})
chunk = sweep.plan()[0]
t0 = time.perf_counter(); train_chunk(chunk, sweep.spec, n_dev); first = time.perf_counter() - t0
best = min(train_chunk(chunk, sweep.spec, n_dev)[2] for _ in range(repeats))
print(json.dumps({"devices": n_dev, "first_s": first, "best_s": best,
                  "network_trials_per_s": networks * trials / best}))
"""


def measure(n_dev, networks, trials, repeats, cores=None):
    """One fresh process with ``n_dev`` devices (on the cores listed, via taskset)."""
    env = {**os.environ}
    env.pop("XLA_FLAGS", None)
    pin = ["taskset", "-c", ",".join(map(str, cores))] if cores is not None else []
    out = subprocess.run(pin + [sys.executable, "-c", WORKER, str(n_dev), str(networks),
                                str(trials), str(repeats)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    sys.path.insert(0, str(HERE))
    from run import cpu_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=2)
    p.add_argument("--networks", type=int, default=64)
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=HERE / "sweep_devices.json")
    args = p.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    first = sorted(os.sched_getaffinity(0))[0]
    # "1 core": one device in a process pinned to one core; "1 device": one device
    # free to use every core (XLA's own threads); then N devices on every core
    setups = {"1 core": (1, [first]), "1 device": (1, None),
              f"{args.devices} devices": (args.devices, None)}
    rows = {name: [] for name in setups}
    for _ in range(args.rounds):
        for name, (n, pin) in setups.items():
            rows[name].append(measure(n, args.networks, args.trials, args.repeats, pin))
    best = {n: max(r["network_trials_per_s"] for r in rs) for n, rs in rows.items()}
    many = f"{args.devices} devices"
    ratio, ratio_device = best[many] / best["1 core"], best[many] / best["1 device"]
    print(f"processor: {cpu_model()} ({cores} cores available)")
    print(f"one chunk of {args.networks} networks (rflo offline, n_rec 50, periodic task), "
          f"{args.trials} trials, best of {args.rounds} processes x {args.repeats} repeats")
    for n in rows:
        print(f"  {n:>10}: {best[n]:9.0f} network-trials/s")
    print(f"  ratio {many} / 1 core: {ratio:.2f}x   ({many} / 1 unpinned device: "
          f"{ratio_device:.2f}x)")
    args.out.write_text(json.dumps({
        "processor": cpu_model(), "cores": cores, "networks": args.networks,
        "trials": args.trials, "measured": time.strftime("%Y-%m-%d"),
        "best_network_trials_per_s": best, "ratio": ratio, "ratio_to_one_device": ratio_device,
        "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
