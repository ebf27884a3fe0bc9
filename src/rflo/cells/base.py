"""The cell interfaces: what the recurrent layer does in one timestep.

Two kinds of cell share the readout ``y = w_out @ z`` and the feedback ``b``:

* a **point-neuron cell** (:class:`Cell`) sits behind the network's fixed
  synapses (``w_in``, ``w_rec``) and says what each unit does with its current;
* a **cell that owns its synapses** (:class:`SynapticCell`: GRU, LSTM, LRU, a
  stack of layers, your own function, Equinox or Flax module) has its own
  parameters (a dict by name) and its own step; see below.

A point-neuron cell::

    z[t-1] = output(s[t-1])                        (n_rec,)  what the unit sends
    I[t]   = w_rec @ z[t-1] + w_in @ x[t]          (n_rec,)  synaptic current
    s[t]   = neuron(s[t-1], I[t])                  per-unit state (a pytree of (n_rec,) arrays)
    y[t]   = w_out @ output(s[t])                  (n_out,)  linear readout

``neuron`` acts on each unit separately (unit ``i``'s new state depends on its
own state and its own current only); everything else it needs comes from the
network's parameters (``tau``, ``h0`` and the cell's ``extra`` arrays).  That
is all the rules need: exact rules differentiate ``step`` with
Jacobian-vector products, local rules use the per-unit (diagonal) part.

A cell is a frozen dataclass registered as a pytree *without leaves*: its
settings are static (part of the compiled function's identity) and a
:class:`~rflo.network.Network` carries its cell through ``jit`` and ``vmap``.
A new cell is one module: subclass :class:`Cell`, decorate it with
:func:`register_cell`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Dict, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

__all__ = [
    "Cell",
    "SynapticCell",
    "register_cell",
    "get_cell",
    "cell_names",
    "step",
    "readout",
    "current",
    "forward",
    "Activity",
    "STANDARD_PARAMS",
    "owns_synapses",
    "initial_state",
    "output",
    "unit_axes",
    "standard_params",
]

#: parameters every network has (fields of :class:`~rflo.network.Network`)
STANDARD_PARAMS = ("w_in", "w_rec", "w_out", "h0", "tau")

_CELLS: Dict[str, type] = {}


@dataclass(frozen=True)
class Cell:
    """Base class of cells.  Subclasses override :meth:`neuron` and, where the
    unit's state is not its output, :meth:`initial_state` and :meth:`output`.

    Class attributes
    ----------------
    name : registry name.
    trainable : parameters trained by default (names of network parameters).
    unit_params : parameters whose axis 0 indexes the unit they belong to, so
        that a local rule can give each unit's parameters their own trace
        (``w_in``, ``w_rec``, ``h0`` always; per-unit vectors a cell adds).
    vector_tau : whether ``tau`` may be one value per unit (shape (n_rec,)).
    min_tau : the smallest ``tau`` the cell's update is stable for, and why
        (``(0.0, "")``: any positive ``tau``).

    Optional: ``presynaptic_leaves(net)``, the indices of the state leaves whose
    local traces of ``w_rec`` and ``w_in`` are the same in every row (the leaf
    depends on no other leaf, and its ``d s/d s`` and ``d s/d I`` are one number
    for all units): local rules then keep them as one row (LIF's ``v``).
    """

    name: ClassVar[str] = "cell"
    trainable: ClassVar[Tuple[str, ...]] = ("w_in", "w_rec", "w_out")
    unit_params: ClassVar[Tuple[str, ...]] = ("w_in", "w_rec", "h0")
    vector_tau: ClassVar[bool] = False
    min_tau: ClassVar[Tuple[float, str]] = (0.0, "")

    # ---- what a subclass defines
    def neuron(self, net, state, current):
        """The unit's new state from its state ``state`` and current ``current`` (n_rec,)."""
        raise NotImplementedError

    def initial_state(self, net):
        """The state at step 0 (default: ``net.h0``)."""
        return net.h0

    def output(self, net, state):
        """What the unit sends to the others and to the readout (default: the state)."""
        return state

    def extra_params(self, key, n_rec: int, dtype) -> dict:
        """Initial values of the cell's own parameters (beyond the standard ones)."""
        return {}

    def constrain(self, params: dict) -> dict:
        """Project trained parameters back onto their allowed range (default: none)."""
        return params

    def settings(self) -> dict:
        """The cell's static settings, as plain data (written into network files)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SynapticCell:
    """Base class of cells that own their synapses (their parameters and step).

    ::

        params = init(key, n_in, n_rec, dtype)    dict of arrays by name
        s[0]   = initial_state(params)            a pytree (of (n_rec,) arrays for local rules)
        s[t]   = step(params, s[t-1], x[t])
        z[t]   = output(params, s[t])             (n_z,) what the readout and feedback see
        y[t]   = w_out @ z[t]                     (the network's; b is (n_z, n_out))

    ``unit_axes(params)`` names the per-unit parameters and the axis of each
    that indexes its unit (entry ``r`` belongs to unit ``r % n_rec``: gates
    stacked along one axis are fine); a local rule (e-prop, RFLO, SnAp-1)
    trains only those, and refuses the others by name.  A cell whose step can
    take the units' previous outputs as a separate argument defines
    ``step_with(params, s, x, z)`` (``step(params, s, x) = step_with(params,
    s, x, output(params, s))``): e-prop then holds that recurrent input fixed,
    as Bellec et al. (2020) define it; without it e-prop keeps each unit's
    whole diagonal Jacobian (SnAp-1's trace).

    Class attributes: ``name`` (registry name); ``local`` (False where units
    are not one index shared by every state leaf, e.g. a stack of layers: local
    rules refuse the cell).  A cell is static (no array leaves); its settings
    are dataclass fields.
    """

    name: ClassVar[str] = "synaptic"
    local: ClassVar[bool] = True
    vector_tau: ClassVar[bool] = False
    min_tau: ClassVar[Tuple[float, str]] = (0.0, "")
    step_with: ClassVar[object] = None  # a method where the cell defines it

    # ---- what a subclass defines
    def init(self, key, n_in: int, n_rec: int, dtype) -> dict:
        """The cell's initial parameters, a dict of arrays by name."""
        raise NotImplementedError

    def step(self, params, state, x):
        """The state after one step with input ``x`` (n_in,)."""
        raise NotImplementedError

    def sizes(self, params) -> Tuple[int, int]:
        """``(n_in, n_rec)`` read from the parameters' shapes (leading axes allowed)."""
        raise NotImplementedError

    def initial_state(self, params):
        """The state at step 0 (default: zeros, (n_rec,))."""
        leaf = jax.tree_util.tree_leaves(params)[0]
        return jnp.zeros((self.sizes(params)[1],), jnp.result_type(leaf))

    def output(self, params, state):
        """What the units send to the readout and the feedback (default: the state)."""
        return state

    def unit_axes(self, params) -> dict:
        """``{name: axis}`` of the per-unit parameters (default: none)."""
        return {}

    def output_size(self, params) -> int:
        """``n_z``, the size of the output, from the parameters' shapes (nothing is computed)."""
        z = jax.eval_shape(lambda p: self.output(p, self.initial_state(p)), params)
        if len(z.shape) != 1:
            raise ValueError(
                f"cell {self.name!r}: output(params, state) must be a vector (n_z,), "
                f"got shape {z.shape}"
            )
        return z.shape[0]

    def trainable_names(self, params) -> Tuple[str, ...]:
        """The parameters trained by default (default: all of the cell's, and ``w_out``)."""
        return tuple(sorted(params)) + ("w_out",)

    def sized(self, n_in: int, n_rec: int):
        """This cell for ``n_in`` inputs and ``n_rec`` units (default: itself)."""
        return self

    def constrain(self, params: dict) -> dict:
        """Project trained parameters back onto their allowed range (default: none)."""
        return params

    def settings(self) -> dict:
        """The cell's static settings, as plain data (written into network files)."""
        return dataclasses.asdict(self)

    def restorable(self) -> Optional[str]:
        """``None`` if a network file can rebuild this cell by name and settings,
        else why not (e.g. it wraps your own functions)."""
        return None


def register_cell(cls):
    """Class decorator: make ``cls`` a static pytree and add it to the registry."""
    if cls.name in _CELLS and _CELLS[cls.name] is not cls:
        raise ValueError(
            f"a cell named {cls.name!r} is already registered ({_CELLS[cls.name].__name__})"
        )
    jax.tree_util.register_pytree_node(cls, lambda c: ((), c), lambda c, _: c)
    _CELLS[cls.name] = cls
    return cls


def cell_names():
    """Names of the registered cells."""
    return sorted(_CELLS)


def get_cell(cell, **settings) -> Cell:
    """A :class:`Cell` from a registered name (with ``settings``) or a cell, returned as is.

    A cell built by name starts from its class's ``name_defaults`` (a dict, if
    the class has one: the spiking cells' background ``drive``, so that a
    network built with defaults fires), then ``settings``.  Files are read back
    with :func:`rebuild_cell`, which uses exactly the settings written."""
    if isinstance(cell, (Cell, SynapticCell)):
        if settings:
            return dataclasses.replace(cell, **settings)
        return cell
    if isinstance(cell, str) and cell.lower() in _CELLS:
        cls = _CELLS[cell.lower()]
        return rebuild_cell(cell, {**getattr(cls, "name_defaults", {}), **settings})
    raise ValueError(f"unknown cell {cell!r}: use one of {cell_names()}")


def rebuild_cell(name: str, settings: dict) -> Cell:
    """The registered cell ``name`` with exactly ``settings`` (its class's
    defaults for the rest, not ``name_defaults``): a cell read back from a file."""
    if not (isinstance(name, str) and name.lower() in _CELLS):
        raise ValueError(f"unknown cell {name!r}: use one of {cell_names()}")
    cls = _CELLS[name.lower()]
    try:
        return cls(**settings)
    except TypeError as exc:
        fields = [f.name for f in dataclasses.fields(cls)]
        raise ValueError(f"cell {name!r} takes the settings {fields}: {exc}") from None


# --------------------------------------------------------------------------
# one step and one trial, for any cell


def owns_synapses(cell) -> bool:
    """Whether ``cell`` owns its synapses (a :class:`SynapticCell`)."""
    return isinstance(cell, SynapticCell)


def standard_params(net):
    """The parameters that are fields of the network (the rest are the cell's own)."""
    return ("w_out",) if owns_synapses(net.cell) else STANDARD_PARAMS


def current(net, z, x_t):
    """Synaptic current ``w_rec @ z + w_in @ x_t`` (n_rec,) of a point-neuron cell."""
    return net.w_rec @ z + net.w_in @ x_t


def initial_state(net):
    """The cell state at step 0."""
    cell = net.cell
    return cell.initial_state(net.extra) if owns_synapses(cell) else cell.initial_state(net)


def output(net, state):
    """What the units send to each other and to the readout, ``z`` (n_z,)."""
    cell = net.cell
    return cell.output(net.extra if owns_synapses(cell) else net, state)


def step(net, state, x_t):
    """The state after one step from ``state`` with input ``x_t``."""
    cell = net.cell
    if owns_synapses(cell):
        return cell.step(net.extra, state, x_t)
    return cell.neuron(net, state, current(net, cell.output(net, state), x_t))


def readout(net, state):
    """``y = w_out @ output(state)`` (n_out,)."""
    return net.w_out @ output(net, state)


def unit_axes(net) -> dict:
    """``{parameter name: axis}``: the axis of each per-unit parameter that
    indexes its unit (entry ``r`` along it belongs to unit ``r % n_rec``, so
    gates stacked along one axis are allowed).  Local rules train only these."""
    cell = net.cell
    if owns_synapses(cell):
        return dict(cell.unit_axes(net.extra))
    axes = {name: 0 for name in cell.unit_params}
    if cell.vector_tau:
        axes["tau"] = 0
    return axes


class Activity(NamedTuple):
    """A trial's activity at steps ``t = 1 .. T-1`` (stacked along axis 0)."""

    state: object  # the cell states (a pytree of (T-1, n_rec) arrays)
    z: jax.Array  # (T-1, n_z) what the units send
    current: jax.Array  # (T-1, n_rec) synaptic current I[t] (zeros for a SynapticCell)
    y: jax.Array  # (T-1, n_out) readout


def forward(net, x, unroll: int = 1) -> Activity:
    """Run the network with fixed parameters over one trial ``x`` (T, n_in)."""
    cell = net.cell
    if owns_synapses(cell):

        def body(state, x_t):
            state = cell.step(net.extra, state, x_t)
            z = cell.output(net.extra, state)
            return state, Activity(state, z, jnp.zeros_like(z), net.w_out @ z)

        return jax.lax.scan(body, cell.initial_state(net.extra), x[1:], unroll=unroll)[1]

    def body(state, x_t):
        drive = current(net, cell.output(net, state), x_t)
        state = cell.neuron(net, state, drive)
        z = cell.output(net, state)
        return state, Activity(state, z, drive, net.w_out @ z)

    return jax.lax.scan(body, cell.initial_state(net), x[1:], unroll=unroll)[1]
