"""Checkpoints of command-line runs, so that a killed run can resume.

A run folder gets a ``checkpoint/`` subfolder with

* ``run.json``: the run's settings (written once, at the start);
* ``<rule>.npz``: for each rule, the network after ``done`` trials together
  with the loss and alignment curves of those trials and the wall time spent.

Every file is plain data (npz without pickle, JSON) written atomically, and each
rule's progress is one file, so the network and its curves can never disagree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from rflo.io import atomic_write, network_arrays, network_from_npz_arrays
from rflo.network import Network

__all__ = ["Progress", "save_settings", "load_settings", "save_progress", "load_progress",
           "CHECKPOINT_DIR"]

CHECKPOINT_DIR = "checkpoint"
FORMAT = 1


class Progress(NamedTuple):
    network: Network
    loss: np.ndarray
    alignment: np.ndarray
    seconds: float

    @property
    def done(self) -> int:
        return int(self.loss.shape[0])


def _dir(folder) -> Path:
    return Path(folder) / CHECKPOINT_DIR


def save_settings(folder, settings: dict):
    text = json.dumps({"format": FORMAT, **settings}, indent=2) + "\n"

    def write(tmp):
        Path(tmp).write_text(text, encoding="utf-8")

    atomic_write(_dir(folder) / "run.json", write)


def load_settings(folder) -> dict:
    path = _dir(folder) / "run.json"
    if not path.is_file():
        raise ValueError(f"{folder} has no {CHECKPOINT_DIR}/run.json: not a run that can be resumed")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not an rflo checkpoint of format {FORMAT}")
    return data


def save_progress(folder, rule: str, progress: Progress):
    """Write one rule's progress atomically (network, curves and time in one file)."""
    path = _dir(folder) / f"{rule}.npz"
    arrays = network_arrays(progress.network)
    arrays.update(loss=np.asarray(progress.loss), alignment=np.asarray(progress.alignment),
                  seconds=np.asarray(float(progress.seconds)), format=np.asarray(FORMAT))

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    atomic_write(path, write)


def load_progress(folder, rule: str) -> Optional[Progress]:
    """A rule's saved progress, or ``None`` if it has none yet."""
    path = _dir(folder) / f"{rule}.npz"
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        raise ValueError(f"{path}: unreadable checkpoint ({exc})") from None
    for key in ("loss", "alignment", "seconds"):
        if key not in arrays:
            raise ValueError(f"{path}: checkpoint lacks {key!r}")
    loss, alignment = arrays["loss"], arrays["alignment"]
    if loss.ndim != 1 or loss.shape != alignment.shape:
        raise ValueError(f"{path}: loss and alignment curves do not match")
    net = network_from_npz_arrays(arrays, path, ignore=("loss", "alignment", "seconds"))
    return Progress(net, loss, alignment, float(arrays["seconds"]))
