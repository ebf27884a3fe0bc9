"""What the Flax adapter (:mod:`rflo.cells.flax_cell`) reads off a Flax
module: Flax itself, imported only when a cell is built (:func:`import_flax`),
whether the module is one of Flax's own cells (:func:`is_flax_builtin`), its
parameters' leaves and names (:func:`param_names`), its declared sizes
(:func:`int_or_none`) and where its output is in its carry (:func:`default_y`,
:data:`UNKNOWN`)."""

from __future__ import annotations

import jax
import numpy as np

from rflo.cells.module import _path_name

__all__ = ["UNKNOWN", "import_flax", "is_flax_builtin", "param_names", "int_or_none", "default_y"]

#: Flax's own cells whose carry is the output, and the LSTM cells (carry (c, h), y = h)
_CARRY_OUT = ("GRUCell", "SimpleCell", "MGUCell")
_LSTM = ("LSTMCell", "OptimizedLSTMCell")


def import_flax():
    try:
        import flax.linen as linen
        from flax import nnx
    except ImportError:
        raise ImportError("from_flax needs Flax: pip install 'rflo[flax]'") from None
    return nnx, linen


def is_flax_builtin(module, nnx, linen) -> bool:
    cls = type(module)
    return cls.__name__ in _CARRY_OUT + _LSTM and cls.__module__ in (
        "flax.nnx.nn.recurrent",
        "flax.linen.recurrent",
    )


def param_names(params):
    """Leaves and readable names of a params tree (an NNX ``State``'s trailing
    ``.value`` dropped)."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    names = []
    for path, _ in leaves:
        if path and getattr(path[-1], "name", None) == "value":
            path = path[:-1]
        names.append(_path_name(path))
    return [v for _, v in leaves], names


#: ``y_leaf`` of a module whose output is not found yet (found when the network is built)
UNKNOWN = -2


def int_or_none(v):
    return int(v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else None


def default_y(module, builtin):
    if not builtin:
        return UNKNOWN
    return 1 if type(module).__name__ in _LSTM else -1
