"""The cell interface: what one recurrent unit does in one timestep.

Every network in rflo has the same synapses and readout, and a *cell* that
says what each unit does with its input current::

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
from typing import ClassVar, Dict, NamedTuple, Tuple

import jax
import jax.numpy as jnp

__all__ = ["Cell", "register_cell", "get_cell", "cell_names", "step", "readout",
           "current", "forward", "Activity", "STANDARD_PARAMS"]

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


def register_cell(cls):
    """Class decorator: make ``cls`` a static pytree and add it to the registry."""
    if cls.name in _CELLS and _CELLS[cls.name] is not cls:
        raise ValueError(f"a cell named {cls.name!r} is already registered ({_CELLS[cls.name].__name__})")
    jax.tree_util.register_pytree_node(
        cls, lambda c: ((), c), lambda c, _: c)
    _CELLS[cls.name] = cls
    return cls


def cell_names():
    """Names of the registered cells."""
    return sorted(_CELLS)


def get_cell(cell, **settings) -> Cell:
    """A :class:`Cell` from a registered name (with ``settings``) or a cell, returned as is."""
    if isinstance(cell, Cell):
        if settings:
            return dataclasses.replace(cell, **settings)
        return cell
    if isinstance(cell, str) and cell.lower() in _CELLS:
        cls = _CELLS[cell.lower()]
        try:
            return cls(**settings)
        except TypeError as exc:
            fields = [f.name for f in dataclasses.fields(cls)]
            raise ValueError(f"cell {cell!r} takes the settings {fields}: {exc}") from None
    raise ValueError(f"unknown cell {cell!r}: use one of {cell_names()}")


# --------------------------------------------------------------------------
# one step and one trial, for any cell


def current(net, z, x_t):
    """Synaptic current ``w_rec @ z + w_in @ x_t`` (n_rec,)."""
    return net.w_rec @ z + net.w_in @ x_t


def step(net, state, x_t):
    """The state after one step from ``state`` with input ``x_t``."""
    cell = net.cell
    return cell.neuron(net, state, current(net, cell.output(net, state), x_t))


def readout(net, state):
    """``y = w_out @ output(state)`` (n_out,)."""
    return net.w_out @ net.cell.output(net, state)


class Activity(NamedTuple):
    """A trial's activity at steps ``t = 1 .. T-1`` (stacked along axis 0)."""

    state: object  # the cell states (a pytree of (T-1, n_rec) arrays)
    z: jax.Array  # (T-1, n_rec) what the units send
    current: jax.Array  # (T-1, n_rec) synaptic current I[t]
    y: jax.Array  # (T-1, n_out) readout


def forward(net, x, unroll: int = 1) -> Activity:
    """Run the network with fixed parameters over one trial ``x`` (T, n_in)."""
    cell = net.cell

    def body(state, x_t):
        drive = current(net, cell.output(net, state), x_t)
        state = cell.neuron(net, state, drive)
        z = cell.output(net, state)
        return state, Activity(state, z, drive, net.w_out @ z)

    return jax.lax.scan(body, cell.initial_state(net), x[1:], unroll=unroll)[1]


def per_unit_ones(state, leaf: int):
    """A tangent for ``state`` with ones on leaf ``leaf`` and zeros elsewhere."""
    leaves, tree = jax.tree_util.tree_flatten(state)
    return jax.tree_util.tree_unflatten(
        tree, [jnp.ones_like(a) if i == leaf else jnp.zeros_like(a) for i, a in enumerate(leaves)])
