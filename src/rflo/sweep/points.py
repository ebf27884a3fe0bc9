"""A grid point as a run: its :class:`rflo.spec.RunSpec`, its learning rates
by parameter name, and the task, cell and optimiser its chunk shares (what
the planner checks and a chunk trains)."""

from __future__ import annotations

import numpy as np

from rflo.sweep.spec import RATE_KEYS

__all__ = ["point_rates", "point_spec", "build_point"]


def point_rates(points, net) -> dict:
    """The rates by parameter name of a chunk's ``points`` for ``net`` (one
    array over the points each): ``lr_in``, ``lr_rec``, ``lr_out`` (mapped by
    role for a cell that owns its synapses), then the ``lr.NAME`` rates by
    name, which take the place of a role's rate for the same parameter."""
    from rflo import runconfig

    lr = {name: np.array([p[key] for p in points], float) for name, key in RATE_KEYS}
    if net.w_rec is None:  # a cell that owns its synapses: the three rates by its names
        lr = dict(runconfig.cell_rates(net, tuple(lr[name] for name, _ in RATE_KEYS)))
    named = [k for k in points[0] if k.startswith("lr.") and points[0][k] is not None]
    for key in named:
        lr[key[3:]] = np.array([p[key] for p in points], float)
    return lr


def point_spec(point, trials=None):
    """The :class:`rflo.spec.RunSpec` of a grid point (its three rates, and
    its rates by name where it has them), checked as every run's settings are."""
    from rflo.spec import RunSpec, config_keys

    data = {k: v for k, v in point.items() if k in config_keys() and k != "lr"}
    data["set"] = {k[4:]: v for k, v in point.items() if k.startswith("set.") and v is not None}
    named = {k[3:]: v for k, v in point.items() if k.startswith("lr.") and v is not None}
    three = [point[key] for _, key in RATE_KEYS]
    data["lr"] = {**dict(zip(("w_in", "w_rec", "w_out"), three)), **named} if named else three
    if trials is not None:
        data["trials"] = trials
    return RunSpec.from_dict(data, "sweep point")


def build_point(point):
    """The task, cell and optimiser of a grid point, shared by its chunk's
    networks (built from the point's :class:`rflo.spec.RunSpec`, as a run's
    session builds them; ValueError when they do not build)."""
    from rflo.session import build

    return build(point_spec(point))
