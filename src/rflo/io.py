"""Networks on disk: plain ``.npz`` files that any numpy can read (no pickle).

Keys: ``w_in`` (n_rec, n_in), ``w_rec`` (n_rec, n_rec), ``w_out`` (n_out, n_rec),
``b`` (n_rec, n_out), ``h0`` (n_rec,), ``tau`` (), and optionally ``sign``
(n_rec,) and ``mask`` (n_rec, n_rec), plus ``format`` (the format version).
A network of another cell than the default leaky tanh unit adds ``cell`` (a
string: JSON ``{"name": ..., "settings": {...}}``) and its own parameters as
``extra.<name>``; ``tau`` may then hold one value per unit.

A network whose cell owns its synapses (GRU, LSTM, LRU, a stack of layers,
your own :func:`~rflo.cells.from_function` cell) holds ``w_out`` (n_out, n_z),
``b`` (n_z, n_out), the cell's parameters as ``extra.<name>`` (names may hold
dots: ``extra.layer0.w_rec``) and ``cell``, and none of ``w_in``, ``w_rec``,
``h0``, ``tau``, ``sign``, ``mask``.  A built-in cell is rebuilt from its name
and settings (a stack's layers included).  A cell a file cannot rebuild (its
``restorable()`` says why: your own functions, an Equinox or Flax module) is
saved all the same, with its name, settings and that reason in ``cell``
(``"cannot_rebuild"``); :func:`load_network` then needs the cell from you
(``cell=``) and checks that it fits the arrays.

The cell entry is :mod:`rflo.io_cell`'s, the names and shapes a file may hold
:mod:`rflo.io_shapes`'s (every public name importable from here).

Writes are atomic (:func:`rflo.files.atomic_write`), so a crash mid-write
never leaves a half-written network; reading checks names, shapes and dtypes
from the arrays' headers before decompressing anything
(:func:`rflo.files.read_npz`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rflo.cells import LEAKY_TANH
from rflo.cells.base import owns_synapses
from rflo.files import atomic_write, read_npz
from rflo.io_cell import cannot_rebuild, cell_json, cell_of
from rflo.io_shapes import (  # noqa: F401  (the file's names, importable from here)
    OPTIONAL,
    POINT_ONLY,
    REQUIRED,
    SYNAPTIC_REQUIRED,
    TEXT,
    check_network_shapes,
    network_keys,
    synaptic_file,
)
from rflo.network import Network, network_from_arrays

__all__ = [
    "save_network",
    "load_network",
    "network_from_npz_arrays",
    "networks_from_stacked_arrays",
    "network_arrays",
    "network_keys",
    "check_network_shapes",
    "network_run_id",
    "network_info",
    "cannot_rebuild",
    "atomic_write",
    "FORMAT_VERSION",
]

FORMAT_VERSION = 1


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
    arrays = {
        k: np.asarray(v)
        for k, v in net._asdict().items()
        if v is not None and k not in ("cell", "extra")
    }
    for k, v in (net.extra or {}).items():
        arrays[f"extra.{k}"] = np.asarray(v)
    if net.cell != LEAKY_TANH:
        arrays["cell"] = np.asarray(cell_json(net.cell))
    return arrays


def load_network(path, dtype=None, max_bytes=None, cell=None) -> Network:
    """Read a network written by :func:`save_network` (or by hand, same keys).

    Checks names, shapes and dtypes (from the headers, before reading any
    data), then finiteness, and says exactly what is wrong.  ``max_bytes``
    caps what the file may declare (default: the memory available).

    ``cell`` : the network's cell, for a file that cannot rebuild it (a cell of
    your own functions, an Equinox or Flax module: the file says so, and
    loading without it raises); it must be the file's cell (same name, and
    same settings for a built-in cell) and fit the arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no network file at {str(path)!r}")
    described = read_npz(
        path,
        names=network_keys,
        max_bytes=max_bytes,
        select={"cell"},
        check=lambda heads: check_network_shapes(heads, path),
    )
    cell = cell_of(described, path, cell)
    arrays = read_npz(
        path,
        names=network_keys,
        max_bytes=max_bytes,
        check=lambda heads: check_network_shapes(heads, path, cell=cell),
    )
    return _network_from(arrays, path, dtype, (), cell)


def _text_entry(path, key):
    """The string ``key`` of a network file (None if it has none), read alone."""
    path = Path(path)
    arrays = read_npz(
        path,
        names=network_keys,
        select={key},
        check=lambda heads: check_network_shapes(heads, path),
    )
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


def networks_from_stacked_arrays(arrays: dict, source, cell=None) -> list:
    """The K networks in arrays with a leading K axis (a stacked ensemble's, as
    :func:`network_arrays` writes it), each checked as a network; ``format``
    and ``cell`` are shared by all (``cell``: as in :func:`load_network`)."""
    lead = "w_rec" if "w_rec" in arrays else "w_out"  # every network has a w_out
    if lead not in arrays:
        raise ValueError(f"{source}: missing arrays ['w_out']; no networks to read")
    k = np.shape(arrays[lead])[0]
    shared = ("format", "cell")
    cell = cell_of(arrays, source, cell)
    return [
        _network_from(
            {key: (v if key in shared else v[i]) for key, v in arrays.items()},
            f"{source} network {i}",
            None,
            (),
            cell,
        )
        for i in range(k)
    ]


def network_from_npz_arrays(arrays: dict, source, dtype=None, ignore=(), cell=None) -> Network:
    """Check the arrays read from a network file and build the network.

    ``source`` names the file in error messages; keys in ``ignore`` are skipped;
    ``cell`` as in :func:`load_network`.
    """
    keep = {k: v for k, v in arrays.items() if k not in ignore}
    return _network_from(
        arrays,
        source,
        dtype,
        ignore,
        cell_of(keep, source, cell) if synaptic_file(keep) or cell is not None else None,
    )


def _network_from(arrays, source, dtype, ignore, cell) -> Network:
    """:func:`network_from_npz_arrays` with the cell already known (None: read
    it from the arrays after checking them)."""
    arrays = {k: v for k, v in arrays.items() if k not in ignore and k not in ("run_id", "info")}
    if synaptic_file(arrays):
        return _synaptic_network(arrays, source, dtype, cell or cell_of(arrays, source))
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise ValueError(
            f"{source}: missing arrays {missing}; a network file holds {list(REQUIRED)}"
        )
    unknown = sorted(
        k
        for k in set(arrays) - set(REQUIRED) - set(OPTIONAL) - {"format", "cell"}
        if not k.startswith("extra.")
    )
    if unknown:
        raise ValueError(f"{source}: unexpected arrays {unknown}")
    _check_format(arrays, source)
    cell = cell_of(arrays, source) if cell is None else cell
    kwargs = {k: arrays.get(k) for k in REQUIRED + OPTIONAL}
    if not cell.vector_tau or np.ndim(arrays["tau"]) == 0:
        if np.asarray(arrays["tau"]).shape not in ((), (1,)):
            raise ValueError(
                f"{source}: tau must be a single number, got shape {arrays['tau'].shape}"
            )
        kwargs["tau"] = np.asarray(arrays["tau"]).reshape(()).item()
    extra = {k[len("extra.") :]: v for k, v in arrays.items() if k.startswith("extra.")}
    try:
        return network_from_arrays(**kwargs, dtype=dtype, cell=cell, extra=extra or None)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def _check_format(arrays, source):
    if "format" in arrays:
        fmt = np.asarray(arrays["format"])
        if fmt.size != 1 or fmt.dtype.kind not in "iu":
            raise ValueError(f"{source}: 'format' must be one integer, got {fmt.dtype} {fmt.shape}")
        if int(fmt.reshape(-1)[0]) > FORMAT_VERSION:
            raise ValueError(
                f"{source}: written by a newer rflo (format {int(fmt.reshape(-1)[0])}); "
                "upgrade rflo"
            )


def _synaptic_network(arrays, source, dtype, cell) -> Network:
    """A network of a cell that owns its synapses from a file's arrays."""
    missing = [k for k in SYNAPTIC_REQUIRED if k not in arrays]
    if missing:
        raise ValueError(
            f"{source}: missing arrays {missing}; a network file of a cell that owns "
            f"its synapses holds {list(SYNAPTIC_REQUIRED)} and extra.<name>"
        )
    unknown = sorted(
        k for k in set(arrays) - set(SYNAPTIC_REQUIRED) - {"format"} if not k.startswith("extra.")
    )
    if unknown:
        raise ValueError(
            f"{source}: unexpected arrays {unknown} (the cell {cell.name!r} owns its "
            "synapses: its parameters are extra.<name>)"
        )
    _check_format(arrays, source)
    if not owns_synapses(cell):
        raise ValueError(
            f"{source}: the file holds a network of a cell that owns its synapses, "
            f"but its cell {cell.name!r} does not"
        )
    extra = {k[len("extra.") :]: v for k, v in arrays.items() if k.startswith("extra.")}
    try:
        return network_from_arrays(
            w_in=None,
            w_rec=None,
            w_out=arrays["w_out"],
            b=arrays["b"],
            h0=None,
            tau=None,
            dtype=dtype,
            cell=cell,
            extra=extra,
        )
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
