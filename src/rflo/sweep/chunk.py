"""Training one chunk of a sweep and writing its results (a table and its networks).

A chunk is one :func:`rflo.train_ensemble` call: its lanes are networks that
differ in seed and learning rates only.  With ``devices > 1`` the lanes are
split evenly over that many JAX devices (host devices on a CPU, from
``XLA_FLAGS=--xla_force_host_platform_device_count=N``; GPUs), each part run
from its own thread so that the devices compute at once.  Each lane's
arithmetic is the same wherever it runs, so the weights do not depend on the
device count.

Its files (the table and the networks) are written and read back by
:mod:`rflo.sweep.store`.
"""

from __future__ import annotations

import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rflo.results import MEASURE_COLUMNS
from rflo.sweep.plan import Chunk
from rflo.sweep.points import build_point, point_rates, point_spec
from rflo.sweep.spec import SweepSpec
from rflo.sweep.store import (  # noqa: F401  (importable from here, as before)
    chunk_done,
    read_chunk_networks,
    write_chunk,
)

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
