"""Your own Equinox module as a cell: :func:`from_equinox` (the ``equinox`` extra).

::

    import equinox as eqx
    cell = rflo.cells.from_equinox(eqx.nn.GRUCell(n_in, n_rec, key=jax.random.PRNGKey(0)))
    net = rflo.init_network(n_in, n_rec, n_out, cell=cell)
    rflo.train(net, task, "rtrl", lr={"weight_hh": 0.01, "weight_ih": 0.01, "w_out": 0.01})

The module is called as ``module(x, state) -> state`` (``x`` (n_in,)), as
``eqx.nn.GRUCell`` (``state = h`` (n_rec,)) and ``eqx.nn.LSTMCell`` (``state =
(h, c)``, two (n_rec,) arrays) are.  Its floating-point array leaves are the
cell's parameters, a flat dict by their paths in the module::

    eqx.nn.GRUCell:  weight_ih (3 n_rec, n_in), weight_hh (3 n_rec, n_rec),
                     bias (3 n_rec,), bias_n (n_rec,)
    eqx.nn.LSTMCell: weight_ih (4 n_rec, n_in), weight_hh (4 n_rec, n_rec),
                     bias (4 n_rec,)
    eqx.nn.MLP:      layers.0.weight, layers.0.bias, layers.1.weight, ...

(a leaf named ``w_out`` or ``b``, which are the network's, becomes
``cell.w_out``, ``cell.b``).  Each step rebuilds the module from the dict
(``eqx.combine`` with the module's static part) and calls it, so every rule
differentiates the module's own code.

* ``module`` is a module instance (every network seed starts from its
  arrays; the seed draws only ``w_out`` and ``b``) or a function ``key ->
  module`` (every seed draws its own module: ``init`` calls it with the
  network's key).
* Sizes: the module's ``input_size`` and ``hidden_size`` attributes where it
  has them (``init_network`` with other sizes is refused), else those of
  ``init_network``.
* ``initial_state(module) -> state`` (default zeros: (hidden,) for a GRU cell
  and any module with ``hidden_size``, ((hidden,), (hidden,)) for an LSTM cell,
  else (n_rec,)); ``output(module, state) -> z`` (n_z,) (default: the state if
  it is an array, else its first leaf: ``h`` of the LSTM cell).  Both get the
  module rebuilt from the current parameters.
* ``unit_axes`` (``{name: axis}``, entry ``r`` along ``axis`` belongs to unit
  ``r % n_rec``): the per-unit parameters that local rules (e-prop, RFLO,
  SnAp-1) train.  Default: axis 0 of every parameter of ``eqx.nn.GRUCell`` and
  ``eqx.nn.LSTMCell`` (their gates are stacked along axis 0); none for other
  modules, which the exact and global rules (BPTT, RTRL, UORO, SnAp-2, TBPTT)
  train.  The module's step does not separate its recurrent input, so e-prop
  keeps each unit's whole diagonal Jacobian (SnAp-1's trace).

A network file can hold such a network's arrays, not the module
(:meth:`EquinoxCell.restorable` says so): load it with the same cell.

:class:`_ModuleCell` (here, so that :mod:`rflo.cells.flax_cell` shares it
without a third module) is what the Equinox and Flax adapters have in common.
Equinox is imported only when a cell is built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rflo.cells.module import _check_axes, _Held, _ModuleCell, _path_name, _spec

__all__ = ["EquinoxCell", "from_equinox"]

# --------------------------------------------------------------------------
# Equinox


def _import_equinox():
    try:
        import equinox
    except ImportError:
        raise ImportError("from_equinox needs Equinox: pip install 'rflo[equinox]'") from None
    return equinox


@dataclass(frozen=True)
class EquinoxCell(_ModuleCell):
    """A :class:`~rflo.cells.SynapticCell` running an Equinox module (see :func:`from_equinox`).

    ``structure`` is ``(treedef, static)``: the tree of the module's float
    arrays and the module without them (both hashable)."""

    name: str = "equinox"
    structure: Any = field(default=None, repr=False)
    adapter: str = field(default="from_equinox", repr=False)

    def _split(self, module):
        eqx = _import_equinox()
        arrays, static = eqx.partition(module, eqx.is_inexact_array)
        leaves, tree = jax.tree_util.tree_flatten_with_path(arrays)
        return (
            [v for _, v in leaves],
            [_path_name(p) for p, _ in leaves],
            (jax.tree_util.tree_structure(arrays), static),
        )

    def init(self, key, n_in, n_rec, dtype):
        return self.module_params(key, dtype, "from_equinox")

    def module(self, params):
        eqx = _import_equinox()
        tree, static = self.structure
        arrays = jax.tree_util.tree_unflatten(tree, [params[k] for k in self.names])
        return eqx.combine(arrays, static)

    def call(self, module, state, x):
        return module(x, state)

    def _builtin(self):
        eqx = _import_equinox()
        static = self.structure[1]
        return isinstance(static, (eqx.nn.GRUCell, eqx.nn.LSTMCell))

    def default_axes(self):
        return {k: 0 for k in self.names} if self._builtin() else {}


jax.tree_util.register_pytree_node(EquinoxCell, lambda c: ((), c), lambda c, _: c)


def from_equinox(
    module,
    *,
    output: Optional[Callable] = None,
    initial_state: Optional[Callable] = None,
    unit_axes: Optional[dict] = None,
    name: Optional[str] = None,
) -> EquinoxCell:
    """A cell from an Equinox module (see the module docstring).

    Parameters
    ----------
    module : an ``equinox.Module`` called as ``module(x, state) -> state``
        (``x`` (n_in,)), or a function ``key -> module``.
    output : ``output(module, state) -> z`` (n_z,); default the state, or its
        first leaf.
    initial_state : ``initial_state(module) -> state``; default zeros shaped
        as the module expects.
    unit_axes : ``{parameter name: axis}`` of the per-unit parameters; default
        axis 0 of every parameter of ``eqx.nn.GRUCell`` and ``eqx.nn.LSTMCell``,
        none for other modules.
    name : the cell's name (default ``"equinox"``).
    """
    eqx = _import_equinox()
    for what, fn in (("output", output), ("initial_state", initial_state)):
        if fn is not None and not callable(fn):
            raise ValueError(f"from_equinox: {what} must be a function, got {type(fn).__name__}")
    if name is None:
        name = "equinox"
    if not isinstance(name, str) or not name:
        raise ValueError(f"from_equinox: name must be a non-empty string, got {name!r}")
    factory = not isinstance(module, eqx.Module)
    if factory and not callable(module):
        raise ValueError(
            f"from_equinox needs an equinox.Module or a function key -> module, "
            f"got {type(module).__name__}"
        )
    probe = module(jax.random.PRNGKey(0)) if factory else module
    if not isinstance(probe, eqx.Module):
        raise ValueError(
            f"from_equinox: the function must return an equinox.Module, got {type(probe).__name__}"
        )
    cell = EquinoxCell(name=name, source=_Held(module), factory=factory)
    values, names, structure = cell._split(probe)
    if not names:
        raise ValueError(
            f"from_equinox: the module ({type(probe).__name__}) has no floating-point "
            "arrays to train"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"from_equinox: two of the module's arrays have the same name: {names}")
    try:
        hash(structure[1])
    except TypeError as exc:
        raise ValueError(
            f"from_equinox: the module's fields that are not float arrays must be "
            f"hashable ({exc}); mark them eqx.field(static=True) or make them "
            "arrays"
        ) from None
    shapes = {k: tuple(np.shape(v)) for k, v in zip(names, values)}
    sizes = [getattr(probe, a, None) for a in ("input_size", "hidden_size")]
    sizes = tuple(
        int(s) if isinstance(s, (int, np.integer)) and not isinstance(s, bool) else None
        for s in sizes
    )
    spec = None
    if sizes[1] is not None:
        h = jnp.zeros((sizes[1],))
        spec = _spec((h, h) if isinstance(probe, eqx.nn.LSTMCell) else h)
    return dataclasses.replace(
        cell,
        names=tuple(names),
        shapes=tuple(shapes[k] for k in names),
        structure=structure,
        declared=sizes,
        axes=_check_axes("from_equinox", unit_axes, shapes),
        output_fn=output,
        state_fn=initial_state,
        state_spec=spec,
        module_name=type(probe).__name__,
    )
