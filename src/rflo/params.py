"""A network's type, its parameters by name, and its constraints.

:class:`Network` is the pytree every part of the library passes around (the
drawing of one is :mod:`rflo.network`'s; the shapes of one without its memory
are :mod:`rflo.memory`'s, which is why the type lives here, below both).
Rules return, and optimisers receive, dicts keyed by parameter name; these
functions read and replace them on a :class:`Network` (the standard fields, or
the cell's own parameters in ``net.extra``), and project ``w_rec`` onto the
network's connectivity mask and Dale's law.  Re-exported by :mod:`rflo.network`.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from rflo.cells import Cell
from rflo.cells.base import owns_synapses, standard_params
from rflo.cells.leaky_tanh import LEAKY_TANH

__all__ = [
    "Network",
    "param_names",
    "trainable_names",
    "get_param",
    "params_of",
    "with_params",
    "weights_of",
    "with_weights",
    "apply_constraints",
]


class Network(NamedTuple):
    """A leaky-rate RNN with a readout and a fixed feedback matrix.

    Attributes
    ----------
    w_in : (n_rec, n_in) input weights.
    w_rec : (n_rec, n_rec) recurrent weights; ``w_rec[i, j]`` is the synapse from
        unit ``j`` onto unit ``i``.
    w_out : (n_out, n_rec) readout weights.
    b : (n_rec, n_out) fixed random feedback matrix (RFLO's ``B``).
    h0 : (n_rec,) initial state of every trial.
    tau : () membrane time constant in timesteps (> 1 for stable leaky units).
    sign : (n_rec,) or None.  Dale's law: the sign (+1 excitatory, -1
        inhibitory) of every outgoing recurrent weight of each presynaptic unit.
    mask : (n_rec, n_rec) or None.  Fixed connectivity: ``w_rec[i, j]`` exists
        only where ``mask[i, j]`` is 1.
    cell : the unit model (:mod:`rflo.cells`; default the paper's leaky tanh
        unit).  Static: it has no array leaves.
    extra : dict of the cell's own parameters by name (e.g. ``"bias"``), or None.

    A network whose cell owns its synapses (:class:`~rflo.cells.SynapticCell`:
    GRU, LSTM, LRU, a stack, your own module) keeps all of the cell's
    parameters in ``extra``; ``w_in``, ``w_rec``, ``h0``, ``tau``, ``sign`` and
    ``mask`` are then None, ``w_out`` is (n_out, n_z) and ``b`` (n_z, n_out)
    with ``n_z`` the size of the cell's output.
    """

    w_in: jax.Array
    w_rec: jax.Array
    w_out: jax.Array
    b: jax.Array
    h0: jax.Array
    tau: jax.Array
    sign: Optional[jax.Array] = None
    mask: Optional[jax.Array] = None
    cell: Cell = LEAKY_TANH
    extra: Optional[dict] = None

    @property
    def n_in(self) -> int:
        if self.w_in is None:
            return self.cell.sizes(self.extra)[0]
        return self.w_in.shape[-1]

    @property
    def n_rec(self) -> int:
        if self.w_rec is None:
            return self.cell.sizes(self.extra)[1]
        return self.w_rec.shape[-1]

    @property
    def n_out(self) -> int:
        return self.w_out.shape[-2]

    @property
    def dtype(self):
        return self.w_out.dtype if self.w_rec is None else self.w_rec.dtype


def param_names(net):
    """Every parameter of ``net`` by name: the standard ones and the cell's ``extra``."""
    return standard_params(net) + tuple(sorted(net.extra or {}))


def trainable_names(net):
    """The parameters trained by default (``lr`` given as one number)."""
    if owns_synapses(net.cell):
        return tuple(net.cell.trainable_names(net.extra))
    return net.cell.trainable


def get_param(net, name: str):
    """The parameter ``name`` of ``net`` (a standard field or an ``extra`` entry)."""
    if name in standard_params(net):
        return getattr(net, name)
    extra = net.extra or {}
    if name in extra:
        return extra[name]
    raise ValueError(
        f"the network (cell {net.cell.name!r}) has no parameter {name!r}; "
        f"it has {list(param_names(net))}"
    )


def params_of(net, names=("w_in", "w_rec", "w_out")) -> dict:
    """The parameters ``names`` of ``net`` as a dict (what rules and optimisers see)."""
    return {k: get_param(net, k) for k in names}


def with_params(net, params: dict):
    """``net`` with the parameters in ``params`` (a dict by name) replaced."""
    standard = standard_params(net)
    std = {k: v for k, v in params.items() if k in standard}
    more = {k: v for k, v in params.items() if k not in standard}
    if more:
        std["extra"] = {**(net.extra or {}), **more}
    return net._replace(**std)


def weights_of(net) -> dict:
    """The three matrices ``w_in, w_rec, w_out`` as a dict."""
    return params_of(net)


def with_weights(net, w: dict):
    """``net`` with the parameters in ``w`` (a dict by name) replaced."""
    return with_params(net, w)


def apply_constraints(net, w_rec):
    """Project ``w_rec`` onto the network's constraints (mask, then Dale's law).

    Absent connections stay at zero; a weight whose sign would cross that of its
    presynaptic unit is clipped at zero.
    """
    if net.mask is not None:
        w_rec = w_rec * net.mask
    if net.sign is not None:
        w_rec = net.sign * jnp.maximum(net.sign * w_rec, 0.0)
    return w_rec
