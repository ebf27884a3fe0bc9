"""Training one chunk of a sweep and writing its results (a table and its networks).

A chunk is one :func:`rflo.train_ensemble` call: its lanes are networks that
differ in seed and learning rates only.  With ``devices > 1`` the lanes are
split evenly over that many JAX devices (host devices on a CPU, from
``XLA_FLAGS=--xla_force_host_platform_device_count=N``; GPUs), each part run
from its own thread so that the devices compute at once.  Each lane's
arithmetic is the same wherever it runs, so the weights do not depend on the
device count.

Files, written atomically (networks first, then the table, whose presence
marks the chunk done)::

    DIR/networks/<id>.npz    the trained networks, stacked (leading axis: the
                             chunk's points; ``point`` holds their indices)
    DIR/chunks/<id>.parquet  the chunk's rows of the sweep table
"""

from __future__ import annotations

import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from rflo.results import MEASURE_COLUMNS
from rflo.sweep.plan import Chunk
from rflo.sweep.points import build_point, point_rates, point_spec
from rflo.sweep.spec import SweepSpec

__all__ = ["MEASURES", "train_chunk", "write_chunk", "chunk_done", "read_chunk_networks"]

#: the table's measured columns (after the grid's): the library's tidy format
#: (:data:`rflo.results.MEASURE_COLUMNS`) and the chunk that wrote the row
MEASURES = MEASURE_COLUMNS + ("chunk",)


def _lanes(points, n):
    """``points`` padded to ``n`` lanes by repeating the last (dropped afterwards)."""
    return list(points) + [points[-1]] * (n - len(points))


def train_chunk(chunk: Chunk, spec: SweepSpec, devices: int = 1):
    """Train a chunk's networks.

    Returns ``(columns, networks, seconds)``: the chunk's table rows as a dict
    of numpy columns, the trained networks stacked (one per point, in order)
    and the wall time.
    """
    import jax

    from rflo.ensemble import stack_networks, train_ensemble, unstack_networks
    from rflo.session import draw_network
    from rflo.sweep.devices import resolve_devices

    t0 = time.perf_counter()
    first = chunk.points[0]
    task, cell, optimizer = build_point(first)
    n_dev = max(1, min(int(devices), chunk.lanes))
    lanes = _lanes(chunk.points, -(-chunk.lanes // n_dev) * n_dev)
    run = point_spec(first, spec.trials)  # the settings the chunk's lanes share
    nets = [draw_network(run, task, cell, p["seed"]) for p in lanes]
    per = len(lanes) // n_dev
    found = jax.devices()[:resolve_devices(n_dev)]

    def part(d):
        sub = lanes[d * per:(d + 1) * per]
        lr = point_rates(sub, nets[0])  # by name (a cell's own synapses by role)
        with jax.default_device(found[d]):
            return train_ensemble(
                stack_networks(nets[d * per:(d + 1) * per]), task, run.rule,
                trials=run.trials, lr=lr, online=run.online, optimizer=optimizer,
                dtype=run.dtype, seeds=[p["seed"] for p in sub], batch=run.batch,
                loss=run.loss, max_loss_growth=run.max_loss_growth)

    with warnings.catch_warnings():  # divergence is data here (the diverged_at column)
        warnings.simplefilter("ignore", RuntimeWarning)
        if n_dev == 1:
            results = [part(0)]
        else:
            with ThreadPoolExecutor(n_dev) as pool:
                results = list(pool.map(part, range(n_dev)))
    k = len(chunk.points)
    loss = np.concatenate([r.loss for r in results])[:k]
    align = np.concatenate([r.alignment for r in results])[:k]
    acc = (None if results[0].accuracy is None
           else np.concatenate([r.accuracy for r in results])[:k])
    diverged = np.concatenate([r.diverged_at for r in results])[:k]
    trained = stack_networks([n for r in results for n in unstack_networks(r.networks)][:k])
    columns = _rows(chunk, spec, loss, align, acc, diverged)
    return columns, trained, time.perf_counter() - t0


def _rows(chunk, spec, loss, align, acc, diverged):
    from rflo.results import tidy_columns

    settings = [{column: p[name] for name, column in zip(spec.columns(), spec.table_columns())}
                for p in chunk.points]
    cols = tidy_columns(settings, chunk.index, loss, align, acc, diverged, spec.record_every)
    cols["chunk"] = [chunk.id] * len(cols["trial"])
    return cols


_FLOATS = ("loss", "alignment", "accuracy", "final_loss")


def _paths(folder, chunk_id):
    folder = Path(folder)
    return folder / "chunks" / f"{chunk_id}.parquet", folder / "networks" / f"{chunk_id}.npz"


def chunk_done(folder, chunk_id) -> bool:
    """Whether the chunk's table is written (its networks are written first)."""
    return _paths(folder, chunk_id)[0].exists()


def column_types(spec: SweepSpec) -> dict:
    """The arrow type of each grid column, from every value the spec gives it
    (so that every chunk's table has the same schema)."""
    import pyarrow as pa

    types = {}
    for name, column in zip(spec.columns(), spec.table_columns()):
        values = (spec.task_grid[name[4:]] if name.startswith("set.") else spec.grid[name])
        values = [v for v in values if v is not None]
        types[column] = pa.array(values).type if values else pa.null()
    for k in _FLOATS:
        types[k] = pa.float64()
    return types


def write_chunk(folder, chunk: Chunk, spec: SweepSpec, columns: dict, networks, seconds: float):
    """Write a chunk's networks, then its rows (each atomically)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rflo.files import atomic_write
    from rflo.io import network_arrays

    table_path, nets_path = _paths(folder, chunk.id)
    arrays = network_arrays(networks)
    arrays["point"] = np.asarray(chunk.index, np.int64)
    arrays["format"] = np.asarray(1)

    def write_nets(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    atomic_write(nets_path, write_nets)
    types = column_types(spec)
    columns = {k: pa.array(v, type=types.get(k), from_pandas=k in _FLOATS)
               for k, v in columns.items()}  # NaN (no value) is stored as null
    table = pa.table(columns).replace_schema_metadata({"seconds": f"{seconds:.3f}"})

    def write_table(tmp):
        pq.write_table(table, tmp, compression="zstd")

    atomic_write(table_path, write_table)


def read_chunk_networks(folder, chunk_id) -> dict:
    """``{point index: Network}`` of a written chunk."""
    from rflo.files import read_npz
    from rflo.io import network_keys, networks_from_stacked_arrays

    _, path = _paths(folder, chunk_id)
    arrays = read_npz(path, names=lambda k: k == "point" or network_keys(k))
    points = arrays.pop("point")
    if points.ndim != 1 or points.dtype.kind not in "iu":
        raise ValueError(f"{path}: 'point' must be a list of integers")
    return dict(zip(points.tolist(), networks_from_stacked_arrays(arrays, path)))
