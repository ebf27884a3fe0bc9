"""Results on disk: per-trial curves as CSV, settings and versions as JSON.

``results.csv``: one row per trial, columns ``trial``, ``<rule>_loss``,
``<rule>_alignment`` for every rule, and ``run_id`` for files written by a
command-line run (the same id in every row).  ``metadata.json``: ``format`` (version),
``settings``, ``rules`` (per-rule wall time and summary), ``versions``.
"""

from __future__ import annotations

import csv
import io as _io
import json
import platform
import sys
from pathlib import Path
from typing import Dict

import numpy as np

from rflo.files import atomic_write

__all__ = ["write_curves", "read_curves", "read_run_id", "write_metadata", "read_metadata", "versions",
           "METADATA_FORMAT"]

METADATA_FORMAT = 1


def _write_text(path, text):
    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)

    atomic_write(path, write)
    return Path(path)


def write_curves(path, losses: Dict[str, np.ndarray], alignments: Dict[str, np.ndarray],
                 run_id=None):
    """Write per-trial loss and alignment of each rule (all the same length)."""
    rules = list(losses)
    n = {len(v) for v in losses.values()} | {len(v) for v in alignments.values()}
    if len(n) != 1:
        raise ValueError("every curve must have one value per trial")
    n = n.pop()
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    tail = [] if run_id is None else [str(run_id)]
    w.writerow(["trial"] + [f"{r}_{k}" for r in rules for k in ("loss", "alignment")]
               + (["run_id"] if tail else []))
    for i in range(n):
        row = [i + 1]
        for r in rules:
            row += [repr(float(losses[r][i])), repr(float(alignments[r][i]))]
        w.writerow(row + tail)
    return _write_text(path, buf.getvalue())


def read_curves(path):
    """``(losses, alignments)`` dicts of numpy arrays from a ``results.csv``."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0][:1] != ["trial"]:
        raise ValueError(f"{path}: not an rflo results.csv (first column must be 'trial')")
    header = rows[0]
    if header[-1] == "run_id":
        header = header[:-1]
        rows = [header] + [r[:-1] for r in rows[1:]]
    try:
        data = np.array([[float(v) for v in r] for r in rows[1:]], dtype=float).reshape(-1, len(header))
    except ValueError as exc:
        raise ValueError(f"{path}: malformed row ({exc})") from None
    losses, aligns = {}, {}
    for j, name in enumerate(header[1:], start=1):
        rule, _, kind = name.rpartition("_")
        (losses if kind == "loss" else aligns)[rule] = data[:, j]
    return losses, aligns


def read_run_id(path):
    """The run id of a ``results.csv`` (None if it has no ``run_id`` column)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        first = next(reader, [])
    if not header or header[-1] != "run_id":
        return None
    return first[-1] if len(first) == len(header) else ""


def versions():
    """Versions of everything that can change a result."""
    import jax
    import jaxlib
    import matplotlib
    import optax

    import rflo

    return {
        "rflo": rflo.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "optax": optax.__version__,
        "matplotlib": matplotlib.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "device": str(jax.devices()[0]),
    }


def write_metadata(path, meta: dict):
    meta = {"format": METADATA_FORMAT, **meta}
    return _write_text(path, json.dumps(meta, indent=2, sort_keys=False) + "\n")


def read_metadata(path):
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format", 0) > METADATA_FORMAT:
        raise ValueError(f"{path}: not rflo metadata of a known format")
    return meta
