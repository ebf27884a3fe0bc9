"""How the time loop's unroll changes rflo's speed on a GPU (XLA paths).

    python benchmarks/gpu_unroll.py --out benchmarks/gpu-h200-unroll.log   # about 2 minutes
    python benchmarks/gpu_unroll.py --render benchmarks/gpu-h200-unroll.log

times RFLO offline, BPTT and RFLO online at n_rec 50, T 100, for K = 1 and 64,
with the time loop unrolled 1, 4, 10 and 25 steps per iteration (float32,
full matmul precision), printing one line per case (kept in ``--out``); the
Markdown table (same name, ``.md``) is rendered from those lines, so a stored
log can be rendered again.  This measurement set ``rflo.train``'s default
unroll on a GPU (``rflo.session_checks.GPU_UNROLL``).  ``--allow-cpu`` runs it
on the CPU's XLA paths.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from make_table import atomic_write

HERE = Path(__file__).resolve().parent
LINE = re.compile(
    r"(\w+) (offline|online) n50 K +(\d+) unroll +(\d+): +([\d.]+) us per network-trial"
)


def render(log: Path) -> Path:
    """Write ``log``'s table (rows: rule, mode, K; columns: unroll) beside it."""
    text = log.read_text()
    cases = {}
    for rule, mode, k, unroll, us in LINE.findall(text):
        cases.setdefault((rule, mode, int(k)), {})[int(unroll)] = float(us)
    unrolls = sorted({u for row in cases.values() for u in row})
    device = text.splitlines()[0].strip()
    lines = [
        f"Time-loop unroll on **{device}** (XLA paths, float32, full matmul precision, "
        f"n_rec 50, T 100; microseconds per network-trial, best of repeated calls; "
        f"`benchmarks/gpu_unroll.py`, log `{log.name}`):",
        "",
        "| rule | mode | K | " + " | ".join(f"unroll {u}" for u in unrolls) + " | 1 / 10 |",
        "|---|---|---:|" + "---:|" * (len(unrolls) + 1),
    ]
    for (rule, mode, k), row in cases.items():
        cells = [f"{row[u]:.1f}" if u in row else "-" for u in unrolls]
        gain = f"{row[1] / row[10]:.2f}x" if 1 in row and 10 in row else "-"
        lines.append(f"| {rule} | {mode} | {k} | " + " | ".join(cells) + f" | {gain} |")
    out = log.with_suffix(".md")
    atomic_write(out, "\n".join(lines) + "\n")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=HERE / "gpu-unroll.log")
    p.add_argument("--render", type=Path, default=None, help="render a stored log; time nothing")
    p.add_argument("--allow-cpu", action="store_true")
    p.add_argument("--limit-s", type=float, default=110.0)
    args = p.parse_args(argv)
    if args.render:
        print(f"wrote {render(args.render)}")
        return 0
    os.environ["RFLO_KERNELS"] = "0"
    import jax

    if jax.devices()[0].platform != "gpu" and not args.allow_cpu:
        print("no GPU present; pass --allow-cpu to time the CPU's XLA paths")
        return 2
    jax.config.update("jax_default_matmul_precision", "highest")
    sys.path.insert(0, str(HERE.parent / "src"))
    sys.path.insert(0, str(HERE))
    from timing import time_library

    t0, lines = time.perf_counter(), [jax.devices()[0].device_kind]
    print(lines[0], flush=True)
    for rule, online in (("rflo", False), ("bptt", False), ("rflo", True)):
        for k in (1, 64):
            for unroll in (1, 4, 10, 25):
                if time.perf_counter() - t0 > args.limit_s:
                    lines.append("time guard")
                    break
                t = time_library(
                    rule,
                    online,
                    50,
                    100,
                    0.2,
                    k=None if k == 1 else k,
                    unroll=unroll,
                    target_call_s=0.05,
                    capacity=64,
                    min_repeats=3,
                )
                lines.append(
                    f"{rule} {'online' if online else 'offline'} n50 K {k:>3} unroll {unroll:>3}: "
                    f"{t['seconds_per_trial'] * 1e6:8.1f} us per network-trial "
                    f"(compile {t['compile_s']:.1f} s)"
                )
                print(lines[-1], flush=True)
    atomic_write(args.out, "\n".join(lines) + "\n")
    print(f"wrote {render(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
