"""Networks on disk: plain ``.npz`` files that any numpy can read (no pickle).

Keys: ``w_in`` (n_rec, n_in), ``w_rec`` (n_rec, n_rec), ``w_out`` (n_out, n_rec),
``b`` (n_rec, n_out), ``h0`` (n_rec,), ``tau`` (), and optionally ``sign``
(n_rec,) and ``mask`` (n_rec, n_rec), plus ``format`` (the format version).
A network of another cell than the default leaky tanh unit adds ``cell`` (a
string: JSON ``{"name": ..., "settings": {...}}``) and its own parameters as
``extra.<name>``; ``tau`` may then hold one value per unit.
Writes are atomic: a temporary file in the same folder is renamed into place,
so a crash mid-write never leaves a half-written network.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from rflo.cells import LEAKY_TANH, get_cell
from rflo.network import Network, network_from_arrays

__all__ = ["save_network", "load_network", "network_from_npz_arrays", "network_arrays",
           "atomic_write", "FORMAT_VERSION"]

FORMAT_VERSION = 1
REQUIRED = ("w_in", "w_rec", "w_out", "b", "h0", "tau")
OPTIONAL = ("sign", "mask")


def atomic_write(path, write_fn, suffix=""):
    """Call ``write_fn(tmp_path)``, then rename ``tmp_path`` onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_network(path, net: Network) -> Path:
    """Write ``net`` to ``path`` (``.npz`` is appended if missing); returns the path."""
    if not isinstance(net, Network):
        raise ValueError(f"expected an rflo Network, got {type(net).__name__}")
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays = network_arrays(net)
    arrays["format"] = np.asarray(FORMAT_VERSION)

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    atomic_write(path, write)
    return path


def network_arrays(net: Network) -> dict:
    """The arrays a network file holds for ``net`` (plain data: numbers and one string)."""
    arrays = {k: np.asarray(v) for k, v in net._asdict().items()
              if v is not None and k not in ("cell", "extra")}
    for k, v in (net.extra or {}).items():
        arrays[f"extra.{k}"] = np.asarray(v)
    if net.cell != LEAKY_TANH:
        arrays["cell"] = np.asarray(json.dumps({"name": net.cell.name,
                                                "settings": net.cell.settings()}))
    return arrays


def _cell_of(arrays, source):
    if "cell" not in arrays:
        return LEAKY_TANH
    raw = arrays["cell"]
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise ValueError(f"{source}: 'cell' must be one string (JSON), got {raw.dtype} {raw.shape}")
    try:
        spec = json.loads(str(raw))
        return get_cell(spec["name"], **spec.get("settings", {}))
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{source}: unreadable cell description ({exc})") from None


def load_network(path, dtype=None) -> Network:
    """Read a network written by :func:`save_network` (or by hand, same keys).

    Checks keys, shapes and finiteness and says exactly what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no network file at {str(path)!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a readable .npz file (not a zip archive; truncated or another format?)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as exc:
        raise ValueError(f"{path}: not a plain-data .npz network ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({exc})") from None
    return network_from_npz_arrays(arrays, path, dtype=dtype)


def network_from_npz_arrays(arrays: dict, source, dtype=None, ignore=()) -> Network:
    """Check the arrays read from a network file and build the network.

    ``source`` names the file in error messages; keys in ``ignore`` are skipped.
    """
    arrays = {k: v for k, v in arrays.items() if k not in ignore}
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise ValueError(f"{source}: missing arrays {missing}; a network file holds {list(REQUIRED)}")
    unknown = sorted(k for k in set(arrays) - set(REQUIRED) - set(OPTIONAL) - {"format", "cell"}
                     if not k.startswith("extra."))
    if unknown:
        raise ValueError(f"{source}: unexpected arrays {unknown}")
    if "format" in arrays and int(np.asarray(arrays["format"]).reshape(-1)[0]) > FORMAT_VERSION:
        raise ValueError(f"{source}: written by a newer rflo (format {arrays['format']}); upgrade rflo")
    cell = _cell_of(arrays, source)
    kwargs = {k: arrays.get(k) for k in REQUIRED + OPTIONAL}
    if not cell.vector_tau or np.ndim(arrays["tau"]) == 0:
        if np.asarray(arrays["tau"]).shape not in ((), (1,)):
            raise ValueError(f"{source}: tau must be a single number, got shape {arrays['tau'].shape}")
        kwargs["tau"] = np.asarray(arrays["tau"]).reshape(()).item()
    extra = {k[len("extra."):]: v for k, v in arrays.items() if k.startswith("extra.")}
    try:
        return network_from_arrays(**kwargs, dtype=dtype, cell=cell, extra=extra or None)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
