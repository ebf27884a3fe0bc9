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

A list in ``[grid.set]`` is swept; a task parameter that is itself a list is
written as a list of one list (``intervals = [[10, 20]]``).
"""

from __future__ import annotations

import difflib
import itertools
import math
import sys
from pathlib import Path

from rflo import runconfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["GRID_KEYS", "LANE_KEYS", "SweepSpec", "read_spec", "spec_from_dict", "spec_toml"]

#: the settings of one training run (grid columns, in table order) and defaults
GRID_DEFAULTS = dict(
    rule="rflo", task=runconfig.DEFAULTS["task"], cell="leaky_tanh", derivative=None,
    loss="squared_error", units=50, tau=10.0, lr_in=0.0, lr_rec=0.03, lr_out=0.03,
    optimizer=None, optimizer_rate=None, batch=1, online=False, dtype="float32", seed=0,
)
GRID_KEYS = tuple(GRID_DEFAULTS)
#: settings that vary between the networks of one compiled call (vmap lanes);
#: every other setting is shared by a chunk
LANE_KEYS = ("lr_in", "lr_rec", "lr_out", "seed")
#: grid settings whose table column has another name
COLUMN_NAMES = {"loss": "loss_function"}
TOP_KEYS = ("name", "trials", "record_every", "max_networks", "grid", "backend")
BACKENDS = ("local", "slurm", "submitit_local")
SLURM_KEYS = ("partition", "time", "cpus_per_task", "array_parallelism", "mem_gb",
              "account", "qos", "constraint", "gpus_per_node")


def _rate(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


_CHECKS = {**runconfig.CHECKS,
           "rule": (lambda v: isinstance(v, str) and 0 < len(v) <= 100, "a rule name"),
           "lr_in": (_rate, "a learning rate >= 0"), "lr_rec": (_rate, "a learning rate >= 0"),
           "lr_out": (_rate, "a learning rate >= 0")}


class SweepSpec:
    """A checked sweep specification.

    name : the sweep's name (text).
    trials : trials per network.  record_every : trials per table row.
    max_networks : most networks in one chunk.
    grid : ``{key: [values]}`` for every key of :data:`GRID_KEYS` (one value
        or more), and ``set``: ``{param: [values]}`` for the task.
    backend : ``{"name": ..., "devices": ..., "slurm": {...}}``.
    """

    def __init__(self, name, trials, record_every, max_networks, grid, task_grid, backend,
                 lr_paired=False):
        self.name, self.trials, self.record_every = name, trials, record_every
        self.max_networks, self.grid, self.task_grid, self.backend = (
            max_networks, grid, task_grid, backend)
        self.lr_paired = lr_paired

    def as_dict(self) -> dict:
        """The spec as plain data (what :func:`spec_from_dict` reads back)."""
        one = lambda v: v if len(v) > 1 else v[0]  # noqa: E731
        grid = {k: one(v) for k, v in self.grid.items() if v != [None]}
        if self.lr_paired:
            grid["lr"] = grid.pop("lr_rec")
            grid.pop("lr_out")
        grid["set"] = {k: v if len(v) > 1 else [v[0]] if isinstance(v[0], list) else v[0]
                       for k, v in self.task_grid.items()}
        return {"name": self.name, "trials": self.trials, "record_every": self.record_every,
                "max_networks": self.max_networks, "grid": grid, "backend": dict(self.backend)}

    def columns(self) -> list:
        """The grid's columns in table order (task parameters as ``set.NAME``;
        the loss function as ``loss_function``, beside the measured ``loss``)."""
        return [*GRID_KEYS[:2], *(f"set.{p}" for p in self.task_grid), *GRID_KEYS[2:]]

    def table_columns(self) -> list:
        """:meth:`columns` as the table names them."""
        return [COLUMN_NAMES.get(c, c) for c in self.columns()]

    def points(self) -> list:
        """Every grid point as a flat dict (:meth:`columns`), in grid order with
        the seed varying fastest."""
        names = self.columns()
        values = [self.grid[n] if n in self.grid else self.task_grid[n[4:]] for n in names]
        if self.lr_paired:
            values[names.index("lr_out")] = [None]
        points = [dict(zip(names, combo)) for combo in itertools.product(*values)]
        if self.lr_paired:
            for p in points:
                p["lr_out"] = p["lr_rec"]
        return points

    def __repr__(self):
        sizes = {k: len(v) for k, v in {**self.grid, **self.task_grid}.items() if len(v) > 1}
        return (f"SweepSpec({self.name!r}, {len(self.points())} networks x {self.trials} trials, "
                f"swept: {sizes})")


def _unknown(key, known, where):
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(known)}"
    return ValueError(f"{where}: unknown setting {key!r}{hint}")


def _values(key, value, where):
    values = list(value) if isinstance(value, (list, tuple, range)) else [value]
    if not values:
        raise ValueError(f"{where}: {key!r} has an empty list; give at least one value")
    ok, need = _CHECKS.get(key, (lambda v: True, ""))
    out = []
    for v in values:
        if key == "tau" and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if key.startswith("lr_") and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if key == "seed" and hasattr(v, "__index__") and not isinstance(v, bool):
            v = int(v)
        if not ok(v):
            raise ValueError(f"{where}: {key!r} must be {need}, got {v!r}")
        out.append(v)
    if len(set(map(repr, out))) != len(out):
        raise ValueError(f"{where}: {key!r} lists a value twice: {out}")
    return out


def _int_at_least(data, key, default, low, where):
    v = data.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < low or v >= 2**31:
        raise ValueError(f"{where}: {key!r} must be an integer >= {low}, got {v!r}")
    return v


def spec_from_dict(data: dict, source="sweep spec") -> SweepSpec:
    """Check ``data`` (the TOML's content as a dict) and return a :class:`SweepSpec`."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a sweep spec is a table (dict), got {type(data).__name__}")
    for key in data:
        if key not in TOP_KEYS:
            raise _unknown(key, TOP_KEYS, source)
    trials = _int_at_least(data, "trials", runconfig.DEFAULTS["trials"], 1, source)
    record_every = _int_at_least(data, "record_every", max(1, trials // 100), 1, source)
    max_networks = _int_at_least(data, "max_networks", 64, 1, source)
    name = data.get("name", "sweep")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{source}: 'name' must be text, got {name!r}")
    raw = dict(data.get("grid") or {})
    if not isinstance(data.get("grid", {}), dict):
        raise ValueError(f"{source}: [grid] must be a table of settings")
    where = f"{source} [grid]"
    if "lr" in raw:  # lr_rec and lr_out swept together
        if "lr_rec" in raw or "lr_out" in raw:
            raise ValueError(f"{where}: give 'lr' (lr_rec = lr_out) or 'lr_rec'/'lr_out', not both")
        raw["lr_rec"] = raw.pop("lr")
    task_raw = raw.pop("set", {}) or {}
    if not isinstance(task_raw, dict):
        raise ValueError(f"{where}: 'set' must be a table of task parameters")
    grid = {}
    for key in raw:
        if key not in GRID_KEYS:
            raise _unknown(key, GRID_KEYS + ("lr", "set"), where)
    for key, default in GRID_DEFAULTS.items():
        grid[key] = [default] if raw.get(key) is None else _values(key, raw[key], where)
    task_grid = {str(k): (list(v) if isinstance(v, (list, tuple)) else [v])
                 for k, v in task_raw.items()}
    for k, v in task_grid.items():
        if not k.isidentifier():
            raise ValueError(f"{where}: task parameter names are identifiers, got {k!r}")
        if not v:
            raise ValueError(f"{where}: set.{k} has an empty list; give at least one value")
    backend = _backend(data.get("backend") or {}, source)
    return SweepSpec(name, trials, record_every, max_networks, grid, task_grid, backend,
                     lr_paired="lr" in (data.get("grid") or {}))


def _backend(data, source):
    where = f"{source} [backend]"
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a table")
    for key in data:
        if key not in ("name", "devices", "slurm"):
            raise _unknown(key, ("name", "devices", "slurm"), where)
    name = data.get("name", "local")
    if name not in BACKENDS:
        raise ValueError(f"{where}: name must be one of {', '.join(BACKENDS)}, got {name!r}")
    devices = data.get("devices", "auto")
    if devices != "auto" and (not isinstance(devices, int) or isinstance(devices, bool)
                              or not 1 <= devices <= 4096):
        raise ValueError(f"{where}: devices must be 'auto' or an integer >= 1, got {devices!r}")
    slurm = dict(data.get("slurm") or {})
    for key in slurm:
        if key not in SLURM_KEYS:
            raise _unknown(key, SLURM_KEYS, f"{where}.slurm")
    return {"name": name, "devices": devices, "slurm": slurm}


def read_spec(path) -> SweepSpec:
    """The sweep spec in a TOML file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no sweep spec at {str(path)!r}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: not a readable TOML file ({exc})") from None
    return spec_from_dict(data, str(path))


def spec_toml(spec: SweepSpec) -> str:
    """The spec as TOML text (what :func:`read_spec` reads back)."""
    import tomli_w

    return tomli_w.dumps(spec.as_dict())
