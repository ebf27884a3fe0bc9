"""``benchmarks/run.py``'s command line: its options and their defaults per mode
(smoke, quick, full)."""

from __future__ import annotations

import argparse
from pathlib import Path

from timing import DEFAULT_ENSEMBLE

from rflo.rules import rule_names

ROOT = Path(__file__).resolve().parent.parent
#: the sizes and trial lengths of the large-network rows (issue #25's target e)
BIG_SIZES = [100, 200, 500, 1000]
BIG_STEPS = [100, 1000]


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


def parse_args(argv=None, description=None):
    p = argparse.ArgumentParser(description=description)
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
        help="warm runs of each command, the best counts (default 3)",
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
        "cli_repeats": 3,
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
