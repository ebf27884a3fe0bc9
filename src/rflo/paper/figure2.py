"""Murray (2019) Figure 2 and its Dale's-law supplement, with ensembles of networks.

The periodic output task: N = 30 leaky units (tau = 10 steps), no input, one
output that must produce ``sin(2 pi t/T) + 0.5 sin(4 pi t/T) + 0.25 sin(8 pi t/T)``
over one period ``T`` per trial, starting every trial from ``h0 = 0.1``.  All
rules learn offline (one plain-SGD update per trial, the seed notebook's
``W += eta / T * sum_t ...``) with rates ``(0, lr_rec, lr_out)`` for
``(w_in, w_rec, w_out)``; the input weights do not matter (x = 0).

Panels (one PNG, ``figure2.png``):

a. loss during training, BPTT vs RFLO, at T = 20 tau and T = 160 tau (median
   over the networks, 25-75 % band), and the trained outputs against the
   dashed targets;
b. final loss (learning off) against the period, per rule, with the untrained
   networks in grey;
c. the alignment between vec(W_out) and vec(B^T) during RFLO training;
d. loss during training at T = 80 tau for BPTT, RFLO, "local" (locality
   without random feedback) and "random_feedback" (random feedback without
   locality).

Supplement 1 (``figure2_supplement1.png``): RFLO with Dale's law (half the
units excitatory, as the paper's Methods; signs kept through learning) against
unconstrained RFLO:
(a) loss during training at the short and the long period, (b) final loss
against the period.

Learning rates come from a grid search per rule and period, the recurrent and
readout rates searched separately on a wide log grid, on networks with other
seeds than the ones that are reported (see :data:`LR_SELECTION`); both modes
reuse the rates stored in :data:`CHOSEN_LR` unless ``--search``.
Quick mode (for CI) uses 20 and 40 tau as its short and long periods.

"random feedback without locality" learns offline here, where its summed
update ``sum_t (B err[t])^T dh[t]/dW`` (RTRL's influence tensors contracted
with random feedback) equals a backward pass that injects ``B err[t]`` instead
of ``W_out^T err[t]``; the registered ``random_feedback`` rule computes it that
way offline, in O(T N^2) instead of RTRL's O(T N^4).  ``tests/test_figure2.py``
checks that the two give the same update.

Command line: ``python -m rflo.paper.figure2 --out FOLDER [--quick] [--seed N]
[--overwrite] [--search]`` (or ``rflo figure2 ...``).  ``--sweep DIR [--backend
slurm]`` trains through :mod:`rflo.sweep` (resumable; every core; a Slurm
cluster) and draws the same figure; ``--spec`` prints that sweep's spec.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rflo.ensemble import init_ensemble, train_ensemble
from rflo.paper.common import (
    band_rows, check_out, csv_text, json_safe, median_band, quartiles, ranges_overlap, write_file,
    write_text,
)
from rflo.rules.base import forward
from rflo.tasks import periodic_task

__all__ = ["Config", "QUICK", "FULL", "run", "write_outputs", "sweep_spec", "run_sweep",
           "plot_figure2", "plot_supplement", "main", "LR_SELECTION"]

LR_SELECTION = (
    "For every (rule, period) the figure shows, the recurrent and readout rates "
    "(lr_rec, lr_out; lr_in = 0) are searched on the log grid lr_grid in three "
    "stages: (1) one rate for both, as the paper's search; (2) lr_rec over the grid "
    "with lr_out at stage 1's rate; (3) lr_out over the grid with lr_rec at stage "
    "2's. Every point trains grid_networks networks whose seeds (seed + 1000, "
    "1001, ...) are not among the reported ones, for as many trials as the reported "
    "run, at that period. A point counts only if none of its networks diverged "
    "(the trainer's guard) and every final loss (learning off) is finite and below "
    "10x the untrained loss; among those, the lowest median final loss wins, so each "
    "stage can only improve on the one before. A rate chosen at the grid's edge is "
    "flagged (at_edge). Separate "
    "rates matter because |B| is about 100x |W_out| at initialisation (N = 30): "
    "a rule that sends errors through B takes recurrent steps about 100x larger "
    "than BPTT's at the same rate. The rates are searched once per mode with "
    "`python -m rflo.paper.figure2 --search` and stored in CHOSEN_LR; the "
    "reproduction itself reuses them."
)

RULE_LABELS = {
    "bptt": "BPTT",
    "rflo": "RFLO",
    "local": "locality without random feedback",
    "random_feedback": "random feedback without locality",
    "rflo_dale": "RFLO, Dale's law",
}
COLORS = {"bptt": "tab:blue", "rflo": "tab:red", "local": "tab:purple",
          "random_feedback": "tab:cyan", "rflo_dale": "tab:green", "untrained": "0.5"}
DIVERGED = 1e6  # losses above this (or NaN) are stored as this value in summaries


@dataclass(frozen=True)
class Config:
    """Everything that sets the size of the reproduction."""

    mode: str
    n_rec: int = 30
    tau: float = 10.0
    n_networks: int = 9
    trials: int = 10000
    periods_tau: tuple = (10, 20, 40, 80, 160)  # panel b
    panel_a_periods_tau: tuple = (20, 160)
    panel_d_period_tau: int = 80
    ablation_networks: int = 9  # panel d's local / random_feedback
    dale: float = 0.5  # excitatory fraction: the paper's Methods ("half ... excitatory")
    dale_periods_tau: tuple = (10, 20, 40, 80, 160)  # supplement 1b: every period
    lr_grid: tuple = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0, 10.0)
    grid_networks: int = 3
    #: trials of the extra run at the longest period (BPTT and RFLO at their
    #: rates, ``figure2_long_period.png``); 0: none
    long_trials: int = 0
    #: ((rule, period_tau, lr_rec, lr_out), ...), or (rule, period_tau, eta) for
    #: one rate for both; None: search
    lr: Optional[tuple] = None
    seed: int = 0

    def check(self):
        needed = set(self.panel_a_periods_tau) | {self.panel_d_period_tau}
        if not needed <= set(self.periods_tau):
            raise ValueError(f"periods_tau {self.periods_tau} must contain the periods of "
                             f"panels a and d: {sorted(needed)}")
        if not set(self.dale_periods_tau) <= set(self.periods_tau):
            raise ValueError("dale_periods_tau must be a subset of periods_tau")
        if self.lr is not None:
            if any(len(e) not in (3, 4) for e in self.lr):
                raise ValueError("each lr entry is (rule, period_tau, lr_rec, lr_out) or "
                                 "(rule, period_tau, eta)")
            missing = set(self.rate_keys()) - {(e[0], int(e[1])) for e in self.lr}
            if missing:
                raise ValueError(f"lr has no rate for (rule, period_tau) {sorted(missing)}; "
                                 "give one for each, or lr=None to search")
        return self

    def rates(self) -> dict:
        """``{(rule, period_tau): (lr_rec, lr_out)}`` from :attr:`lr`."""
        return {(e[0], int(e[1])): (float(e[2]), float(e[-1])) for e in self.lr}

    def rate_keys(self):
        """The (rule, period_tau) pairs that need a learning rate."""
        keys = [(rule, p) for p in self.periods_tau for rule in ("bptt", "rflo")]
        keys += [(rule, self.panel_d_period_tau) for rule in ("local", "random_feedback")]
        keys += [("rflo_dale", p) for p in self.dale_periods_tau]
        return keys


#: learning rates chosen by ``python -m rflo.paper.figure2 --search`` (full
#: mode) and ``--search --quick`` (quick mode), see :data:`LR_SELECTION`
CHOSEN_LR = {
    "full": (("bptt", 10, 1, 0.03), ("rflo", 10, 0.3, 0.1), ("bptt", 20, 0.3, 0.1),
             ("rflo", 20, 0.01, 0.1), ("bptt", 40, 0.03, 0.03), ("rflo", 40, 0.03, 0.01),
             ("bptt", 80, 0.001, 0.1), ("rflo", 80, 0.003, 0.03), ("bptt", 160, 0.0001, 0.1),
             ("rflo", 160, 3e-05, 0.1), ("local", 80, 0.01, 0.01),
             ("random_feedback", 80, 0.0001, 0.0001), ("rflo_dale", 10, 0.1, 0.03),
             ("rflo_dale", 20, 0.1, 0.01), ("rflo_dale", 40, 0.03, 0.01),
             ("rflo_dale", 80, 0.03, 0.03), ("rflo_dale", 160, 0.1, 0.03)),
    "quick": (("bptt", 20, 0.1, 0.3), ("rflo", 20, 0.1, 0.03), ("bptt", 40, 0.03, 0.1),
              ("rflo", 40, 0.03, 0.01), ("local", 40, 1.0, 0.03),
              ("random_feedback", 40, 0.003, 0.003), ("rflo_dale", 20, 0.1, 0.01),
              ("rflo_dale", 40, 0.1, 0.03)),
}
FULL = Config(mode="full", lr=CHOSEN_LR["full"], long_trials=100_000)
#: quick mode's long period is 40 tau: at 80-160 tau BPTT needs about 10^4
#: trials to overtake RFLO (docs/paper.md), far beyond a 2-minute budget
QUICK = Config(mode="quick", n_networks=6, trials=2000, periods_tau=(20, 40),
               panel_a_periods_tau=(20, 40), panel_d_period_tau=40, dale_periods_tau=(20, 40),
               ablation_networks=6, lr=CHOSEN_LR["quick"])


# --------------------------------------------------------------------------
# random feedback without locality, offline, by a backward pass


RULES = {"bptt": "bptt", "rflo": "rflo", "local": "local",
         "random_feedback": "random_feedback", "rflo_dale": "rflo"}


# --------------------------------------------------------------------------
# experiments


@jax.jit
def _outputs(nets, x):
    """Outputs (K, T-1) of stacked networks with learning off (one output)."""

    def one(net):
        _, h = forward(net, x, 4)
        return (h @ net.w_out.T)[:, 0]

    return jax.vmap(one)(nets)


@jax.jit
def _cell_outputs(nets, x):
    """As :func:`_outputs`, for networks of any cell."""
    from rflo.cells import forward as cell_forward

    return jax.vmap(lambda net: cell_forward(net, x).y[:, 0])(nets)


def final_losses(nets, task) -> np.ndarray:
    """(K,) loss of each stacked network over one trial with learning off,
    ``0.5 sum_{t>=1} (y*[t] - y[t])^2 / T`` (the trainer's per-trial loss)."""
    from rflo.cells import LeakyTanh

    x, y, _ = task.stacked("float32")
    jnets = jax.tree_util.tree_map(jnp.asarray, nets)
    outputs = _outputs if type(nets.cell) is LeakyTanh else _cell_outputs
    out = np.asarray(outputs(jnets, jnp.asarray(x[0])), float)
    target = y[0, 1:, 0].astype(float)
    with np.errstate(over="ignore", invalid="ignore"):
        loss = 0.5 * np.sum((target[None] - out) ** 2, axis=1) / y.shape[1]
    return _clean(loss)


def trained_outputs(nets, task) -> np.ndarray:
    x, _, _ = task.stacked("float32")
    jnets = jax.tree_util.tree_map(jnp.asarray, nets)
    return np.asarray(_outputs(jnets, jnp.asarray(x[0])), float)


def _clean(a):
    a = np.asarray(a, float)
    return np.where(np.isfinite(a) & (a < DIVERGED), a, DIVERGED)


def _stats(a, axis=0):
    """``(median, p25, p75)`` with diverged values counted as :data:`DIVERGED`."""
    return median_band(_clean(a), axis)


class _Log:
    def __init__(self, log):
        self.log = log
        self.t0 = time.perf_counter()

    def __call__(self, msg):
        if self.log is not None:
            self.log(f"[figure2 {time.perf_counter() - self.t0:6.1f}s] {msg}")


def _train(nets, task, rule, trials, lr_rec, lr_out, seeds):
    k = np.shape(nets.w_rec)[0]
    rec = np.broadcast_to(np.asarray(lr_rec, float), (k,))
    out = np.broadcast_to(np.asarray(lr_out, float), (k,))
    lr = np.stack([np.zeros(k), rec, out], axis=1)
    return train_ensemble(nets, task, RULES[rule], trials=trials, lr=lr,
                          seeds=[int(s) for s in seeds])


def _networks(cfg, rule, seeds):
    dale = cfg.dale if rule == "rflo_dale" else None
    return init_ensemble(1, cfg.n_rec, 1, seeds=list(seeds), tau=cfg.tau, dale=dale)


def grid_search(cfg: Config, rule: str, period_tau: int, log=None) -> dict:
    """Pick ``rule``'s recurrent and readout rates at one period on ``cfg.lr_grid``.

    Three stages (joint rate, then ``lr_rec``, then ``lr_out``), each one
    compiled call that trains ``grid_networks`` networks per point (seeds
    ``cfg.seed + 1000 + j``, not among the reported ones) for ``cfg.trials``
    trials; see :data:`LR_SELECTION`.
    """
    task = periodic_task(period=period_tau * cfg.tau)
    seeds = [cfg.seed + 1000 + j for j in range(cfg.grid_networks)]
    untrained = float(np.median(final_losses(_networks(cfg, rule, seeds), task)))
    grid = [float(e) for e in cfg.lr_grid]
    seconds = 0.0

    def score(points):
        nonlocal seconds
        all_seeds = [s for _ in points for s in seeds]
        rec = np.repeat([p[0] for p in points], len(seeds))
        out = np.repeat([p[1] for p in points], len(seeds))
        with warnings.catch_warnings():  # fast rates are meant to diverge here; counted below
            warnings.simplefilter("ignore", RuntimeWarning)
            res = _train(_networks(cfg, rule, all_seeds), task, rule, cfg.trials, rec, out,
                         all_seeds)
        seconds += res.seconds
        final = final_losses(res.networks, task).reshape(len(points), len(seeds))
        final = np.where(final > 10 * untrained, np.inf, final)
        diverged = np.sum(np.asarray(res.diverged_at).reshape(final.shape) > 0, axis=1)
        # a point is acceptable only if every one of its networks stayed stable
        ok = (diverged == 0) & np.all(np.isfinite(final), axis=1)
        scores = np.where(ok, np.median(final, axis=1), np.inf)
        best = int(np.argmin(scores)) if np.any(np.isfinite(scores)) else 0
        return best, {"points": [list(p) for p in points],
                      "score": [float(v) for v in scores],
                      "final_loss": [[float(v) for v in row] for row in final],
                      "diverged": [int(v) for v in diverged]}

    best, joint = score([(e, e) for e in grid])
    eta = grid[best]
    best, rec_stage = score([(e, eta) for e in grid])
    lr_rec = grid[best]
    best, out_stage = score([(lr_rec, e) for e in grid])
    lr_out = grid[best]
    at_edge = [name for name, v in (("lr_rec", lr_rec), ("lr_out", lr_out))
               if v in (grid[0], grid[-1])]
    learned = bool(np.isfinite(out_stage["score"][best])
                   and out_stage["score"][best] < 0.5 * untrained)
    if log:
        log(f"grid {rule} T={period_tau}tau: joint -> {eta:g}, lr_rec -> {lr_rec:g}, lr_out -> "
            f"{lr_out:g}: median final loss {out_stage['score'][best]:.3g} (untrained "
            f"{untrained:.3g})" + (f"; at the grid's edge: {', '.join(at_edge)}" if at_edge
                                   else "") + f" ({seconds:.0f}s)")
    return {"rule": rule, "period_tau": int(period_tau), "grid": grid, "untrained": untrained,
            "joint": joint, "rec": rec_stage, "out": out_stage,
            "chosen": {"lr_rec": lr_rec, "lr_out": lr_out}, "at_edge": at_edge,
            "learned": learned, "seconds": float(seconds)}


def search(cfg: Config, log=None) -> list:
    """Run :func:`grid_search` for every (rule, period) of the figure."""
    log = _Log(log)
    return [grid_search(cfg, rule, p, log) for rule, p in cfg.rate_keys()]


def run(cfg: Config = QUICK, log: Optional[Callable[[str], None]] = None) -> dict:
    """Run every experiment of the figure; returns the numbers (numpy arrays).

    With ``cfg.lr = None`` the learning rates are searched first (:func:`search`).
    """
    cfg.check()
    log = _Log(log)
    t0 = time.perf_counter()
    seeds = [cfg.seed + k for k in range(cfg.n_networks)]
    tasks = {p: periodic_task(period=p * cfg.tau) for p in cfg.periods_tau}

    grids = []
    if cfg.lr is None:
        grids = search(cfg, log.log)
        lrs = {(g["rule"], g["period_tau"]): (g["chosen"]["lr_rec"], g["chosen"]["lr_out"])
               for g in grids}
    else:
        lrs = cfg.rates()
        log("learning rates given (no search; lr_rec/lr_out): " + ", ".join(
            f"{rule} {p}tau {rec:g}/{out:g}" for (rule, p), (rec, out) in sorted(lrs.items())))

    nets = _networks(cfg, "rflo", seeds)
    dale_nets = _networks(cfg, "rflo_dale", seeds)
    trained = {}
    for rule, p in cfg.rate_keys():
        n = cfg.ablation_networks if rule in ("local", "random_feedback") else cfg.n_networks
        drawn = dale_nets if rule == "rflo_dale" else nets
        first_n = jax.tree_util.tree_map(lambda a: a[:n], drawn)
        trained[rule, p] = _train(first_n, tasks[p], rule, cfg.trials, *lrs[rule, p], seeds[:n])
        log(f"trained {rule} T={p}tau ({trained[rule, p].seconds:.1f}s)")
    return _results(cfg, lrs, grids, trained, t0, log, run_long(cfg, lrs, log))


def run_long(cfg: Config, lrs: dict, log=None) -> dict:
    """BPTT and RFLO at the longest period for ``cfg.long_trials`` trials, each
    at its stored rates (the same recipe for both): ``{rule: Trained}``."""
    if not cfg.long_trials:
        return {}
    p = max(cfg.periods_tau)
    seeds = [cfg.seed + k for k in range(cfg.n_networks)]
    task = periodic_task(period=p * cfg.tau)
    out = {}
    for rule in ("bptt", "rflo"):
        res = _train(_networks(cfg, rule, seeds), task, rule, cfg.long_trials, *lrs[rule, p],
                     seeds)
        out[rule] = Trained(res.networks, _clean(res.loss), np.asarray(res.alignment, float),
                            res.seconds)
        if log:
            log(f"long run {rule} T={p}tau, {cfg.long_trials} trials: final loss median "
                f"{np.median(final_losses(res.networks, task)):.3g} ({res.seconds:.0f}s)")
    return out


class Trained(NamedTuple):
    """One (rule, period) of the figure, trained: stacked networks, (K, trials)
    loss and alignment curves, wall time."""

    networks: object
    loss: np.ndarray
    alignment: np.ndarray
    seconds: float


def _results(cfg, lrs, grids, trained, t0, log, long_runs=None) -> dict:
    """The figure's numbers from its trained networks (``{(rule, period):
    Trained or EnsembleResult}``)."""
    seeds = [cfg.seed + k for k in range(cfg.n_networks)]
    tasks = {p: periodic_task(period=p * cfg.tau) for p in cfg.periods_tau}
    curves, aligns, final, outputs = {}, {}, {}, {}
    nets = _networks(cfg, "rflo", seeds)
    untrained = {p: final_losses(nets, tasks[p]) for p in cfg.periods_tau}
    dale_nets = _networks(cfg, "rflo_dale", seeds)
    untrained_dale = {p: final_losses(dale_nets, tasks[p]) for p in cfg.dale_periods_tau}
    dale_check = {}
    for rule, p in cfg.rate_keys():
        res = trained[rule, p]
        curves[rule, p] = _clean(res.loss)
        final[rule, p] = final_losses(res.networks, tasks[p])
        if rule in ("bptt", "rflo"):
            outputs[rule, p] = trained_outputs(res.networks, tasks[p])
        if rule == "rflo":
            aligns[rule, p] = np.asarray(res.alignment, float)
        msg = ""
        if rule == "rflo_dale":
            w = np.asarray(res.networks.w_rec)
            sign = np.asarray(res.networks.sign)
            dale_check[p] = {
                "wrong_sign_weights": int(np.sum(sign[:, None, :] * w < 0)),
                "zero_weights_fraction": float(np.mean(w == 0)),
                "excitatory_fraction": float(np.mean(sign > 0)),
            }
            msg = f", wrong-sign weights {dale_check[p]['wrong_sign_weights']}"
        log(f"{rule} T={p}tau lr_rec/lr_out={_rate_text(lrs[rule, p])}: final loss median "
            f"{np.median(final[rule, p]):.3g} (untrained {np.median(untrained[p]):.3g})"
            f"{msg}" + (f", {res.seconds:.1f}s" if res.seconds else ""))

    initial_alignment = np.asarray([
        np.vdot(np.asarray(nets.b[k]).T, np.asarray(nets.w_out[k]))
        / (np.linalg.norm(nets.b[k]) * np.linalg.norm(nets.w_out[k])) for k in range(len(seeds))])
    return {
        "config": cfg, "seeds": seeds, "lr": lrs, "grid": grids, "tasks": tasks,
        "untrained": untrained, "untrained_dale": untrained_dale, "curves": curves,
        "alignment": aligns, "initial_alignment": initial_alignment, "final": final,
        "outputs": outputs, "dale_check": dale_check, "long": _long_numbers(cfg, long_runs or {}),
        "seconds": time.perf_counter() - t0,
    }


# --------------------------------------------------------------------------
# the figure as a sweep (rflo.sweep): on every core, or on a Slurm cluster


def sweep_spec(cfg: Config) -> dict:
    """The figure's training runs as a sweep spec (:mod:`rflo.sweep`): one
    ``[[grid]]`` per (rule, period) at its chosen rate, every trial recorded.
    ``rflo figure2 --sweep DIR`` runs it (on any backend) and draws the figure
    from the sweep's table and networks, which equal :func:`run`'s."""
    cfg.check()
    if cfg.lr is None:
        raise ValueError("the figure's sweep needs its learning rates (cfg.lr); search them "
                         "first (rflo figure2 --search) or use the stored ones")
    lrs = cfg.rates()
    grids = []
    for rule, p in cfg.rate_keys():
        n = cfg.ablation_networks if rule in ("local", "random_feedback") else cfg.n_networks
        rec, out = lrs[rule, p]
        grid = {"rule": RULES[rule], "units": cfg.n_rec, "tau": float(cfg.tau), "lr_in": 0.0,
                "lr_rec": rec, "lr_out": out, "seed": [cfg.seed + k for k in range(n)],
                "set": {"period": int(round(p * cfg.tau))}}
        if rule == "rflo_dale":
            grid["dale"] = cfg.dale
        grids.append(grid)
    return {"name": f"figure2-{cfg.mode}", "trials": cfg.trials, "record_every": 1,
            "max_networks": max(64, cfg.n_networks, cfg.ablation_networks), "grid": grids}


def run_sweep(cfg: Config, folder, backend=None, devices=None, log=None) -> dict:
    """Run (or resume) the figure's sweep in ``folder`` and return :func:`run`'s
    numbers, read from the sweep's table and networks."""
    from rflo.ensemble import stack_networks
    from rflo.sweep import Sweep, load_networks

    log = _Log(log)
    t0 = time.perf_counter()
    sweep = Sweep.from_dict(sweep_spec(cfg))
    table = sweep.run(folder, backend=backend, devices=devices, compile_cache=True,
                      log=log)
    points = np.asarray(table.column("point").to_numpy())
    loss = np.asarray(table.column("loss").to_numpy(zero_copy_only=False), float)
    align = np.asarray(table.column("alignment").to_numpy(zero_copy_only=False), float)
    if points.size != len(sweep.spec.points()) * cfg.trials:
        raise ValueError(f"{folder}: the sweep's table does not hold every trial of the figure")
    loss = loss.reshape(-1, cfg.trials)
    align = align.reshape(-1, cfg.trials)
    nets = load_networks(folder)
    trained, start = {}, 0
    for (rule, p), grid in zip(cfg.rate_keys(), sweep.spec.grids):
        n = len(grid.values["seed"])
        idx = list(range(start, start + n))
        trained[rule, p] = Trained(stack_networks([nets[i] for i in idx]), loss[idx],
                                   align[idx], 0.0)
        start += n
    return _results(cfg, cfg.rates(), [], trained, t0, log, run_long(cfg, cfg.rates(), log))


# --------------------------------------------------------------------------
# summary numbers


def _long_numbers(cfg, long_runs):
    """Curves, final losses and outputs of :func:`run_long`'s networks."""
    if not long_runs:
        return {}
    task = periodic_task(period=max(cfg.periods_tau) * cfg.tau)
    return {rule: {"curves": t.loss, "final": final_losses(t.networks, task),
                   "outputs": trained_outputs(t.networks, task), "seconds": t.seconds}
            for rule, t in long_runs.items()}


def _rate_text(rates):
    """``lr_rec/lr_out`` as text (one number when they are equal)."""
    rec, out = rates
    return f"{rec:g}" if rec == out else f"{rec:g}/{out:g}"


def _tail_mean(curve, frac=0.05):
    n = max(1, int(round(curve.shape[-1] * frac)))
    return curve[..., -n:].mean(axis=-1)


def summarize(r: dict) -> dict:
    """The numbers behind every panel, JSON-ready, and the paper's claims checked."""
    cfg = r["config"]

    def st(a):
        med, p25, p75 = _stats(np.asarray(a))
        return {"median": float(med), "p25": float(p25), "p75": float(p75),
                "diverged": int(np.sum(np.asarray(a) >= DIVERGED))}

    final = {f"{rule}": {str(p): st(v) for (rl, p), v in r["final"].items() if rl == rule}
             for rule in sorted({k[0] for k in r["final"]})}
    untrained = {str(p): st(v) for p, v in r["untrained"].items()}
    untrained_dale = {str(p): st(v) for p, v in r["untrained_dale"].items()}
    align = {}
    for p in cfg.periods_tau:
        a = r["alignment"]["rflo", p]
        align[str(p)] = {"initial": st(r["initial_alignment"]), "after_first_trial": st(a[:, 0]),
                         "end": st(_tail_mean(a))}
    short, long_ = min(cfg.panel_a_periods_tau), max(cfg.panel_a_periods_tau)
    u_short = np.median(r["untrained"][short])
    claims = {
        "rflo_learns_short_period_10x": bool(np.median(r["final"]["rflo", short]) * 10 <= u_short),
        "bptt_learns_short_period_10x": bool(np.median(r["final"]["bptt", short]) * 10 <= u_short),
        "bptt_beats_rflo_long_period": bool(np.median(r["final"]["bptt", long_])
                                            < np.median(r["final"]["rflo", long_])),
        "bptt_beats_rflo_long_period_3x": bool(3 * np.median(r["final"]["bptt", long_])
                                               < np.median(r["final"]["rflo", long_])),
        "rflo_alignment_rises_short_period": bool(
            np.median(_tail_mean(r["alignment"]["rflo", short]))
            > np.median(r["initial_alignment"]) + 0.2),
    }
    for p in cfg.dale_periods_tau:
        claims[f"dale_rflo_within_3x_of_rflo_T{p}tau"] = bool(
            np.median(r["final"]["rflo_dale", p]) <= 3 * np.median(r["final"]["rflo", p]))
    return {
        "paper": "Murray (2019) eLife 8:e43299, Figure 2 and Figure 2-figure supplement 1",
        "mode": cfg.mode, "config": asdict(cfg), "seeds": r["seeds"],
        "loss": "0.5 * sum_{t=1}^{T-1} (y*[t] - y[t])^2 / T, one trial, learning off "
                f"(losses not finite or above {DIVERGED:g} are stored as {DIVERGED:g})",
        "learning_rates": [{"rule": rule, "period_tau": p, "lr_in": 0.0, "lr_rec": rec,
                            "lr_out": out, "at_grid_edge": [
                                name for name, v in (("lr_rec", rec), ("lr_out", out))
                                if v in (min(cfg.lr_grid), max(cfg.lr_grid))]}
                           for (rule, p), (rec, out) in sorted(r["lr"].items())],
        "lr_selection": LR_SELECTION, "lr_grid": r["grid"],
        "untrained": untrained, "untrained_dale": untrained_dale, "final_loss": final, "alignment": align,
        "dale": {str(p): v for p, v in r["dale_check"].items()},
        "long_period": {rule: {"trials": cfg.long_trials, "final_loss": st(v["final"]),
                               "seconds": float(v["seconds"])}
                        for rule, v in r.get("long", {}).items()},
        "claims": claims, "ranges": _ranges(r, cfg), "seconds": float(r["seconds"]),
    }


def _ranges(r, cfg) -> dict:
    """Each comparison the paper makes, as the two rules' final-loss quartiles
    and whether their 25-75 % ranges overlap (a difference is shown only where
    they do not)."""

    def versus(a, b, p):
        qa, qb = quartiles(_clean(r["final"][a, p])), quartiles(_clean(r["final"][b, p]))
        return {a: qa, b: qb, "ranges_overlap": ranges_overlap(qa, qb),
                "lower_median": a if qa["median"] < qb["median"] else b}

    out = {f"bptt_vs_rflo_T{p}tau": versus("bptt", "rflo", p) for p in cfg.periods_tau}
    out.update({f"rflo_dale_vs_rflo_T{p}tau": versus("rflo_dale", "rflo", p)
                for p in cfg.dale_periods_tau})
    d = cfg.panel_d_period_tau
    out.update({f"{rule}_vs_rflo_T{d}tau": versus(rule, "rflo", d)
                for rule in ("local", "random_feedback")})
    if r.get("long"):
        p = max(cfg.periods_tau)
        qa = quartiles(_clean(r["long"]["bptt"]["final"]))
        qb = quartiles(_clean(r["long"]["rflo"]["final"]))
        out[f"bptt_vs_rflo_T{p}tau_{cfg.long_trials}_trials"] = {
            "bptt": qa, "rflo": qb, "ranges_overlap": ranges_overlap(qa, qb),
            "lower_median": "bptt" if qa["median"] < qb["median"] else "rflo"}
    return out


# --------------------------------------------------------------------------
# files


def write_outputs(r: dict, out: Path) -> dict:
    """Write the PNGs, CSVs, JSON and the per-network curves (.npz) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(r)
    write_text(out / "summary.json",
                json.dumps(json_safe(summary), indent=2, allow_nan=False) + "\n")

    rows = [[rule, p, *row] for (rule, p), c in sorted(r["curves"].items())
            for row in band_rows(_clean(c))]
    write_text(out / "loss_curves.csv", csv_text(
        ["rule", "period_tau", "trial", "median", "p25", "p75"], rows))

    rows = [[p, *row] for p, a in sorted((p, a) for (rule, p), a in r["alignment"].items()
                                        if rule == "rflo")
            for row in band_rows(_clean(a))]
    write_text(out / "alignment.csv", csv_text(
        ["period_tau", "trial", "median", "p25", "p75"], rows))

    rows = []
    seeds = r["seeds"]
    for p, v in sorted(r["untrained"].items()):
        rows += [["untrained", p, seeds[k], "", "", f"{x:.6g}"] for k, x in enumerate(v)]
    for p, v in sorted(r["untrained_dale"].items()):
        rows += [["untrained_dale", p, seeds[k], "", "", f"{x:.6g}"] for k, x in enumerate(v)]
    for (rule, p), v in sorted(r["final"].items()):
        rows += [[rule, p, seeds[k], *r["lr"][rule, p], f"{x:.6g}"] for k, x in enumerate(v)]
    write_text(out / "final_loss.csv", csv_text(
        ["rule", "period_tau", "network_seed", "lr_rec", "lr_out", "final_loss"], rows))

    rows = []
    for (rule, p), y in sorted(r["outputs"].items()):
        target = r["tasks"][p].y[1:, 0]
        for t in range(y.shape[1]):
            rows.append([rule, p, t + 1, f"{target[t]:.6g}"] + [f"{v:.6g}" for v in y[:, t]])
    write_text(out / "outputs.csv", csv_text(
        ["rule", "period_tau", "t", "target"] + [f"y_seed{s}" for s in seeds], rows))

    arrays = {f"loss_{rule}_T{p}": c for (rule, p), c in r["curves"].items()}
    arrays.update({f"alignment_{rule}_T{p}": a for (rule, p), a in r["alignment"].items()})
    write_file(out / "curves.npz", lambda tmp: np.savez_compressed(tmp, **arrays), suffix=".npz")

    import matplotlib
    matplotlib.use("Agg")
    fig = plot_figure2(r, summary)
    write_file(out / "figure2.png", lambda tmp: fig.savefig(tmp, dpi=110, format="png"),
                 suffix=".png")
    fig = plot_supplement(r, summary)
    write_file(out / "figure2_supplement1.png",
                 lambda tmp: fig.savefig(tmp, dpi=110, format="png"), suffix=".png")
    if r.get("long"):
        rows = [[rule, *row] for rule, v in sorted(r["long"].items())
                for row in band_rows(_clean(v["curves"]))]
        write_text(out / "long_period.csv", csv_text(
            ["rule", "trial", "median", "p25", "p75"], rows))
        fig = plot_long(r)
        write_file(out / "figure2_long_period.png",
                   lambda tmp: fig.savefig(tmp, dpi=110, format="png"), suffix=".png")
    import matplotlib.pyplot as plt
    plt.close("all")
    return summary


# --------------------------------------------------------------------------
# figures


def _band(ax, curve, color, label):
    med, p25, p75 = _stats(curve)
    x = np.arange(1, curve.shape[1] + 1)
    ax.plot(x, med, color=color, label=label, lw=1.5)
    ax.fill_between(x, p25, p75, color=color, alpha=0.25, lw=0)


def _loss_axes(ax, title):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=10)


def plot_figure2(r: dict, summary: dict):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    cfg = r["config"]
    n = cfg.n_networks
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.6))
    fig.suptitle(f"Murray (2019) Fig. 2, reproduced ({cfg.mode} mode: {n} networks, "
                 f"{cfg.trials} trials, N={cfg.n_rec}, tau={cfg.tau:g})", fontsize=12)
    short, long_ = cfg.panel_a_periods_tau[0], cfg.panel_a_periods_tau[-1]
    for ax, p in zip(axes[0, :2], (short, long_)):
        for rule in ("bptt", "rflo"):
            _band(ax, r["curves"][rule, p], COLORS[rule],
                  f"{RULE_LABELS[rule]} (lr {_rate_text(r['lr'][rule, p])})")
        ax.axhline(np.median(r["untrained"][p]), color=COLORS["untrained"], ls=":",
                   label="untrained")
        _loss_axes(ax, f"a  loss during training, T = {p} tau\n(median, 25-75 % band)")
        ax.legend(fontsize=8, loc="lower left")

    ax = axes[0, 2]
    offset = 0.0
    for p in (short, long_):
        target = r["tasks"][p].y[1:, 0]
        t = np.arange(1, target.size + 1) / target.size
        for rule in ("bptt", "rflo"):
            f = r["final"][rule, p]
            k = int(np.argsort(f)[len(f) // 2])  # the median network
            ax.plot(t, r["outputs"][rule, p][k] + offset, color=COLORS[rule], lw=1.3,
                    label=RULE_LABELS[rule] if p == short else None)
            ax.plot(t, target + offset, color="k", ls="--", lw=0.9,
                    label="target" if (p == short and rule == "bptt") else None)
            ax.text(1.01, offset, f"{RULE_LABELS[rule]}\nT={p} tau", fontsize=7, va="center")
            offset -= 4.0
    ax.set_xlabel("time / T")
    ax.set_yticks([])
    ax.set_xlim(0, 1.25)
    ax.set_ylim(offset + 2.0, 4.0)
    ax.set_title("a  trained output (median network) vs target (dashed)", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", ncol=3)

    ax = axes[1, 0]
    ps = np.asarray(cfg.periods_tau)
    for rule in ("bptt", "rflo"):
        st = [_stats(r["final"][rule, p]) for p in ps]
        med = np.array([s[0] for s in st])
        ax.errorbar(ps, med, yerr=[med - [s[1] for s in st], [s[2] for s in st] - med],
                    color=COLORS[rule], marker="o", capsize=3, label=RULE_LABELS[rule])
    ax.plot(ps, [np.median(r["untrained"][p]) for p in ps], color=COLORS["untrained"],
            marker="s", label="untrained")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(ps)
    ax.set_xticklabels([str(p) for p in ps])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("period T / tau")
    ax.set_ylabel("final loss (learning off)")
    ax.set_title("b  loss at the end of training vs period\n(median, 25-75 %)", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[1, 1]
    cmap = plt.get_cmap("Reds")
    for i, p in enumerate(ps):
        _band(ax, r["alignment"]["rflo", p], cmap(0.35 + 0.65 * i / max(1, len(ps) - 1)),
              f"T = {p} tau")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel("cos(vec W_out, vec B^T)")
    ax.set_ylim(-1, 1)
    ax.set_title("c  alignment of W_out with B during RFLO training", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[1, 2]
    p = cfg.panel_d_period_tau
    for rule in ("bptt", "rflo", "local", "random_feedback"):
        c = r["curves"][rule, p]
        _band(ax, c, COLORS[rule],
              f"{RULE_LABELS[rule]} (n={c.shape[0]}, lr {_rate_text(r['lr'][rule, p])})")
    ax.axhline(np.median(r["untrained"][p]), color=COLORS["untrained"], ls=":", label="untrained")
    _loss_axes(ax, f"d  loss during training, T = {p} tau")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig


def plot_long(r: dict):
    """BPTT and RFLO at the longest period over :attr:`Config.long_trials` trials."""
    import matplotlib.pyplot as plt

    cfg = r["config"]
    p = max(cfg.periods_tau)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    fig.suptitle(f"Fig. 2a at T = {p} tau with {cfg.long_trials:,} trials ({cfg.n_networks} "
                 "networks, each rule at its searched rates)", fontsize=11)
    ax = axes[0]
    for rule in ("bptt", "rflo"):
        _band(ax, r["long"][rule]["curves"], COLORS[rule],
              f"{RULE_LABELS[rule]} (lr {_rate_text(r['lr'][rule, p])})")
    ax.axhline(np.median(r["untrained"][p]), color=COLORS["untrained"], ls=":", label="untrained")
    _loss_axes(ax, "loss during training (median, 25-75 % band)")
    ax.legend(fontsize=8, loc="lower left")
    ax = axes[1]
    target = r["tasks"][p].y[1:, 0]
    t = np.arange(1, target.size + 1) / target.size
    for i, rule in enumerate(("bptt", "rflo")):
        f = r["long"][rule]["final"]
        k = int(np.argsort(f)[len(f) // 2])  # the median network
        ax.plot(t, r["long"][rule]["outputs"][k] - 4.0 * i, color=COLORS[rule],
                label=RULE_LABELS[rule])
        ax.plot(t, target - 4.0 * i, color="k", ls="--", lw=0.9)
    ax.set_yticks([])
    ax.set_xlabel("time / T")
    ax.set_title("trained output (median network) vs target (dashed)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig


def plot_supplement(r: dict, summary: dict):
    import matplotlib.pyplot as plt

    cfg = r["config"]
    ps = cfg.dale_periods_tau
    shown = (min(ps), max(ps))  # panel a: the short and the long period
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    fig.suptitle(f"Fig. 2 supplement 1: RFLO with Dale's law ({cfg.dale:.0%} excitatory units) "
                 f"vs unconstrained RFLO ({cfg.mode} mode, {cfg.n_networks} networks)", fontsize=11)
    for ax, p in zip(axes, shown):
        _band(ax, r["curves"]["rflo", p], COLORS["rflo"], "RFLO, unconstrained")
        _band(ax, r["curves"]["rflo_dale", p], COLORS["rflo_dale"], RULE_LABELS["rflo_dale"])
        ax.axhline(np.median(r["untrained"][p]), color=COLORS["rflo"], ls=":",
                   label="untrained, unconstrained")
        ax.axhline(np.median(r["untrained_dale"][p]), color=COLORS["rflo_dale"], ls=":",
                   label="untrained, Dale")
        _loss_axes(ax, f"a  loss during training, T = {p} tau")
        ax.legend(fontsize=8, loc="lower left")
    from matplotlib.ticker import NullFormatter

    ax = axes[-1]
    periods = np.asarray(ps)
    for rule in ("rflo", "rflo_dale"):
        st = [_stats(r["final"][rule, p]) for p in periods]
        med = np.array([v[0] for v in st])
        ax.errorbar(periods, med, yerr=[med - [v[1] for v in st], [v[2] for v in st] - med],
                    color=COLORS[rule], marker="o", capsize=3,
                    label=RULE_LABELS[rule] if rule != "rflo" else "RFLO, unconstrained")
    ax.plot(periods, [np.median(r["untrained"][p]) for p in periods], color=COLORS["untrained"],
            marker="s", label="untrained")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(periods)
    ax.set_xticklabels([str(p) for p in periods])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("period T / tau")
    ax.set_ylabel("final loss (learning off)")
    ax.set_title("b  final loss vs period (median, 25-75 %)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


# --------------------------------------------------------------------------
# command line


DESCRIPTION = ("Reproduce Murray (2019) Figure 2 (panels a-d) and its Dale's-law "
               "supplement: PNGs, CSVs and summary.json in an output folder.")


def add_arguments(p):
    """The options of ``rflo figure2`` (shared with the main command line)."""
    p.add_argument("--out", default="figure2", help="output folder (default: ./figure2)")
    p.add_argument("--quick", action="store_true",
                   help=f"small run for CI ({QUICK.n_networks} networks, {QUICK.trials} trials, "
                        f"periods {list(QUICK.periods_tau)} tau); the full run uses "
                        f"{FULL.n_networks} networks, {FULL.trials} trials")
    p.add_argument("--seed", type=int, default=0,
                   help="first network seed; network k uses seed + k (default 0)")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an existing non-empty folder")
    p.add_argument("--search", action="store_true",
                   help="search the learning rates again (grid per rule and period, "
                        "written to lr_search.json) instead of using the stored ones")
    p.add_argument("--sweep", type=Path, default=None, metavar="DIR",
                   help="train through a sweep in DIR (rflo.sweep: resumable, every core, or "
                        "a Slurm cluster with --backend slurm), then draw the figure from it")
    p.add_argument("--backend", choices=("local", "slurm", "submitit_local"), default="local",
                   help="with --sweep: where its chunks run (default local)")
    from rflo.sweep.cli import devices_arg

    p.add_argument("--devices", type=devices_arg, default="auto", metavar="N|auto",
                   help="with --sweep: JAX devices per chunk (default auto: every core)")
    p.add_argument("--spec", action="store_true",
                   help="print the figure's sweep spec (TOML) and exit: run it with "
                        "'rflo sweep run', then draw with 'rflo figure2 --sweep DIR'")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="rflo figure2", description=DESCRIPTION))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on bad arguments, 0 on --help
        return int(e.code or 0)
    if args.seed < 0:
        print("rflo figure2: error: --seed must be >= 0", file=sys.stderr)
        return 2
    if args.spec:
        from rflo.sweep.spec import spec_from_dict, spec_toml

        cfg = replace(QUICK if args.quick else FULL, seed=args.seed)
        print(f"# Murray (2019) Figure 2 ({cfg.mode}) as a sweep: rflo sweep run THIS --out DIR,\n"
              f"# then rflo figure2 {'--quick ' if args.quick else ''}--sweep DIR draws it\n"
              + spec_toml(spec_from_dict(sweep_spec(cfg))), end="")
        return 0
    out = Path(args.out)
    if check_out(out, args.overwrite, "rflo figure2"):
        return 2
    cfg = replace(QUICK if args.quick else FULL, seed=args.seed)
    if args.search:
        if args.sweep is not None or args.spec:
            print("rflo figure2: error: --search runs here; give --sweep/--spec without it",
                  file=sys.stderr)
            return 2
        cfg = replace(cfg, lr=None)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.sweep is not None:
        from rflo.files import FolderBusy
        from rflo.sweep.backends import configure_host_devices

        devices = args.devices
        if args.backend == "local":
            configure_host_devices(devices)
        try:
            r = run_sweep(cfg, args.sweep, backend=args.backend, devices=devices, log=log)
        except (ValueError, FolderBusy) as exc:
            print(f"rflo figure2: error: {exc}", file=sys.stderr)
            return 2
    else:
        r = run(cfg, log=log)
    summary = write_outputs(r, out)
    if r["grid"]:
        write_text(out / "lr_search.json", json.dumps(json_safe(r["grid"]), indent=2) + "\n")
        chosen = tuple((g["rule"], g["period_tau"], g["chosen"]) for g in r["grid"])
        print(f"chosen rates ({cfg.mode}): {chosen!r}", file=sys.stderr)
    print(json.dumps({"out": str(out), "mode": cfg.mode, "seconds": round(summary["seconds"], 1),
                      "learning_rates": {f"{v['rule']} {v['period_tau']}tau": v["lr_rec"]
                                         for v in summary["learning_rates"]},
                      "claims": summary["claims"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
