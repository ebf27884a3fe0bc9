"""Sweep throughput on one device against several (every core through JAX host devices).

    python benchmarks/sweep_devices.py [--devices 2] [--networks 64] [--trials 1000] [--rounds 3]

Each measurement is a fresh process that splits one chunk of ``--networks``
networks (RFLO offline, n_rec 50, the periodic task, float32) over N host
devices, compiles it, then trains it ``--repeats`` times; the best repeat gives
network-trials per second.  Three setups alternate (``--rounds`` each), so
the ratios hold on a noisy machine: one device pinned to one core (``taskset``:
one core's throughput), one device free to use every core (XLA's own threads),
and N devices.  Prints a table and
writes ``benchmarks/sweep_devices.json``.

A chunk carries about 0.05 s of host-side work (checks, threads, transfers, results)
that does not shrink with more cores, so short chunks understate the gain:
the default 1,000 trials is a short sweep (Figure 2's runs are 10,000).
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
    out = subprocess.run(
        pin + [sys.executable, "-c", WORKER, str(n_dev), str(networks), str(trials), str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(devices=2, networks=64, trials=1000, rounds=3, repeats=3):
    """The three setups, alternating ``rounds`` times: best network-trials/s of
    each and the ratios ``devices`` / one core and / one unpinned device."""
    first = sorted(os.sched_getaffinity(0))[0]
    # "1 core": one device in a process pinned to one core; "1 device": one device
    # free to use every core (XLA's and the kernels' own threads); then N devices
    many = f"{devices} devices"
    setups = {"1 core": (1, [first]), "1 device": (1, None), many: (devices, None)}
    rows = {name: [] for name in setups}
    for _ in range(rounds):
        for name, (n, pin) in setups.items():
            rows[name].append(measure(n, networks, trials, repeats, pin))
    best = {n: max(r["network_trials_per_s"] for r in rs) for n, rs in rows.items()}
    return {
        "cores": len(os.sched_getaffinity(0)),
        "devices": devices,
        "networks": networks,
        "trials": trials,
        "rounds": rounds,
        "repeats": repeats,
        "best_network_trials_per_s": best,
        "ratio": best[many] / best["1 core"],
        "ratio_to_one_device": best[many] / best["1 device"],
        "rows": rows,
    }


def main(argv=None):
    sys.path.insert(0, str(HERE))
    from machine import cpu_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=2)
    p.add_argument("--networks", type=int, default=64)
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=HERE / "sweep_devices.json")
    args = p.parse_args(argv)
    result = compare(args.devices, args.networks, args.trials, args.rounds, args.repeats)
    best, many = result["best_network_trials_per_s"], f"{args.devices} devices"
    print(f"processor: {cpu_model()} ({result['cores']} cores available)")
    print(
        f"one chunk of {args.networks} networks (rflo offline, n_rec 50, periodic task), "
        f"{args.trials} trials, best of {args.rounds} processes x {args.repeats} repeats"
    )
    for n in best:
        print(f"  {n:>10}: {best[n]:9.0f} network-trials/s")
    print(
        f"  ratio {many} / 1 core: {result['ratio']:.2f}x   ({many} / 1 unpinned device: "
        f"{result['ratio_to_one_device']:.2f}x)"
    )
    args.out.write_text(
        json.dumps(
            {"processor": cpu_model(), "measured": time.strftime("%Y-%m-%d"), **result}, indent=1
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
