"""A point-neuron cell as a cell that owns its synapses: :class:`PointLayer`.

The paper's leaky tanh unit and the other point-neuron cells (``leaky_tau``,
``lif``, ``alif``) sit behind the network's synapses; wrapped in a
``PointLayer`` they own them instead, with the parameters ``w_in``
(n_rec, n_in), ``w_rec`` (n_rec, n_rec), ``h0`` (n_rec,), ``tau`` and the
cell's own (e.g. ``bias``), and the step::

    s[t] = neuron(s[t-1], w_rec @ output(s[t-1]) + w_in @ x[t])

so that they can be layers of a :class:`~rflo.cells.Stack` (names given to a
stack are wrapped automatically) or be trained through the same interface as
any model.  Every rule gives the same result on a ``PointLayer`` network as on
the point-neuron network with the same arrays through its generic route
(tested to 1e-12 in float64); the point-neuron network stays the fast one
(closed forms and compiled kernels for the leaky tanh unit).  Initial values
are the notebook's, as :func:`rflo.init_network` draws them.
``readout_feedback`` needs the network's readout inside its step and cannot
be wrapped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rflo.cells.base import Cell, SynapticCell, get_cell, rebuild_cell, register_cell

__all__ = ["PointLayer", "PointView"]


class PointView(NamedTuple):
    """What a point-neuron cell's methods read of a network (a parameter dict's view)."""

    w_in: jax.Array
    w_rec: jax.Array
    h0: jax.Array
    tau: jax.Array
    extra: Optional[dict]


def _point_cell(spec) -> Cell:
    if isinstance(spec, dict):
        spec = rebuild_cell(spec["name"], spec.get("settings", {}))
    elif isinstance(spec, str) and spec.startswith("{"):
        return _point_cell(json.loads(spec))
    cell = get_cell(spec)
    if not isinstance(cell, Cell):
        raise ValueError(f"PointLayer wraps a point-neuron cell, got {cell.name!r}")
    if cell.name == "readout_feedback":
        raise ValueError(
            "readout_feedback feeds the network's readout back through b inside "
            "its step, so it cannot be a layer; use it as the network's cell"
        )
    return cell


@register_cell
@dataclass(frozen=True)
class PointLayer(SynapticCell):
    """A point-neuron ``cell`` (name or cell) owning ``w_in``, ``w_rec``, ``h0``,
    ``tau`` (initial ``tau``, gain ``g`` of ``w_rec``) and its own parameters."""

    name = "point_layer"
    cell: object = "leaky_tanh"
    tau: float = 10.0
    g: float = 1.5

    def __post_init__(self):
        object.__setattr__(self, "cell", _point_cell(self.cell))
        if not self.tau > 0 or not self.g >= 0:
            raise ValueError(f"PointLayer needs tau > 0 and g >= 0, got tau={self.tau}, g={self.g}")

    def _view(self, params):
        extra = {k: v for k, v in params.items() if k not in PointView._fields}
        return PointView(
            params["w_in"], params["w_rec"], params["h0"], params["tau"], extra or None
        )

    def init(self, key, n_in, n_rec, dtype):
        k_in, k_rec = jax.random.split(key)
        tau = jnp.full((n_rec,) if self.cell.vector_tau else (), self.tau, dtype)
        params = {
            "w_in": 0.1 * (jax.random.uniform(k_in, (n_rec, n_in), dtype) - 1.0),
            "w_rec": self.g * jax.random.normal(k_rec, (n_rec, n_rec), dtype) / np.sqrt(n_rec),
            "h0": jnp.full((n_rec,), 0.1, dtype),
            "tau": tau,
        }
        params.update(self.cell.extra_params(jax.random.fold_in(key, 7), n_rec, dtype))
        return params

    def sizes(self, params):
        return params["w_in"].shape[-1], params["w_rec"].shape[-1]

    def initial_state(self, params):
        return self.cell.initial_state(self._view(params))

    def output(self, params, state):
        return self.cell.output(self._view(params), state)

    def step_with(self, params, state, x, z):
        view = self._view(params)
        return self.cell.neuron(view, state, view.w_rec @ z + view.w_in @ x)

    def step(self, params, state, x):
        return self.step_with(params, state, x, self.output(params, state))

    def unit_axes(self, params):
        axes = {name: 0 for name in self.cell.unit_params}
        if self.cell.vector_tau:
            axes["tau"] = 0
        return axes

    def trainable_names(self, params):
        return tuple(n for n in self.cell.trainable if n in params or n == "w_out")

    def constrain(self, params):
        return self.cell.constrain(params)

    def settings(self) -> dict:
        return {
            "cell": {"name": self.cell.name, "settings": self.cell.settings()},
            "tau": self.tau,
            "g": self.g,
        }
