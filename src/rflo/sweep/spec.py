"""A sweep's specification: a grid of training settings, read from TOML or a dict.

A spec names the settings of every training run in the sweep (the same names
as ``rflo train``'s flags and config file), each either one value or a list of
values to sweep; the grid is every combination::

    trials = 2000          # trials per network
    record_every = 100     # one table row per network and block of this many trials
    max_networks = 64      # networks trained together in one compiled call (a chunk)

    [grid]
    rule = ["rflo", "bptt"]
    units = 50
    lr_rec = [0.01, 0.03]  # per-parameter rates: lr_in, lr_rec, lr_out
    lr_out = 0.03          # (or lr = [...]: lr_rec and lr_out swept together)
    seed = [0, 1, 2]

    [grid.set]             # task parameters, swept the same way
    period = [50, 100]

    [backend]              # where chunks run (the command line can override it)
    name = "local"         # local | slurm | submitit_local
    devices = "auto"       # JAX devices per chunk: every core on a CPU, every GPU

    [backend.slurm]        # submitit's Slurm settings
    partition = "normal"
    time = 60              # minutes per job
    cpus_per_task = 2
    array_parallelism = 32

The grid's keys are the fields of :class:`rflo.spec.RunSpec` (one list of
settings for ``rflo train``, config files and sweeps), the rates as
``lr_in``/``lr_rec``/``lr_out`` or by parameter name in a ``[grid.lr]`` table
(``tau = [0.0, 0.1]``: columns ``lr.tau``; a rate by name takes the place of a
role's rate for the same parameter).  ``connectivity``,
``max_loss_growth``, ``network`` (a paper's network by name, e.g.
``"bellec2020"``: :mod:`rflo.networks`), ``rate_target`` and
``rate_strength`` (the firing-rate regulariser) are columns of the table only
where a grid sets them.  ``optimizer_rate`` may be a table of rates by
parameter name (``[grid.optimizer_rate]`` with ``w_in = 0.1``, ...; one
optimiser per distinct rate), written in the table as JSON text.

A list in ``[grid.set]`` is swept; a task parameter that is itself a list is
written as a list of one list (``intervals = [[10, 20]]``).  ``dale = 0.8``
draws networks with Dale's law (that fraction of excitatory units).
``cell = "gru"`` (or ``"lstm"``, ``"lru"``, ``"stack"``: cells that own their
synapses) takes ``lr_in``, ``lr_rec``, ``lr_out`` as ``rflo train --lr`` does
(:data:`rflo.runconfig.RATE_ROLES`: the LRU's ``lr_in`` trains its input
matrix, ``lr_rec`` its recurrence).

Several grids (``[[grid]]`` tables instead of one ``[grid]``) join their points,
for sweeps that are not one product (each rule at its own learning rates)::

    [[grid]]
    rule = "bptt"
    lr = [0.1, 0.3]

    [[grid]]
    rule = "rflo"
    lr = [0.01, 0.03]
"""

from __future__ import annotations

import itertools
import json
import math
from typing import NamedTuple

from rflo import runconfig
from rflo.sweep.spec_values import (  # noqa: F401  (BACKENDS, SLURM_KEYS: importable from here)
    BACKENDS,
    SLURM_KEYS,
    backend_table,
    grid_values,
    int_at_least,
    unknown_setting,
)

__all__ = [
    "GRID_KEYS",
    "OPTIONAL_KEYS",
    "LANE_KEYS",
    "MAX_POINTS",
    "is_lane",
    "setting",
    "Grid",
    "SweepSpec",
    "grid_size",
    "read_spec",
    "spec_from_dict",
    "spec_toml",
]


def _grid_defaults(column):
    """The grid keys of :class:`rflo.spec.RunSpec`'s fields (``lr`` as its
    three roles) and their defaults: those that are always table columns
    (``column``), or those that are columns only where a grid sets them."""
    import dataclasses

    from rflo.spec import grid_keys, spec_fields

    out = {}
    for f in spec_fields():
        if f.name not in grid_keys() or f.metadata["column"] is not column:
            continue
        if f.name == "lr":
            out.update(zip(("lr_in", "lr_rec", "lr_out"), f.default))
        else:
            out[f.name] = f.default_factory() if f.default is dataclasses.MISSING else f.default
    return out


#: the settings of one training run (grid columns, in table order) and
#: defaults: the fields of :class:`rflo.spec.RunSpec` a grid sweeps
GRID_DEFAULTS = _grid_defaults(True)
GRID_KEYS = tuple(GRID_DEFAULTS)
#: grid settings that are columns of the table only where a grid sets them
#: (so that tables of sweeps without them keep their columns), and rates by
#: parameter name (``[grid.lr]``, columns ``lr.NAME``)
OPTIONAL_DEFAULTS = _grid_defaults(False)
OPTIONAL_KEYS = tuple(OPTIONAL_DEFAULTS)
#: settings that vary between the networks of one compiled call (vmap lanes);
#: every other setting is shared by a chunk (and every ``lr.NAME``)
LANE_KEYS = ("lr_in", "lr_rec", "lr_out", "seed")
#: (parameter, grid key) of each matrix's learning rate
RATE_KEYS = (("w_in", "lr_in"), ("w_rec", "lr_rec"), ("w_out", "lr_out"))


def is_lane(key) -> bool:
    """Whether a grid setting may differ between the lanes of one compiled call."""
    return key in LANE_KEYS or str(key).startswith("lr.")


def setting(point, key):
    """A point's setting ``key`` (an optional one's default where no grid sets it)."""
    return point.get(key, OPTIONAL_DEFAULTS.get(key))


#: grid settings whose table column has another name
COLUMN_NAMES = {"loss": "loss_function"}
TOP_KEYS = ("name", "trials", "record_every", "max_networks", "max_points", "grid", "backend")
#: most grid points a spec may have (``max_points`` in the spec sets another):
#: every command plans the whole grid in memory, at about 1 KB and 20 us per
#: point (a point's settings, its chunk, its id), so 10^6 points are about a
#: GB and 20 s; the grid's size is counted from its lists before any point is made
MAX_POINTS = 10**6


class Grid(NamedTuple):
    """One grid of a spec: ``values`` ``{key: [values]}`` for every key of
    :data:`GRID_KEYS`, ``task`` ``{param: [values]}``, and ``lr_paired`` (the
    spec said ``lr``: lr_out follows lr_rec)."""

    values: dict
    task: dict
    lr_paired: bool = False

    def as_dict(self) -> dict:
        one = lambda v: v if len(v) > 1 else v[0]  # noqa: E731
        grid = {  # an optional setting a grid gives is kept (it makes a column)
            k: one(v)
            for k, v in self.values.items()
            if not k.startswith("lr.")
            and v != [None]
            and (k not in GRID_DEFAULTS or v != [GRID_DEFAULTS[k]])
        }
        named = {k[3:]: one(v) for k, v in self.values.items() if k.startswith("lr.")}
        if named:
            grid["lr"] = named
        if self.lr_paired:
            grid["lr"] = one(self.values["lr_rec"])
            grid.pop("lr_rec", None)
            grid.pop("lr_out", None)
        if self.task:
            grid["set"] = {
                k: v if len(v) > 1 else [v[0]] if isinstance(v[0], list) else v[0]
                for k, v in self.task.items()
            }
        return grid


class SweepSpec:
    """A checked sweep specification.

    name : the sweep's name (text).
    trials : trials per network.  record_every : trials per table row.
    max_networks : most networks in one chunk.
    max_points : most grid points (:data:`MAX_POINTS` unless the spec says).
    grids : the :class:`Grid` s whose points make the sweep (one ``[grid]``
        table, or several ``[[grid]]`` tables whose points are joined).
    backend : ``{"name": ..., "devices": ..., "slurm": {...}}``.
    """

    def __init__(
        self, name, trials, record_every, max_networks, grids, backend, max_points=MAX_POINTS
    ):
        self.name, self.trials, self.record_every = name, trials, record_every
        self.max_networks, self.grids, self.backend = max_networks, list(grids), backend
        self.max_points = max_points

    @property
    def grid(self) -> dict:
        """``{key: [values]}`` over all grids (values in order of appearance)."""
        return _union(g.values for g in self.grids)

    @property
    def task_grid(self) -> dict:
        """``{task param: [values]}`` over all grids."""
        return _union(g.task for g in self.grids)

    def as_dict(self) -> dict:
        """The spec as plain data (what :func:`spec_from_dict` reads back)."""
        grids = [g.as_dict() for g in self.grids]
        limit = {} if self.max_points == MAX_POINTS else {"max_points": self.max_points}
        return {
            "name": self.name,
            "trials": self.trials,
            "record_every": self.record_every,
            "max_networks": self.max_networks,
            **limit,
            "grid": grids[0] if len(grids) == 1 else grids,
            "backend": dict(self.backend),
        }

    def columns(self) -> list:
        """The grid's columns in table order (task parameters as ``set.NAME``;
        the loss function as ``loss_function``, beside the measured ``loss``)."""
        grid = self.grid
        extra = [k for k in OPTIONAL_KEYS if k in grid] + [k for k in grid if k.startswith("lr.")]
        return [*GRID_KEYS[:2], *(f"set.{p}" for p in self.task_grid), *GRID_KEYS[2:], *extra]

    def table_columns(self) -> list:
        """:meth:`columns` as the table names them."""
        return [COLUMN_NAMES.get(c, c) for c in self.columns()]

    def points(self) -> list:
        """Every grid point as a flat dict (:meth:`columns`), grid after grid,
        each in grid order with the seed varying fastest.  A task parameter
        that a grid does not set is None there (the task's default)."""
        names = self.columns()
        points = []
        for g in self.grids:
            values = [
                g.values[n]
                if n in g.values
                else g.task.get(n[4:], [None])
                if n.startswith("set.")
                else [OPTIONAL_DEFAULTS.get(n)]
                for n in names
            ]
            if g.lr_paired:
                values[names.index("lr_out")] = [None]
            part = [dict(zip(names, combo)) for combo in itertools.product(*values)]
            if g.lr_paired:
                for p in part:
                    p["lr_out"] = p["lr_rec"]
            points += part
        return points

    def __repr__(self):
        sizes = {k: len(v) for k, v in {**self.grid, **self.task_grid}.items() if len(v) > 1}
        return (
            f"SweepSpec({self.name!r}, {len(self.points())} networks x {self.trials} trials, "
            f"swept: {sizes})"
        )


def _union(tables) -> dict:
    """``{key: [values]}`` tables joined, each key's values once, in order."""
    out = {}
    for table in tables:
        for k, v in table.items():
            out[k] = list(dict.fromkeys([*out.get(k, []), *map(_hashable, v)]))
    return {k: [_unhashable(x) for x in v] for k, v in out.items()}


def _hashable(v):
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def _unhashable(v):
    return json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v


def spec_from_dict(data: dict, source="sweep spec") -> SweepSpec:
    """Check ``data`` (the TOML's content as a dict) and return a :class:`SweepSpec`."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a sweep spec is a table (dict), got {type(data).__name__}")
    for key in data:
        if key not in TOP_KEYS:
            raise unknown_setting(key, TOP_KEYS, source)
    trials = int_at_least(data, "trials", runconfig.DEFAULTS["trials"], 1, source)
    record_every = int_at_least(data, "record_every", max(1, trials // 100), 1, source)
    max_networks = int_at_least(data, "max_networks", 64, 1, source)
    name = data.get("name", "sweep")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{source}: 'name' must be text, got {name!r}")
    max_points = int_at_least(data, "max_points", MAX_POINTS, 1, source, high=2**63)
    raw = data.get("grid") or {}
    if not (
        isinstance(raw, dict)
        or (isinstance(raw, list) and raw and all(isinstance(g, dict) for g in raw))
    ):
        raise ValueError(
            f"{source}: 'grid' must be a table of settings ([grid]) or a list of them ([[grid]])"
        )
    raws = [raw] if isinstance(raw, dict) else raw
    size = sum(grid_size(g) for g in raws)  # before a single point is made
    if size > max_points:
        raise ValueError(
            f"{source}: the grid has {size:,} points, more than max_points = "
            f"{max_points:,} (planning takes about 1 KB per point); sweep fewer "
            "values, split it into several specs, or set max_points higher in "
            "the spec if the memory is there"
        )
    grids = (
        [_grid(raw, f"{source} [grid]")]
        if isinstance(raw, dict)
        else [_grid(g, f"{source} [[grid]] #{i + 1}") for i, g in enumerate(raw)]
    )
    backend = backend_table(data.get("backend") or {}, source)
    spec = SweepSpec(name, trials, record_every, max_networks, grids, backend, max_points)
    points = [json.dumps(p, sort_keys=True) for p in spec.points()]
    if len(set(points)) != len(points):
        raise ValueError(
            f"{source}: the grids share points (a network would be trained twice); "
            "make them disjoint"
        )
    return spec


def grid_size(raw: dict) -> int:
    """Points of one grid table (a dict), from the lengths of its lists alone:
    the product over its settings, task parameters and rates by name."""
    values = [
        v
        for k, value in raw.items()
        for v in (value.values() if k in ("set", "lr") and isinstance(value, dict) else [value])
    ]
    return math.prod(len(v) if isinstance(v, (list, tuple, range)) else 1 for v in values)


def _grid(raw, where) -> Grid:
    raw = dict(raw)
    named = raw.pop("lr") if isinstance(raw.get("lr"), dict) else {}
    paired = "lr" in raw
    if paired:  # lr_rec and lr_out swept together
        if "lr_rec" in raw or "lr_out" in raw:
            raise ValueError(f"{where}: give 'lr' (lr_rec = lr_out) or 'lr_rec'/'lr_out', not both")
        raw["lr_rec"] = raw.pop("lr")
    task_raw = raw.pop("set", {}) or {}
    if not isinstance(task_raw, dict):
        raise ValueError(f"{where}: 'set' must be a table of task parameters")
    for key in raw:
        if key not in GRID_KEYS + OPTIONAL_KEYS:
            raise unknown_setting(key, GRID_KEYS + OPTIONAL_KEYS + ("lr", "set"), where)
    values = {
        key: [default] if raw.get(key) is None else grid_values(key, raw[key], where)
        for key, default in GRID_DEFAULTS.items()
    }
    values.update(
        {
            key: grid_values(key, raw[key], where)
            for key in OPTIONAL_KEYS
            if raw.get(key) is not None
        }
    )
    for name, rates in named.items():  # [grid.lr]: rates by parameter name
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: [grid.lr] names parameters, got {name!r}")
        values[f"lr.{name}"] = grid_values("lr_in", rates, f"{where} lr.{name}")
    task = {str(k): (list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in task_raw.items()}
    for k, v in task.items():
        if not k.isidentifier():
            raise ValueError(f"{where}: task parameter names are identifiers, got {k!r}")
        if not v:
            raise ValueError(f"{where}: set.{k} has an empty list; give at least one value")
    return Grid(values, task, paired)


def read_spec(path) -> SweepSpec:
    """The sweep spec in a TOML file."""
    return spec_from_dict(runconfig.read_toml(path, "sweep spec"), str(path))


def spec_toml(spec: SweepSpec) -> str:
    """The spec as TOML text (what :func:`read_spec` reads back)."""
    import tomli_w

    return tomli_w.dumps(spec.as_dict())
