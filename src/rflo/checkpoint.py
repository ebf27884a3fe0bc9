"""Checkpoints of command-line runs, so that a killed run can resume.

A run folder gets a ``checkpoint/`` subfolder with

* ``run.json``: the run's settings and its run id (written once, at the start);
* ``<rule>.npz``: for each rule, the network after ``done`` trials together
  with the loss and alignment curves of those trials, the wall time spent,
  the divergence guard's state (the best loss, and the network from before the
  last trial as ``previous.*``; the network of the lowest loss seen as
  ``best.*``, with ``best_network_loss`` and ``best_at``: the trials it holds)
  and the run id.  Each rule gets one at trial 0
  when the run starts, so a missing one means the folder was tampered with.
  An ensemble's (``--seeds``) holds its K networks stacked (a leading axis),
  curves of shape (K, done), a best loss per network and ``frozen_at``: the
  trial index at which each network diverged and was frozen, or -1.  The
  networks are stored as network files store them (:mod:`rflo.io`), so a cell
  that owns its synapses (GRU, LSTM, LRU, a stack) keeps ``w_out``, ``b`` and
  its parameters as ``extra.<name>``; K is the leading axis of ``w_out``.

Every file is plain data (npz without pickle, JSON) written atomically, and each
rule's progress is one file, so the network and its curves can never disagree.
The run folder itself (its lock, clearing it for a new run, opening a saved
run) is here too: :func:`prepare_folder`, :func:`open_saved`.  A session of
given networks (:meth:`rflo.session.Session.for_networks`, a sweep's chunk)
keeps only ``checkpoint/<rule>.npz`` in its work folder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from rflo import runconfig
from rflo.checkpoint_format import (
    BEST,
    OPT,
    PREVIOUS,
    PREVIOUS_OPT,
    check_heads,
    is_checkpoint_key,
)
from rflo.files import atomic_write, read_npz
from rflo.io import (
    network_arrays,
    network_from_npz_arrays,
    networks_from_stacked_arrays,
)
from rflo.network import Network

__all__ = [
    "Progress",
    "save_settings",
    "load_settings",
    "save_progress",
    "load_progress",
    "CHECKPOINT_DIR",
    "check_settings",
    "prepare_folder",
    "open_saved",
    "RUN_FILES",
]

CHECKPOINT_DIR = "checkpoint"
FORMAT = 1


class Progress(NamedTuple):
    """One rule's progress: ``network`` after ``done`` trials, the curves of
    those trials, the seconds spent, the divergence guard's state
    (``best_loss``; ``previous``: the network before the last trial), and the
    optimiser's state after and before the last trial as lists of arrays (the
    leaves of its pytree; empty for plain SGD).  For an ensemble, ``network``
    and ``previous`` are stacked, the curves (K, done), ``best_loss`` (K,) and
    ``frozen_at`` (K,) (-1: not frozen).  ``best``, ``best_network_loss``,
    ``best_at``: the network of the lowest loss seen, that loss and the trials
    it holds (None in a checkpoint of an rflo before them: the run then tracks
    its best network from where it resumes).  ``accuracy``: the fraction
    correct of each trial, shaped as the loss, for a task with a metric (None
    otherwise, and in a checkpoint written before it)."""

    network: Network
    loss: np.ndarray
    alignment: np.ndarray
    seconds: float
    best_loss: object = math.inf
    previous: Optional[Network] = None
    opt_state: tuple = ()
    previous_opt_state: tuple = ()
    frozen_at: Optional[np.ndarray] = None
    best: Optional[Network] = None
    best_network_loss: object = None
    best_at: object = None
    accuracy: Optional[np.ndarray] = None

    @property
    def done(self) -> int:
        return int(self.loss.shape[-1])


def _dir(folder) -> Path:
    return Path(folder) / CHECKPOINT_DIR


# --------------------------------------------------------------------------
# settings


def check_settings(data, source) -> dict:
    """Check a run's saved settings (:data:`rflo.runconfig.CHECKS`); raise
    ValueError naming the bad one."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{source}: not an rflo checkpoint of format {FORMAT}")
    if "run_id" not in data:
        raise ValueError(f"{source}: no run id; it was not written by this version of rflo")
    return runconfig.check_settings(data, source)


def save_settings(folder, settings: dict):
    text = json.dumps({"format": FORMAT, **settings}, indent=2) + "\n"

    def write(tmp):
        Path(tmp).write_text(text, encoding="utf-8")

    atomic_write(_dir(folder) / "run.json", write)


def load_settings(folder) -> dict:
    path = _dir(folder) / "run.json"
    if not path.is_file():
        raise ValueError(
            f"{folder} has no {CHECKPOINT_DIR}/run.json: not a run that can be resumed"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable ({exc})") from None
    return check_settings(data, path)


# --------------------------------------------------------------------------
# progress


def save_progress(folder, rule: str, progress: Progress, run_id: str):
    """Write one rule's progress atomically (network, curves, time, guard and
    run id in one file)."""
    path = _dir(folder) / f"{rule}.npz"
    arrays = network_arrays(progress.network)
    if progress.previous is not None:
        arrays.update({PREVIOUS + k: v for k, v in network_arrays(progress.previous).items()})
    if progress.best is not None:
        arrays.update({BEST + k: v for k, v in network_arrays(progress.best).items()})
        arrays.update(
            best_network_loss=np.asarray(progress.best_network_loss, float),
            best_at=np.asarray(progress.best_at, np.int64),
        )
    arrays.update(
        loss=np.asarray(progress.loss),
        alignment=np.asarray(progress.alignment),
        seconds=np.asarray(float(progress.seconds)),
        best_loss=np.asarray(progress.best_loss, float),
        run_id=np.asarray(run_id),
        format=np.asarray(FORMAT),
    )
    if progress.accuracy is not None:
        arrays["accuracy"] = np.asarray(progress.accuracy)
    if progress.frozen_at is not None:
        arrays["frozen_at"] = np.asarray(progress.frozen_at, np.int64)
    for prefix, leaves in ((OPT, progress.opt_state), (PREVIOUS_OPT, progress.previous_opt_state)):
        arrays.update({f"{prefix}{i}": np.asarray(a) for i, a in enumerate(leaves)})

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    atomic_write(path, write)


def _leaves(arrays, prefix):
    keys = sorted((k for k in arrays if k.startswith(prefix)), key=lambda k: int(k[len(prefix) :]))
    if [int(k[len(prefix) :]) for k in keys] != list(range(len(keys))):
        raise ValueError(f"optimiser state arrays {keys} are not numbered 0 .. {len(keys) - 1}")
    return tuple(arrays.pop(k) for k in keys)


def load_progress(folder, rule: str, run_id: Optional[str] = None) -> Optional[Progress]:
    """A rule's saved progress, or ``None`` if it has none.  With ``run_id``,
    the checkpoint must belong to that run."""
    path = _dir(folder) / f"{rule}.npz"
    if not path.exists():
        return None
    arrays = read_npz(path, names=is_checkpoint_key, check=lambda heads: check_heads(heads, path))
    saved_id = str(arrays.pop("run_id"))
    if run_id is not None and saved_id != run_id:
        raise ValueError(f"{path} belongs to run {saved_id}, not to this folder's run {run_id}")
    loss, alignment = arrays.pop("loss"), arrays.pop("alignment")
    accuracy = arrays.pop("accuracy", None)
    k = loss.shape[0] if loss.ndim == 2 else None
    frozen = arrays.pop("frozen_at", None if k is None else np.full(k, -1))
    healthy = (
        np.ones_like(loss, bool)
        if k is None
        else np.arange(loss.shape[1])[None, :]
        < np.where(frozen < 0, loss.shape[1], frozen + 1)[:, None]
    )
    if not np.all(np.isfinite(loss[healthy])):
        raise ValueError(
            f"{path}: the loss curve holds NaN or inf; a checkpoint only holds "
            "trials that went well (or, in an ensemble, a network's after it froze)"
        )
    seconds, best = float(arrays.pop("seconds")), arrays.pop("best_loss")
    best = float(best) if k is None else best.astype(float)
    if not (math.isfinite(seconds) and seconds >= 0) or not np.all(np.asarray(best) > 0):
        raise ValueError(f"{path}: 'seconds' or 'best_loss' out of range ({seconds}, {best})")
    try:
        opt, previous_opt = _leaves(arrays, OPT), _leaves(arrays, PREVIOUS_OPT)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    best_loss, best_at = arrays.pop("best_network_loss", None), arrays.pop("best_at", None)
    if best_loss is not None and (
        not np.all(best_loss > 0)
        or np.any(best_at < 0)
        or np.any(best_at >= max(loss.shape[-1], 1))
    ):
        raise ValueError(
            f"{path}: 'best_network_loss' or 'best_at' out of range ({best_loss}, {best_at})"
        )
    if best_loss is not None and k is None:
        best_loss, best_at = float(best_loss), int(best_at)
    parts = {
        prefix: {key[len(prefix) :]: v for key, v in arrays.items() if key.startswith(prefix)}
        for prefix in (PREVIOUS, BEST)
    }
    current = {
        key: v
        for key, v in arrays.items()
        if not key.startswith(PREVIOUS) and not key.startswith(BEST)
    }
    net = _network(current, path, k)
    prev, best_net = (
        _network(parts[p], f"{path} ({p[:-1]})", k) if parts[p] else None for p in (PREVIOUS, BEST)
    )
    return Progress(
        net,
        loss,
        alignment,
        seconds,
        best,
        prev,
        opt,
        previous_opt,
        frozen,
        best_net,
        best_loss,
        best_at,
        accuracy,
    )


def _network(arrays, source, k):
    """One network, or K stacked ones (each checked as a network)."""
    if k is None:
        return network_from_npz_arrays(arrays, source)
    from rflo.ensemble import stack_networks

    return stack_networks(networks_from_stacked_arrays(arrays, source))


# --------------------------------------------------------------------------
# the run folder: lock, clearing, opening a saved run


#: files a run writes into its folder besides ``<rule>.npz`` and ``checkpoint/``
RUN_FILES = (
    "metadata.json",
    "results.csv",
    "initial.npz",
    "loss.png",
    "outputs.png",
    "alignment.png",
    "run.log",
)


def _lock(out):
    """Hold ``out`` for this run (released when the process ends)."""
    from rflo.files import FolderBusy, RunLock

    try:
        return RunLock(out)
    except FolderBusy as exc:
        raise ValueError(f"{exc}; wait for it to finish or choose another --out") from None


def _leftovers(out):
    from rflo.files import TMP_MARK, RunLock

    return [
        p
        for p in out.iterdir()
        if p.name != RunLock.NAME and not (p.name.startswith(".") and TMP_MARK in p.name)
    ]


def _clear_run(out):
    """Remove what an earlier run wrote into ``out`` (its files only)."""
    import json
    import shutil

    from rflo.files import remove_temporaries
    from rflo.rules import rule_names

    rules = set(rule_names())
    try:
        saved = json.loads((out / "checkpoint" / "run.json").read_text(encoding="utf-8"))
        named = saved.get("rules") or [saved.get("rule")]
        rules |= {r for r in named if isinstance(r, str) and "/" not in r and r}
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    for name in RUN_FILES + tuple(
        f"{r}{tail}.npz" for r in sorted(rules) for tail in ("", ".best")
    ):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "checkpoint", ignore_errors=True)
    remove_temporaries(out)


def prepare_folder(out, overwrite=False):
    """``(folder, lock)``: a run folder that belongs to this run, locked and
    empty of earlier runs (``overwrite`` clears them, else ValueError)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    busy = (
        f"output folder {out} already exists and is not empty; choose another --out or "
        "pass --overwrite"
    )
    if out.is_dir() and _leftovers(out) and not overwrite:
        raise ValueError(busy)
    lock = _lock(out)
    if _leftovers(out):  # checked again under the lock: another run may just have finished
        if not overwrite:
            lock.release()
            raise ValueError(busy)
        _clear_run(out)
    return out, lock


def open_saved(folder):
    """``(folder, lock, saved settings)`` of a run to resume: locked, its
    temporaries removed (ValueError when it is no resumable run)."""
    from rflo.files import remove_temporaries

    out = Path(folder)
    if not (out / CHECKPOINT_DIR / "run.json").is_file():
        raise ValueError(f"{out} has no {CHECKPOINT_DIR}/run.json: not a run that can be resumed")
    lock = _lock(out)
    try:
        saved = load_settings(out)
        for where in (out, out / CHECKPOINT_DIR):
            remove_temporaries(where)  # what killed writes left; we hold the lock
    except BaseException:
        lock.release()
        raise
    return out, lock, saved
