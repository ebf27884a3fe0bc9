"""One description of a training run: :class:`RunSpec`.

Every setting of a run is one field of :class:`RunSpec`, with its default, its
check and its help text as the field's metadata.  The command line's options
(:func:`cli_options`), the names a config file may hold (:func:`config_keys`)
and a sweep grid's keys (:func:`grid_keys`) are all derived from these fields,
so a new field appears in all three without other edits::

    from rflo.spec import RunSpec

    spec = RunSpec(rule="rflo", units=64, lr={"w_rec": 0.03, "w_out": 0.03, "tau": 0.1})
    text = spec.to_toml()            # what `rflo train --config FILE` reads
    assert RunSpec.from_toml(text) == spec

Learning rates are three numbers ``(IN, REC, OUT)`` (the command line's
``--lr IN REC OUT``; mapped by role for cells that own their synapses,
:data:`rflo.runconfig.RATE_ROLES`) or a dict by parameter name (``--lr
w_rec=0.03 tau=0.1``; in TOML a table ``[lr]``).  A paper's network by name
(``network``, :mod:`rflo.networks`), the firing-rate regulariser
(``rate_target``, ``rate_strength``) and an optimiser's rates by parameter
name (``optimizer_rate = {w_in = 0.1, w_out = 0.005}``) are run settings too:
what :mod:`rflo.spec_build` makes of them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from rflo import spec_data
from rflo.spec_checks import (  # the fields' checks and help texts
    _fraction,
    _help_cell,
    _help_loss,
    _help_network,
    _help_rule,
    _help_task,
    _int,
    _name,
    _named_rates,
    _num,
    check_rates,
)
from rflo.spec_checks import setting as _setting
from rflo.spec_flags import KINDS, converters, parse_optimizer_rate, parse_rates, rates_action

__all__ = [
    "RunSpec",
    "cli_options",
    "config_keys",
    "grid_keys",
    "spec_fields",
    "check_rates",
    "parse_rates",
]


@dataclass(frozen=True)
class RunSpec:
    """The settings of one training run (frozen; checked when made).

    Fields in the order of a sweep's table; each field's metadata holds its
    check and help text (:func:`spec_fields`).  ``set`` holds the task's
    parameters, ``lr`` three rates ``(IN, REC, OUT)`` or a dict by parameter
    name, ``seeds`` a list (an ensemble, one network per seed) or None.
    """

    rule: str = _setting("rflo", _name, "a rule name", _help_rule, only=("train",))
    task: str = _setting("periodic", _name, "a task name", _help_task, flag=dict(metavar="NAME"))
    cell: str = _setting("leaky_tanh", _name, "a cell name", _help_cell, flag=dict(metavar="NAME"))
    derivative: Optional[str] = _setting(
        None,
        lambda v: v in (None, "seed", "exact"),
        "'seed' or 'exact'",
        "f' of the leaky_tanh cell: the notebook's 'seed' (default) or 'exact'",
        flag=dict(choices=("seed", "exact")),
    )
    loss: str = _setting(
        "squared_error", _name, "a loss name", _help_loss, flag=dict(metavar="NAME")
    )
    units: int = _setting(
        50,
        lambda v: _int(v) and v >= 1,
        "a positive integer",
        "recurrent units n_rec (default {default})",
        flag=dict(kind="positive_int"),
    )
    tau: float = _setting(
        10.0,
        lambda v: _num(v) and v >= 1,
        "a number >= 1",
        "membrane time constant in steps (default {default})",
        flag=dict(kind="tau"),
    )
    dale: Optional[float] = _setting(
        None,
        _fraction(),
        "the fraction of excitatory units (0 < dale < 1), for Dale's law",
        "draw the network under Dale's law with this fraction of excitatory units (e.g. 0.8); "
        "its signs stay fixed while it trains",
        flag=dict(kind="fraction", metavar="FRACTION"),
    )
    lr: object = _setting(
        (0.0, 0.03, 0.03),
        lambda v: v is None or check_rates(v),
        "three learning rates >= 0, or a table of rates >= 0 by parameter name",
        "learning rates: three, IN REC OUT, of w_in, w_rec, w_out (for gru, lstm: their w_in, "
        "w_rec; lru: IN its input matrix b_re, b_im, REC nu_log, theta_log, gamma_log; a stack: "
        "IN the first layer's input weights, REC the rest; biases stay fixed: "
        "rflo.runconfig.RATE_ROLES), or NAME=RATE pairs for any parameter by name, e.g. "
        "w_rec=0.03 w_out=0.03 tau=0.1 (the others frozen) (train: default 0 0.03 0.03; "
        "compare: default each rule's rates tuned on the default experiment, BPTT/RTRL "
        "0 0.3 0.3, RFLO and the others 0 0.03 0.03)",
        flag=dict(kind="rates"),
        grid="lr_in, lr_rec, lr_out, lr (lr_rec = lr_out) or a [grid.lr] table by parameter name",
    )
    optimizer: Optional[str] = _setting(
        None,
        lambda v: v is None or _name(v),
        "an optax optimiser's name",
        "an optax optimiser by name (adam, rmsprop, sgd, ...) instead of plain SGD; --lr then "
        "only names the parameters that learn (three rates name all three, a 0 among them "
        "too; freeze one by naming the others, e.g. --lr w_rec=1 w_out=1)",
        flag=dict(metavar="NAME"),
    )
    optimizer_rate: object = _setting(
        None,
        lambda v: v is None or (_num(v) and v > 0) or _named_rates(v),
        "a number > 0, or a table of rates >= 0 by parameter name",
        "the optimiser's learning rate (with --optimizer): one, or NAME=RATE pairs, one per "
        "trained parameter, e.g. w_in=0.1 w_rec=0.1 w_out=0.005 (one optimiser per distinct "
        "rate; 0 freezes a parameter; a trained parameter without a rate is refused)",
        flag=dict(kind="optimizer_rate"),
    )
    batch: int = _setting(
        1,
        lambda v: _int(v) and v >= 1,
        "a positive integer",
        "trials per update (default {default})",
        flag=dict(kind="positive_int"),
    )
    online: bool = _setting(
        False, lambda v: isinstance(v, bool), "true or false", "update the weights at every step"
    )
    dtype: str = _setting(
        "float32",
        lambda v: v in ("float32", "float64"),
        "'float32' or 'float64'",
        "floating-point precision (default {default})",
        flag=dict(choices=("float32", "float64")),
    )
    seed: int = _setting(
        0,
        lambda v: _int(v) and 0 <= v < 2**32,
        "an integer in 0 .. 2**32 - 1",
        "random seed (default {default})",
        flag=dict(kind="seed"),
    )
    # settings that are not columns of a sweep's table (or only when a grid sets them)
    connectivity: Optional[float] = _setting(
        None,
        lambda v: v is None or (_num(v) and 0 < v <= 1),
        "a fraction in (0, 1]",
        "draw a sparse network: this fraction of the recurrent connections exists (a fixed "
        "random mask; the absent ones stay zero while it trains)",
        flag=dict(kind="fraction1", metavar="FRACTION"),
        column=False,
    )
    max_loss_growth: Optional[float] = _setting(
        1e4,
        lambda v: v is None or (_num(v) and v > 0),
        "a number > 0",
        "the divergence guard: stop (one network) or freeze a network (--seeds) when a trial's "
        "loss exceeds this factor times its best (default {default}; NaN/inf always stop)",
        flag=dict(kind="positive_float", metavar="X"),
        column=False,
    )
    network: Optional[str] = _setting(
        None,
        lambda v: v is None or _name(v),
        "a network's name",
        _help_network,
        flag=dict(metavar="NAME"),
        column=False,
    )
    rate_target: Optional[float] = _setting(
        None,
        lambda v: v is None or (_num(v) and 0 <= v <= 1),
        "spikes per step, in [0, 1]",
        "firing-rate regularisation toward this many spikes per step (e.g. 0.01: 10 Hz at 1 "
        "ms steps; Bellec et al. 2020): the rule's update gets that of rate_strength * "
        "sum_j (f_j - X)^2 over the units' mean rates f_j (rflo.losses_rate.RateRegularized; "
        "offline, lif or alif cells)",
        flag=dict(kind="unit_interval"),
        column=False,
    )
    rate_strength: float = _setting(
        1.0,
        lambda v: _num(v) and v >= 0,
        "a number >= 0",
        "the firing-rate regulariser's coefficient (with --rate-target; default {default})",
        flag=dict(kind="nonneg_float"),
        column=False,
    )
    set: dict = _setting(
        dict,
        lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
        "a table of task parameters",
        "task parameters, e.g. --set n_bits=3 (see: rflo task show NAME)",
        flag=dict(kind="set"),
        grid="[grid.set] table",
        factory=True,
    )
    period: Optional[int] = _setting(
        None,
        lambda v: v is None or (_int(v) and v >= 1),
        "a positive integer",
        "period of the periodic task's target = steps per trial (default 100; same as --set "
        "period=N)",
        flag=dict(kind="positive_int"),
        grid="[grid.set] period",
    )
    trials: int = _setting(
        10_000,
        lambda v: _int(v) and 1 <= v < 2**31,
        "a positive integer",
        "number of training trials (default {default})",
        flag=dict(kind="trials"),
        grid="the spec's top-level 'trials'",
    )
    seeds: Optional[list] = _setting(
        None,
        lambda v: (
            v is None
            or (
                isinstance(v, (list, tuple))
                and 0 < len(v) <= 4096
                and all(_int(x) and 0 <= x < 2**32 for x in v)
                and len(set(v)) == len(v)
            )
        ),
        "a list of distinct seeds in 0 .. 2**32 - 1",
        "train one network per seed, all in one compiled call (an ensemble); curves and "
        "figures show the median and 25-75 %% over them",
        flag=dict(kind="seeds"),
        grid="a list of seeds in the grid (its networks are lanes)",
    )
    checkpoint_every: int = _setting(
        0,
        lambda v: _int(v) and v >= 0,
        "an integer >= 0",
        "write a checkpoint every N trials (default: every 30 s)",
        flag=dict(kind="nonneg_int", metavar="N"),
        grid="chunks are a sweep's checkpoints",
    )
    init: Optional[str] = _setting(
        None,
        lambda v: v is None or isinstance(v, str),
        "a path",
        "start from a saved network instead of a random one",
        flag=dict(kind="path", metavar="FILE.npz"),
        grid="sweeps draw their networks",
        only=("train",),
    )

    def __post_init__(self):
        spec_data.check_and_normalise(self)

    def replace(self, **changes) -> "RunSpec":
        """A copy with ``changes`` (checked)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """The settings as plain data (lists, dicts, numbers, text; None kept)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["lr"] = list(out["lr"]) if isinstance(out["lr"], tuple) else out["lr"]
        out["set"] = dict(out["set"])
        return out

    @classmethod
    def from_dict(cls, data: dict, source="settings") -> "RunSpec":
        """A spec from plain settings (names as in a config file, ``-`` or ``_``);
        names it does not know are refused, naming the closest."""
        return spec_data.read_dict(cls, data, source)

    def to_toml(self) -> str:
        """The spec as a config file's TOML (None values left out; ``[set]``
        and, for rates by name, ``[lr]`` tables)."""
        return spec_data.toml_text(self)

    @classmethod
    def from_toml(cls, text: str, source="TOML") -> "RunSpec":
        """The spec in a config file's TOML text (what :meth:`to_toml` writes)."""
        return spec_data.read_toml(cls, text, source)


def spec_fields():
    """The fields of :class:`RunSpec` (``dataclasses.Field``, metadata included)."""
    return dataclasses.fields(RunSpec)


def config_keys() -> tuple:
    """The names a config file (``--config``, ``RUN/config.toml``) may hold for a run."""
    return tuple(f.name for f in spec_fields())


def cli_options(command="train") -> dict:
    """``{option: (dest, argparse keywords)}`` of ``rflo COMMAND``'s run settings,
    one per field of :class:`RunSpec` that the command takes (help included,
    the default the field's)."""
    out = {}
    for f in spec_fields():
        meta = f.metadata
        if meta["only"] is not None and command not in meta["only"]:
            continue
        kw = dict(meta["flag"])
        kind = kw.pop("kind", None)
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        help_text = meta["help"]() if callable(meta["help"]) else meta["help"]
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        help_text = help_text.replace("{default}", shown)  # the field's own default
        kw.update(KINDS.get(kind, {}) if kind else {})
        if isinstance(default, bool):
            kw["action"] = "store_true"
        elif kind not in ("set", "rates"):
            kw.setdefault("default", default)
        if kind == "rates":
            kw["default"] = list(default)
        if kind == "set":
            kw["default"] = []
        kw["help"] = help_text
        if "type" in kw and isinstance(kw["type"], str):
            kw["type"] = converters()[kw["type"]]
        if kw.get("action") == "rates":
            kw["action"] = rates_action()
        if kw.get("action") == "optimizer_rate":
            kw["action"] = rates_action(parse_optimizer_rate, "--optimizer-rate")
        out["--" + f.name.replace("_", "-")] = (f.name, kw)
    return out


def grid_keys() -> tuple:
    """The names of a sweep grid's settings, one per field of :class:`RunSpec`
    a grid sweeps (``lr`` as ``lr_in``/``lr_rec``/``lr_out``, ``lr`` or a
    ``[grid.lr]`` table; the fields a sweep sets elsewhere are left out)."""
    return tuple(f.name for f in spec_fields() if f.metadata["grid"] is True or f.name == "lr")


def table_keys() -> tuple:
    """The grid keys that are always columns of a run's or a sweep's table, in
    order (``lr`` as ``lr_in``, ``lr_rec``, ``lr_out``)."""
    out = []
    for f in spec_fields():
        if f.name in grid_keys() and f.metadata["column"]:
            out += ["lr_in", "lr_rec", "lr_out"] if f.name == "lr" else [f.name]
    return tuple(out)


def grid_elsewhere() -> dict:
    """``{field: where a sweep takes it}`` for the fields that are no grid keys."""
    return {
        f.name: f.metadata["grid"]
        for f in spec_fields()
        if f.metadata["grid"] is not True and f.name != "lr"
    }
