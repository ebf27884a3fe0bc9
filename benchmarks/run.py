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
(benchmarks/cell_speed.py), RFLO with K = 64 against one network in alternating
calls of equal length, split into batching and threads, beside what the cores
themselves add (benchmarks/ensemble_gain.py, machine.core_scaling), RFLO
offline and BPTT at n_rec 100-1000 against one
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

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # seed_notebook.py: the notebook's loop, reused

from machine import core_scaling, kernel_info, machine_info, matmul_peak, matvec_roof  # noqa: E402
from rows import ensemble_rows, memory_rows, speed_rows  # noqa: E402
from run_args import parse_args  # noqa: E402
from targets import check_targets, target_lines  # noqa: E402
from timing import DEFAULT_ENSEMBLE, LR, _default_unroll, fmt_time  # noqa: E402

from rflo.rules import rule_names  # noqa: E402


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
    if not args.no_ensemble and DEFAULT_ENSEMBLE in args.ensemble:
        from ensemble_gain import CALL_S, gain_rows

        log(
            f"\n== RFLO: K={DEFAULT_ENSEMBLE} against one network, alternating calls of about "
            f"{CALL_S * 1e3:.0f} ms (n_rec 50, T {args.steps})"
        )
        results += gain_rows(50, args.steps, args.budget * 10, k=DEFAULT_ENSEMBLE, log=log)
    usable = len(os.sched_getaffinity(0))
    if usable > 1 and not (args.no_ensemble and args.no_sweep):
        scaling = core_scaling(usable)
        results.append({"kind": "cores", **scaling})
        log(
            f"{usable} processes pinned to a core each, 64 x 64 matmuls: "
            f"{scaling['ratio']:.2f}x one process's (the most more cores can add)"
        )

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
        roof = matvec_roof(args.big_sizes)
        log(
            "one core's best n x n float32 matrix-vector product (numpy's BLAS): "
            + ", ".join(f"n {n}: {g:.1f} GFLOP/s" for n, g in roof.items())
        )
        results += size_rows(
            args.big_sizes,
            args.big_steps,
            args.budget,
            peak,
            max_trial_s=args.max_trial_s,
            log=log,
            matvec_gflops=roof,
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


def main(argv=None):
    args = parse_args(argv, description=__doc__.split("\n")[0])
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
