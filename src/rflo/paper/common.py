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
           "check_out", "median_band"]


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


def median_band(a, axis=0):
    """``(median, p25, p75)`` of ``a`` along ``axis``."""
    p25, med, p75 = np.percentile(np.asarray(a, float), [25, 50, 75], axis=axis)
    return med, p25, p75


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
