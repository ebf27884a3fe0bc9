"""Sweeps: many networks over a grid of settings, on every core, a GPU or a
Slurm cluster, resumable chunk by chunk, into one tidy table.

::

    from rflo.sweep import Sweep

    sweep = Sweep.from_toml("sweep.toml")        # or Sweep.from_dict({...})
    print(sweep.plan())                          # the chunks (compiled calls)
    table = sweep.run("runs/my-sweep")           # a pyarrow.Table; .to_pandas()

The spec format is in :mod:`rflo.sweep.spec`, the folder's layout in
:mod:`rflo.sweep.folder`, the backends in :mod:`rflo.sweep.backends`, the
table's columns in :mod:`rflo.sweep.table`.  Needs the ``sweep`` extra
(``pip install 'rflo[sweep]'``: pyarrow, submitit).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

from rflo.sweep.folder import load_folder_spec, prepare_folder, status
from rflo.sweep.plan import Chunk, check_plan, make_plan
from rflo.sweep.spec import SweepSpec, read_spec, spec_from_dict
from rflo.sweep.table import collect, plot, summarize, write_table

__all__ = [
    "Sweep",
    "SweepSpec",
    "Chunk",
    "make_plan",
    "status",
    "collect",
    "plot",
    "summarize",
    "write_table",
    "load_networks",
]


class Sweep:
    """A sweep: its spec and what can be done with it."""

    def __init__(self, spec: SweepSpec):
        if not isinstance(spec, SweepSpec):
            raise ValueError(
                "Sweep takes a SweepSpec; use Sweep.from_toml(path) or Sweep.from_dict({...})"
            )
        self.spec = spec

    @classmethod
    def from_toml(cls, path) -> "Sweep":
        return cls(read_spec(path))

    @classmethod
    def from_dict(cls, data: dict) -> "Sweep":
        return cls(spec_from_dict(data))

    @classmethod
    def from_folder(cls, folder) -> "Sweep":
        """The sweep whose results are in ``folder``."""
        return cls(load_folder_spec(folder))

    def plan(self, check: bool = False) -> list:
        """The chunks, each one compiled call of at most ``max_networks`` networks
        (``check``: also check every chunk's settings, as :meth:`run` does)."""
        chunks = make_plan(self.spec)
        if check:
            check_plan(self.spec, chunks)
        return chunks

    def run(
        self,
        out,
        backend: Optional[str] = None,
        devices: Optional[int] = None,
        overwrite: bool = False,
        wait: bool = True,
        compile_cache: bool = False,
        log=None,
    ):
        """Run the chunks of ``out`` that are not finished; return the table.

        backend : ``local`` (default: the spec's), ``slurm`` or ``submitit_local``.
        devices : JAX devices to split each chunk over: ``"auto"`` (every device
            JAX has: the GPUs, or the host devices of a CPU) or a number
            (default: the spec's).
        overwrite : replace another sweep's results in ``out``.
        wait : for slurm backends, wait for the jobs (else return them).
        compile_cache : keep JAX's compiled programs in ``out/jax-cache`` while
            the sweep runs (JAX's settings are restored after; the command line
            and jobs do this).
        log : ``fn(str)`` for progress lines (default: none).
        """
        from rflo.files import RunLock
        from rflo.sweep.backends import compile_cache as cache_in
        from rflo.sweep.backends import resolve_devices, run_local, run_submitit
        from rflo.sweep.spec import BACKENDS
        from rflo.sweep.store import DAMAGED, DONE, chunk_state

        backend = backend or self.spec.backend["name"]
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        devices = devices or self.spec.backend["devices"]
        if devices != "auto" and (not isinstance(devices, int) or devices < 1):
            raise ValueError(f"devices must be 'auto' or an integer >= 1, got {devices!r}")
        if backend == "local":
            devices = resolve_devices(devices)
        log = log or (lambda msg: None)
        from rflo.sweep.table import _pyarrow

        _pyarrow()
        if backend != "local":
            try:
                import submitit  # noqa: F401
            except ImportError:
                raise ValueError(
                    f"the {backend} backend needs submitit: pip install 'rflo[sweep]'"
                ) from None
        plan = self.plan()
        check_plan(self.spec, plan)
        out = Path(out)
        with RunLock(out):
            prepare_folder(out, self.spec, overwrite=overwrite)
            states = {c.id: chunk_state(out, c.id) for c in plan}
            todo = [c for c in plan if states[c.id][0] != DONE]
            for c in todo:
                if states[c.id][0] == DAMAGED:
                    log(f"chunk {c.id} is damaged, so it runs again: {states[c.id][1]}")
            log(
                f"{len(plan) - len(todo)} of {len(plan)} chunks already done; "
                f"running {len(todo)} ({backend}, devices: {devices})"
            )
            with cache_in(out) if compile_cache else contextlib.nullcontext():
                if backend == "local":
                    failed = run_local(out, self.spec, todo, devices, log)
                else:
                    failed = run_submitit(out, self.spec, todo, backend, devices, wait, log)
            if backend != "local" and not wait:
                return failed
        if failed:
            raise RuntimeError(
                f"{len(failed)} of {len(plan)} chunks failed (tracebacks in "
                f"{out / 'failed'}); the others are written. Run again to retry "
                f"them: rflo sweep run {out}"
            )
        return collect(out)


def load_networks(folder) -> dict:
    """``{point index: Network}``: every trained network of a sweep folder
    (of its written chunks; ValueError naming a chunk whose networks do not
    read back, and the fix)."""
    from rflo.sweep.store import chunk_paths, read_chunk_networks

    out = {}
    for c in make_plan(load_folder_spec(folder)):
        if chunk_paths(folder, c.id)[0].exists():  # its table is written last
            out.update(read_chunk_networks(folder, c.id))
    return dict(sorted(out.items()))
