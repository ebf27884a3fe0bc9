"""e-prop (Bellec et al. 2020) for the leaky rate network.

e-prop splits the gradient into a *learning signal* ``L[t]`` (the error fed back
to each unit, here through ``F = w_out^T`` or the random ``b``) and an
*eligibility trace* that each synapse computes from local quantities only.
For a unit with hidden state ``h_i`` and output ``z_i`` the eligibility vector
follows the unit's *internal* dynamics, i.e. the partial derivative
``D_i = dh_i[t] / dh_i[t-1]`` taken with the recurrent input (which arrives
through the outputs ``z[t-1]``) held fixed::

    eps[t] = D eps[t-1] + dh_i[t] / dW_ij          (eligibility vector)
    e[t]   = (dz_i[t] / dh_i[t]) eps[t]             (eligibility trace)
    dW_ij += L_i[t] e_ij[t],   L[t] = F err[t]

For the leaky rate unit ``h[t] = c h[t-1] + a f(u[t])`` the output is the
state itself (``z = h``, so ``dz/dh = 1``) and the internal dynamics is the leak
alone (``D = c``), hence::

    e_rec[t] = c e_rec[t-1] + a d[t] h[t-1]^T       (n_rec, n_rec)
    e_in[t]  = c e_in[t-1]  + a d[t] x[t]^T         (n_rec, n_in)

which is exactly RFLO's trace ``p`` / ``q`` (Murray 2019, eq. 14-15).  With
symmetric feedback (``F = w_out^T``) e-prop is therefore Murray's "locality
without random feedback" (rule ``local``), and with random feedback
(``F = b``) it is RFLO.  They are one point of the feedback x credit design
space, so they are one implementation (:class:`~rflo.rules.rflo.LocalTraceRule`,
generic over cells: for a spiking cell the trace follows the neuron's own
dynamics, e.g. e-prop's ALIF eligibility vector with its adaptation
component); ``eprop`` and ``eprop_random`` are the names under which Bellec
et al.'s readers look for it.
(Bellec's readout is low-pass filtered, which adds a second filter to the
trace; this network's readout is instantaneous, so that filter is absent.)
The dropped term is the recurrent path ``a d_i w_rec[i, :] dh[t-1]/dW``: on a
network with ``w_rec = 0`` e-prop is the exact gradient.

Cost per step: O(n_rec (n_rec + n_in)) time and memory.
"""

from __future__ import annotations

from rflo.rules.base import register
from rflo.rules.rflo import LocalTraceRule

__all__ = ["EProp", "EPROP", "EPROP_RANDOM"]

#: e-prop is the local-trace rule (one implementation for one point of the design space)
EProp = LocalTraceRule

EPROP = register(LocalTraceRule(name="eprop", feedback="readout"))
"""e-prop with symmetric feedback ``w_out^T``."""

EPROP_RANDOM = register(LocalTraceRule(name="eprop_random", feedback="random"))
"""e-prop with random feedback ``b`` (Bellec et al. 2020's "random e-prop")."""
