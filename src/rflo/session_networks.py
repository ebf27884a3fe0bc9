"""Where a :class:`rflo.session.Session`'s networks come from: those a new
run starts from, drawn from the spec's seeds or loaded from ``spec.init``
(:func:`initial_networks`), and those a caller hands to
:meth:`~rflo.session.Session.for_networks`, made ready for it
(:func:`given_networks`: stacked, with the spec's f', one seed each, rates
per network)."""

from __future__ import annotations

import numpy as np

from rflo.session_build import build, draw_network, load_for_task

__all__ = ["initial_networks", "given_networks"]


def initial_networks(spec, task, cell):
    """The initial network of a new run of ``spec`` (an ensemble's, stacked:
    one per seed), drawn for ``task`` with ``cell``, or loaded from ``spec.init``."""
    from rflo.ensemble import stack_networks

    s = spec
    draw = lambda seed: draw_network(s, task, cell, seed)  # noqa: E731
    if s.init is not None:
        if s.seeds is not None:
            raise ValueError(
                "init starts one network; with seeds each network is drawn "
                "from its seed (drop one of them)"
            )
        net = load_for_task(s.init, task, s.dtype)
        return net._replace(cell=cell) if s.derivative is not None else net
    return draw(s.seed) if s.seeds is None else stack_networks([draw(x) for x in s.seeds])


def given_networks(spec, networks, *, seeds, lr, task, built):
    """``(networks stacked, seeds, lr, (task, cell, optimizer))`` of
    :meth:`~rflo.session.Session.for_networks`'s arguments (ValueError for
    seeds or a rate table that do not fit the networks)."""
    import jax

    from rflo import runconfig
    from rflo.ensemble import stack_networks, unstack_networks
    from rflo.network import Network
    from rflo.session_checks import with_derivative

    nets = stack_networks(
        unstack_networks(networks) if isinstance(networks, Network) else list(networks)
    )
    nets = with_derivative(nets, spec.derivative)
    k = int(np.shape(nets.w_out)[0])
    seeds = list(seeds if seeds is not None else spec.seeds or range(k))
    if len(seeds) != k:
        raise ValueError(f"need one seed per network ({k}), got {len(seeds)}")
    if lr is not None and not isinstance(lr, dict) and np.ndim(lr) == 2:  # (K, 3)
        table = np.asarray(lr, float)
        if table.shape != (k, 3):
            raise ValueError(
                f"per-network learning rates must have shape ({k}, 3), got {table.shape}"
            )
        first = jax.tree_util.tree_map(lambda a: a[0], nets)
        lr = runconfig.cell_rates(first, tuple(table[:, i] for i in range(3)))
        if not isinstance(lr, dict):
            lr = dict(zip(("w_in", "w_rec", "w_out"), lr))
    built = build(spec) if built is None else built
    if task is not None:
        built = (task, *built[1:])
    return nets, seeds, lr, built
