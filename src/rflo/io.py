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

Writes are atomic (:func:`rflo.files.atomic_write`), so a crash mid-write
never leaves a half-written network; reading checks names, shapes and dtypes
from the arrays' headers before decompressing anything
(:func:`rflo.files.read_npz`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rflo.cells import LEAKY_TANH, SynapticCell, cell_names, get_cell
from rflo.cells.base import owns_synapses
from rflo.files import atomic_write, read_npz
from rflo.network import Network, network_from_arrays

__all__ = ["save_network", "load_network", "network_from_npz_arrays",
           "networks_from_stacked_arrays", "network_arrays",
           "network_keys", "check_network_shapes", "network_run_id", "network_info",
           "cannot_rebuild",
           "atomic_write",
           "FORMAT_VERSION"]

FORMAT_VERSION = 1
REQUIRED = ("w_in", "w_rec", "w_out", "b", "h0", "tau")
OPTIONAL = ("sign", "mask")
TEXT = ("cell", "run_id", "info")  # one string each
#: what a network of a cell that owns its synapses holds (plus ``extra.<name>``)
SYNAPTIC_REQUIRED = ("w_out", "b", "cell")
#: arrays of point-neuron networks only (the fields that are None for a cell
#: that owns its synapses)
POINT_ONLY = ("w_in", "w_rec", "h0", "tau") + OPTIONAL


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
        arrays["cell"] = np.asarray(_cell_json(net.cell))
    return arrays


def cannot_rebuild(cell):
    """Why a network file cannot rebuild ``cell`` (None if it can): the cell's
    own ``restorable()``, or that of a layer of a stack."""
    why = cell.restorable() if isinstance(cell, SynapticCell) else None
    if why is None:
        for layer in getattr(cell, "layers", ()) if isinstance(cell, SynapticCell) else ():
            why = cannot_rebuild(layer)
            if why is not None:
                break
    return why


def _cell_json(cell) -> str:
    """The ``cell`` entry: JSON ``{"name", "settings"}``, plus ``"cannot_rebuild"``
    (why) for a cell that a file cannot rebuild."""
    why = cannot_rebuild(cell)
    spec = {"name": cell.name, "settings": cell.settings()}
    if why is not None:
        spec["cannot_rebuild"] = str(why)
    try:
        return json.dumps(spec)
    except (TypeError, ValueError):
        if why is None:
            raise ValueError(f"cell {cell.name!r}: its settings {spec['settings']!r} are not "
                             "plain data (JSON), so a file cannot hold them") from None
        spec["settings"] = {}  # the caller gives the cell back on loading anyway
        return json.dumps(spec)


def _cell_spec(arrays, source):
    """The file's ``cell`` entry as a dict (None: the default leaky tanh cell)."""
    if "cell" not in arrays:
        return None
    raw = arrays["cell"]
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise ValueError(f"{source}: 'cell' must be one string (JSON), got {raw.dtype} {raw.shape}")
    try:
        spec = json.loads(str(raw))
        if not isinstance(spec, dict) or not isinstance(spec["name"], str) \
                or not isinstance(spec.get("settings", {}), dict):
            raise TypeError("expected {\"name\": ..., \"settings\": {...}}")
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{source}: unreadable cell description ({exc})") from None
    return spec


def _plain(settings):
    try:
        return json.loads(json.dumps(settings))
    except (TypeError, ValueError):
        return None


def _cell_of(arrays, source, cell=None):
    """The file's cell: rebuilt from its name and settings, or ``cell`` (the
    caller's), which must be the file's (same name; same settings where a file
    can rebuild it)."""
    spec = _cell_spec(arrays, source)
    if cell is not None:
        return _given_cell(spec, cell, source)
    if spec is None:
        return LEAKY_TANH
    name, settings = spec["name"], spec.get("settings", {})
    why = spec.get("cannot_rebuild")
    if why is not None:
        raise ValueError(f"{source}: {why}; pass the cell you built it with: "
                         f"rflo.load_network(path, cell=...)")
    if name.lower() not in cell_names():
        raise ValueError(f"{source}: the network's cell {name!r} is not a registered cell (known: "
                         f"{', '.join(cell_names())}); import the module that registers it, or "
                         "pass the cell: rflo.load_network(path, cell=...)")
    try:
        return get_cell(name, **settings)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{source}: unreadable cell description ({exc})") from None


def _given_cell(spec, cell, source):
    """The caller's ``cell`` for a file whose cell entry is ``spec``, checked."""
    try:
        cell = get_cell(cell)
    except ValueError as exc:
        raise ValueError(f"cell=: {exc}") from None
    name = "leaky_tanh" if spec is None else spec["name"]
    settings = {} if spec is None else spec.get("settings", {})
    if cell.name != name:
        raise ValueError(f"{source}: the file holds a network of cell {name!r}, but cell= is "
                         f"{cell.name!r}")
    if cannot_rebuild(cell) is None:
        saved = _plain(LEAKY_TANH.settings()) if spec is None else settings
        if _plain(cell.settings()) != saved:
            raise ValueError(f"{source}: the file's {name} cell has the settings {saved}, but "
                             f"cell= has {_plain(cell.settings())}")
    elif isinstance(cell, SynapticCell):
        n_in, n_rec = settings.get("n_in"), settings.get("n_rec")
        if all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in (n_in, n_rec)):
            cell = cell.sized(n_in, n_rec)
    return cell


def network_keys(key: str, prefix: str = "") -> bool:
    """Whether ``key`` may appear in a network file (``prefix`` for networks
    stored beside other data, e.g. ``"previous."`` in a checkpoint)."""
    if not key.startswith(prefix):
        return False
    key = key[len(prefix):]
    return key in REQUIRED + OPTIONAL + ("format", "cell", "run_id", "info") or (
        key.startswith("extra.") and len(key) > len("extra."))


def _synaptic_file(keys) -> bool:
    """Whether a file's arrays ``keys`` are a network of a cell that owns its
    synapses: a cell, and none of the point-neuron arrays."""
    return "cell" in keys and not any(k in keys for k in ("w_in", "w_rec", "h0", "tau"))


def check_network_shapes(heads: dict, source, prefix: str = "", cell=None) -> None:
    """Check the declared ``{name: (shape, dtype)}`` of a network file against
    each other, before any data is read (so that a file declaring a 4 TB
    ``w_rec`` beside a 50-unit ``h0`` is refused at once).

    For a cell that owns its synapses, ``cell`` (the file's, when known) checks
    the names and shapes of its parameters too."""
    mine = {k[len(prefix):]: v for k, v in heads.items() if network_keys(k, prefix)}
    shape = {k: v[0] for k, v in mine.items()}
    kind = {k: v[1].kind for k, v in mine.items()}
    if _synaptic_file(shape):
        return _check_synaptic_shapes(shape, kind, source, prefix, cell)
    missing = [k for k in REQUIRED if k not in shape]
    if missing:
        raise ValueError(f"{source}: missing arrays {missing}; a network file holds {list(REQUIRED)}")
    _check_common(shape, kind, source, prefix)
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


def _check_common(shape, kind, source, prefix):
    for k, dims in shape.items():
        if k not in TEXT and kind[k] not in "biuf":
            raise ValueError(f"{source}: {prefix}{k} must hold numbers, got text")
    for k in TEXT:
        if k in shape and (kind[k] != "U" or shape[k] != ()):
            raise ValueError(f"{source}: {k!r} must be one string")
    if "format" in shape and shape["format"] not in ((), (1,)):
        raise ValueError(f"{source}: 'format' must be one integer, got shape {shape['format']}")


def _check_synaptic_shapes(shape, kind, source, prefix, cell):
    """:func:`check_network_shapes` for a cell that owns its synapses."""
    holds = f"{list(SYNAPTIC_REQUIRED)} and the cell's parameters as extra.<name>"
    missing = [k for k in SYNAPTIC_REQUIRED if k not in shape]
    if missing:
        raise ValueError(f"{source}: missing arrays {missing}; a network file of a cell that "
                         f"owns its synapses holds {holds}")
    point = [k for k in POINT_ONLY if k in shape]
    if point:
        raise ValueError(f"{source}: {prefix}{point} belong to point-neuron networks; a cell "
                         f"that owns its synapses keeps its parameters as extra.<name>")
    extra = {k[len("extra."):]: v for k, v in shape.items() if k.startswith("extra.")}
    if not extra:
        raise ValueError(f"{source}: no cell parameters (extra.<name>); a network file of a cell "
                         f"that owns its synapses holds {holds}")
    _check_common(shape, kind, source, prefix)
    w_out, b = shape["w_out"], shape["b"]
    if len(w_out) != 2:
        raise ValueError(f"{source}: {prefix}w_out must have 2 dimensions, got {w_out}")
    if b != (w_out[1], w_out[0]):
        raise ValueError(f"{source}: {prefix}b has shape {b}, which does not fit w_out {w_out} "
                         f"(expected {(w_out[1], w_out[0])})")
    if isinstance(cell, SynapticCell):
        _check_cell_shapes(cell, extra, w_out, source, prefix)


def _check_cell_shapes(cell, shape, w_out, source, prefix):
    """The declared shapes of the cell's parameters against what ``cell.init``
    makes for the sizes they say (traced: nothing is allocated)."""
    import jax

    structs = {k: jax.ShapeDtypeStruct(v, np.dtype("float32")) for k, v in shape.items()}
    try:
        n_in, n_rec = cell.sizes(structs)
        want = jax.eval_shape(lambda k: cell.init(k, int(n_in), int(n_rec), "float32"),
                              jax.random.PRNGKey(0))
        want = {k: tuple(v.shape) for k, v in want.items()}
        n_z = None
        if set(want) == set(shape) and all(want[k] == shape[k] for k in want):
            n_z = jax.eval_shape(lambda p: cell.output(p, cell.initial_state(p)), structs).shape
    except (IndexError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{source}: the arrays do not fit cell {cell.name!r} ({exc})") from None
    if set(want) != set(shape):
        raise ValueError(f"{source}: cell {cell.name!r} has the parameters {sorted(want)}, the "
                         f"file {sorted(shape)}")
    wrong = [f"{prefix}extra.{k} {shape[k]}, not {want[k]}" for k in sorted(want)
             if want[k] != shape[k]]
    if wrong:
        raise ValueError(f"{source}: the arrays do not fit cell {cell.name!r} with n_in={n_in}, "
                         f"n_rec={n_rec} (read from them): {'; '.join(wrong)}")
    if n_z != (w_out[1],):
        raise ValueError(f"{source}: {prefix}w_out has shape {w_out}; cell {cell.name!r} sends "
                         f"{n_z[0] if n_z else '?'} numbers to the readout")


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
    described = read_npz(path, names=network_keys, max_bytes=max_bytes, select={"cell"},
                         check=lambda heads: check_network_shapes(heads, path))
    cell = _cell_of(described, path, cell)
    arrays = read_npz(path, names=network_keys, max_bytes=max_bytes,
                      check=lambda heads: check_network_shapes(heads, path, cell=cell))
    return _network_from(arrays, path, dtype, (), cell)


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


def networks_from_stacked_arrays(arrays: dict, source, cell=None) -> list:
    """The K networks in arrays with a leading K axis (a stacked ensemble's, as
    :func:`network_arrays` writes it), each checked as a network; ``format``
    and ``cell`` are shared by all (``cell``: as in :func:`load_network`)."""
    lead = "w_rec" if "w_rec" in arrays else "w_out"  # every network has a w_out
    if lead not in arrays:
        raise ValueError(f"{source}: missing arrays ['w_out']; no networks to read")
    k = np.shape(arrays[lead])[0]
    shared = ("format", "cell")
    cell = _cell_of(arrays, source, cell)
    return [_network_from({key: (v if key in shared else v[i]) for key, v in arrays.items()},
                          f"{source} network {i}", None, (), cell)
            for i in range(k)]


def network_from_npz_arrays(arrays: dict, source, dtype=None, ignore=(), cell=None) -> Network:
    """Check the arrays read from a network file and build the network.

    ``source`` names the file in error messages; keys in ``ignore`` are skipped;
    ``cell`` as in :func:`load_network`.
    """
    keep = {k: v for k, v in arrays.items() if k not in ignore}
    return _network_from(arrays, source, dtype, ignore, _cell_of(keep, source, cell)
                         if _synaptic_file(keep) or cell is not None else None)


def _network_from(arrays, source, dtype, ignore, cell) -> Network:
    """:func:`network_from_npz_arrays` with the cell already known (None: read
    it from the arrays after checking them)."""
    arrays = {k: v for k, v in arrays.items() if k not in ignore and k not in ("run_id", "info")}
    if _synaptic_file(arrays):
        return _synaptic_network(arrays, source, dtype, cell or _cell_of(arrays, source))
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise ValueError(f"{source}: missing arrays {missing}; a network file holds {list(REQUIRED)}")
    unknown = sorted(k for k in set(arrays) - set(REQUIRED) - set(OPTIONAL) - {"format", "cell"}
                     if not k.startswith("extra."))
    if unknown:
        raise ValueError(f"{source}: unexpected arrays {unknown}")
    _check_format(arrays, source)
    cell = _cell_of(arrays, source) if cell is None else cell
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


def _check_format(arrays, source):
    if "format" in arrays:
        fmt = np.asarray(arrays["format"])
        if fmt.size != 1 or fmt.dtype.kind not in "iu":
            raise ValueError(f"{source}: 'format' must be one integer, got {fmt.dtype} {fmt.shape}")
        if int(fmt.reshape(-1)[0]) > FORMAT_VERSION:
            raise ValueError(f"{source}: written by a newer rflo (format {int(fmt.reshape(-1)[0])}); "
                             "upgrade rflo")


def _synaptic_network(arrays, source, dtype, cell) -> Network:
    """A network of a cell that owns its synapses from a file's arrays."""
    missing = [k for k in SYNAPTIC_REQUIRED if k not in arrays]
    if missing:
        raise ValueError(f"{source}: missing arrays {missing}; a network file of a cell that owns "
                         f"its synapses holds {list(SYNAPTIC_REQUIRED)} and extra.<name>")
    unknown = sorted(k for k in set(arrays) - set(SYNAPTIC_REQUIRED) - {"format"}
                     if not k.startswith("extra."))
    if unknown:
        raise ValueError(f"{source}: unexpected arrays {unknown} (the cell {cell.name!r} owns its "
                         "synapses: its parameters are extra.<name>)")
    _check_format(arrays, source)
    if not owns_synapses(cell):
        raise ValueError(f"{source}: the file holds a network of a cell that owns its synapses, "
                         f"but its cell {cell.name!r} does not")
    extra = {k[len("extra."):]: v for k, v in arrays.items() if k.startswith("extra.")}
    try:
        return network_from_arrays(w_in=None, w_rec=None, w_out=arrays["w_out"], b=arrays["b"],
                                   h0=None, tau=None, dtype=dtype, cell=cell, extra=extra)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
