"""What the paper's figure commands share: the paper's initial networks,
writing outputs (atomic, plain data) and the output folder check."""

from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path

import numpy as np

from rflo.files import atomic_write

__all__ = ["paper_network", "csv_text", "json_safe", "write_file", "write_text", "log_spaced",
           "check_out", "band_rows", "median_band", "quartiles", "ranges_overlap", "lower_verdict",
           "add_figure_arguments", "figure_main"]


def paper_network(n_in, n_rec, n_out, seed, tau=10.0, dtype="float32"):
    """A network drawn as the paper's Methods say: ``w_in ~ U[-1, 1]``,
    ``w_rec ~ N(0, 1.5^2 / N)``, ``w_out ~ U[-1/sqrt(N), 1/sqrt(N)]``,
    ``b ~ N(0, 1)``; ``h0 = 0.1`` (the notebook's; the paper gives none).
    (:func:`rflo.init_network` follows the notebook's code instead.)"""
    from rflo import network_from_arrays

    rng = np.random.default_rng(seed)
    return network_from_arrays(
        w_in=rng.uniform(-1, 1, (n_rec, n_in)),
        w_rec=1.5 * rng.normal(size=(n_rec, n_rec)) / np.sqrt(n_rec),
        w_out=rng.uniform(-1, 1, (n_out, n_rec)) / np.sqrt(n_rec),
        b=rng.normal(size=(n_rec, n_out)), h0=np.full(n_rec, 0.1), tau=tau, dtype=dtype)


def csv_text(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def json_safe(obj):
    """Non-finite floats as null (strict JSON has no Infinity/NaN)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def write_file(path, write_fn, suffix=""):
    """Atomic write, then the usual permissions (rw-r--r--)."""
    atomic_write(path, write_fn, suffix=suffix)
    os.chmod(path, 0o644)


def write_text(path, text):
    write_file(path, lambda tmp: Path(tmp).write_text(text))


def log_spaced(n, points=300):
    """About ``points`` indices into ``n`` trials, spaced evenly on a log axis."""
    return np.unique(np.round(np.geomspace(1, n, points)).astype(int)) - 1


def band_rows(curves, points=300, trials_per_step=1) -> list:
    """Rows ``[trial, median, p25, p75]`` of (K, n) curves at about ``points``
    log-spaced steps (step ``i`` is trial ``(i + 1) * trials_per_step``)."""
    med, p25, p75 = median_band(curves)
    return [[(i + 1) * trials_per_step, f"{med[i]:.6g}", f"{p25[i]:.6g}", f"{p75[i]:.6g}"]
            for i in log_spaced(np.shape(curves)[1], points)]


def median_band(a, axis=0):
    """``(median, p25, p75)`` of ``a`` along ``axis``."""
    p25, med, p75 = np.percentile(np.asarray(a, float), [25, 50, 75], axis=axis)
    return med, p25, p75


def quartiles(a) -> dict:
    """``{"median", "p25", "p75"}`` of ``a`` (floats, JSON-ready)."""
    med, p25, p75 = median_band(a)
    return {"median": float(med), "p25": float(p25), "p75": float(p75)}


def ranges_overlap(a: dict, b: dict) -> bool:
    """Whether two :func:`quartiles` 25-75 % ranges overlap."""
    return not (a["p75"] < b["p25"] or b["p75"] < a["p25"])


def lower_verdict(mine: dict, other: dict, who: str, what: str) -> dict:
    """The verdict on a claim that ``who``'s ``what`` (:func:`quartiles`) is
    lower than the other's: reproduced only where the median is lower and the
    25-75 % ranges do not overlap."""
    overlap = ranges_overlap(mine, other)
    better = mine["median"] < other["median"]
    verdict = (f"reproduced: {who}'s {what} is lower and the 25-75 % ranges do not overlap"
               if better and not overlap else
               f"{who}'s median is lower but the 25-75 % ranges overlap: not shown"
               if better else f"not reproduced: {who}'s median {what} is not lower")
    return {"ranges_overlap": overlap, "verdict": verdict}


def check_out(out, overwrite, prog) -> int:
    """0 if ``out`` may be written (a new or empty folder, or ``overwrite``),
    else print the error and return 2."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        print(f"{prog}: error: {out} exists and is not a folder", file=sys.stderr)
        return 2
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        print(f"{prog}: error: {out} is not empty; pass --overwrite to write into it "
              "or choose another --out", file=sys.stderr)
        return 2
    return 0


def add_figure_arguments(p, name: str, quick_help: str):
    """The options every ``rflo figureN`` takes: --out, --quick, --seed, --overwrite."""
    p.add_argument("--out", default=name, help=f"output folder (default: ./{name})")
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--seed", type=int, default=0,
                   help="first network seed; network k uses seed + k (default 0)")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an existing non-empty folder")
    return p


def figure_main(argv, name: str, description: str, add_arguments, quick, full, run,
                write_outputs) -> int:
    """``rflo figureN``: parse, check the folder, run quick or full, write, and
    print the verdicts as JSON; returns the exit status (2 on bad input)."""
    import argparse
    import json
    from dataclasses import replace

    prog = f"rflo {name}"
    parser = add_arguments(argparse.ArgumentParser(prog=prog, description=description))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on bad arguments, 0 on --help
        return int(e.code or 0)
    if args.seed < 0:
        print(f"{prog}: error: --seed must be >= 0", file=sys.stderr)
        return 2
    if check_out(args.out, args.overwrite, prog):
        return 2
    cfg = replace(quick if args.quick else full, seed=args.seed)
    r = run(cfg, log=lambda m: print(f"[{name}] {m}", file=sys.stderr, flush=True))
    summary = write_outputs(r, Path(args.out))
    print(json.dumps(json_safe({"out": str(args.out), "mode": cfg.mode,
                                "seconds": round(summary["seconds"], 1),
                                "claims": {k: v["verdict"] for k, v in summary["claims"].items()}}),
                     indent=2))
    return 0
