"""A network's parameters by name, and its constraints.

Rules return, and optimisers receive, dicts keyed by parameter name; these
functions read and replace them on a :class:`~rflo.network.Network` (the
standard fields, or the cell's own parameters in ``net.extra``), and project
``w_rec`` onto the network's connectivity mask and Dale's law.  Re-exported
by :mod:`rflo.network`.
"""

from __future__ import annotations

import jax.numpy as jnp

from rflo.cells.base import owns_synapses, standard_params

__all__ = ["param_names", "trainable_names", "get_param", "params_of", "with_params",
           "weights_of", "with_weights", "apply_constraints"]


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
    raise ValueError(f"the network (cell {net.cell.name!r}) has no parameter {name!r}; "
                     f"it has {list(param_names(net))}")


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
