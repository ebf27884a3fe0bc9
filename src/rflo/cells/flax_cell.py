"""Your own Flax recurrent cell as a cell: :func:`from_flax` (the ``flax`` extra).

::

    from flax import nnx
    cell = rflo.cells.from_flax(nnx.GRUCell(n_in, n_rec, rngs=nnx.Rngs(0)))
    net = rflo.init_network(n_in, n_rec, n_out, cell=cell)
    rflo.train(net, task, "eprop", lr=0.01)

The module follows Flax's recurrent-cell convention ``carry, y = cell(carry,
x)`` (``x`` (n_in,)).  Two APIs:

* **Flax NNX** (preferred): a module instance (every network seed starts from
  its parameters; the seed draws only ``w_out`` and ``b``), or a function
  ``key -> module`` (every seed draws its own: ``init`` calls it).  The
  trained parameters are its ``nnx.Param`` variables; any other state (RNG
  streams, batch statistics) is held fixed, as the module has it when the
  cell is built.
* **Flax Linen**: an unbound module (e.g. ``flax.linen.GRUCell(features=n_rec)``);
  every seed draws its parameters with ``module.init(key, carry, x)``.  Its
  variables must be the ``params`` collection alone.

The parameters are a flat dict by their paths in the module::

    nnx.GRUCell            dense_i.kernel (n_in, 3 n_rec), dense_i.bias (3 n_rec,),
                           dense_h.kernel (n_rec, 3 n_rec)       gates r, z, n stacked
    nnx.LSTMCell           ii.kernel, if_.kernel, ig.kernel, io.kernel (n_in, n_rec),
                           hi.kernel ... (n_rec, n_rec), hi.bias ... (n_rec,)   one per gate
    nnx.OptimizedLSTMCell  dense_i.kernel (n_in, 4 n_rec), dense_h.kernel (n_rec, 4 n_rec),
                           dense_h.bias (4 n_rec,)
    nnx.SimpleCell         dense_i.kernel (n_in, n_rec), dense_i.bias, dense_h.kernel
    linen.GRUCell          ir.kernel, iz.kernel, in.kernel (n_in, n_rec), ir.bias, ...,
                           hr.kernel, hz.kernel, hn.kernel (n_rec, n_rec), hn.bias

(a parameter named ``w_out`` or ``b``, which are the network's, becomes
``cell.w_out``, ``cell.b``).  Each step rebuilds the module (``nnx.merge``, or
``module.bind`` for Linen) and calls it, so every rule differentiates the
module's own code.

* Sizes: the module's ``in_features`` and ``hidden_features`` (NNX) or
  ``features`` (Linen) where it has them (``init_network`` with other sizes
  is refused), else those of ``init_network``.
* The state is the carry.  Default initial state: zeros shaped as the
  module's ``initialize_carry`` returns (``h`` (n_rec,) for GRU, simple and
  MGU cells; ``(c, h)`` for the LSTM cells), else zeros (n_rec,);
  ``initial_state(module) -> carry`` to choose.
* Default output: the ``y`` the module returns.  For Flax's own cells ``y`` is
  the carry (GRU, simple, MGU) or its ``h`` (LSTM cells: ``carry = (c, h)``);
  for another module the cell finds the carry leaf equal to ``y`` (one call on
  random numbers when the network is built), and where ``y`` is none of them
  the state becomes ``(carry, y)``.  ``output(module, carry) -> z`` (n_z,) to
  choose (the state is then the carry).  ``initial_state`` and ``output``
  get the module rebuilt from the current parameters (a bound module for
  Linen).
* ``unit_axes`` (``{name: axis}``, entry ``r`` along ``axis`` belongs to unit
  ``r % n_rec``): the per-unit parameters that local rules (e-prop, RFLO,
  SnAp-1) train.  Default for Flax's own cells: the last axis of every
  parameter (kernels are (in, out): the output axis, gates stacked along it
  or one submodule per gate); none for other modules, which the exact and
  global rules (BPTT, RTRL, UORO, SnAp-2, TBPTT) train.  The module's call
  does not separate its recurrent input, so e-prop keeps each unit's whole
  diagonal Jacobian (SnAp-1's trace).

A network file can hold such a network's arrays, not the module
(:meth:`FlaxCell.restorable` says so): load it with the same cell.  Flax is
imported only when a cell is built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from rflo.cells.flax_module import (
    UNKNOWN,
    default_y,
    import_flax,
    int_or_none,
    is_flax_builtin,
    param_names,
)
from rflo.cells.module import (
    _check_axes,
    _first_line,
    _Held,
    _ModuleCell,
    _spec,
    _zeros_like_spec,
)

__all__ = ["FlaxCell", "from_flax"]


@dataclass(frozen=True)
class FlaxCell(_ModuleCell):
    """A :class:`~rflo.cells.SynapticCell` running a Flax module (see :func:`from_flax`).

    ``api`` is ``"nnx"`` or ``"linen"``; ``structure`` is ``(graphdef,
    params treedef)`` (NNX; ``rest`` holds the module's other state) or
    ``(unbound module, params treedef)`` (Linen; the treedef None until the
    sizes are known);
    ``y_leaf`` says where the output is: ``-1`` the carry, ``k >= 0`` the
    carry's leaf ``k``, ``None`` nowhere (the state is ``(carry, y)``, ``y``
    of shape ``y_shape``)."""

    name: str = "flax"
    api: str = "nnx"
    structure: Any = field(default=None, repr=False)
    rest: Optional[_Held] = field(default=None, repr=False, compare=False)
    builtin: bool = False
    y_leaf: Optional[int] = -1
    y_shape: Optional[Tuple[int, ...]] = None
    adapter: str = field(default="from_flax", repr=False)

    @property
    def _kept(self) -> bool:
        return self.y_leaf is None and self.output_fn is None

    # ---- parameters and the module
    def _split(self, module):
        """(values, names, structure) of an NNX module."""
        nnx, _ = import_flax()
        graphdef, params, rest = nnx.split(module, nnx.Param, ...)
        values, names = param_names(params)
        return values, names, (graphdef, jax.tree_util.tree_structure(params))

    def _linen_carry(self, n_in, n_rec, dtype):
        """The carry Linen's ``module.init`` is called with (zeros)."""
        if self.state_spec is not None:
            return _zeros_like_spec(self.state_spec, dtype)
        return jnp.zeros((n_rec,), dtype)

    def init(self, key, n_in, n_rec, dtype):
        if self.api == "linen":
            module = self.structure[0]
            variables = module.init(
                key, self._linen_carry(n_in, n_rec, dtype), jnp.zeros((n_in,), dtype)
            )
            other = sorted(set(variables) - {"params"})
            if other:
                raise ValueError(
                    f"from_flax: the Linen module has the variable collections "
                    f"{other} besides 'params'; only 'params' can be trained here"
                )
            values, names = param_names(variables.get("params", {}))
            return {k: jnp.asarray(v, dtype) for k, v in zip(names, values)}
        return self.module_params(key, dtype, "from_flax")

    def module(self, params):
        tree = self.structure[1]
        values = jax.tree_util.tree_unflatten(tree, [params[k] for k in self.names])
        if self.api == "linen":
            return self.structure[0].bind({"params": values})
        nnx, _ = import_flax()
        return nnx.merge(self.structure[0], values, self.rest.value)

    def call(self, module, state, x):
        if self._kept:
            return module(state[0], x)
        return module(state, x)[0]

    # ---- state, output, unit axes
    def initial_state(self, params):
        carry = _ModuleCell.initial_state(self, params)
        if self._kept:
            dtype = jnp.result_type(jax.tree_util.tree_leaves(params)[0])
            return carry, jnp.zeros(self.y_shape, dtype)
        return carry

    def default_output(self, state):
        if self._kept:
            return state[1]
        if self.y_leaf == -1:
            return state
        return jax.tree_util.tree_leaves(state)[self.y_leaf]

    def default_axes(self):
        if not self.builtin or self.shapes is None:
            return {}
        n = self.declared[1]
        return {
            k: len(s) - 1
            for k, s in zip(self.names, self.shapes)
            if len(s) >= 1 and (n is None or s[-1] % n == 0)
        }

    # ---- once the sizes are known: Linen's parameters, any module's output
    def _on_sized(self):
        cell = self
        if self.api == "linen":
            module = self.structure[0]
            try:
                tree = jax.eval_shape(
                    lambda k: module.init(
                        k,
                        self._linen_carry(self.n_in, self.n_rec, jnp.float32),
                        jnp.zeros((self.n_in,), jnp.float32),
                    ),
                    jax.random.PRNGKey(0),
                )
            except Exception as exc:  # the module's own error, whatever its type
                raise ValueError(
                    f"from_flax: module.init of the Linen {self.kind()} fails on an "
                    f"input of shape ({self.n_in},) ({_first_line(exc)}); check "
                    "n_in or give initial_state="
                ) from None
            other = sorted(set(tree) - {"params"})
            if other:
                raise ValueError(
                    f"from_flax: the Linen module has the variable collections "
                    f"{other} besides 'params'; only 'params' can be trained here"
                )
            values, names = param_names(tree.get("params", {}))
            shapes = {k: tuple(v.shape) for k, v in zip(names, values)}
            axes = self.axes
            if axes is not None:
                axes = _check_axes("from_flax", dict(axes), shapes)
            tree = jax.tree_util.tree_structure(tree.get("params", {}))
            cell = dataclasses.replace(
                cell,
                names=tuple(names),
                axes=axes,
                shapes=tuple(shapes[k] for k in names),
                structure=(module, tree),
            )
        if cell.y_leaf == UNKNOWN and cell.output_fn is None:
            cell = cell._find_output()
        return cell

    def _find_output(self):
        """Where the ``y`` the module returns is in its carry: one call on random numbers."""
        rng = np.random.default_rng(0)
        try:
            params = self.init(jax.random.PRNGKey(0), self.n_in, self.n_rec, jnp.float32)
            carry = jax.tree_util.tree_map(
                lambda a: jnp.asarray(rng.normal(size=np.shape(a)), jnp.float32),
                _ModuleCell.initial_state(self, params),
            )
            x = jnp.asarray(rng.normal(size=(self.n_in,)), jnp.float32)
            new, y = self.module(params)(carry, x)
        except ValueError:
            raise
        except Exception as exc:  # the module's own error, whatever its type
            raise ValueError(
                f"from_flax: the module ({self.kind()}) does not run as "
                f"carry, y = module(carry, x) on x of shape ({self.n_in},) "
                f"({_first_line(exc)}); check n_in or give initial_state="
            ) from None
        y = np.asarray(y)
        if isinstance(new, jax.Array) and np.shape(new) == y.shape and np.array_equal(new, y):
            return dataclasses.replace(self, y_leaf=-1)
        for k, leaf in enumerate(jax.tree_util.tree_leaves(new)):
            if np.shape(leaf) == y.shape and np.array_equal(leaf, y):
                return dataclasses.replace(self, y_leaf=k)
        return dataclasses.replace(self, y_leaf=None, y_shape=tuple(y.shape))


jax.tree_util.register_pytree_node(FlaxCell, lambda c: ((), c), lambda c, _: c)


def from_flax(
    module,
    *,
    output: Optional[Callable] = None,
    initial_state: Optional[Callable] = None,
    unit_axes: Optional[dict] = None,
    name: Optional[str] = None,
) -> FlaxCell:
    """A cell from a Flax recurrent cell (see the module docstring).

    Parameters
    ----------
    module : a Flax NNX module called as ``carry, y = module(carry, x)`` (``x``
        (n_in,)), a function ``key -> module``, or a Flax Linen module (unbound).
    output : ``output(module, carry) -> z`` (n_z,); default the ``y`` the
        module returns.
    initial_state : ``initial_state(module) -> carry``; default zeros shaped
        as the module's ``initialize_carry`` returns, else (n_rec,).
    unit_axes : ``{parameter name: axis}`` of the per-unit parameters; default
        the last axis of every parameter of Flax's own cells (GRU, LSTM,
        optimized LSTM, simple, MGU), none for other modules.
    name : the cell's name (default ``"flax"``).
    """
    nnx, linen = import_flax()
    for what, fn in (("output", output), ("initial_state", initial_state)):
        if fn is not None and not callable(fn):
            raise ValueError(f"from_flax: {what} must be a function, got {type(fn).__name__}")
    if name is None:
        name = "flax"
    if not isinstance(name, str) or not name:
        raise ValueError(f"from_flax: name must be a non-empty string, got {name!r}")
    if isinstance(module, linen.Module):
        return _from_linen(module, nnx, linen, output, initial_state, unit_axes, name)
    factory = not isinstance(module, nnx.Module)
    if factory and not callable(module):
        raise ValueError(
            f"from_flax needs a Flax NNX or Linen module or a function key -> "
            f"NNX module, got {type(module).__name__}"
        )
    probe = module(jax.random.PRNGKey(0)) if factory else module
    if not isinstance(probe, nnx.Module):
        raise ValueError(
            f"from_flax: the function must return a Flax NNX module, got {type(probe).__name__}"
        )
    cell = FlaxCell(name=name, source=_Held(module), factory=factory, api="nnx")
    graphdef, params, rest = nnx.split(probe, nnx.Param, ...)
    values, names = param_names(params)
    if not names:
        raise ValueError(
            f"from_flax: the module ({type(probe).__name__}) has no nnx.Param to train"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"from_flax: two of the module's parameters have the same name: {names}")
    structure = (graphdef, jax.tree_util.tree_structure(params))
    try:
        hash(structure)
    except TypeError as exc:
        raise ValueError(
            f"from_flax: the module's structure must be hashable ({exc}); keep "
            "unhashable metadata out of its variables"
        ) from None
    shapes = {k: tuple(np.shape(v)) for k, v in zip(names, values)}
    sizes = tuple(int_or_none(getattr(probe, a, None)) for a in ("in_features", "hidden_features"))
    builtin = is_flax_builtin(probe, nnx, linen)
    spec = None
    if hasattr(probe, "initialize_carry"):
        try:
            spec = _spec(probe.initialize_carry((sizes[0] or 1,), rngs=nnx.Rngs(0)))
        except Exception:  # a module's own initialize_carry of another signature
            spec = None
    return dataclasses.replace(
        cell,
        names=tuple(names),
        shapes=tuple(shapes[k] for k in names),
        structure=structure,
        rest=_Held(rest),
        declared=sizes,
        builtin=builtin,
        axes=_check_axes("from_flax", unit_axes, shapes),
        output_fn=output,
        state_fn=initial_state,
        state_spec=spec,
        y_leaf=default_y(probe, builtin),
        module_name=type(probe).__name__,
    )


def _from_linen(module, nnx, linen, output, initial_state, unit_axes, name):
    if module.scope is not None:
        raise ValueError(
            "from_flax needs an unbound Linen module (module, not module.bind(...)); "
            "its parameters are drawn by module.init for each network seed"
        )
    try:
        hash(module)
    except TypeError as exc:
        raise ValueError(f"from_flax: the Linen module must be hashable ({exc})") from None
    builtin = is_flax_builtin(module, nnx, linen)
    hidden = int_or_none(getattr(module, "features", None))
    spec = None
    if hasattr(module, "initialize_carry"):
        try:
            spec = _spec(module.initialize_carry(jax.random.PRNGKey(0), (1,)))
        except Exception:  # a module's own initialize_carry of another signature
            spec = None
    axes = _check_axes("from_flax", unit_axes, None)
    return FlaxCell(
        name=name,
        source=_Held(module),
        factory=False,
        api="linen",
        structure=(module, None),
        declared=(None, hidden),
        builtin=builtin,
        axes=axes,
        output_fn=output,
        state_fn=initial_state,
        state_spec=spec,
        y_leaf=default_y(module, builtin),
        module_name=type(module).__name__,
    )
