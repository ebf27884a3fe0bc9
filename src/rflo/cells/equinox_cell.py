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
from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from rflo.cells.base import SynapticCell

__all__ = ["EquinoxCell", "from_equinox"]

#: parameter names the network uses itself (a module leaf of that name is prefixed)
_RESERVED = ("w_out", "b")


class _Held:
    """A module (with its arrays) or a function the cell refers to: compared
    and hashed by identity, so that the cell stays static, hashable data."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, _Held) and other.value is self.value

    def __hash__(self):
        return id(self.value)

    def __repr__(self):
        return f"<{type(self.value).__name__}>"


def _path_name(path) -> str:
    """A readable parameter name from a pytree key path: ``layers.0.weight``."""
    parts: list = []
    for k in path:
        for attr in ("name", "key", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k).strip(".[]'\""))
    name = ".".join(parts) or "param"
    return f"cell.{name}" if name in _RESERVED else name


def _first_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _shapes(tree):
    return jax.tree_util.tree_map(lambda a: tuple(np.shape(a)), tree)


def _zeros_like_spec(spec, dtype):
    """A pytree of zeros from ``spec = (treedef, shapes)``."""
    tree, shapes = spec
    return jax.tree_util.tree_unflatten(tree, [jnp.zeros(s, dtype) for s in shapes])


def _spec(tree):
    """``(treedef, shapes)`` of a pytree of arrays (hashable)."""
    leaves, tree_def = jax.tree_util.tree_flatten(tree)
    return tree_def, tuple(tuple(np.shape(a)) for a in leaves)


def _check_axes(who, axes, shapes):
    """``unit_axes`` checked against the parameters' shapes, axes made non-negative."""
    if axes is None:
        return None
    if not isinstance(axes, dict):
        raise ValueError(f"{who}: unit_axes must be a dict {{parameter name: axis}}, "
                         f"got {type(axes).__name__}")
    out = {}
    for k, v in axes.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"{who}: unit_axes maps parameter names to integer axes, "
                             f"got {k!r}: {v!r}")
        if shapes is not None:
            if k not in shapes:
                raise ValueError(f"{who}: unit_axes names {k!r}, which the module does not have; "
                                 f"its parameters are {sorted(shapes)}")
            nd = len(shapes[k])
            if not -nd <= v < nd:
                raise ValueError(f"{who}: unit axis {v} of {k!r} (shape {shapes[k]}) is out of "
                                 f"range")
            v = int(v) % nd
        out[k] = int(v)
    return tuple(sorted(out.items()))


@dataclass(frozen=True)
class _ModuleCell(SynapticCell):
    """What the module adapters share (see :func:`from_equinox`, :func:`rflo.cells.from_flax`).

    Fields: ``source`` (the module instance or the function ``key -> module``,
    held by identity), ``factory`` (whether it is a function), ``names`` (the
    parameters in the order of the module's leaves), ``shapes`` (their shapes
    in the module given, or None), ``declared`` (``(n_in, n_rec)`` the module
    states, entries None where it does not), ``axes`` (the per-unit parameters;
    None: the adapter's default), ``output_fn``, ``state_fn``, ``state_spec``
    (``(treedef, shapes)`` of the default initial state, or None: zeros
    (n_rec,)), ``n_in``, ``n_rec`` (set by ``init_network``) and
    ``module_name`` (the module's class name, for messages and settings).
    """

    name: str = "module"
    source: Optional[_Held] = field(default=None, repr=False)
    factory: bool = False
    names: Tuple[str, ...] = ()
    shapes: Optional[Tuple[Tuple[int, ...], ...]] = field(default=None, repr=False)
    declared: Tuple[Optional[int], Optional[int]] = (None, None)
    axes: Optional[Tuple[Tuple[str, int], ...]] = None
    output_fn: Optional[Callable] = field(default=None, repr=False)
    state_fn: Optional[Callable] = field(default=None, repr=False)
    state_spec: Any = field(default=None, repr=False)
    n_in: Optional[int] = None
    n_rec: Optional[int] = None
    module_name: str = ""

    #: what the error messages call the adapter
    adapter: str = field(default="module", repr=False)

    # ---- what an adapter defines
    def module(self, params):
        """The module rebuilt from ``params`` (the flat dict)."""
        raise NotImplementedError

    def call(self, module, state, x):
        """The module's new state."""
        raise NotImplementedError

    def default_axes(self) -> dict:
        """The per-unit parameters when the user gives none."""
        return {}

    def default_output(self, state):
        """The state if it is an array, else its first leaf."""
        return jax.tree_util.tree_leaves(state)[0]

    def kind(self) -> str:
        """The wrapped module's class name."""
        return self.module_name or "module"

    # ---- the SynapticCell interface
    def step(self, params, state, x):
        return self.call(self.module(params), state, x)

    def output(self, params, state):
        if self.output_fn is not None:
            return self.output_fn(self.module(params), state)
        return self.default_output(state)

    def initial_state(self, params):
        if self.state_fn is not None:
            return self.state_fn(self.module(params))
        dtype = jnp.result_type(jax.tree_util.tree_leaves(params)[0])
        if self.state_spec is not None:
            return _zeros_like_spec(self.state_spec, dtype)
        return jnp.zeros((self.sizes(params)[1],), dtype)

    def unit_axes(self, params):
        return dict(self.default_axes() if self.axes is None else self.axes)

    def sizes(self, params):
        if self.n_rec is not None:
            return self.n_in, self.n_rec
        if None not in self.declared:
            return self.declared
        raise ValueError(f"cell {self.name!r} has no sizes yet: build the network with "
                         "rflo.init_network(n_in, n_rec, n_out, cell=cell)")

    def sized(self, n_in, n_rec):
        n_in, n_rec = int(n_in), int(n_rec)
        a, b = self.declared
        if (a is not None and a != n_in) or (b is not None and b != n_rec):
            raise ValueError(
                f"{self.adapter}: the module ({self.kind()}) takes n_in={a}, n_rec={b}, but the "
                f"network asks for n_in={n_in}, n_rec={n_rec}: build the module for these "
                "sizes or the network for the module's")
        if (self.n_in, self.n_rec) == (n_in, n_rec):
            return self
        cell = dataclasses.replace(self, n_in=n_in, n_rec=n_rec)._on_sized()
        cell.check_runs()
        return cell

    def _on_sized(self):
        """What an adapter learns once the sizes are known (default: nothing)."""
        return self

    def check_runs(self):
        """Raise one line if the module does not run on an input (n_in,) and
        its initial state, or returns a state of another shape."""
        n_in = self.n_in
        try:
            params = jax.eval_shape(
                lambda k: self.init(k, n_in, self.n_rec, jnp.float32), jax.random.PRNGKey(0))
            s0 = jax.eval_shape(self.initial_state, params)
            s1 = jax.eval_shape(lambda p, s: self.step(p, s, jnp.zeros((n_in,), jnp.float32)),
                                params, s0)
            z = jax.eval_shape(self.output, params, s1)
        except ValueError as exc:
            if str(exc).startswith(self.adapter):
                raise
            raise ValueError(f"{self.adapter}: the module ({self.kind()}) does not run on an "
                             f"input of shape ({n_in},) and its initial state ({_first_line(exc)})"
                             "; check n_in or give initial_state=") from None
        except Exception as exc:  # the module's own error, whatever its type
            raise ValueError(f"{self.adapter}: the module ({self.kind()}) does not run on an "
                             f"input of shape ({n_in},) and its initial state ({_first_line(exc)})"
                             "; check n_in or give initial_state=") from None
        if jax.tree_util.tree_structure(s1) != jax.tree_util.tree_structure(s0) or \
                _shapes(s1) != _shapes(s0):
            raise ValueError(f"{self.adapter}: the module maps a state shaped {_shapes(s0)} to one "
                             f"shaped {_shapes(s1)}; give initial_state= shaped as it returns")
        if len(getattr(z, "shape", ())) != 1:
            raise ValueError(f"{self.adapter}: output(module, state) must be a vector (n_z,), "
                             f"got shape {getattr(z, 'shape', None)}; give output=")

    def settings(self) -> dict:
        return {"name": self.name, "module": self.kind(), "n_in": self.n_in, "n_rec": self.n_rec}

    def restorable(self):
        return (f"cell {self.name!r} wraps a {self.kind()} module (rflo.cells.{self.adapter}), "
                "which a file cannot hold")


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
        return [v for _, v in leaves], [_path_name(p) for p, _ in leaves], \
            (jax.tree_util.tree_structure(arrays), static)

    def init(self, key, n_in, n_rec, dtype):
        module = self.source.value(key) if self.factory else self.source.value
        values, names, structure = self._split(module)
        if tuple(names) != self.names or structure != self.structure:
            raise ValueError(f"from_equinox: the function returned a module of another structure "
                             f"(parameters {names}) than at first ({list(self.names)}); it must "
                             "build the same module for every key")
        return {k: jnp.asarray(v, dtype) for k, v in zip(names, values)}

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


def from_equinox(module, *, output: Optional[Callable] = None,
                 initial_state: Optional[Callable] = None, unit_axes: Optional[dict] = None,
                 name: Optional[str] = None) -> EquinoxCell:
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
        raise ValueError(f"from_equinox needs an equinox.Module or a function key -> module, "
                         f"got {type(module).__name__}")
    probe = module(jax.random.PRNGKey(0)) if factory else module
    if not isinstance(probe, eqx.Module):
        raise ValueError(f"from_equinox: the function must return an equinox.Module, got "
                         f"{type(probe).__name__}")
    cell = EquinoxCell(name=name, source=_Held(module), factory=factory)
    values, names, structure = cell._split(probe)
    if not names:
        raise ValueError(f"from_equinox: the module ({type(probe).__name__}) has no floating-point "
                         "arrays to train")
    if len(set(names)) != len(names):
        raise ValueError(f"from_equinox: two of the module's arrays have the same name: {names}")
    try:
        hash(structure[1])
    except TypeError as exc:
        raise ValueError(f"from_equinox: the module's fields that are not float arrays must be "
                         f"hashable ({exc}); mark them eqx.field(static=True) or make them "
                         "arrays") from None
    shapes = {k: tuple(np.shape(v)) for k, v in zip(names, values)}
    sizes = [getattr(probe, a, None) for a in ("input_size", "hidden_size")]
    sizes = tuple(int(s) if isinstance(s, (int, np.integer)) and not isinstance(s, bool) else None
                  for s in sizes)
    spec = None
    if sizes[1] is not None:
        h = jnp.zeros((sizes[1],))
        spec = _spec((h, h) if isinstance(probe, eqx.nn.LSTMCell) else h)
    return dataclasses.replace(
        cell, names=tuple(names), shapes=tuple(shapes[k] for k in names), structure=structure,
        declared=sizes, axes=_check_axes("from_equinox", unit_axes, shapes), output_fn=output,
        state_fn=initial_state, state_spec=spec, module_name=type(probe).__name__)
