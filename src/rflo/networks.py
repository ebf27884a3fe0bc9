"""Named initial networks: a paper's network by name instead of
:func:`rflo.init_network` (``RunSpec(network="bellec2020")``, ``rflo train
--network bellec2020``, a sweep grid's ``network = "bellec2020"``).

A builder is ``fn(seed: int, task) -> rflo.Network``: it draws the whole
network from ``seed`` for ``task`` (its cell, size, time constants and
constraints are its own)::

    from rflo.networks import register_network

    def my_network(seed, task):
        return rflo.init_network(task.n_in, 80, task.n_out, seed=seed, tau=5.0)

    register_network("mine", my_network)      # then RunSpec(network="mine")

Built-in names are held as ``"module:function"`` text and imported on first
use, so this module imports nothing of the library (a registered name is
known to this process only: a sweep run by other processes, e.g. on Slurm,
sees the built-in names and those its own imports register).
"""

from __future__ import annotations

import difflib
import importlib

__all__ = ["register_network", "network_names", "get_network_builder", "build_network"]

#: name -> builder, or "module:function" of a built-in one (imported on use)
_BUILDERS = {
    # Bellec et al. (2020), Fig. 3: 50 LIF + 50 ALIF units, their weights in the
    # library's units (rflo.paper.bellec2020; evidence accumulation: 40 in, 2 out)
    "bellec2020": "rflo.paper.bellec2020:bellec_network",
    # Murray (2019), Figure 2: 30 leaky tanh units, tau 10, the Methods' weights
    # (rflo.paper.common.paper_network), without and with Dale's law (supplement 1)
    "murray2019": "rflo.paper.common:murray_network",
    "murray2019_dale": "rflo.paper.common:murray_dale_network",
}


def register_network(name: str, fn) -> None:
    """Register ``fn(seed, task) -> Network`` under ``name`` (a name is taken once;
    registering the same function again is allowed)."""
    if not (isinstance(name, str) and 0 < len(name) <= 100):
        raise ValueError(f"a network's name is non-empty text, got {name!r}")
    if not callable(fn):
        raise ValueError(f"register_network({name!r}, fn): fn must be callable, got {fn!r}")
    if name in _BUILDERS and _BUILDERS[name] is not fn:
        raise ValueError(f"a network named {name!r} is already registered")
    _BUILDERS[name] = fn


def network_names() -> list:
    """Names of the registered networks."""
    return sorted(_BUILDERS)


def get_network_builder(name: str):
    """The builder registered as ``name``; a one-line ValueError naming the
    known names (and the closest) otherwise."""
    fn = _BUILDERS.get(name) if isinstance(name, str) else None
    if fn is None:
        close = difflib.get_close_matches(str(name), network_names(), n=1)
        raise ValueError(
            f"unknown network {name!r}"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + f"; known: {', '.join(network_names())}"
        )
    if isinstance(fn, str):
        module, _, attr = fn.partition(":")
        fn = getattr(importlib.import_module(module), attr)
        _BUILDERS[name] = fn
    return fn


def build_network(name: str, seed: int, task):
    """The network ``name`` draws from ``seed`` for ``task``, checked to fit
    the task's inputs and outputs (a one-line ValueError otherwise)."""
    net = get_network_builder(name)(int(seed), task)
    n_in, n_out = getattr(net, "n_in", None), getattr(net, "n_out", None)
    if n_in != task.n_in or n_out != task.n_out:
        raise ValueError(
            f"network {name!r} has n_in={n_in}, n_out={n_out} but the {task.name} task "
            f"needs n_in={task.n_in}, n_out={task.n_out}; use a task it was built for"
        )
    return net
