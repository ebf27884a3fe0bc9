"""A stack of layers, each a cell that owns its synapses; the top one is read out.

::

    s_1[t] = layer_1.step(p_1, s_1[t-1], x[t])
    s_l[t] = layer_l.step(p_l, s_l[t-1], z_{l-1}[t]),   z_l = layer_l.output(p_l, s_l)
    z[t]   = z_L[t]                                       (what the readout sees)

Layer ``l``'s parameters are named ``"layer<l>.<name>"`` (from 0), so rates
and freezing go by name as for any cell (``lr={"layer1.w_rec": 0.01, ...}``).
Every layer has ``n_rec`` units unless ``widths`` says otherwise (the top one
always has ``n_rec``).  A point-neuron cell given as a layer (``"leaky_tanh"``)
is wrapped in a :class:`~rflo.cells.PointLayer`.  The layers' units are separate populations, so the
per-unit (local) rules refuse a stack; BPTT, TBPTT, RTRL, UORO and SnAp-2
train it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Tuple

import jax

from rflo.cells.base import SynapticCell, get_cell, rebuild_cell, register_cell
from rflo.cells.point_layer import PointLayer

__all__ = ["Stack"]


def _layer(spec):
    if isinstance(spec, dict):
        return rebuild_cell(spec["name"], spec.get("settings", {}))
    if isinstance(spec, str) and spec.startswith("{"):
        return _layer(json.loads(spec))
    cell = get_cell(spec)
    if not isinstance(cell, SynapticCell):  # a point-neuron cell owns its synapses as a layer
        return PointLayer(cell)
    return cell


@register_cell
@dataclass(frozen=True)
class Stack(SynapticCell):
    """Layers (cells or names, bottom first) stacked; ``widths``: units of all but the top."""

    name = "stack"
    local = False
    layers: Tuple = ("gru", "gru")
    widths: Tuple = ()

    def __post_init__(self):
        layers = tuple(_layer(spec) for spec in self.layers)
        if not layers:
            raise ValueError("a stack needs at least one layer")
        object.__setattr__(self, "layers", layers)
        widths = tuple(int(w) for w in self.widths)
        if widths and len(widths) != len(layers) - 1:
            raise ValueError(
                f"widths gives the units of every layer but the top: "
                f"{len(layers) - 1} numbers, got {len(widths)}"
            )
        if any(w < 1 for w in widths):
            raise ValueError(f"widths must be positive, got {widths}")
        object.__setattr__(self, "widths", widths)

    def _split(self, params):
        return [
            {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(f"layer{i}.")}
            for i in range(len(self.layers))
        ]

    def init(self, key, n_in, n_rec, dtype):
        widths = self.widths or (n_rec,) * (len(self.layers) - 1)
        params, size = {}, n_in
        for i, (layer, width) in enumerate(zip(self.layers, widths + (n_rec,))):
            p = layer.init(jax.random.fold_in(key, i), size, width, dtype)
            params.update({f"layer{i}.{k}": v for k, v in p.items()})
            size = layer.output_size(p)
        return params

    def sized(self, n_in, n_rec):
        """The stack with each layer sized for its input (a cell made of your
        functions needs its sizes before it can draw its parameters)."""
        from dataclasses import replace

        widths = self.widths or (n_rec,) * (len(self.layers) - 1)
        layers, size = [], n_in
        for layer, width in zip(self.layers, widths + (n_rec,)):
            layer = layer.sized(size, width)
            p = jax.eval_shape(
                lambda k, layer=layer, size=size, width=width: layer.init(
                    k, size, width, "float32"
                ),
                jax.random.PRNGKey(0),
            )
            size = layer.output_size(p)
            layers.append(layer)
        return replace(self, layers=tuple(layers))

    def sizes(self, params):
        parts = self._split(params)
        return self.layers[0].sizes(parts[0])[0], self.layers[-1].sizes(parts[-1])[1]

    def initial_state(self, params):
        return tuple(layer.initial_state(p) for layer, p in zip(self.layers, self._split(params)))

    def step(self, params, state, x):
        new, inp = [], x
        for layer, p, s in zip(self.layers, self._split(params), state):
            s = layer.step(p, s, inp)
            inp = layer.output(p, s)
            new.append(s)
        return tuple(new)

    def output(self, params, state):
        return self.layers[-1].output(self._split(params)[-1], state[-1])

    def settings(self) -> dict:
        return {
            "layers": [{"name": c.name, "settings": c.settings()} for c in self.layers],
            "widths": list(self.widths),
        }
