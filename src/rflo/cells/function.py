"""Your own cell from plain functions: :func:`from_function`.

::

    cell = rflo.cells.from_function(init, step, output=None, unit_axes=None)
    net = rflo.init_network(n_in, n_rec, n_out, cell=cell)

``init(key, n_in, n_rec) -> params`` (a dict of arrays by name; they are cast
to the network's dtype), ``step(params, state, x) -> state`` and
``output(params, state) -> z`` (default: the state itself) are pure JAX
functions.  ``initial_state(params) -> state`` defaults to zeros (n_rec,).
``unit_axes`` (``{name: axis}``) names the per-unit parameters for local rules
(e-prop, RFLO, SnAp-1); without it those rules refuse the cell and the exact
and global ones (BPTT, RTRL, UORO, SnAp-2, TBPTT) train it.  ``step_with(params,
state, x, z)`` (the step with the units' previous outputs ``z`` given apart) lets
e-prop hold the recurrent input fixed, as Bellec et al. (2020) define it.

A network file can hold such a network's arrays, but not your functions:
:func:`rflo.load_network` then asks for the cell (``cell=``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import jax
import jax.numpy as jnp

from rflo.cells.base import SynapticCell

__all__ = ["FunctionCell", "from_function"]


@dataclass(frozen=True)
class FunctionCell(SynapticCell):
    """A :class:`~rflo.cells.SynapticCell` made of your functions (see :func:`from_function`)."""

    name: str = "function"
    init_fn: Optional[Callable] = None
    step_fn: Optional[Callable] = None
    output_fn: Optional[Callable] = None
    state_fn: Optional[Callable] = None
    step_with_fn: Optional[Callable] = None
    axes: Tuple[Tuple[str, int], ...] = ()
    n_in: Optional[int] = None
    n_rec: Optional[int] = None

    def init(self, key, n_in, n_rec, dtype):
        params = self.init_fn(key, n_in, n_rec)
        if not isinstance(params, dict):
            raise ValueError(
                f"cell {self.name!r}: init must return a dict of arrays by name, "
                f"got {type(params).__name__}"
            )
        return {k: jnp.asarray(v, dtype) for k, v in params.items()}

    def sized(self, n_in, n_rec):
        from dataclasses import replace

        return replace(self, n_in=int(n_in), n_rec=int(n_rec))

    def sizes(self, params):
        if self.n_rec is None:
            raise ValueError(
                f"cell {self.name!r} has no sizes yet: build the network with "
                "rflo.init_network(n_in, n_rec, n_out, cell=cell)"
            )
        return self.n_in, self.n_rec

    def step(self, params, state, x):
        return self.step_fn(params, state, x)

    @property
    def step_with(self):
        return self.step_with_fn

    def output(self, params, state):
        return state if self.output_fn is None else self.output_fn(params, state)

    def initial_state(self, params):
        if self.state_fn is not None:
            return self.state_fn(params)
        return SynapticCell.initial_state(self, params)

    def unit_axes(self, params):
        return dict(self.axes)

    def settings(self) -> dict:
        return {"name": self.name, "n_in": self.n_in, "n_rec": self.n_rec}

    def restorable(self):
        return (
            f"cell {self.name!r} is made of your own functions (rflo.cells.from_function), "
            "which a file cannot hold"
        )


jax.tree_util.register_pytree_node(FunctionCell, lambda c: ((), c), lambda c, _: c)


def from_function(
    init,
    step,
    output=None,
    *,
    initial_state=None,
    unit_axes=None,
    step_with=None,
    name: str = "function",
) -> FunctionCell:
    """A cell from pure functions (see the module docstring for their signatures)."""
    for what, fn in (
        ("init", init),
        ("step", step),
        ("output", output),
        ("initial_state", initial_state),
        ("step_with", step_with),
    ):
        if fn is not None and not callable(fn):
            raise ValueError(f"from_function: {what} must be a function, got {type(fn).__name__}")
    if init is None or step is None:
        raise ValueError("from_function needs init(key, n_in, n_rec) and step(params, state, x)")
    axes = dict(unit_axes or {})
    for k, v in axes.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"unit_axes maps parameter names to integer axes, got {k!r}: {v!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    return FunctionCell(
        name, init, step, output, initial_state, step_with, tuple(sorted(axes.items()))
    )
