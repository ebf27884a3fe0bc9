"""A sweep's folder: its spec, its chunks, what failed, and its status.

::

    DIR/sweep.toml          the spec (``rflo sweep run DIR`` resumes from it)
    DIR/chunks/<id>.parquet one per finished chunk (rows of the table)
    DIR/networks/<id>.npz   the chunk's trained networks (both: rflo.sweep.store)
    DIR/work/<id>/          a chunk's checkpoints while it trains (removed once it is written)
    DIR/failed/<id>.txt     the traceback of a chunk's last failure
    DIR/jobs/               submitit's job files and logs (slurm backends)
    DIR/jax-cache/          JAX's persistent compilation cache
    DIR/.lock               held by the process driving the sweep

A folder belongs to one sweep: running another spec into it is refused
(``overwrite=True`` removes the earlier sweep's results first).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rflo.sweep.spec import SweepSpec, read_spec, spec_toml

__all__ = ["SPEC_FILE", "load_folder_spec", "prepare_folder", "status"]

SPEC_FILE = "sweep.toml"
_PARTS = ("chunks", "networks", "failed", "jobs", "work")


def load_folder_spec(folder) -> SweepSpec:
    """The spec of the sweep in ``folder``."""
    path = Path(folder) / SPEC_FILE
    if not path.is_file():
        raise ValueError(
            f"{folder} is not a sweep folder (no {SPEC_FILE}); start one with "
            "rflo sweep run SPEC.toml --out DIR"
        )
    return read_spec(path)


def _identity(spec: SweepSpec) -> dict:
    data = spec.as_dict()
    data.pop("backend")
    return data


def prepare_folder(folder, spec: SweepSpec, overwrite=False) -> Path:
    """Make ``folder`` the home of ``spec``: a new folder, the same sweep again
    (resumed), or (``overwrite``) a folder whose earlier sweep is removed."""
    from rflo.files import atomic_write, remove_temporaries

    folder = Path(folder)
    path = folder / SPEC_FILE
    if path.is_file():
        try:
            same = _identity(read_spec(path)) == _identity(spec)
        except ValueError:
            same = False
        if not same:
            if not overwrite:
                raise ValueError(
                    f"{folder} holds another sweep (its {SPEC_FILE} differs); "
                    "choose another --out, or --overwrite to replace it"
                )
            for part in _PARTS:
                shutil.rmtree(folder / part, ignore_errors=True)
    elif folder.is_dir() and any(p.name != ".lock" for p in folder.iterdir()):
        if not overwrite:
            raise ValueError(
                f"{folder} is not empty and holds no sweep; choose a new or empty folder for --out"
            )
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("chunks", "networks"):
        if (folder / part).is_dir():
            remove_temporaries(folder / part)
    atomic_write(
        path,
        lambda tmp: Path(tmp).write_text(
            "# an rflo sweep: `rflo sweep run THIS_FOLDER` resumes it\n" + spec_toml(spec),
            encoding="utf-8",
        ),
    )
    return folder


def status(folder) -> dict:
    """``{"total", "done", "failed", "missing", "damaged", "networks", "chunks": [...]}``
    where each chunk is ``{"id", "networks", "state", "why"}``, its state
    done, failed, missing or damaged (written but does not read back; ``why``
    says what, else None): :func:`rflo.sweep.store.chunk_state`."""
    from rflo.sweep.plan import make_plan
    from rflo.sweep.store import STATES, chunk_state

    folder = Path(folder)
    plan = make_plan(load_folder_spec(folder))
    rows = []
    for c in plan:
        state, why = chunk_state(folder, c.id)
        rows.append({"id": c.id, "networks": len(c.points), "state": state, "why": why})
    count = {s: sum(r["state"] == s for r in rows) for s in STATES}
    return {
        "total": len(rows),
        **count,
        "networks": sum(r["networks"] for r in rows),
        "chunks": rows,
    }
