"""Speed and memory of rflo's learning rules, side by side with the notebook's numpy loop.

    python benchmarks/run.py            # the full benchmark (several minutes on 2 cores)
    python benchmarks/run.py --quick    # a smoke test (seconds)

For every registered rule (``rflo.rules.rule_names()``, or ``--rules``), offline
and (where the rule allows it) online, at n_rec = 20, 50, 100, 200 and T = 100
steps (float32, the seed's periodic task, one input and one output), it times:

* ``library``: rflo's compiled session (the function ``rflo.train`` runs), per trial;
* ``numpy``: the plain-numpy transcription of the notebook's ``run_trial``
  (tests/seed_notebook.py, float64 as in the notebook), for the rules it has;
* ``ensemble``: ``rflo.ensemble.train_ensemble``'s compiled call with K = 1, 8, 64
  networks, per network-trial (at n_rec = 50 unless ``--ensemble-sizes``).

Timing: compilation is done first and reported apart (``compile_s``); then the
same call is repeated many times and the per-trial time is the minimum over the
repeats (``best``; the median is reported too).  Each repeat is short, so on a
busy machine the minimum is a repeat that ran without being preempted; the
library and the numpy loop are timed alternately in this one process, so their
ratios hold even when the machine is noisy.  Rules whose trial would take more
than ``--max-trial-s`` (2 s) at a size, predicted from the smaller sizes with the
rule's cost exponent, are skipped there and say so.

Memory: for the library, XLA's own account of the compiled executable
(``jax.jit(...).lower(...).compile().memory_analysis()``: arguments + outputs +
temporaries - aliased, i.e. everything the executable holds at once); for numpy,
``tracemalloc``'s peak over one trial.  Memory rows at T = 100 and T = 10,000
show that BPTT keeps the trial's history while the online rules do not.

Issue #25's targets come from the same run: every cell beside the leaky tanh
(benchmarks/cell_speed.py), RFLO offline and BPTT at n_rec 100-1000 against one
core's matmul peak (benchmarks/size_speed.py), and last what a user waits for
at the command line (benchmarks/cli_speed.py); benchmarks/targets.py decides
met / not met and says where the time goes where not.

Results go to ``benchmarks/results.json`` (``--out``); ``benchmarks/make_table.py``
turns them into the README's table, and a log-log cost-scaling figure is drawn
to ``benchmarks/scaling.png`` (``--figure``).  The pieces live beside this file:
machine.py (the machine), timing.py (timing the library and the numpy loop),
rows.py (speed, ensemble and memory rows), versus.py (jax_rtrl; XLA paths
against the kernels), plot_scaling.py (the figure).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # seed_notebook.py: the notebook's loop, reused

from machine import kernel_info, machine_info, matmul_peak  # noqa: E402  (same folder)
from rows import ensemble_rows, memory_rows, speed_rows  # noqa: E402
from targets import check_targets, target_lines  # noqa: E402
from timing import DEFAULT_ENSEMBLE, LR, _default_unroll, fmt_time  # noqa: E402

from rflo.rules import rule_names  # noqa: E402

#: the sizes of issue #25's large-network rows (RFLO offline and BPTT)
BIG_SIZES = [100, 200, 500, 1000]
BIG_STEPS = [100, 1000]


def rtrl_flops(n_rec, n_in, steps):
    """Floating-point operations of RTRL's influence update over a trial: the
    (n, n) Jacobian times the (n, n (n + n_in)) influence, each step."""
    return 2.0 * n_rec * n_rec * n_rec * (n_rec + n_in) * (steps - 1)


def run(args):
    results = []
    log = print if not args.json_only else (lambda *a, **k: None)
    machine = machine_info()
    log(
        f"JAX {machine['jax']} on device {machine['jax_device']} ({machine['jax_devices'][0]}); "
        f"CPU {machine['cpu']}, {machine['cores_usable']} usable cores; numpy {machine['numpy']}; "
        f"load {', '.join(f'{x:.2f}' for x in machine['load_average'] or [])}"
    )
    log(f"numpy BLAS: {json.dumps(machine['numpy_blas'].get('threadpools'))}")

    wanted = args.rules
    if wanted is None and args.smoke:
        wanted = [r for r in ("rflo", "bptt", "rtrl") if r in rule_names()]
    rules = [r for r in rule_names() if wanted is None or r in wanted]
    unknown = sorted(set(args.rules or []) - set(rule_names()))
    if unknown:
        raise SystemExit(f"unknown rule(s) {unknown}: registered rules are {rule_names()}")

    # ---- per-trial speed: library vs numpy, interleaved
    results += speed_rows(args, rules, log)
    # ---- ensembles
    results += ensemble_rows(args, rules, log)

    # ---- before and after: the XLA paths against the kernels
    if not args.no_kernel_compare and kernel_info()["built"]:
        from versus import time_kernels

        log(f"\n== the XLA paths against rflo's kernels (n_rec 50, T {args.steps}, alternating)")
        for row in time_kernels(50, args.steps, args.budget * 3):
            results.append(row)
            log(
                f"{row['rule']:<8}{row['mode']:<8} XLA {fmt_time(row['xla']['seconds_per_trial']):>10}"
                f"   kernels {fmt_time(row['kernels']['seconds_per_trial']):>10}"
                f"   {row['speedup']:.2f}x",
                flush=True,
            )

    # ---- peers, at every size asked for (RTRL only up to n_rec 100: n^4)
    if args.jax_rtrl is not None:
        from versus import PEER_CASES, load_jax_rtrl, time_peers

        driver, why = load_jax_rtrl(args.jax_rtrl)
        log(
            f"\n== rflo vs FranzKnut/jax_rtrl (same network, trial and SGD; alternating, "
            f"n_rec {', '.join(map(str, args.peer_sizes))}, T {args.steps})"
        )
        if driver is None:
            log(f"skipped: {why}")
            results.append({"kind": "peer", "peer": "jax_rtrl", "skipped": why})
        else:
            for n_rec in args.peer_sizes:
                cases = [c for c in PEER_CASES if c[0] != "rtrl" or n_rec <= 100]
                for row in time_peers(driver, n_rec, args.steps, args.budget * 3, cases=cases):
                    results.append(row)
                    log(
                        f"{row['rule']:<8}{row['mode']:<8}{n_rec:>6} rflo "
                        f"{fmt_time(row['library']['seconds_per_trial']):>10}   jax_rtrl "
                        f"{fmt_time(row['jax_rtrl']['seconds_per_trial']):>10}   "
                        f"{row['speedup']:.2f}x",
                        flush=True,
                    )

    # ---- arithmetic: RTRL and the large networks against one core's matmul peak
    peak = None
    if not args.no_peak and ("rtrl" in rules or not args.no_sizes):
        peak = matmul_peak()
        log(f"\none core's 512x512 float32 matmul: {peak:.1f} GFLOP/s")
    if peak and "rtrl" in rules:
        for row in results:
            if (
                row["kind"] == "speed"
                and row["rule"] == "rtrl"
                and row["mode"] == "offline"
                and row["n_rec"] == 50
                and "seconds_per_trial" in row["library"]
            ):
                flops = rtrl_flops(row["n_rec"], 1, row["steps"])
                row["gflops"] = flops / row["library"]["seconds_per_trial"] / 1e9
                row["matmul_peak_gflops"] = peak
                log(
                    f"rtrl offline at n_rec 50: {row['gflops']:.1f} GFLOP/s "
                    f"({row['gflops'] / peak:.0%} of the peak)"
                )
    if not args.no_sizes:
        from size_speed import size_rows

        log(
            f"\n== large networks: RFLO offline and BPTT, n_rec {args.big_sizes}, T {args.big_steps}"
            " (GFLOP/s of the dominant products; forward = the forward pass alone)"
        )
        results += size_rows(
            args.big_sizes, args.big_steps, args.budget, peak, max_trial_s=args.max_trial_s, log=log
        )

    # ---- every cell beside the leaky tanh
    if not args.no_cells:
        from cell_speed import cell_rows

        log(f"\n== every cell beside the leaky tanh, n_rec 50, T {args.steps}, one network")
        results += cell_rows(50, args.steps, args.budget, cells=args.cells, log=log)

    # ---- a sweep over every core
    if not args.no_sweep:
        from sweep_devices import compare

        cores = len(os.sched_getaffinity(0))
        if cores < 2:
            log("\n== sweep over every core: skipped (one usable core)")
        else:
            log(
                f"\n== sweep over every core ({cores} host devices vs one device pinned to one core; "
                f"64 networks x {args.sweep_trials} trials, fresh processes)"
            )
            try:
                sweep = compare(devices=cores, trials=args.sweep_trials, rounds=args.sweep_rounds)
            except subprocess.CalledProcessError as exc:  # say why, and go on with the rest
                why = (exc.stderr or "").strip().splitlines()[-1:] or [f"exit {exc.returncode}"]
                log(f"  failed: {why[0]}")
                results.append({"kind": "sweep", "failed": why[0]})
            else:
                results.append({"kind": "sweep", **sweep})
                for name, value in sweep["best_network_trials_per_s"].items():
                    log(f"  {name:>10}: {value:9.0f} network-trials/s")
                log(f"  ratio: {sweep['ratio']:.2f}x", flush=True)

    # ---- memory against T
    results += memory_rows(args, rules, log)

    # ---- last: what a user waits for at the command line (fresh processes)
    if not args.no_cli:
        from cli_speed import cli_rows

        log(f"\n== the command line, warm (best of {args.cli_repeats} after one warm-up run)")
        results += cli_rows(repeats=args.cli_repeats, log=log)

    targets = check_targets(results, args)
    processor = f"{machine['cpu']} ({machine['cores_usable']} cores)"
    for line in target_lines(targets, processor):
        log(line)
    return {
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "machine": {**machine, "load_average_end": list(os.getloadavg())},
        "settings": {
            "steps": args.steps,
            "sizes": args.sizes,
            "ensemble": args.ensemble,
            "ensemble_sizes": args.ensemble_sizes,
            "memory_steps": args.memory_steps,
            "memory_sizes": args.memory_sizes,
            "budget_s": args.budget,
            "max_trial_s": args.max_trial_s,
            "big_sizes": args.big_sizes,
            "big_steps": args.big_steps,
            "peer_sizes": args.peer_sizes,
            "unroll": args.unroll or _default_unroll(),
            "learning_rates": LR,
            "quick": args.quick,
            "smoke": args.smoke,
            "jax_rtrl": str(args.jax_rtrl) if args.jax_rtrl else None,
            "kernels": kernel_info(),
            "timing": "per-trial time = wall-clock minimum over repeated short calls (median and "
            "process CPU time also given); compilation excluded and reported as compile_s",
            "memory_library": "XLA memory_analysis of the compiled executable: "
            "argument + output + temp - alias bytes",
            "memory_numpy": "tracemalloc peak over one trial",
            "numpy_loop": "tests/seed_notebook.py seed_run_trial (the notebook's loop, float64)",
        },
        "results": results,
        "targets": targets,
    }


def ints(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def names(text):
    return [v.strip().lower() for v in text.split(",") if v.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="the headline ratios and issue #25's targets in about 10 minutes on 2 "
        "cores: rflo (online and offline), bptt and rtrl at n_rec 50, T 100; "
        "ensembles of 1 and 64; every cell; RFLO offline and BPTT at n_rec "
        "100-1000; the sweep over every core; the commands; jax_rtrl with "
        "--jax-rtrl; no memory rows",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="a smoke test (seconds): rflo, bptt, rtrl at n_rec 8, T 20",
    )
    p.add_argument(
        "--jax-rtrl",
        type=Path,
        default=None,
        metavar="PATH",
        help="a FranzKnut/jax_rtrl checkout: time it beside rflo (run in the environment "
        "benchmarks/peers/install_jax_rtrl.sh makes); skipped when absent",
    )
    p.add_argument(
        "--peer-size",
        type=int,
        default=None,
        help="one n_rec for the peer rows (same as --peer-sizes N)",
    )
    p.add_argument(
        "--peer-sizes",
        type=ints,
        default=None,
        help="n_rec of the peer rows (default: the speed table's sizes; RTRL up to 100)",
    )
    p.add_argument("--no-cells", action="store_true", help="skip every cell beside the leaky tanh")
    p.add_argument("--cells", type=names, default=None, help="cells of those rows (default all)")
    p.add_argument(
        "--no-sizes",
        action="store_true",
        help="skip RFLO offline and BPTT at n_rec 100-1000 against the matmul peak",
    )
    p.add_argument(
        "--big-sizes",
        type=ints,
        default=None,
        help=f"n_rec of those rows (default {','.join(map(str, BIG_SIZES))})",
    )
    p.add_argument(
        "--big-steps",
        type=ints,
        default=None,
        help=f"T of those rows (default {','.join(map(str, BIG_STEPS))})",
    )
    p.add_argument(
        "--no-cli",
        action="store_true",
        help="skip timing the commands (import rflo, rflo train --trials 1, rflo compare)",
    )
    p.add_argument(
        "--cli-repeats",
        type=int,
        default=None,
        help="warm runs of each command, the best counts (default 2; quick 1)",
    )
    p.add_argument("--no-sweep", action="store_true", help="skip the sweep over every core")
    p.add_argument(
        "--sweep-trials",
        type=int,
        default=1000,
        help="trials per network in the sweep rows (default 1000)",
    )
    p.add_argument(
        "--sweep-rounds", type=int, default=None, help="fresh processes per setup (3; quick 1)"
    )
    p.add_argument("--no-peak", action="store_true", help="skip the one-core matmul peak")
    p.add_argument(
        "--no-kernel-compare",
        action="store_true",
        help="skip the XLA paths against the kernels (before/after)",
    )
    p.add_argument(
        "--rules",
        type=names,
        default=None,
        help=f"comma-separated rule names (default: all registered: {','.join(rule_names())})",
    )
    p.add_argument("--sizes", type=ints, default=None, help="n_rec values (default 20,50,100,200)")
    p.add_argument("--steps", type=int, default=None, help="timesteps per trial (default 100)")
    p.add_argument("--ensemble", type=ints, default=None, help="ensemble sizes K (default 1,8,64)")
    p.add_argument(
        "--ensemble-sizes", type=ints, default=None, help="n_rec of the ensembles (default 50)"
    )
    p.add_argument(
        "--memory-steps", type=ints, default=None, help="T of the memory rows (default 100,10000)"
    )
    p.add_argument(
        "--memory-sizes", type=ints, default=None, help="n_rec of the memory rows (default 50,100)"
    )
    p.add_argument(
        "--budget", type=float, default=None, help="seconds of timing per measurement (default 1.0)"
    )
    p.add_argument(
        "--max-trial-s",
        type=float,
        default=2.0,
        help="skip a rule at a size where one trial (or one ensemble call) would take longer",
    )
    p.add_argument("--unroll", type=int, default=None, help="scan unroll (default: rflo.train's)")
    p.add_argument("--no-numpy", action="store_true", help="skip the notebook's numpy loop")
    p.add_argument("--no-ensemble", action="store_true", help="skip the ensemble rows")
    p.add_argument("--no-memory", action="store_true", help="skip the memory-against-T rows")
    p.add_argument(
        "--out", type=Path, default=None, help="JSON output (default benchmarks/results.json)"
    )
    p.add_argument(
        "--figure", type=Path, default=None, help="scaling figure (default benchmarks/scaling.png)"
    )
    p.add_argument("--no-figure", action="store_true")
    p.add_argument("--json-only", action="store_true", help="print nothing but errors")
    args = p.parse_args(argv)
    smoke, quick = args.smoke, args.quick
    if smoke and quick:
        p.error("--smoke and --quick are two different runs: pick one")
    defaults = {
        "sizes": [8] if smoke else [50] if quick else [20, 50, 100, 200],
        "steps": 20 if smoke else 100,
        "ensemble": [1, 4] if smoke else [1, DEFAULT_ENSEMBLE] if quick else [1, 8, 64],
        "ensemble_sizes": [8] if smoke else [50],
        "memory_steps": [20, 200] if smoke else [100, 10000],
        "memory_sizes": [8] if smoke else [50, 100],
        "budget": 0.05 if smoke else 0.3 if quick else 1.0,
        "sweep_rounds": 1 if quick or smoke else 3,
        "big_sizes": BIG_SIZES,
        "big_steps": BIG_STEPS,
        "cli_repeats": 1 if quick else 2,
    }
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.peer_sizes is None:
        args.peer_sizes = [args.peer_size] if args.peer_size else sorted(set(args.sizes) | {50})
    if smoke:
        args.no_sweep = args.no_peak = args.no_kernel_compare = True
        args.no_cells = args.no_sizes = args.no_cli = True
    if quick:
        args.no_memory = True
        if args.rules is None:
            args.rules = ["rflo", "bptt", "rtrl"]
    if args.steps < 2:
        p.error("--steps must be at least 2")
    short = "quick" if quick else "smoke" if smoke else None
    if args.out is None:
        args.out = ROOT / "benchmarks" / (f"results-{short}.json" if short else "results.json")
    if args.figure is None:
        args.figure = ROOT / "benchmarks" / (f"scaling-{short}.png" if short else "scaling.png")
    return args


def main(argv=None):
    args = parse_args(argv)
    report = run(args)
    text = json.dumps(report, indent=1, default=float)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, args.out)
    if not args.json_only:
        print(f"\nwrote {args.out}")
    if not args.no_figure:
        small = None if (args.quick or args.smoke) else ROOT / "docs" / "scaling.png"
        if small is not None:
            small.parent.mkdir(exist_ok=True)
        from plot_scaling import plot_scaling

        plot_scaling(report, args.figure, small)
        if not args.json_only:
            print(f"wrote {args.figure}" + (f" and {small}" if small else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
