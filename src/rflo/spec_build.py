"""What a :class:`rflo.spec.RunSpec`'s network and regulariser settings make
of a run, beside the task, cell and optimiser that
:func:`rflo.session.build` builds: the named network (``network``,
:mod:`rflo.networks`), the rule with the firing-rate regulariser
(``rate_target``, ``rate_strength``: :class:`rflo.losses_rate.RateRegularized`)
and the checks that refuse them, in one line naming the setting and the fix,
where they do not apply -- before anything trains.
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "DECIDED",
    "check_spec",
    "spec_cell",
    "named_network",
    "check_rate_cell",
    "run_rule",
    "check_optimizer_rates",
]

#: the settings a named network decides (they keep their defaults)
DECIDED = ("cell", "units", "tau", "dale", "connectivity", "derivative")


def _default(name):
    from rflo.spec import spec_fields

    (f,) = [f for f in spec_fields() if f.name == name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def check_spec(spec):
    """Refuse the settings that do not go together: one the named network
    decides (:data:`DECIDED`) set with it, ``init`` with ``network``,
    ``rate_strength`` without ``rate_target``, the regulariser online."""
    if spec.network is not None:
        for name in DECIDED:
            default = _default(name)
            if getattr(spec, name) != default:
                raise ValueError(
                    f"{name!r}: network {spec.network!r} decides it; leave it at its "
                    f"default ({default!r}): drop --{name} (or {name} from the settings)"
                )
        if spec.init is not None:
            raise ValueError(
                f"'init' starts from a saved network and network {spec.network!r} draws "
                "one: drop one of them"
            )
    if spec.rate_target is None and spec.rate_strength != _default("rate_strength"):
        raise ValueError(
            "'rate_strength' weighs the firing-rate regulariser: give 'rate_target' too "
            "(e.g. 0.01 spikes per step) or drop it"
        )
    if spec.rate_target is not None and spec.online:
        raise ValueError(
            "'rate_target': the firing-rate regulariser updates once per trial (or batch), "
            "not online; drop 'online' or 'rate_target'"
        )


def named_network(spec, task, seed):
    """The network ``spec.network`` draws from ``seed`` for ``task`` (checked
    to fit it), in the spec's precision."""
    from rflo.networks import build_network
    from rflo.session_checks import as_dtype

    check_spec(spec)
    return as_dtype(build_network(spec.network, seed, task), spec.dtype)


def spec_cell(spec, task):
    """The cell of the spec's networks: the named network's (one drawn, from
    ``spec.seed``), else ``spec.cell`` with its ``derivative``."""
    from rflo import runconfig

    if spec.network is not None:
        return named_network(spec, task, spec.seed).cell
    return runconfig.make_cell(spec.cell, spec.derivative)


def check_rate_cell(spec, cell):
    """The regulariser counts spikes: refuse ``rate_target`` on another cell."""
    from rflo.cells.lif import ALIF, LIF

    if spec.rate_target is not None and not isinstance(cell, (LIF, ALIF)):
        raise ValueError(
            f"'rate_target' regularises firing rates: it needs a spiking cell (lif, alif), "
            f"but the network's is {getattr(cell, 'name', cell)!r}; use cell lif or alif, "
            "or drop 'rate_target'"
        )


def run_rule(spec, name):
    """The rule a run of ``spec`` trains for rule ``name``: the name itself,
    or with ``rate_target`` the rule plus the firing-rate regulariser."""
    if spec.rate_target is None:
        return name
    from rflo.losses_rate import RateRegularized

    return RateRegularized(base=name, target=spec.rate_target, strength=spec.rate_strength)


def check_optimizer_rates(spec, net, names):
    """With rates of the optimiser by parameter name, refuse a run whose
    trained parameters ``names`` are not all named (nothing is computed)."""
    if spec.optimizer is None or not isinstance(spec.optimizer_rate, dict):
        return
    import jax

    from rflo import runconfig
    from rflo.network import params_of

    optimizer = runconfig.make_optimizer(spec.optimizer, spec.optimizer_rate)
    jax.eval_shape(optimizer.init, params_of(net, tuple(names)))
