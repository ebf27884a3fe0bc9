"""Soak run (not in CI): a million trials of RFLO with checkpoints throughout.

    python benchmarks/soak.py [--trials 1000000] [--segment 10000] [--out runs/soak]

Trains the seed's network (n_rec 50, T 100, offline RFLO) in segments, writing
a checkpoint after each one as `rflo train` does, and samples the process's
resident memory after the first segment and at the end.  Memory must not grow
beyond the loss and alignment curves themselves (16 bytes per trial).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

import rflo
from rflo import checkpoint


def rss_mib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--trials", type=int, default=1_000_000)
    p.add_argument("--segment", type=int, default=10_000)
    p.add_argument("--out", type=Path, default=Path("runs/soak"))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    net = rflo.init_network(1, 50, 1, seed=0)
    task = rflo.periodic_task()
    prog = checkpoint.Progress(net, np.zeros(0, np.float32), np.zeros(0, np.float32), 0.0)
    samples = []
    t0 = time.perf_counter()
    while prog.done < args.trials:
        n = min(args.segment, args.trials - prog.done)
        res = rflo.train(
            prog.network, task, "rflo", trials=n, start_trial=prog.done, chunk=args.segment
        )
        if res.diverged:
            raise SystemExit(res.diverged)
        prog = checkpoint.Progress(
            res.network,
            np.concatenate([prog.loss, res.loss]),
            np.concatenate([prog.alignment, res.alignment]),
            prog.seconds + res.seconds,
        )
        checkpoint.save_progress(args.out, "rflo", prog, run_id="soak")
        samples.append((prog.done, rss_mib()))
        print(
            f"\r{prog.done:>9} trials  loss {res.loss[-1]:.3g}  RSS {samples[-1][1]:.1f} MiB",
            end="",
            flush=True,
        )
    print()
    curves_mib = (prog.loss.nbytes + prog.alignment.nbytes) / 2**20
    growth = samples[-1][1] - samples[0][1]
    report = dict(
        trials=prog.done,
        seconds=time.perf_counter() - t0,
        final_loss=float(prog.loss[-1]),
        rss_first_segment_mib=samples[0][1],
        rss_end_mib=samples[-1][1],
        rss_growth_mib=growth,
        curves_mib=curves_mib,
        growth_beyond_curves_mib=growth - curves_mib,
    )
    print(json.dumps(report, indent=2))
    (args.out / "soak.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
