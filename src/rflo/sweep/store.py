"""A sweep chunk's files: writing them, reading them back, and telling
whether they do.

Files, written atomically (networks first, then the table)::

    DIR/networks/<id>.npz    the trained networks, stacked (leading axis: the
                             chunk's points; ``point`` holds their indices)
    DIR/chunks/<id>.parquet  the chunk's rows of the sweep table

A chunk is done when both read back: its table as parquet with a row per
point and recorded block, its networks as plain-data npz, one per point.  A
chunk whose files are there but do not read back (truncated by a full disk, a
copy cut short, garbage) is *damaged*: ``status`` says so, ``run`` trains it
again and ``collect`` names it with that fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from rflo.sweep.spec import SweepSpec

__all__ = [
    "chunk_paths",
    "chunk_state",
    "chunk_done",
    "column_types",
    "text_columns",
    "table_settings",
    "write_chunk",
    "read_chunk",
    "read_chunk_table",
    "read_chunk_networks",
    "STATES",
    "DONE",
    "DAMAGED",
    "FAILED",
    "MISSING",
]

#: a chunk's states (:func:`chunk_state`)
DONE, DAMAGED, FAILED, MISSING = "done", "damaged", "failed", "missing"
STATES = (DONE, FAILED, MISSING, DAMAGED)

_FLOATS = ("loss", "alignment", "accuracy", "final_loss")


def chunk_paths(folder, chunk_id) -> Tuple[Path, Path]:
    """``(table, networks)``: the chunk's two files."""
    folder = Path(folder)
    return folder / "chunks" / f"{chunk_id}.parquet", folder / "networks" / f"{chunk_id}.npz"


def chunk_state(folder, chunk_id) -> Tuple[str, Optional[str]]:
    """``(state, why)``: ``done`` (both files read back), ``damaged`` (its table
    is written but a file does not read back; ``why`` says which and how),
    ``failed`` (its last run left a traceback in ``DIR/failed``) or ``missing``."""
    table, nets = chunk_paths(folder, chunk_id)
    if table.exists():
        try:
            read_chunk(folder, chunk_id)
        except ValueError as exc:
            return DAMAGED, str(exc)
        return DONE, None
    if (Path(folder) / "failed" / f"{chunk_id}.txt").exists():
        return FAILED, None
    return MISSING, None


def chunk_done(folder, chunk_id) -> bool:
    """Whether the chunk is written and reads back (:func:`chunk_state`)."""
    return chunk_state(folder, chunk_id)[0] == DONE


def column_types(spec: SweepSpec) -> dict:
    """The arrow type of each grid column, from every value the spec gives it
    (so that every chunk's table has the same schema)."""
    import pyarrow as pa

    types = {}
    text = text_columns(spec)
    for name, column in zip(spec.columns(), spec.table_columns()):
        values = spec.task_grid[name[4:]] if name.startswith("set.") else spec.grid[name]
        values = [v for v in values if v is not None]
        types[column] = (
            pa.string() if name in text else pa.array(values).type if values else pa.null()
        )
    for k in _FLOATS:
        types[k] = pa.float64()
    return types


def text_columns(spec: SweepSpec) -> set:
    """The grid columns with a value by parameter name (a table, e.g.
    ``optimizer_rate = {w_in = 0.1, w_out = 0.005}``): the table holds every
    value of them as JSON text, as ``rflo train``'s ``results.csv`` does."""
    return {k for k, v in spec.grid.items() if any(isinstance(x, dict) for x in v)}


def table_settings(spec: SweepSpec, points, net=None) -> list:
    """Grid points' settings as their table rows hold them (one dict by column
    name per point); for a named network (``network``), the ``cell``,
    ``units`` and (one) ``tau`` of its initial network ``net``, which it
    decides.  The spec's columns are read once for all the points."""
    text = text_columns(spec)
    pairs = list(zip(spec.columns(), spec.table_columns()))
    decided = {}
    if net is not None and any(p.get("network") is not None for p in points):
        decided = dict(cell=net.cell.name, units=int(net.n_rec))
        if net.tau is not None and np.ndim(net.tau) == 0:  # a cell that owns its synapses has none
            decided["tau"] = float(net.tau)
    rows = []
    for point in points:
        out = {
            column: json.dumps(point[name])
            if name in text and point[name] is not None
            else point[name]
            for name, column in pairs
        }
        if point.get("network") is not None:
            out.update(decided)
        rows.append(out)
    return rows


def write_chunk(folder, chunk, spec: SweepSpec, columns: dict, networks, seconds: float):
    """Write a chunk's networks, then its rows (each atomically)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rflo.files import atomic_write
    from rflo.io import network_arrays

    table_path, nets_path = chunk_paths(folder, chunk.id)
    arrays = network_arrays(networks)
    arrays["point"] = np.asarray(chunk.index, np.int64)
    arrays["format"] = np.asarray(1)

    def write_nets(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    atomic_write(nets_path, write_nets)
    types = column_types(spec)
    columns = {
        k: pa.array(v, type=types.get(k), from_pandas=k in _FLOATS) for k, v in columns.items()
    }  # NaN (no value) is stored as null
    table = pa.table(columns).replace_schema_metadata({"seconds": f"{seconds:.3f}"})

    def write_table(tmp):
        pq.write_table(table, tmp, compression="zstd")

    atomic_write(table_path, write_table)


def _damaged(path, why) -> ValueError:
    folder = path.parent.parent
    return ValueError(
        f"{path} does not read back ({why}): the chunk is damaged; "
        f"rflo sweep run {folder} trains it again"
    )


def read_chunk(folder, chunk_id):
    """The rows of a chunk whose table and networks both read back; ValueError
    naming the damaged file and the fix otherwise."""
    table = read_chunk_table(folder, chunk_id)
    read_chunk_networks(folder, chunk_id)
    return table


def read_chunk_table(folder, chunk_id):
    """The chunk's rows (a ``pyarrow.Table`` without metadata); ValueError
    naming the file and the fix when it does not read back."""
    import pyarrow.parquet as pq

    path, _ = chunk_paths(folder, chunk_id)
    try:
        table = pq.read_table(path).replace_schema_metadata(None)
    except (OSError, ValueError, EOFError) as exc:  # ArrowInvalid is a ValueError
        raise _damaged(
            path, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        ) from None
    for column in ("point", "trial", "chunk"):
        if column not in table.column_names:
            raise _damaged(path, f"no {column!r} column")
    if table.num_rows == 0 or set(table.column("chunk").to_pylist()) != {chunk_id}:
        raise _damaged(path, "its rows are not this chunk's")
    return table


def read_chunk_networks(folder, chunk_id) -> dict:
    """``{point index: Network}`` of a written chunk; ValueError naming the
    file and the fix when it does not read back."""
    from rflo.files import read_npz
    from rflo.io import network_keys, networks_from_stacked_arrays

    _, path = chunk_paths(folder, chunk_id)
    if not path.is_file():
        raise _damaged(path, "the file is missing")
    try:
        arrays = read_npz(path, names=lambda k: k == "point" or network_keys(k))
        points = arrays.pop("point", None)
        if points is None or points.ndim != 1 or points.dtype.kind not in "iu":
            raise ValueError(f"{path}: 'point' must be a list of integers")
        nets = networks_from_stacked_arrays(arrays, path)
        if len(nets) != len(points):
            raise ValueError(f"{path}: {len(nets)} networks for {len(points)} points")
    except ValueError as exc:
        raise _damaged(path, str(exc).removeprefix(f"{path}: ")) from None
    return dict(zip(points.tolist(), nets))
