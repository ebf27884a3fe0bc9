"""Results on disk: the tidy table of curves, settings and versions as JSON.

Every command writes its curves in one tidy (long) format, the sweep table's
(:mod:`rflo.sweep.table`): one row per network and recorded block of trials,
first the network's settings (:data:`SETTING_COLUMNS`, task parameters as
``set.<name>``), then :data:`MEASURE_COLUMNS`, then where the row comes from
(``run_id`` for a command-line run, ``chunk`` in a sweep).  ``results.csv`` of
``rflo train`` / ``rflo compare`` holds a row per trial of each rule (``point``
numbers the rules).  Folders of rflo 0.1 (a wide ``trial, <rule>_loss,
<rule>_alignment`` table) are still read.

``metadata.json``: ``format`` (version), ``settings``, ``rules`` (per-rule wall
time and summary), ``versions``.
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

__all__ = [
    "write_curves",
    "read_curves",
    "read_run_id",
    "write_metadata",
    "read_metadata",
    "versions",
    "METADATA_FORMAT",
    "SETTING_COLUMNS",
    "MEASURE_COLUMNS",
    "tidy_columns",
    "block_means",
]


def _setting_columns():
    from rflo.spec import table_keys

    return tuple("loss_function" if k == "loss" else k for k in table_keys())


#: a network's settings, in table order (task parameters ``set.<name>`` go after
#: ``task``): the fields of :class:`rflo.spec.RunSpec` that are a table's columns
#: (the spec's ``loss`` as ``loss_function``)
SETTING_COLUMNS = _setting_columns()
#: what is measured, per network and block of trials
MEASURE_COLUMNS = ("point", "trial", "loss", "alignment", "accuracy", "diverged_at", "final_loss")


def block_means(curves, every: int) -> np.ndarray:
    """(K, trials) -> (K, blocks): the mean of each block of ``every`` trials
    (the last block may be shorter; NaN where a block has no finite value)."""
    import warnings

    curves = np.asarray(curves, float)
    k, n = curves.shape
    blocks = -(-n // every)
    padded = np.full((k, blocks * every), np.nan)
    padded[:, :n] = curves
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks
        return np.nanmean(padded.reshape(k, blocks, every), axis=2)


def tidy_columns(
    settings, index, loss, alignment, accuracy=None, diverged_at=None, every: int = 1
) -> dict:
    """The tidy table's columns for K networks.

    settings : K dicts of setting columns (same keys, in table order).
    index : K point numbers.  loss, alignment, accuracy : (K, trials).
    diverged_at : (K,) trial of divergence or 0.  every : trials per row.
    Returns ``{column: list or array}``, rows network after network.
    """
    loss = np.asarray(loss, float)
    k, n = loss.shape
    blocks = -(-n // every)
    ends = np.minimum(np.arange(1, blocks + 1) * every, n)
    mean_loss = block_means(loss, every)
    cols = {name: [s[name] for s in settings for _ in range(blocks)] for name in settings[0]}
    cols["point"] = np.repeat(np.asarray(index, np.int64), blocks)
    cols["trial"] = np.tile(ends.astype(np.int64), k)
    cols["loss"] = mean_loss.ravel()
    cols["alignment"] = block_means(alignment, every).ravel()
    cols["accuracy"] = (
        np.full(k * blocks, np.nan) if accuracy is None else block_means(accuracy, every).ravel()
    )
    cols["diverged_at"] = np.repeat(
        np.zeros(k, np.int64) if diverged_at is None else np.asarray(diverged_at, np.int64), blocks
    )
    cols["final_loss"] = np.repeat(mean_loss[:, -1], blocks)
    return cols


METADATA_FORMAT = 1


def _write_text(path, text):
    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)

    atomic_write(path, write)
    return Path(path)


def write_curves(
    path,
    settings,
    losses: Dict[str, np.ndarray],
    alignments: Dict[str, np.ndarray],
    run_id=None,
    diverged_at=None,
):
    """Write the tidy table of a run's rules: ``settings[rule]`` is a dict of
    setting columns (a list of K for an ensemble), ``losses[rule]`` and
    ``alignments[rule]`` the per-trial curves ((trials,) or (K, trials)), and
    ``diverged_at[rule]`` (K,) for an ensemble (a row per network and trial)."""
    rules = list(losses)
    n = {np.shape(v)[-1] for v in losses.values()} | {np.shape(v)[-1] for v in alignments.values()}
    if len(n) != 1:
        raise ValueError("every curve must have one value per trial")
    rows = [
        s for r in rules for s in (settings[r] if isinstance(settings[r], list) else [settings[r]])
    ]
    cols = tidy_columns(
        rows,
        range(len(rows)),
        np.concatenate([np.atleast_2d(losses[r]) for r in rules]),
        np.concatenate([np.atleast_2d(alignments[r]) for r in rules]),
        diverged_at=None
        if diverged_at is None
        else np.concatenate([np.atleast_1d(diverged_at[r]) for r in rules]),
    )
    if run_id is not None:
        cols["run_id"] = [str(run_id)] * len(cols["trial"])
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = list(cols)
    w.writerow(names)
    w.writerows(zip(*(_column_text(cols[c]) for c in names)))
    return _write_text(path, buf.getvalue())


def _cell(v):
    """One value as the table writes it (a float exactly, NaN and None empty)."""
    return (
        ""
        if v is None or (isinstance(v, float) and np.isnan(v))
        else repr(float(v))
        if isinstance(v, (float, np.floating))
        else json.dumps(v)
        if isinstance(v, (list, dict))
        else v
    )


def _column_text(values):
    """A column's cells as :func:`_cell` writes them, formatted once per
    distinct value (a setting repeats on every row) or per array."""
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        return ["" if x != x else repr(x) for x in values.tolist()]
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        return values.tolist()
    memo, by_id, out = {}, {}, []
    last, text = object(), None
    for v in values:
        if v is not last:  # a setting's column repeats one object down its rule's rows
            last = v
            try:
                key = (type(v), v)
                text = memo[key] if key in memo else memo.setdefault(key, _cell(v))
            except TypeError:  # unhashable: a list or a dict
                text = by_id.get(id(v))
                if text is None:
                    text = by_id[id(v)] = _cell(v)
        out.append(text)
    return out


def read_curves(path):
    """``(losses, alignments)`` dicts of numpy arrays (per rule) from a
    ``results.csv`` (tidy; or the wide table of rflo 0.1): (trials,) per rule,
    or (K, trials) for the K networks of an ensemble."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ValueError(f"{path}: empty; not an rflo results.csv")
    header = rows[0]
    if header[:1] == ["trial"]:
        return _read_wide(path, rows)
    need = ("rule", "point", "trial", "loss", "alignment")
    if any(c not in header for c in need):
        raise ValueError(f"{path}: not an rflo results.csv (needs columns {', '.join(need)})")
    at = {c: header.index(c) for c in need}
    losses, aligns = {}, {}
    try:
        for r in rows[1:]:
            if len(r) != len(header):
                raise ValueError(f"a row has {len(r)} values for {len(header)} columns")
            key = (r[at["rule"]], int(r[at["point"]]))
            losses.setdefault(key, []).append(float(r[at["loss"]] or "nan"))
            aligns.setdefault(key, []).append(float(r[at["alignment"]] or "nan"))
        out = ({}, {})
        for i, curves in enumerate((losses, aligns)):
            for rule in dict.fromkeys(k[0] for k in curves):
                mine = [np.asarray(v) for k, v in curves.items() if k[0] == rule]
                out[i][rule] = mine[0] if len(mine) == 1 else np.stack(mine)
    except ValueError as exc:
        raise ValueError(f"{path}: malformed row ({exc})") from None
    return out


def _read_wide(path, rows):
    header = rows[0]
    if header[-1] == "run_id":
        header = header[:-1]
        rows = [header] + [r[:-1] for r in rows[1:]]
    try:
        data = np.array([[float(v) for v in r] for r in rows[1:]], dtype=float).reshape(
            -1, len(header)
        )
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
