"""Sweep throughput on one device against several (every core through JAX host devices).

    python benchmarks/sweep_devices.py [--devices 2] [--networks 64] [--trials 200] [--rounds 3]

Each measurement is a fresh process that splits one chunk of ``--networks``
networks (RFLO offline, n_rec 50, the periodic task, float32) over N host
devices, compiles it, then trains it ``--repeats`` times; the best repeat gives
network-trials per second.  Processes with 1 and N devices alternate
(``--rounds`` each), so the ratio holds on a noisy machine.  Prints a table and
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


def measure(n_dev, networks, trials, repeats):
    env = {**os.environ}
    env.pop("XLA_FLAGS", None)
    out = subprocess.run([sys.executable, "-c", WORKER, str(n_dev), str(networks), str(trials),
                          str(repeats)], env=env, capture_output=True, text=True, check=True)
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
    rows = {1: [], args.devices: []}
    for _ in range(args.rounds):
        for n in rows:
            rows[n].append(measure(n, args.networks, args.trials, args.repeats))
    best = {n: max(r["network_trials_per_s"] for r in rs) for n, rs in rows.items()}
    ratio = best[args.devices] / best[1]
    cores = len(os.sched_getaffinity(0))
    print(f"processor: {cpu_model()} ({cores} cores available)")
    print(f"one chunk of {args.networks} networks (rflo offline, n_rec 50, periodic task), "
          f"{args.trials} trials, best of {args.rounds} processes x {args.repeats} repeats")
    for n in rows:
        print(f"  {n} device(s): {best[n]:9.0f} network-trials/s")
    print(f"  ratio {args.devices} devices / 1: {ratio:.2f}x")
    args.out.write_text(json.dumps({
        "processor": cpu_model(), "cores": cores, "networks": args.networks,
        "trials": args.trials, "measured": time.strftime("%Y-%m-%d"),
        "best_network_trials_per_s": {str(n): v for n, v in best.items()}, "ratio": ratio,
        "rows": {str(n): r for n, r in rows.items()}}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
