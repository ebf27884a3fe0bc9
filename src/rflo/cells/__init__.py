"""Cells: the unit models a network can be built from (see :mod:`rflo.cells.base`).

===================  ==============================================================
name                 unit
===================  ==============================================================
``leaky_tanh``       the paper's leaky rate unit, ``f = tanh`` (default)
``leaky_tau``        leaky tanh rate unit with a learnable ``tau`` per unit and a bias
``lif``              leaky integrate-and-fire spiking unit, e-prop's pseudo-derivative
``alif``             adaptive LIF: threshold raised by the unit's recent spikes (e-prop)
``readout_feedback`` leaky tanh unit that also receives the readout through ``b``
``gru``              gated recurrent unit (owns its synapses)
``lstm``             long short-term memory unit (owns its synapses)
``lru``              linear recurrent unit, diagonal complex recurrence (owns its synapses)
``stack``            layers of cells that own their synapses, the top one read out
``point_layer``      a point-neuron cell owning w_in, w_rec, h0, tau (e.g. a stack's layer)
===================  ==============================================================

Your own model: :func:`from_function` (plain JAX functions),
:func:`from_equinox` and :func:`from_flax` (modules; optional extras).

``rflo.init_network(..., cell="name")`` builds a network of that cell; every
rule trains every cell (closed-form routes for ``leaky_tanh``, Jacobian-vector
products for the others).
"""

from rflo.cells.base import (
    Cell,
    SynapticCell,
    cell_names,
    forward,
    get_cell,
    owns_synapses,
    readout,
    rebuild_cell,
    register_cell,
    step,
)
from rflo.cells.function import FunctionCell, from_function
from rflo.cells.gated import GRU, LSTM
from rflo.cells.leaky_tanh import LEAKY_TANH, LeakyTanh
from rflo.cells.leaky_tau import LeakyTau
from rflo.cells.lif import ALIF, LIF
from rflo.cells.lru import LRU
from rflo.cells.point_layer import PointLayer
from rflo.cells.readout_feedback import ReadoutFeedback
from rflo.cells.stack import Stack

__all__ = [
    "Cell",
    "SynapticCell",
    "cell_names",
    "get_cell",
    "rebuild_cell",
    "register_cell",
    "step",
    "readout",
    "forward",
    "owns_synapses",
    "LeakyTanh",
    "LEAKY_TANH",
    "LeakyTau",
    "LIF",
    "ALIF",
    "ReadoutFeedback",
    "GRU",
    "LSTM",
    "LRU",
    "Stack",
    "PointLayer",
    "FunctionCell",
    "from_function",
    "from_equinox",
    "from_flax",
]


def from_equinox(module, **kwargs):
    """A cell from an Equinox module (the ``equinox`` extra): see
    :func:`rflo.cells.equinox_cell.from_equinox`."""
    from rflo.cells.equinox_cell import from_equinox as build

    return build(module, **kwargs)


def from_flax(module, **kwargs):
    """A cell from a Flax module (the ``flax`` extra): see
    :func:`rflo.cells.flax_cell.from_flax`."""
    from rflo.cells.flax_cell import from_flax as build

    return build(module, **kwargs)
