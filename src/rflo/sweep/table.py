"""The sweep table: one row per grid point and recorded block of trials.

Columns: every grid column (``rule``, ``task``, ``set.<param>``, ``cell``,
``derivative``, ``loss_function`` (the spec's ``loss``), ...,
``lr_in``, ``lr_rec``, ``lr_out``, ..., ``seed``), then

=============  ===========================================================
``point``      the grid point's index (grid order, seed fastest)
``trial``      trials done at the end of the block
``loss``       mean per-trial loss over the block
``alignment``  mean cosine of vec(b^T) and vec(w_out) over the block
``accuracy``   mean fraction correct over the block (null: no metric)
``diverged_at``trial at which the network diverged and was frozen, or 0
``final_loss`` the loss of the point's last block (on each of its rows)
``chunk``      the id of the chunk that trained it
=============  ===========================================================

A value that does not exist (no accuracy metric, a block without a finite
loss) is null (NaN in pandas).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from rflo.mpl_backend import backend_needed, use_headless_backend  # noqa: F401  (backend_needed: here before)
from rflo.results import MEASURE_COLUMNS

__all__ = ["collect", "write_table", "summarize", "plot", "pooled_columns"]


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("sweep tables need pyarrow: pip install 'rflo[sweep]'") from None
    return pa, pq


def collect(folder, path=None):
    """The table of every finished chunk in ``folder`` (a ``pyarrow.Table``,
    rows in grid order), written to ``path`` (``.parquet`` or ``.csv``) if given.
    Warns when chunks are still missing, and names each damaged one (written
    but not readable back) with the fix."""
    from rflo.sweep.folder import load_folder_spec
    from rflo.sweep.plan import make_plan
    from rflo.sweep.store import chunk_paths, read_chunk

    pa, pq = _pyarrow()
    if path is not None:
        _table_format(path)
    folder = Path(folder)
    plan = make_plan(load_folder_spec(folder))
    parts, missing, damaged = [], 0, []
    for c in plan:
        if not chunk_paths(folder, c.id)[0].exists():
            missing += 1
            continue
        try:
            parts.append(read_chunk(folder, c.id))
        except ValueError as exc:
            damaged.append(str(exc))
    if missing:
        warnings.warn(
            f"{missing} of {len(plan)} chunks are not finished; the table holds the "
            "others (rflo sweep run DIR runs the rest)",
            UserWarning,
            stacklevel=2,
        )
    for why in damaged:
        warnings.warn(f"left out of the table: {why}", UserWarning, stacklevel=2)
    if not parts:
        raise ValueError(f"{folder}: no finished chunks yet; run it with rflo sweep run {folder}")
    table = pa.concat_tables(parts).sort_by([("point", "ascending"), ("trial", "ascending")])
    if path is not None:
        write_table(table, path)
    return table


def write_table(table, path):
    """Write ``table`` atomically as parquet (zstd) or CSV, by ``path``'s suffix."""
    from rflo.files import atomic_write

    pa, pq = _pyarrow()
    path = Path(path)
    if _table_format(path) == ".csv":
        import pyarrow.csv as pcsv

        atomic_write(path, lambda tmp: pcsv.write_csv(table, tmp))
    else:
        atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    return path


def _table_format(path) -> str:
    """``.parquet`` or ``.csv``, from ``path``'s suffix (anything else is refused)."""
    suffix = Path(path).suffix
    if suffix not in (".parquet", ".csv"):
        raise ValueError(f"write the table as .parquet or .csv, got {Path(path).name!r}")
    return suffix


def _columns(table):
    return table if isinstance(table, dict) else table.to_pydict()


def summarize(table, x, y="final_loss", hue="rule"):
    """Median and 25-75 % of ``y`` over networks, per ``(hue, x)``.

    ``y`` a per-network column (``final_loss``, ``diverged_at``) or ``x ==
    "trial"``: one value per network and x; otherwise the rows of the last
    recorded block.  Returns ``{hue value: (xs, median, q25, q75, n)}``.
    """
    cols = _columns(table)
    for name in (x, y, hue):
        if name is not None and name not in cols:
            raise ValueError(f"no column {name!r} in the table; columns: {', '.join(cols)}")
    trial = np.asarray(cols["trial"])
    keep = np.ones(len(trial), bool) if x == "trial" else trial == _last_trial(cols)
    xs = np.asarray(cols[x], dtype=object)[keep]
    ys = np.asarray([np.nan if v is None else v for v in cols[y]], dtype=float)[keep]
    hues = (
        np.asarray(cols[hue], dtype=object)[keep]
        if hue is not None
        else np.full(keep.sum(), "all", dtype=object)
    )
    out = {}
    for h in dict.fromkeys(hues.tolist()):
        sel = hues == h
        values = sorted(dict.fromkeys(xs[sel].tolist()), key=_sort_key)
        med, lo, hi, n = [], [], [], []
        for v in values:
            part = ys[sel & (xs == v)]
            part = part[np.isfinite(part)]
            n.append(part.size)
            q = np.quantile(part, [0.5, 0.25, 0.75]) if part.size else [np.nan] * 3
            med.append(q[0]), lo.append(q[1]), hi.append(q[2])
        out[h] = (values, np.array(med), np.array(lo), np.array(hi), np.array(n))
    return out


#: columns that are not settings (and the seed, which a summary always pools)
_MEASURED = MEASURE_COLUMNS + ("chunk", "run_id", "seed")


def pooled_columns(table, shown) -> list:
    """Settings that vary in ``table`` but are not ``shown`` (nor the seed):
    a summary over networks pools their values."""
    cols = _columns(table)
    return [
        k
        for k, v in cols.items()
        if k not in _MEASURED and k not in shown and len(set(map(str, v))) > 1
    ]


def _last_trial(cols):
    """Per row, the last recorded trial of its point."""
    point, trial = np.asarray(cols["point"]), np.asarray(cols["trial"])
    last = {}
    for p, t in zip(point.tolist(), trial.tolist()):
        last[p] = max(t, last.get(p, t))
    return np.array([last[p] for p in point.tolist()])


def _sort_key(v):
    return (
        (0, float(v), "")
        if isinstance(v, (int, float)) and not isinstance(v, bool)
        else (1, 0.0, str(v))
    )


def plot(table, x, y="final_loss", hue="rule", path=None, title=None):
    """Median of ``y`` against ``x`` with 25-75 % bands, a line per ``hue``
    value; saved to ``path`` if given.  Returns the matplotlib figure."""
    use_headless_backend()
    import matplotlib.pyplot as plt

    from rflo.style import rule_label, rule_style

    stats = summarize(table, x, y, hue)
    fig, ax = plt.subplots(figsize=(6, 4))
    numeric = all(
        isinstance(v, (int, float)) and not isinstance(v, bool)
        for s in stats.values()
        for v in s[0]
    )
    for h, (xs, med, lo, hi, _n) in stats.items():
        style = rule_style(h) if hue == "rule" else {}
        pos = np.asarray(xs, float) if numeric else np.arange(len(xs))
        (line,) = ax.plot(
            pos,
            med,
            marker="o" if len(xs) < 30 else None,
            label=rule_label(h) if hue == "rule" else str(h),
            color=style.get("color"),
            linestyle=style.get("linestyle", "-"),
        )
        ax.fill_between(pos, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    if not numeric:
        labels = next(iter(stats.values()))[0]
        ax.set_xticks(np.arange(len(labels)), [str(v) for v in labels])
    elif all(float(v) > 0 for s in stats.values() for v in s[0]):
        vals = [float(v) for s in stats.values() for v in s[0]]
        if max(vals) / min(vals) >= 10:
            ax.set_xscale("log")
    finite = [v for s in stats.values() for v in s[1] if np.isfinite(v)]
    if finite and min(finite) > 0:
        ax.set_yscale("log")
    per = int(max(s[4].max() for s in stats.values())) if stats else 0
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    pooled = pooled_columns(table, (x, hue))
    ax.set_title(
        title
        or f"{y}: median and 25-75 % over networks (up to {per} per point)"
        + (f"\npooled over {', '.join(pooled)}" if pooled else ""),
        fontsize=9,
    )
    if hue is not None:
        ax.legend(title=hue, fontsize=8)
    fig.tight_layout()
    if path is not None:
        from rflo.files import atomic_write

        atomic_write(
            path, lambda tmp: fig.savefig(tmp, format=Path(path).suffix[1:] or "png", dpi=120)
        )
    return fig
