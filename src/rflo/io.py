"""Networks on disk: plain ``.npz`` files that any numpy can read (no pickle).

Keys: ``w_in`` (n_rec, n_in), ``w_rec`` (n_rec, n_rec), ``w_out`` (n_out, n_rec),
``b`` (n_rec, n_out), ``h0`` (n_rec,), ``tau`` (), and optionally ``sign``
(n_rec,) and ``mask`` (n_rec, n_rec), plus ``format`` (the format version).
A network of another cell than the default leaky tanh unit adds ``cell`` (a
string: JSON ``{"name": ..., "settings": {...}}``) and its own parameters as
``extra.<name>``; ``tau`` may then hold one value per unit.
Writes are atomic (:func:`rflo.files.atomic_write`), so a crash mid-write
never leaves a half-written network; reading checks names, shapes and dtypes
from the arrays' headers before decompressing anything
(:func:`rflo.files.read_npz`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rflo.cells import LEAKY_TANH, get_cell
from rflo.files import atomic_write, read_npz
from rflo.network import Network, network_from_arrays

__all__ = ["save_network", "load_network", "network_from_npz_arrays",
           "networks_from_stacked_arrays", "network_arrays",
           "network_keys", "check_network_shapes", "network_run_id", "network_info",
           "atomic_write",
           "FORMAT_VERSION"]

FORMAT_VERSION = 1
REQUIRED = ("w_in", "w_rec", "w_out", "b", "h0", "tau")
OPTIONAL = ("sign", "mask")
TEXT = ("cell", "run_id", "info")  # one string each


def save_network(path, net: Network, run_id=None, info=None) -> Path:
    """Write ``net`` to ``path`` (``.npz`` is appended if missing); returns the path.

    ``run_id`` (a string) marks the file as written by that command-line run;
    ``info`` (a dict of plain data, stored as JSON) records how it was trained,
    e.g. ``{"task": {"name": "periodic", "params": {...}}, "rule": "rflo"}``
    (read it back with :func:`network_info`)."""
    if not isinstance(net, Network):
        raise ValueError(f"expected an rflo Network, got {type(net).__name__}")
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays = network_arrays(net)
    arrays["format"] = np.asarray(FORMAT_VERSION)
    if run_id is not None:
        arrays["run_id"] = np.asarray(str(run_id))
    if info is not None:
        try:
            arrays["info"] = np.asarray(json.dumps(info))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"info must be plain data (JSON): {exc}") from None

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


def network_keys(key: str, prefix: str = "") -> bool:
    """Whether ``key`` may appear in a network file (``prefix`` for networks
    stored beside other data, e.g. ``"previous."`` in a checkpoint)."""
    if not key.startswith(prefix):
        return False
    key = key[len(prefix):]
    return key in REQUIRED + OPTIONAL + ("format", "cell", "run_id", "info") or (
        key.startswith("extra.") and len(key) > len("extra."))


def check_network_shapes(heads: dict, source, prefix: str = "") -> None:
    """Check the declared ``{name: (shape, dtype)}`` of a network file against
    each other, before any data is read (so that a file declaring a 4 TB
    ``w_rec`` beside a 50-unit ``h0`` is refused at once)."""
    mine = {k[len(prefix):]: v for k, v in heads.items() if network_keys(k, prefix)}
    shape = {k: v[0] for k, v in mine.items()}
    kind = {k: v[1].kind for k, v in mine.items()}
    missing = [k for k in REQUIRED if k not in shape]
    if missing:
        raise ValueError(f"{source}: missing arrays {missing}; a network file holds {list(REQUIRED)}")
    for k, dims in shape.items():
        if k not in TEXT and kind[k] not in "biuf":
            raise ValueError(f"{source}: {prefix}{k} must hold numbers, got text")
    for k in TEXT:
        if k in shape and (kind[k] != "U" or shape[k] != ()):
            raise ValueError(f"{source}: {k!r} must be one string")
    if "format" in shape and shape["format"] not in ((), (1,)):
        raise ValueError(f"{source}: 'format' must be one integer, got shape {shape['format']}")
    w_rec = shape["w_rec"]
    if len(w_rec) != 2 or w_rec[0] != w_rec[1]:
        raise ValueError(f"{source}: {prefix}w_rec must be square (n_rec, n_rec), got {w_rec}")
    n = w_rec[0]
    for k in ("w_in", "w_out"):
        if len(shape[k]) != 2:
            raise ValueError(f"{source}: {prefix}{k} must have 2 dimensions, got {shape[k]}")
    n_in, n_out = shape["w_in"][1], shape["w_out"][0]
    want = {"w_in": [(n, n_in)], "w_out": [(n_out, n)], "b": [(n, n_out)], "h0": [(n,)],
            "tau": [(), (1,), (n,)], "sign": [(n,)], "mask": [(n, n)]}
    for k, options in want.items():
        if k in shape and shape[k] not in options:
            raise ValueError(f"{source}: {prefix}{k} has shape {shape[k]}, which does not fit "
                             f"w_rec {w_rec} (expected {' or '.join(map(str, options))})")
    cap = n * (n + n_in + n_out)
    for k, dims in shape.items():
        size = 1
        for d in dims:
            size *= d
        if k.startswith("extra.") and size > cap:
            raise ValueError(f"{source}: {prefix}{k} declares {size} numbers, more than a "
                             f"network of {n} units holds")


def load_network(path, dtype=None, max_bytes=None) -> Network:
    """Read a network written by :func:`save_network` (or by hand, same keys).

    Checks names, shapes and dtypes (from the headers, before reading any
    data), then finiteness, and says exactly what is wrong.  ``max_bytes``
    caps what the file may declare (default: the memory available).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no network file at {str(path)!r}")
    arrays = read_npz(path, names=network_keys, max_bytes=max_bytes,
                      check=lambda heads: check_network_shapes(heads, path))
    return network_from_npz_arrays(arrays, path, dtype=dtype)


def _text_entry(path, key):
    """The string ``key`` of a network file (None if it has none), read alone."""
    path = Path(path)
    arrays = read_npz(path, names=network_keys, select={key},
                      check=lambda heads: check_network_shapes(heads, path))
    return str(arrays[key]) if key in arrays else None


def network_run_id(path):
    """The run id stored in a network file (None if it has none)."""
    return _text_entry(path, "run_id")


def network_info(path):
    """The record of how a network file's network was trained (a dict; None
    if the file has none)."""
    text = _text_entry(path, "info")
    if text is None:
        return None
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: unreadable 'info' ({exc})") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: 'info' must be a JSON object")
    return info


def networks_from_stacked_arrays(arrays: dict, source) -> list:
    """The K networks in arrays with a leading K axis (a stacked ensemble's, as
    :func:`network_arrays` writes it), each checked as a network; ``format``
    and ``cell`` are shared by all."""
    k = np.shape(arrays["w_rec"])[0]
    shared = ("format", "cell")
    return [network_from_npz_arrays({key: (v if key in shared else v[i])
                                     for key, v in arrays.items()}, f"{source} network {i}")
            for i in range(k)]


def network_from_npz_arrays(arrays: dict, source, dtype=None, ignore=()) -> Network:
    """Check the arrays read from a network file and build the network.

    ``source`` names the file in error messages; keys in ``ignore`` are skipped.
    """
    arrays = {k: v for k, v in arrays.items() if k not in ignore and k not in ("run_id", "info")}
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise ValueError(f"{source}: missing arrays {missing}; a network file holds {list(REQUIRED)}")
    unknown = sorted(k for k in set(arrays) - set(REQUIRED) - set(OPTIONAL) - {"format", "cell"}
                     if not k.startswith("extra."))
    if unknown:
        raise ValueError(f"{source}: unexpected arrays {unknown}")
    if "format" in arrays:
        fmt = np.asarray(arrays["format"])
        if fmt.size != 1 or fmt.dtype.kind not in "iu":
            raise ValueError(f"{source}: 'format' must be one integer, got {fmt.dtype} {fmt.shape}")
        if int(fmt.reshape(-1)[0]) > FORMAT_VERSION:
            raise ValueError(f"{source}: written by a newer rflo (format {int(fmt.reshape(-1)[0])}); "
                             "upgrade rflo")
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
