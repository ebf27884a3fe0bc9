"""Marschall, Cho & Savin (2020), the Add task: every rule of their comparison.

The paper ("A unified framework of online learning algorithms for training
recurrent neural networks", JMLR 21(135), 2020) trains one small RNN online,
batch 1, on the "Add" task (:func:`rflo.tasks.marschall.add`: Bernoulli(0.5)
input bits, target ``0.5 + 0.5 x[t - 5] - 0.25 x[t - 9]`` read as the softmax
of two outputs with cross-entropy) with each learning algorithm, and compares
the test loss against three reference levels: about 0.66 nats per step for a
network with no memory (``H(0.625)``), about 0.52 for one that knows
``x[t - 5]`` and about 0.45 for one that knows both lags (the targets' own
entropy, the minimum).  This module runs every rule of their comparison that
rflo has -- ``rtrl``, ``uoro``, ``kf_rtrl``, ``rkf_rtrl`` (R-KF), ``rflo``,
``kernl``, ``dni``, ``eprop`` and ``tbptt`` (their truncated / "efficient"
BPTT, online) -- on those settings, and writes a figure of the test loss
against the training step per rule (median and 25-75 % over seeds), a table,
and which level each rule reaches.

The settings, and where they come from:

* task: lags 5 and 9, inputs ``(x, 1 - x)``, targets ``(y, 1 - y)`` as soft
  labels (the deterministic targets of their ``Add_Task``), softmax +
  cross-entropy; the issue and the authors' code (omarschall/vanilla-rtrl,
  ``gen_data/Add_Task.py``);
* network: ``n_h = 32`` tanh units with no leak (their ``alpha = 1``, here
  ``tau = 1``: ``h[t] = tanh(w_rec h[t-1] + w_in x[t])``); SGD, batch 1, every
  matrix trained;
* chosen here (the paper's hyperparameter tables were not read in this
  session): the stream cut into trials of 100 steps, the state reset to
  :func:`rflo.init_network`'s ``h0`` at each trial (they run one unbroken
  stream); no biases (the library's cell has none; the complementary input
  channel gives ``w_in`` an offset); initial weights
  :func:`rflo.init_network` (``g = 1.5``); one learning rate per rule for all
  three matrices, the best final loss of {0.1, 0.3, 1.0} (and 0.03 for
  ``uoro``, ``kf_rtrl``, ``rkf_rtrl``, ``eprop``, ``kernl``, ``dni``) in
  400-trial pilots on 4 seeds (:data:`RATES`); the rules' own settings at their
  defaults (``tbptt`` window 10, ``kernl``/``dni`` rates as their pages say;
  their learned state lasts across trials);
* the test loss: the loss of each training trial, a fresh draw, measured on
  the network from before that trial (the trainer's record; an unbiased
  estimate of the test loss, with the weights moving within the trial), in
  blocks of 1 % of the run; a rule's final loss is the mean over the last
  10 % of its trials, per network.

Command line: ``rflo reproduce marschall2020 [--quick] [--out FOLDER]
[--seed N] [--seeds S,S,...] [--rules R,R,...] [--overwrite]``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from rflo.paper.common import (
    add_figure_arguments,
    add_rules_argument,
    figure_main,
    network_seeds,
    quartiles,
    write_reproduction,
)

__all__ = [
    "Config",
    "QUICK",
    "FULL",
    "RULES",
    "RATES",
    "LEVELS",
    "run",
    "summarize",
    "sweep_spec",
    "write_outputs",
    "main",
    "level_reached",
]

DESCRIPTION = (
    "Reproduce Marschall, Cho & Savin (2020), the Add task: RTRL, UORO, KF-RTRL, "
    "R-KF, RFLO, KeRNL, DNI, e-prop and truncated BPTT trained online"
)

#: the rules of the comparison, in the paper's order (exact, stochastic,
#: Kronecker, local / approximate, future-facing)
RULES = ("rtrl", "tbptt", "uoro", "kf_rtrl", "rkf_rtrl", "rflo", "eprop", "kernl", "dni")

#: each rule's learning rate (all three matrices), chosen in pilots (module docstring)
RATES = {
    "rtrl": 0.3,
    "tbptt": 0.3,
    "uoro": 0.1,
    "kf_rtrl": 0.1,
    "rkf_rtrl": 0.03,
    "rflo": 0.1,
    "eprop": 0.1,
    "kernl": 0.3,
    "dni": 0.1,
}


def _entropy(p):
    return float(-(p * np.log(p) + (1 - p) * np.log(1 - p))) if 0 < p < 1 else 0.0


#: the reference levels (nats per step): the best predictor knowing no lag,
#: the first lag, both lags
LEVELS = {
    "no memory": _entropy(0.625),
    "lag 5": 0.5 * (_entropy(0.875) + _entropy(0.375)),
    "both lags": 0.25 * (_entropy(0.5) + 2 * _entropy(0.75)),
}


@dataclass(frozen=True)
class Config:
    """Everything that sets the size of the reproduction."""

    mode: str
    trials: int = 10000  # 100 steps each: 10^6 training steps
    n_networks: int = 8
    seed: int = 0
    seeds: Tuple[int, ...] = ()
    n_steps: int = 100
    units: int = 32
    rules: Tuple[str, ...] = RULES
    rates: Dict[str, float] = field(default_factory=lambda: dict(RATES))
    derivative: str = "exact"


FULL = Config(mode="full")
QUICK = Config(mode="quick", trials=800, n_networks=4)


def sweep_spec(cfg: Config = QUICK) -> dict:
    """The reproduction as a sweep (``rflo sweep run``; the shipped
    ``examples/sweeps/marschall2020_{quick,full}.toml``): one grid per rule at
    its rate, the same networks, task and training; its table records the loss
    per trial (``record_every = 1``)."""
    seeds = network_seeds(cfg)
    grids = [
        {
            "rule": rule,
            "task": "add",
            "loss": "cross_entropy",
            "online": True,
            "units": cfg.units,
            "tau": 1.0,
            "lr_in": cfg.rates[rule],
            "lr_rec": cfg.rates[rule],
            "lr_out": cfg.rates[rule],
            "seed": list(seeds),
            "derivative": cfg.derivative,
            "set": {"n_steps": cfg.n_steps},
        }
        for rule in cfg.rules
    ]
    return {
        "name": f"marschall2020-{cfg.mode}",
        "trials": cfg.trials,
        "record_every": 1,
        "max_networks": 64,
        "grid": grids,
    }


def run(cfg: Config = QUICK, log: Optional[Callable[[str], None]] = None) -> dict:
    """Train every rule on ``n_networks`` seeds; returns the loss curves."""
    import warnings

    import rflo
    from rflo.ensemble import train_ensemble
    from rflo.tasks.marschall import add

    log = log or (lambda m: None)
    seeds = network_seeds(cfg)
    task = add(n_steps=cfg.n_steps)
    t0 = time.perf_counter()
    curves, seconds, diverged = {}, {}, {}
    for rule in cfg.rules:
        t = time.perf_counter()
        nets = [rflo.init_network(2, cfg.units, 2, seed=s, tau=1.0) for s in seeds]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the guard counts divergence
            res = train_ensemble(
                nets,
                task,
                rule,
                trials=cfg.trials,
                lr=cfg.rates[rule],
                online=True,
                loss="cross_entropy",
                seeds=seeds,
                derivative=cfg.derivative,
            )
        curves[rule] = np.asarray(res.loss, float)
        diverged[rule] = int(np.sum(np.asarray(res.diverged_at) > 0))
        seconds[rule] = time.perf_counter() - t
        log(
            f"{rule}: {seconds[rule]:.1f} s, final loss (median) "
            f"{np.nanmedian(final_losses(curves[rule])):.3f}"
        )
    return {
        "config": cfg,
        "seeds": seeds,
        "curves": curves,
        "seconds": seconds,
        "diverged": diverged,
        "total_seconds": time.perf_counter() - t0,
    }


def final_losses(curves) -> np.ndarray:
    """Each network's mean loss over the last 10 % of its trials (NaN if it diverged)."""
    n = curves.shape[1]
    return np.mean(curves[:, n - max(1, n // 10) :], axis=1)


def level_reached(q: dict) -> str:
    """The level a rule's final losses reach: ``both lags`` where their 75th
    percentile is below the midpoint between the lag-5 and both-lags levels,
    ``lag 5`` where it is below the midpoint between no memory and lag 5,
    else ``no memory``."""
    if q["p75"] < 0.5 * (LEVELS["lag 5"] + LEVELS["both lags"]):
        return "both lags"
    if q["p75"] < 0.5 * (LEVELS["no memory"] + LEVELS["lag 5"]):
        return "lag 5"
    return "no memory"


def _blocks(curves, n_blocks=100):
    """(K, n_blocks) block means of (K, trials) curves, and each block's last step."""
    n = curves.shape[1]
    edges = np.linspace(0, n, min(n_blocks, n) + 1).astype(int)
    means = np.stack(
        [np.mean(curves[:, a:b], axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1
    )
    return means, edges[1:]


def summarize(r: dict) -> dict:
    cfg = r["config"]
    rows, claims = {}, {}
    for rule, c in r["curves"].items():
        fin = final_losses(c)
        q = (
            quartiles(fin[np.isfinite(fin)])
            if np.any(np.isfinite(fin))
            else {"median": float("nan"), "p25": float("nan"), "p75": float("nan")}
        )
        rows[rule] = {
            **q,
            "level": level_reached(q),
            "lr": cfg.rates[rule],
            "diverged": r["diverged"][rule],
            "seconds": r["seconds"][rule],
        }
    exact = [k for k in ("rtrl", "tbptt") if k in rows]
    if exact:
        ok = all(rows[k]["level"] != "no memory" for k in exact)
        claims["exact_methods_learn_memory"] = {
            "claim": "exact online gradients (RTRL, truncated BPTT) learn the lags: "
            "below the no-memory level",
            "verdict": ("reproduced" if ok else "not reproduced")
            + ": "
            + ", ".join(f"{k} {rows[k]['median']:.3f} ({rows[k]['level']})" for k in exact),
        }
    claims["levels"] = {
        "claim": "which level each rule reaches",
        "verdict": "; ".join(f"{k}: {v['level']}" for k, v in rows.items()),
    }
    return {
        "mode": cfg.mode,
        "trials": cfg.trials,
        "steps_per_trial": cfg.n_steps,
        "seeds": list(r["seeds"]),
        "levels": LEVELS,
        "rules": rows,
        "claims": claims,
        "seconds": r["total_seconds"],
    }


def write_outputs(r: dict, out: Path) -> dict:
    """``marschall2020.csv`` (the table), ``marschall2020_curves.csv``,
    ``marschall2020.json`` (summary) and ``marschall2020.png``."""
    s = summarize(r)
    steps = r["config"].n_steps
    table = (
        ["rule", "lr", "median", "p25", "p75", "level", "diverged", "seconds"],
        [
            [
                k,
                v["lr"],
                f"{v['median']:.4f}",
                f"{v['p25']:.4f}",
                f"{v['p75']:.4f}",
                v["level"],
                v["diverged"],
                f"{v['seconds']:.1f}",
            ]
            for k, v in s["rules"].items()
        ],
    )
    rows = []
    for rule, c in r["curves"].items():
        means, ends = _blocks(c)
        p25, med, p75 = np.nanpercentile(means, [25, 50, 75], axis=0)
        rows += [
            [rule, int(e) * steps, f"{a:.5f}", f"{b:.5f}", f"{d:.5f}"]
            for e, a, b, d in zip(ends, med, p25, p75)
        ]
    curves = (["rule", "step", "median", "p25", "p75"], rows)
    return write_reproduction(out, "marschall2020", table, curves, s, lambda path: _plot(r, path))


def _plot(r, path):
    from rflo.mpl_backend import use_headless_backend

    use_headless_backend()
    import matplotlib.pyplot as plt

    steps = r["config"].n_steps
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for rule, c in r["curves"].items():
        means, ends = _blocks(c)
        p25, med, p75 = np.nanpercentile(means, [25, 50, 75], axis=0)
        (line,) = ax.plot(ends * steps, med, label=rule)
        ax.fill_between(ends * steps, p25, p75, color=line.get_color(), alpha=0.2)
    for name, v in LEVELS.items():
        ax.axhline(v, color="k", ls=":", lw=1)
        ax.text(ax.get_xlim()[0], v, f" {name}", va="bottom", fontsize=8)
    ax.set_xlabel("training step")
    ax.set_ylabel("test loss (cross-entropy, nats per step)")
    ax.set_title(
        f"Add task (lags 5, 9), n_h = {r['config'].units}: median and 25-75 % "
        f"over {len(r['seeds'])} seeds",
        fontsize=9,
    )
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_arguments(p):
    add_figure_arguments(
        p,
        "marschall2020",
        f"small run ({QUICK.n_networks} seeds, {QUICK.trials} trials of "
        f"{QUICK.n_steps} steps); the full run uses {FULL.n_networks} seeds "
        f"and {FULL.trials} trials",
    )
    return add_rules_argument(p, RULES)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``rflo reproduce marschall2020``: returns the exit status."""
    return figure_main(
        argv, "reproduce marschall2020", DESCRIPTION, add_arguments, QUICK, FULL, run, write_outputs
    )
