"""An ensemble against separate networks, timed alternately in one process
(issue 25's target (f)).

    python benchmarks/ensemble_gain.py [--k 64] [--budget 3]

Three compiled runs of the same rule, network size and trial: one network
(``rflo.train``'s compiled call), an ensemble of K (``train_ensemble``'s, its
kernel calls spread over every usable core), and the same ensemble with the
kernels held to one thread.  Their calls alternate, each about ``call_s`` of
work, so that a slow moment of a noisy machine falls on all three and every
call pays its fixed cost (the dispatch, the copies of the state it returns)
over about as much work: a training run's calls last 0.25-2 s
(``rflo.segments``); the ensemble table's rows, at its 4 ms calls, run one
trial of K = 64 per call.  The best call of each run counts.

The gain splits into what batching saves on one thread (``alone / one
thread``) and what the other cores add (``one thread / ensemble``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from timing import LibraryRun, calls_for, mode_name, repeat_timing
from versus import kernel_env

#: wall time of one timed call
CALL_S = 0.03
#: most trials in one call of each run (compiled buffer lengths)
CAPACITY = {"alone": 512, "ensemble": 64, "one_thread": 64}


def time_gain(rule, online, n_rec, steps, budget_s, k=64, rounds=3, call_s=CALL_S):
    """One row: seconds per network-trial of one network, of K at once and of K
    on one kernel thread, their calls alternating for about ``budget_s``."""
    from rflo import kernels

    runs = {"alone": LibraryRun(rule, online, n_rec, steps, capacity=CAPACITY["alone"])}
    runs["ensemble"] = LibraryRun(rule, online, n_rec, steps, k=k, capacity=CAPACITY["ensemble"])
    with kernel_env(kernels.ENV_THREADS, 1):
        runs["one_thread"] = LibraryRun(
            rule, online, n_rec, steps, k=k, capacity=CAPACITY["one_thread"]
        )
    sized = {}
    for name, run in runs.items():
        per = k if name != "alone" else 1
        run(1)
        t0 = time.perf_counter()
        run(1)
        n = min(CAPACITY[name], calls_for(time.perf_counter() - t0, call_s))
        sized[name] = (run, n, per, [])
    for _ in range(rounds):
        for run, n, _, out in sized.values():
            out.append(repeat_timing(lambda r=run, m=n: r(m), n, budget_s / rounds / len(runs)))
    best = {name: min(t["best"] for t in out) / per for name, (_, _, per, out) in sized.items()}
    median = {
        name: sorted(t["median"] for t in out)[len(out) // 2] / per
        for name, (_, _, per, out) in sized.items()
    }
    return {
        "kind": "ensemble_gain",
        "rule": rule,
        "mode": mode_name(online),
        "n_rec": n_rec,
        "steps": steps,
        "K": k,
        "threads": kernels.threads(),
        "call_s": call_s,
        "trials_per_call": {name: s[1] for name, s in sized.items()},
        "seconds_per_trial": best,
        "seconds_per_trial_median": median,
        "gain": best["alone"] / best["ensemble"],
        "gain_median": median["alone"] / median["ensemble"],
        "batching": best["alone"] / best["one_thread"],
        "threads_gain": best["one_thread"] / best["ensemble"],
    }


def gain_rows(n_rec, steps, budget_s, k=64, log=print):
    """RFLO offline and online (the rules of target (f))."""
    rows = []
    for online in (False, True):
        row = time_gain("rflo", online, n_rec, steps, budget_s, k=k)
        rows.append(row)
        t = row["seconds_per_trial"]
        log(
            f"rflo {row['mode']:<8} alone {t['alone'] * 1e6:7.1f} us   K={k} "
            f"{t['ensemble'] * 1e6:7.1f} us ({row['threads']} threads; "
            f"{t['one_thread'] * 1e6:.1f} us on one)   gain {row['gain']:.2f}x "
            f"(batching {row['batching']:.2f}x, threads {row['threads_gain']:.2f}x)",
            flush=True,
        )
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=64)
    p.add_argument("--n-rec", type=int, default=50)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--budget", type=float, default=3.0, help="seconds of timing per row")
    args = p.parse_args(argv)
    rows = gain_rows(args.n_rec, args.steps, args.budget, k=args.k)
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
