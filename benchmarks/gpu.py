"""rflo's XLA paths on a GPU: ensembles K = 1 ... 4096, n_rec 50 ... 1000.

    pip install -U "jax[cuda12]"          # on the GPU machine, in rflo's environment
    python benchmarks/gpu.py --out benchmarks/gpu-h200.json

times RFLO (offline and online) and BPTT, float32, T 100, on ``jax.devices()[0]``
for every K in ``--ks`` and n_rec in ``--sizes`` (one compiled session per
case, as ``rflo.train`` / ``train_ensemble`` run it; K = 1 is a single network),
and writes ``--out`` (JSON) and the same name with ``.md`` (a Markdown table
naming the device), with the CPU kernels' figures beside them where a CPU run of
``benchmarks/run.py`` stored them (``--cpu-results``, default the first of
benchmarks/results-targets.json (n_rec 50-1000), results.json, results-quick.json
that exists; one file, so that one processor's figures stand beside the GPU's).

It stays under ``--limit-s`` (default 420 s, so the whole script is under 8
minutes on one GPU): the cases run from the most telling (n_rec 50 over every
K, then K = 1 over every size) to the largest, each is skipped when the time
left would not cover it, when its call would take over ``--max-call-s``
(predicted from the same case at a smaller K), or when XLA's memory account
exceeds 90 % of the device's memory; the files are rewritten after every case,
and a hard stop at ``--limit-s`` + 60 s ends the process even inside a
compilation.  Matrix products run at ``--precision highest`` (true float32; the
GPU's default may use TF32).

Without a GPU it says so in one line and exits 2; ``--allow-cpu --smoke`` runs
a tiny grid on the CPU's XLA paths in seconds (what the tests run, so that the
script cannot rot).

``--render A.json [B.json ...]`` times nothing: it rewrites ``A.md`` from the
stored runs, the later ones filling the cells the first skipped (for a second,
shorter run of the cases the time guard left out), each such cell marked and
its run's command named under the table.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import sys
import time
from pathlib import Path

from gpu_table import CASES, cpu_figures, fmt, markdown, merged  # noqa: F401 (the tests)
from make_table import atomic_write

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def ints(text):
    return [int(v) for v in text.split(",") if v.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON output; the Markdown table goes beside it as .md "
        "(default benchmarks/gpu-<device>.json)",
    )
    p.add_argument("--ks", type=ints, default=None, help="ensemble sizes (default 1,8,64,512,4096)")
    p.add_argument("--sizes", type=ints, default=None, help="n_rec (default 50,100,200,500,1000)")
    p.add_argument("--steps", type=int, default=None, help="T (default 100)")
    p.add_argument(
        "--unroll",
        type=int,
        default=None,
        help="time-loop unroll (default rflo.train's on the device: 10 on a GPU)",
    )
    p.add_argument("--budget", type=float, default=None, help="seconds of timing per case (0.3)")
    p.add_argument("--limit-s", type=float, default=420.0, help="overall time guard (420 s)")
    p.add_argument(
        "--max-call-s",
        type=float,
        default=2.0,
        help="skip a case whose one-trial call would take longer (2 s)",
    )
    p.add_argument(
        "--precision",
        choices=("highest", "default"),
        default="highest",
        help="matmul precision (highest: true float32; default: the backend's, TF32 "
        "on recent NVIDIA GPUs)",
    )
    p.add_argument(
        "--cpu-results",
        type=Path,
        default=None,
        help="a benchmarks/run.py results file for the CPU columns",
    )
    p.add_argument("--allow-cpu", action="store_true", help="run on a CPU (the XLA paths)")
    p.add_argument(
        "--smoke", action="store_true", help="a tiny grid (seconds): K 1,4; n_rec 8; T 20"
    )
    p.add_argument(
        "--render",
        type=Path,
        nargs="+",
        default=None,
        help="time nothing: rewrite the first JSON's .md from these stored runs "
        "(later runs fill the cells the first skipped)",
    )
    args = p.parse_args(argv)
    small = args.smoke
    for name, full, tiny in (
        ("ks", [1, 8, 64, 512, 4096], [1, 4]),
        ("sizes", [50, 100, 200, 500, 1000], [8]),
        ("steps", 100, 20),
        ("budget", 0.3, 0.02),
    ):
        if getattr(args, name) is None:
            setattr(args, name, tiny if small else full)
    return args


def case_order(ks, sizes):
    """(n_rec, K) from the most telling to the largest: the smallest size over
    every K, K = 1 over every size, then the rest by K n^2."""
    n0, k0 = min(sizes), min(ks)
    first = [(n0, k) for k in sorted(ks)] + [(n, k0) for n in sorted(sizes) if n != n0]
    rest = sorted(
        ((n, k) for n in sizes for k in ks if (n, k) not in first),
        key=lambda nk: (nk[1] * nk[0] ** 2, nk[0]),
    )
    return first + rest


def write(report, out):
    report = dict(report, wall_s=time.perf_counter() - report["_t0"])
    text = {k: v for k, v in report.items() if k != "_t0"}
    cpu = text.pop("cpu")
    text["cpu"] = [
        {
            "rule": k[0],
            "mode": k[1],
            "n_rec": k[2],
            "K": k[3],
            "steps": k[4],
            "seconds_per_network_trial": t,
        }
        for k, t in cpu.items()
    ]
    atomic_write(out, json.dumps(text, indent=1) + "\n")
    atomic_write(out.with_suffix(".md"), markdown(report))


def main(argv=None):
    args = parse_args(argv)
    if args.render:
        out = args.render[0].with_suffix(".md")
        atomic_write(out, markdown(merged(args.render)))
        print(f"wrote {out}")
        return 0
    t0 = time.perf_counter()
    os.environ["RFLO_KERNELS"] = "0"  # the XLA paths, on every backend
    import jax

    dev = jax.devices()[0]
    if dev.platform != "gpu" and not args.allow_cpu:
        print(
            f"no GPU present (jax.devices()[0] is {dev.platform}: {dev.device_kind}); on a GPU "
            "machine install jax[cuda12], or pass --allow-cpu --smoke for a smoke run on the CPU"
        )
        return 2
    faulthandler.dump_traceback_later(args.limit_s + 60, exit=True)  # the hard stop
    if args.precision == "highest":
        jax.config.update("jax_default_matmul_precision", "highest")
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(HERE))
    from timing import LibraryRun, _default_unroll, calls_for, repeat_timing

    stats = dev.memory_stats() or {}
    limit = stats.get("bytes_limit")
    kind = dev.device_kind.replace(" ", "-").lower()
    out = args.out or HERE / f"gpu-{kind}.json"
    cpu, cpu_name, cpu_source = cpu_figures(args.cpu_results)
    report = {
        "_t0": t0,
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "device": {
            "device_kind": dev.device_kind,
            "platform": dev.platform,
            "jax": jax.__version__,
            "devices": len(jax.devices()),
            "memory_gib": round(limit / 2**30, 1) if limit else None,
        },
        "settings": {
            "ks": args.ks,
            "sizes": args.sizes,
            "steps": args.steps,
            "precision": args.precision,
            "unroll": args.unroll or _default_unroll(),
            "budget_s": args.budget,
            "limit_s": args.limit_s,
            "dtype": "float32",
            "path": "XLA",
        },
        "cpu": cpu,
        "cpu_processor": cpu_name,
        "cpu_source": cpu_source,
        "results": [],
    }
    print(f"{dev.device_kind} ({dev.platform}); JAX {jax.__version__}; limit {args.limit_s:.0f} s")
    seen, slowest_compile = {}, 0.0
    for n, k in case_order(args.ks, args.sizes):
        for rule, online in CASES:
            mode = "online" if online else "offline"
            row = {"rule": rule, "mode": mode, "n_rec": n, "K": k, "steps": args.steps}
            report["results"].append(row)
            left = args.limit_s - (time.perf_counter() - t0)
            prev = seen.get((rule, mode, n))
            predicted = prev[1] * k / prev[0] if prev else None
            if left < 1.5 * slowest_compile + 3 * args.budget + 1:
                row["skipped"] = f"time guard: {left:.0f} s left"
            elif predicted and predicted > args.max_call_s:
                row["skipped"] = f"predicted call {predicted:.1f} s > {args.max_call_s} s"
            elif limit and 6 * 4 * k * n * n > limit:
                row["skipped"] = "memory: K n^2 weights and traces exceed the device"
            if "skipped" in row:
                print(f"{rule:<5}{mode:<8} n_rec {n:>5} K {k:>5}  skipped: {row['skipped']}")
                continue
            try:
                run = LibraryRun(
                    rule,
                    online,
                    n,
                    args.steps,
                    k=None if k == 1 else k,
                    unroll=args.unroll,
                    capacity=64,
                    distinct=8,
                )
                slowest_compile = max(slowest_compile, run.compile_s)
                need = run.memory.get("peak_bytes")
                if limit and need and need > 0.9 * limit:
                    row["skipped"] = f"memory: needs {need / 2**30:.1f} GiB"
                    continue
                run(1)
                c0 = time.perf_counter()
                run(1)
                one = time.perf_counter() - c0
                reps = min(64, calls_for(one, 0.05))
                t = repeat_timing(
                    lambda run=run, reps=reps: run(reps), reps, args.budget, min_repeats=3
                )
            except Exception as exc:  # out of memory, or a failure: recorded, the rest goes on
                row["skipped"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                print(f"{rule:<5}{mode:<8} n_rec {n:>5} K {k:>5}  failed: {row['skipped']}")
                continue
            seen[(rule, mode, n)] = (k, one)
            row.update(
                {
                    "seconds_per_network_trial": t["best"] / k,
                    "network_trials_per_s": k / t["best"],
                    "compile_s": run.compile_s,
                    "trials_per_call": reps,
                    "repeats": t["repeats"],
                    "peak_bytes": run.memory.get("peak_bytes"),
                }
            )
            print(
                f"{rule:<5}{mode:<8} n_rec {n:>5} K {k:>5}  {fmt(row['seconds_per_network_trial']):>10}"
                f" per network-trial  {row['network_trials_per_s']:>12,.0f}/s  "
                f"(compile {run.compile_s:.1f} s)",
                flush=True,
            )
            write(report, out)
    write(report, out)
    faulthandler.cancel_dump_traceback_later()
    print()
    print(markdown(dict(report, wall_s=time.perf_counter() - t0)))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
