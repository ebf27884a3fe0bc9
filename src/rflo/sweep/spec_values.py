"""The checks of a sweep spec's raw values: each grid setting's values
(:func:`grid_values`, by :data:`CHECKS`), the spec's integer settings
(:func:`int_at_least`), its ``[backend]`` table (:func:`backend_table`), and
the error naming an unknown setting (:func:`unknown_setting`)."""

from __future__ import annotations

import difflib
import math

from rflo import runconfig

__all__ = [
    "BACKENDS",
    "SLURM_KEYS",
    "CHECKS",
    "unknown_setting",
    "grid_values",
    "int_at_least",
    "backend_table",
]

BACKENDS = ("local", "slurm", "submitit_local")
SLURM_KEYS = (
    "partition",
    "time",
    "cpus_per_task",
    "array_parallelism",
    "mem_gb",
    "account",
    "qos",
    "constraint",
    "gpus_per_node",
)


def _rate(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


CHECKS = {
    **runconfig.CHECKS,
    "rule": (lambda v: isinstance(v, str) and 0 < len(v) <= 100, "a rule name"),
    "lr_in": (_rate, "a learning rate >= 0"),
    "lr_rec": (_rate, "a learning rate >= 0"),
    "lr_out": (_rate, "a learning rate >= 0"),
    "dale": (
        lambda v: (
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1)
        ),
        "the fraction of excitatory units (0 < dale < 1), for Dale's law",
    ),
}


def unknown_setting(key, known, where):
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(known)}"
    return ValueError(f"{where}: unknown setting {key!r}{hint}")


def grid_values(key, value, where):
    values = list(value) if isinstance(value, (list, tuple, range)) else [value]
    if not values:
        raise ValueError(f"{where}: {key!r} has an empty list; give at least one value")
    ok, need = CHECKS.get(key, (lambda v: True, ""))
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


def int_at_least(data, key, default, low, where, high=2**31):
    v = data.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < low or v >= high:
        raise ValueError(f"{where}: {key!r} must be an integer >= {low}, got {v!r}")
    return v


def backend_table(data, source):
    where = f"{source} [backend]"
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a table")
    for key in data:
        if key not in ("name", "devices", "slurm"):
            raise unknown_setting(key, ("name", "devices", "slurm"), where)
    name = data.get("name", "local")
    if name not in BACKENDS:
        raise ValueError(f"{where}: name must be one of {', '.join(BACKENDS)}, got {name!r}")
    devices = data.get("devices", "auto")
    if devices != "auto" and (
        not isinstance(devices, int) or isinstance(devices, bool) or not 1 <= devices <= 4096
    ):
        raise ValueError(f"{where}: devices must be 'auto' or an integer >= 1, got {devices!r}")
    slurm = dict(data.get("slurm") or {})
    for key in slurm:
        if key not in SLURM_KEYS:
            raise unknown_setting(key, SLURM_KEYS, f"{where}.slurm")
    return {"name": name, "devices": devices, "slurm": slurm}
