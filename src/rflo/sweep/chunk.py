"""Training one chunk of a sweep and writing its results (a table and its networks).

A chunk is one ensemble of networks trained through a
:meth:`rflo.session.Session.for_networks` session: its lanes are networks
that differ in seed and learning rates only.  With ``devices > 1`` the lanes
are split evenly over that many JAX devices (host devices on a CPU, from
``XLA_FLAGS=--xla_force_host_platform_device_count=N``; GPUs), each part a
session of its own run from its own thread so that the devices compute at
once, all stopped by one SIGINT/SIGTERM.  Each lane's arithmetic is the same
wherever it runs, so the weights do not depend on the device count.

Given a work folder (``run`` gives each chunk ``DIR/work/<id>``), each part
keeps its checkpoint there (``partD-of-N/checkpoint/RULE.npz``, about every
30 s and on SIGINT/SIGTERM), so a killed chunk goes on from it when run again
with the same device count; the folder is removed once the chunk's files are
written (:mod:`rflo.sweep.store`).
"""

from __future__ import annotations

import contextlib
import contextvars
import signal
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from rflo.results import MEASURE_COLUMNS
from rflo.sweep.plan import Chunk
from rflo.sweep.points import build_point, point_rates, point_spec
from rflo.sweep.spec import SweepSpec
from rflo.sweep.store import (  # noqa: F401  (importable from here, as before)
    chunk_done,
    read_chunk_networks,
    table_settings,
    write_chunk,
)

__all__ = [
    "MEASURES",
    "train_chunk",
    "write_chunk",
    "chunk_done",
    "read_chunk_networks",
    "work_folder",
    "chunk_work",
]

#: the table's measured columns (after the grid's): the library's tidy format
#: (:data:`rflo.results.MEASURE_COLUMNS`) and the chunk that wrote the row
MEASURES = MEASURE_COLUMNS + ("chunk",)

#: the work folder of the chunk trained in this context (:func:`chunk_work`)
_WORK = contextvars.ContextVar("rflo_sweep_chunk_work", default=None)


def work_folder(folder, chunk_id) -> Path:
    """Where a sweep's chunk keeps its checkpoints while it trains."""
    return Path(folder) / "work" / chunk_id


@contextlib.contextmanager
def chunk_work(work):
    """Within the block, :func:`train_chunk` keeps its checkpoints in ``work``
    (as its ``work`` argument says; how :func:`rflo.sweep.backends.run_one`
    gives it one without changing its call)."""
    token = _WORK.set(work)
    try:
        yield
    finally:
        _WORK.reset(token)


def _lanes(points, n):
    """``points`` padded to ``n`` lanes by repeating the last (dropped afterwards)."""
    return list(points) + [points[-1]] * (n - len(points))


def train_chunk(chunk: Chunk, spec: SweepSpec, devices: int = 1, work=None):
    """Train a chunk's networks (checkpointed in ``work`` when given, else in
    the folder :func:`chunk_work` set, else in memory).

    Returns ``(columns, networks, seconds)``: the chunk's table rows as a dict
    of numpy columns, the trained networks stacked (one per point, in order)
    and the wall time.  SIGINT raises KeyboardInterrupt and SIGTERM SystemExit
    once every part has saved its checkpoint.
    """
    import jax

    from rflo.session import Interrupted, NoStop, Session, StopRequest, draw_network
    from rflo.sweep.devices import resolve_devices

    t0 = time.perf_counter()
    work = _WORK.get() if work is None else work
    first = chunk.points[0]
    built = build_point(first)
    task, cell, _ = built
    n_dev = max(1, min(int(devices), chunk.lanes))
    lanes = _lanes(chunk.points, -(-chunk.lanes // n_dev) * n_dev)
    run = point_spec(first, spec.trials)  # the settings the chunk's lanes share
    nets = [draw_network(run, task, cell, p["seed"]) for p in lanes]
    per = len(lanes) // n_dev
    found = jax.devices()[: resolve_devices(n_dev)]

    def part(d, stop):
        sub = lanes[d * per : (d + 1) * per]
        where = None if work is None else Path(work) / f"part{d}-of-{n_dev}"
        session = Session.for_networks(
            run,
            nets[d * per : (d + 1) * per],
            seeds=[p["seed"] for p in sub],
            lr=point_rates(sub, nets[0]),  # by name (a cell's own synapses by role)
            work=where,
            run_id=f"{chunk.id}.{d}-of-{n_dev}",
            built=built,
        )
        with jax.default_device(found[d]):
            return session.result(session.run(stop=stop)[run.rule])

    stopper = StopRequest() if work is not None else contextlib.nullcontext(NoStop())
    with warnings.catch_warnings(), stopper as stop:
        warnings.simplefilter("ignore", RuntimeWarning)  # divergence is data (diverged_at)
        try:
            if n_dev == 1:
                results = [part(0, stop)]
            else:
                with ThreadPoolExecutor(n_dev) as pool:
                    results = list(pool.map(part, range(n_dev), [stop] * n_dev))
        except Interrupted as exc:
            if stop.signum == signal.SIGINT:
                raise KeyboardInterrupt(str(exc)) from None
            raise SystemExit(stop.status) from None
    k = len(chunk.points)
    loss = np.concatenate([r.loss for r in results])[:k]
    align = np.concatenate([r.alignment for r in results])[:k]
    acc = None if results[0].accuracy is None else np.concatenate([r.accuracy for r in results])[:k]
    diverged = np.concatenate([r.diverged_at for r in results])[:k]
    # the parts' trained networks, checked when they went in: joined, not checked again
    trained = jax.tree_util.tree_map(
        lambda *a: np.concatenate(a)[:k], *[r.networks for r in results]
    )
    columns = _rows(chunk, spec, loss, align, acc, diverged, nets[0])
    return columns, trained, time.perf_counter() - t0


def _rows(chunk, spec, loss, align, acc, diverged, net):
    from rflo.results import tidy_columns

    settings = table_settings(spec, chunk.points, net)
    cols = tidy_columns(settings, chunk.index, loss, align, acc, diverged, spec.record_every)
    cols["chunk"] = [chunk.id] * len(cols["trial"])
    return cols
