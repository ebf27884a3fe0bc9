"""Cells: the unit models a network can be built from (see :mod:`rflo.cells.base`).

===================  ==============================================================
name                 unit
===================  ==============================================================
``leaky_tanh``       the paper's leaky rate unit, ``f = tanh`` (default)
``leaky_tau``        leaky tanh rate unit with a learnable ``tau`` per unit and a bias
``lif``              leaky integrate-and-fire spiking unit, e-prop's pseudo-derivative
``alif``             adaptive LIF: threshold raised by the unit's recent spikes (e-prop)
``readout_feedback`` leaky tanh unit that also receives the readout through ``b``
===================  ==============================================================

``rflo.init_network(..., cell="name")`` builds a network of that cell; every
rule trains every cell (closed-form routes for ``leaky_tanh``, Jacobian-vector
products for the others).
"""

from rflo.cells.base import Cell, cell_names, forward, get_cell, readout, register_cell, step
from rflo.cells.leaky_tanh import LEAKY_TANH, LeakyTanh
from rflo.cells.leaky_tau import LeakyTau
from rflo.cells.lif import ALIF, LIF
from rflo.cells.readout_feedback import ReadoutFeedback

__all__ = ["Cell", "cell_names", "get_cell", "register_cell", "step", "readout", "forward",
           "LeakyTanh", "LEAKY_TANH", "LeakyTau", "LIF", "ALIF", "ReadoutFeedback"]
