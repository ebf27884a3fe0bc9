"""The settings of a command-line training run: defaults, a TOML file, flags.

Precedence: flags given on the command line, then ``--config FILE.toml``,
then the defaults below.  Every run writes its effective settings to
``RUN/config.toml``, which ``--config`` reads back, so

    rflo train --config runs/A/config.toml --out runs/B

repeats run A.  A config file holds the same names as the flags (``-`` or
``_``), task parameters in a ``[set]`` table::

    rule = "rflo"
    task = "flip_flop"
    units = 64
    lr = [0.0, 0.01, 0.01]
    optimizer = "adam"
    optimizer_rate = 0.001      # or rates by name: a table [optimizer_rate] w_in = 0.1 ...

    [set]
    n_bits = 2
"""

from __future__ import annotations

import ast
import difflib
import json
import math
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "DEFAULTS",
    "KEYS",
    "check_settings",
    "read_toml",
    "read_config",
    "write_config",
    "parse_set",
    "make_run_task",
    "task_record",
    "make_optimizer",
    "per_parameter",
    "make_cell",
    "RATE_ROLES",
    "rate_roles",
    "cell_rates",
]


def _spec_defaults():
    import dataclasses

    from rflo.spec import spec_fields

    return {
        f.name: (f.default_factory() if f.default is dataclasses.MISSING else f.default)
        for f in spec_fields()
        if f.name not in ("rule", "init")
    }


#: the settings of a training run and their defaults (None: not set): the
#: fields of :class:`rflo.spec.RunSpec`, whose metadata holds their checks
DEFAULTS = _spec_defaults()
DEFAULTS["lr"] = list(DEFAULTS["lr"])
#: every name a config file may hold
KEYS = tuple(DEFAULTS) + ("rule", "rules", "init")


def _int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _spec_checks():
    from rflo.spec import spec_fields

    return {f.name: (f.metadata["check"], f.metadata["need"]) for f in spec_fields()}


def _rates(v):
    from rflo.spec import check_rates

    return check_rates(v)


#: what each setting must be: (check, what it should be)
CHECKS = {
    **_spec_checks(),
    "command": (lambda v: v in ("train", "compare"), "'train' or 'compare'"),
    "run_id": (lambda v: isinstance(v, str) and 0 < len(v) <= 64, "a run id"),
    "rule_lr": (
        lambda v: isinstance(v, dict) and all(_rates(r) for r in v.values()),
        "three learning rates >= 0 (or a table by parameter name) per rule",
    ),
    "rules": (
        lambda v: isinstance(v, list) and v and all(isinstance(x, str) for x in v),
        "a list of rule names",
    ),
    "rule": (lambda v: isinstance(v, str), "a rule name"),
}


def check_settings(data: dict, source) -> dict:
    """Check the types and ranges of settings; raise ValueError naming the bad one."""
    for key, (ok, need) in CHECKS.items():
        if key in data and not ok(data[key]):
            raise ValueError(f"{source}: {key!r} must be {need}, got {data[key]!r}")
    return data


def read_toml(path, what="config file") -> dict:
    """The content of a TOML file; a one-line ValueError when it is missing or
    unreadable (``what`` names it)."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no {what} at {str(path)!r}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: not a readable TOML file ({exc})") from None


def read_config(path) -> dict:
    """The settings in a TOML config file (names as the flags; checked)."""
    path = Path(path)
    data = read_toml(path)
    data = {k.replace("-", "_"): v for k, v in data.items()}
    for key in data:
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = (
                f" (did you mean {close[0]!r}?)" if close else f"; known names: {', '.join(KEYS)}"
            )
            raise ValueError(f"{path}: unknown setting {key!r}{hint}")
    if isinstance(data.get("lr"), list):
        data["lr"] = [float(x) if _num(x) else x for x in data["lr"]]
    if isinstance(data.get("lr"), dict):
        data["lr"] = {k: float(x) if _num(x) else x for k, x in data["lr"].items()}
    from rflo.spec_checks import FLOAT_FIELDS

    for key in FLOAT_FIELDS:
        if _int(data.get(key)):
            data[key] = float(data[key])
    if isinstance(data.get("optimizer_rate"), dict):
        data["optimizer_rate"] = {
            k: float(x) if _num(x) else x for k, x in data["optimizer_rate"].items()
        }
    return check_settings(data, path)


def write_config(path, settings: dict):
    """Write the effective settings as TOML (atomically; None values left out)."""
    import tomli_w

    from rflo.files import atomic_write

    flat = {k: v for k, v in settings.items() if k in KEYS and k != "set" and v is not None}
    flat["set"] = dict(settings.get("set") or {})
    for key in ("lr", "optimizer_rate"):
        if isinstance(flat.get(key), dict):  # rates by name: a table after the set
            flat[key] = flat.pop(key)
    text = (
        "# the effective settings of this run: `rflo train --config THIS` repeats it\n"
        + tomli_w.dumps(flat)
    )

    def write(tmp):
        Path(tmp).write_text(text, encoding="utf-8")

    atomic_write(path, write)


def parse_set(items) -> dict:
    """``["n_bits=3", "rate=0.05"]`` -> ``{"n_bits": 3, "rate": 0.05}`` (values as JSON
    or Python literals where they parse, e.g. ``[1, 2]``, ``(1, 2)``, ``true``;
    else text)."""
    out = {}
    for item in items or ():
        key, eq, text = str(item).partition("=")
        key = key.strip()
        if not eq or not key.isidentifier():
            raise ValueError(f"--set takes KEY=VALUE pairs (e.g. --set n_bits=3), got {item!r}")
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            try:
                out[key] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                out[key] = text
    return out


def make_run_task(name: str, params: dict, period=None):
    """The task of a run: ``periodic`` is the seed's fixed task
    (:func:`rflo.periodic_task`; ``period`` is a shortcut for its
    parameter), any other name a built-in task (:func:`rflo.make_task`)."""
    import rflo

    params = dict(params or {})
    if name == "periodic":
        if period is not None:
            params["period"] = period
        params.setdefault("period", 100)
        try:
            return rflo.periodic_task(**params)
        except TypeError as exc:
            raise ValueError(f"bad parameters for task 'periodic': {exc}") from None
    if period is not None:
        raise ValueError(
            f"--period applies to the periodic task; task {name!r} takes its "
            "parameters with --set KEY=VALUE"
        )
    return rflo.make_task(name, **params)


def task_record(task) -> dict:
    """``{"name": ..., "params": {...}}``: what :func:`make_run_task` needs to
    build ``task`` again (plain data)."""
    params = getattr(task, "param_dict", None)  # a generator's (a property), else the Task's
    params = dict(params if params is not None else task.params)
    return {"name": task.name, "params": json.loads(json.dumps(params, default=_plain))}


def _plain(v):
    import numpy as np

    return np.asarray(v).tolist()


def make_optimizer(name, rate):
    """An optax optimiser by name (``"adam"``, ``"sgd"``, ``"rmsprop"``, ...) at
    ``rate``: one number, or ``{parameter name: rate}`` for rates by parameter
    (:func:`per_parameter`)."""
    import optax

    if name is None:
        if rate is not None:
            raise ValueError("--optimizer-rate needs --optimizer NAME (e.g. --optimizer adam)")
        return None
    known = [n for n in _OPTIMIZERS if callable(getattr(optax, n, None))]
    if name not in known:
        close = difflib.get_close_matches(str(name), known, n=3)
        raise ValueError(
            f"unknown optax optimiser {name!r}; "
            + (f"did you mean {' or '.join(close)}?" if close else f"use one of {', '.join(known)}")
        )
    factory = getattr(optax, name)
    if rate is None:
        raise ValueError(f"--optimizer {name} needs its rate: --optimizer-rate X (e.g. 1e-3)")
    if isinstance(rate, dict):
        return per_parameter(factory, rate)
    return factory(rate)


def per_parameter(factory, rates: dict):
    """``optax.multi_transform`` of one ``factory(rate)`` per distinct rate
    (``optax.set_to_zero()`` for a rate of 0: that parameter stays as it is),
    each parameter labelled by its name.  Every parameter the session trains
    needs a rate: one the dict does not name is refused (ValueError naming it
    and the fix) when the optimiser is set up, before the first update."""
    import optax

    if not rates:
        raise ValueError("--optimizer-rate by name names no parameter; give e.g. w_out=0.001")
    label = {str(k): f"rate {float(r)!r}" for k, r in rates.items()}
    transforms = {
        f"rate {r!r}": optax.set_to_zero() if r == 0 else factory(r)
        for r in sorted({float(r) for r in rates.values()})
    }

    def labels(params):
        missing = [k for k in params if k not in label]
        if missing:
            raise ValueError(
                f"the optimiser's rates name {', '.join(label)} but the run also trains "
                f"{', '.join(missing)}: give each trained parameter its rate (e.g. "
                f"{missing[0]}=0.001; 0 keeps it fixed) or leave it out of lr"
            )
        return {k: label[k] for k in params}

    return optax.multi_transform(transforms, labels)


#: optax's optimisers (its aliases that take a learning rate first)
_OPTIMIZERS = (
    "adabelief",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "adan",
    "amsgrad",
    "fromage",
    "lamb",
    "lars",
    "lion",
    "nadam",
    "nadamw",
    "noisy_sgd",
    "novograd",
    "optimistic_gradient_descent",
    "polyak_sgd",
    "radam",
    "rmsprop",
    "rprop",
    "sgd",
    "sm3",
    "yogi",
)


def make_cell(name: str, derivative=None):
    """A cell by name; ``derivative`` sets the leaky tanh cell's f'."""
    from rflo.cells import get_cell

    if derivative is None:
        return get_cell(name)
    if name != "leaky_tanh":
        raise ValueError(f"--derivative applies to the leaky_tanh cell, not {name!r}")
    return get_cell(name, derivative=derivative)


#: What the three rates ``IN REC OUT`` of the command line (``--lr``) and of
#: sweeps (``lr_in``, ``lr_rec``, ``lr_out``) train in a cell that owns its
#: synapses, by parameter name: ``OUT`` is ``w_out``'s, ``IN`` that of the
#: weights from the network's input, ``REC`` that of the recurrence.
#:
#: * GRU, LSTM: ``w_in`` (IN), ``w_rec`` (REC), as for the point-neuron cells;
#: * LRU: the input matrix ``B`` = ``b_re``, ``b_im`` (IN); the recurrence
#:   ``lambda`` = ``nu_log``, ``theta_log`` and its normalisation ``gamma_log``
#:   (REC: ``gamma`` starts at ``sqrt(1 - |lambda|^2)``);
#: * a stack: each layer's by these names, where the input weights of every
#:   layer above the first (``layer1.w_in``, ...) take REC: they connect
#:   units of the network, not the network's input.
#:
#: Other parameters (the gated cells' ``bias``) keep their initial values, as
#: ``tau`` and ``bias`` of the point-neuron cells do under three rates; train
#: them from Python with ``lr={name: rate}``.
RATE_ROLES = {
    "w_in": "in",
    "w_rec": "rec",
    "b_re": "in",
    "b_im": "in",
    "nu_log": "rec",
    "theta_log": "rec",
    "gamma_log": "rec",
}


def rate_roles(names) -> dict:
    """``{parameter name: 0 (IN) or 1 (REC)}`` for the names of a cell's
    parameters (:data:`RATE_ROLES`; ``layer<i>.`` prefixes of stacks
    understood); names without a role are left out."""
    roles = {}
    for name in sorted(names):
        layers, _, own = str(name).rpartition(".")
        role = RATE_ROLES.get(own)
        if role is None:
            continue
        first = all(part == "layer0" for part in layers.split(".")) if layers else True
        roles[name] = 0 if role == "in" and first else 1
    return roles


def cell_rates(net, lr):
    """The three rates ``lr = (IN, REC, OUT)`` (numbers, or arrays of one per
    network) as :func:`rflo.train` takes them for ``net``: unchanged for a
    point-neuron cell (``w_in``, ``w_rec``, ``w_out``); for a cell that owns its
    synapses, a dict by parameter name (:data:`RATE_ROLES`)."""
    from rflo.cells.base import owns_synapses

    if not owns_synapses(net.cell) or isinstance(lr, dict):
        return lr  # the three of a point-neuron cell, or rates by name already
    lr = tuple(lr)
    if len(lr) != 3:
        raise ValueError(f"expected three learning rates (IN REC OUT), got {len(lr)}")
    roles = rate_roles(net.extra or {})
    if not roles:
        raise ValueError(
            f"cell {net.cell.name!r}: the rates IN REC OUT train the input and "
            f"recurrent weights, but none of its parameters {sorted(net.extra)} is "
            f"one of {sorted(RATE_ROLES)}; train it from Python with "
            "lr={name: rate}"
        )
    out = {name: lr[role] for name, role in roles.items()}
    out["w_out"] = lr[2]
    return out
