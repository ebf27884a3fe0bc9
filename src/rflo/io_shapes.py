"""The names and shapes a network file (:mod:`rflo.io`) may hold, checked
from the arrays' headers before any data is read: a file declaring a 4 TB
``w_rec`` beside a 50-unit ``h0`` is refused at once."""

from __future__ import annotations

import numpy as np

from rflo.cells import SynapticCell

__all__ = [
    "network_keys",
    "check_network_shapes",
    "synaptic_file",
    "REQUIRED",
    "OPTIONAL",
    "TEXT",
    "SYNAPTIC_REQUIRED",
    "POINT_ONLY",
]

REQUIRED = ("w_in", "w_rec", "w_out", "b", "h0", "tau")
OPTIONAL = ("sign", "mask")
TEXT = ("cell", "run_id", "info")  # one string each
#: what a network of a cell that owns its synapses holds (plus ``extra.<name>``)
SYNAPTIC_REQUIRED = ("w_out", "b", "cell")
#: arrays of point-neuron networks only (the fields that are None for a cell
#: that owns its synapses)
POINT_ONLY = ("w_in", "w_rec", "h0", "tau") + OPTIONAL


def network_keys(key: str, prefix: str = "") -> bool:
    """Whether ``key`` may appear in a network file (``prefix`` for networks
    stored beside other data, e.g. ``"previous."`` in a checkpoint)."""
    if not key.startswith(prefix):
        return False
    key = key[len(prefix) :]
    return key in REQUIRED + OPTIONAL + ("format", "cell", "run_id", "info") or (
        key.startswith("extra.") and len(key) > len("extra.")
    )


def synaptic_file(keys) -> bool:
    """Whether a file's arrays ``keys`` are a network of a cell that owns its
    synapses: a cell, and none of the point-neuron arrays."""
    return "cell" in keys and not any(k in keys for k in ("w_in", "w_rec", "h0", "tau"))


def check_network_shapes(heads: dict, source, prefix: str = "", cell=None) -> None:
    """Check the declared ``{name: (shape, dtype)}`` of a network file against
    each other, before any data is read (so that a file declaring a 4 TB
    ``w_rec`` beside a 50-unit ``h0`` is refused at once).

    For a cell that owns its synapses, ``cell`` (the file's, when known) checks
    the names and shapes of its parameters too."""
    mine = {k[len(prefix) :]: v for k, v in heads.items() if network_keys(k, prefix)}
    shape = {k: v[0] for k, v in mine.items()}
    kind = {k: v[1].kind for k, v in mine.items()}
    if synaptic_file(shape):
        return _check_synaptic_shapes(shape, kind, source, prefix, cell)
    missing = [k for k in REQUIRED if k not in shape]
    if missing:
        raise ValueError(
            f"{source}: missing arrays {missing}; a network file holds {list(REQUIRED)}"
        )
    _check_common(shape, kind, source, prefix)
    w_rec = shape["w_rec"]
    if len(w_rec) != 2 or w_rec[0] != w_rec[1]:
        raise ValueError(f"{source}: {prefix}w_rec must be square (n_rec, n_rec), got {w_rec}")
    n = w_rec[0]
    for k in ("w_in", "w_out"):
        if len(shape[k]) != 2:
            raise ValueError(f"{source}: {prefix}{k} must have 2 dimensions, got {shape[k]}")
    n_in, n_out = shape["w_in"][1], shape["w_out"][0]
    want = {
        "w_in": [(n, n_in)],
        "w_out": [(n_out, n)],
        "b": [(n, n_out)],
        "h0": [(n,)],
        "tau": [(), (1,), (n,)],
        "sign": [(n,)],
        "mask": [(n, n)],
    }
    for k, options in want.items():
        if k in shape and shape[k] not in options:
            raise ValueError(
                f"{source}: {prefix}{k} has shape {shape[k]}, which does not fit "
                f"w_rec {w_rec} (expected {' or '.join(map(str, options))})"
            )
    cap = n * (n + n_in + n_out)
    for k, dims in shape.items():
        size = 1
        for d in dims:
            size *= d
        if k.startswith("extra.") and size > cap:
            raise ValueError(
                f"{source}: {prefix}{k} declares {size} numbers, more than a "
                f"network of {n} units holds"
            )


def _check_common(shape, kind, source, prefix):
    for k in shape:
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
        raise ValueError(
            f"{source}: missing arrays {missing}; a network file of a cell that "
            f"owns its synapses holds {holds}"
        )
    point = [k for k in POINT_ONLY if k in shape]
    if point:
        raise ValueError(
            f"{source}: {prefix}{point} belong to point-neuron networks; a cell "
            f"that owns its synapses keeps its parameters as extra.<name>"
        )
    extra = {k[len("extra.") :]: v for k, v in shape.items() if k.startswith("extra.")}
    if not extra:
        raise ValueError(
            f"{source}: no cell parameters (extra.<name>); a network file of a cell "
            f"that owns its synapses holds {holds}"
        )
    _check_common(shape, kind, source, prefix)
    w_out, b = shape["w_out"], shape["b"]
    if len(w_out) != 2:
        raise ValueError(f"{source}: {prefix}w_out must have 2 dimensions, got {w_out}")
    if b != (w_out[1], w_out[0]):
        raise ValueError(
            f"{source}: {prefix}b has shape {b}, which does not fit w_out {w_out} "
            f"(expected {(w_out[1], w_out[0])})"
        )
    if isinstance(cell, SynapticCell):
        _check_cell_shapes(cell, extra, w_out, source, prefix)


def _check_cell_shapes(cell, shape, w_out, source, prefix):
    """The declared shapes of the cell's parameters against what ``cell.init``
    makes for the sizes they say (traced: nothing is allocated)."""
    import jax

    structs = {k: jax.ShapeDtypeStruct(v, np.dtype("float32")) for k, v in shape.items()}
    try:
        n_in, n_rec = cell.sizes(structs)
        want = jax.eval_shape(
            lambda k: cell.init(k, int(n_in), int(n_rec), "float32"), jax.random.PRNGKey(0)
        )
        want = {k: tuple(v.shape) for k, v in want.items()}
        n_z = None
        if set(want) == set(shape) and all(want[k] == shape[k] for k in want):
            n_z = jax.eval_shape(lambda p: cell.output(p, cell.initial_state(p)), structs).shape
    except (IndexError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{source}: the arrays do not fit cell {cell.name!r} ({exc})") from None
    if set(want) != set(shape):
        raise ValueError(
            f"{source}: cell {cell.name!r} has the parameters {sorted(want)}, the "
            f"file {sorted(shape)}"
        )
    wrong = [
        f"{prefix}extra.{k} {shape[k]}, not {want[k]}" for k in sorted(want) if want[k] != shape[k]
    ]
    if wrong:
        raise ValueError(
            f"{source}: the arrays do not fit cell {cell.name!r} with n_in={n_in}, "
            f"n_rec={n_rec} (read from them): {'; '.join(wrong)}"
        )
    if n_z != (w_out[1],):
        raise ValueError(
            f"{source}: {prefix}w_out has shape {w_out}; cell {cell.name!r} sends "
            f"{n_z[0] if n_z else '?'} numbers to the readout"
        )
