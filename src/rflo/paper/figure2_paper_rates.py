"""Figure 2 at the paper's own learning rates, trained until the loss settles.

The paper's Materials and methods ("Simulation details"): "Learning rates
were selected by grid search over eta_1,2,3 = eta in [10^-4, 3 x 10^-4, 10^-3,
..., 3 x 10^-1]" (one rate for every matrix) and "For task durations of T =
(200, 400, 800, 1600) timesteps, the optimal learning rates after grid search
were eta = (0.03, 0.01, 0.001, 0.0003) for RFLO and (0.03, 0.03, 0.01, 0.03)
for BPTT" (:data:`PAPER_RATES`).  Figure 2's trial count is given nowhere but
in supplement 3's caption ("after 10^4 trials").  :mod:`rflo.paper.figure2`
uses rates searched per matrix here; this module trains the figure's networks
(N = 30, the Methods' initial weights, the notebook's f' and update scaling
``eta / T``, as Figure 2) at the paper's rates for many more trials, and
reports the loss at 10^4 trials, at the end, and when the loss settled: the
first trial after which the median (over networks) training loss, in blocks
of 1 % of the run, stays below 1.1 times its final level (the mean of the
last 5 % of blocks; "settled" when that is in the first half of the run,
else the run was too short to tell; networks that diverge are frozen by the
trainer's guard, counted, and left out of the training-loss numbers; their
final loss, on the network kept, is in "final").  ``w_in`` is not trained (the periodic task has no
input, so its rate would change nothing).

Command line: ``rflo figure2-paper-rates [--quick] [--out FOLDER] [--trials N]
[--seed N] [--seeds S,S,...] [--overwrite]``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from rflo.paper.common import (
    add_figure_arguments,
    band_rows,
    figure_main,
    network_seeds,
    quartiles,
    write_reproduction,
)

__all__ = ["PAPER_RATES", "Config", "FULL", "QUICK", "run", "summarize", "settled_at", "main"]

DESCRIPTION = (
    "Murray (2019) Figure 2 at the paper's own single learning rates (Methods), "
    "trained long enough for the loss to settle: loss at 10^4 trials, at the end, "
    "and when it settled"
)

#: the Methods' rates, by rule, for T = 20, 40, 80, 160 tau
PAPER_RATES = {"rflo": (0.03, 0.01, 0.001, 0.0003), "bptt": (0.03, 0.03, 0.01, 0.03)}
PERIODS_TAU = (20, 40, 80, 160)


@dataclass(frozen=True)
class Config:
    mode: str
    trials: int = 100_000
    n_networks: int = 9
    periods_tau: tuple = PERIODS_TAU
    seed: int = 0
    seeds: Optional[tuple] = None
    #: "methods" (the paper's Methods) or "notebook" initial weights
    init: str = "methods"
    derivative: str = "seed"


FULL = Config(mode="full")
QUICK = Config(mode="quick", trials=4000, n_networks=3, periods_tau=(20, 80))


def _figure2_config(cfg: Config):
    from rflo.paper.figure2_config import FULL as FIG2

    return replace(FIG2, init=cfg.init, derivative=cfg.derivative, trials=cfg.trials)


def settled_at(curves, tolerance: float = 1.1) -> int:
    """The first trial after which the median of ``curves`` (K, n), in blocks
    of 1 % of the run, stays below ``tolerance`` times its final level (the
    mean of the last 5 % of blocks); networks that diverged (NaN losses from
    the trial they were frozen at) are left out, and with none left the
    run's length is returned."""
    curves = np.asarray(curves, float)
    n = curves.shape[1]
    block = max(1, n // 100)
    m = n // block
    blocks = curves[:, : m * block].reshape(len(curves), m, block).mean(axis=2)
    blocks = blocks[np.all(np.isfinite(blocks), axis=1)]  # a diverged network is frozen: NaN
    if not len(blocks):
        return n
    med = np.median(blocks, axis=0)
    final = med[-max(1, m // 20) :].mean()
    above = np.flatnonzero(~(med <= tolerance * final))
    return int((above[-1] + 1 if above.size else 0) * block)


def run(cfg: Config = QUICK, log: Optional[Callable[[str], None]] = None) -> dict:
    """Train both rules at every period at the paper's rates; returns the curves."""
    from rflo.paper.figure2_train import final_losses, networks, task_of, train

    say = log or (lambda m: None)
    fig2 = _figure2_config(cfg)
    seeds = network_seeds(cfg)
    t0 = time.perf_counter()
    out = {}
    for rule, rates in PAPER_RATES.items():
        for p, eta in zip(PERIODS_TAU, rates):
            if p not in cfg.periods_tau:
                continue
            t = time.perf_counter()
            res = train(fig2, networks(fig2, rule, seeds), rule, p, eta, eta, seeds, cfg.trials)
            curves = np.asarray(res.loss, float)
            out[rule, p] = {
                "eta": eta,
                "curves": curves,
                "final": final_losses(res.networks, task_of(fig2, p)),
                "seconds": time.perf_counter() - t,
            }
            say(
                f"{rule} {p} tau, eta {eta:g}: training loss median "
                f"{np.nanmedian(curves[:, -max(1, cfg.trials // 20) :]):.4g} at the end, "
                f"settled at trial {settled_at(curves)}, "
                f"{int(np.sum(~np.all(np.isfinite(curves), axis=1)))} of {len(curves)} diverged, "
                f"{out[rule, p]['seconds']:.0f} s"
            )
    return {"config": cfg, "seeds": seeds, "runs": out, "seconds": time.perf_counter() - t0}


def summarize(r: dict) -> dict:
    cfg = r["config"]
    rows = {}
    for (rule, p), v in r["runs"].items():
        c = v["curves"]
        at = min(10_000, c.shape[1])
        ok = np.all(np.isfinite(c), axis=1)  # the others diverged and were frozen
        window = c[ok, at - max(1, at // 20) : at].mean(axis=1)
        rows[f"{rule} {p}"] = {
            "rule": rule,
            "period_tau": p,
            "eta": v["eta"],
            "diverged": int(np.sum(~ok)),
            "loss_at_10k": quartiles(window) if ok.any() else None,
            "trials_at_10k": at,
            "final": quartiles(v["final"]),
            "settled_at": settled_at(c),
            # settled in the first half of the run (else the run was too short to tell)
            "settled": settled_at(c) <= c.shape[1] // 2,
            "seconds": v["seconds"],
        }
    return {
        "mode": cfg.mode,
        "trials": cfg.trials,
        "seeds": r["seeds"],
        "init": cfg.init,
        "rows": rows,
        "claims": {},
        "seconds": r["seconds"],
    }


def write_outputs(r: dict, out: Path) -> dict:
    """``paper_rates.csv`` (the table), ``paper_rates_curves.csv``,
    ``paper_rates.json`` and ``paper_rates.png``."""
    s = summarize(r)

    def q(d):
        if d is None:
            return ["", "", ""]
        return [f"{d['median']:.4g}", f"{d['p25']:.4g}", f"{d['p75']:.4g}"]

    head = ["rule", "period_tau", "eta", "loss_10k", "p25", "p75", "final", "p25", "p75"]
    table = (
        head + ["settled_at", "settled", "diverged"],
        [
            [v["rule"], v["period_tau"], v["eta"], *q(v["loss_at_10k"]), *q(v["final"])]
            + [v["settled_at"], v["settled"], v["diverged"]]
            for v in s["rows"].values()
        ],
    )
    curves = (
        ["rule", "period_tau", "trial", "median", "p25", "p75"],
        [[rule, p, *row] for (rule, p), v in r["runs"].items() for row in band_rows(v["curves"])],
    )
    return write_reproduction(out, "paper_rates", table, curves, s, lambda path: _plot(r, path))


def _plot(r, path):
    import matplotlib.pyplot as plt

    from rflo.mpl_backend import use_headless_backend
    from rflo.paper.common import median_band, write_file

    use_headless_backend()
    periods = sorted({p for _, p in r["runs"]})
    fig, axes = plt.subplots(1, len(periods), figsize=(3.6 * len(periods), 3.4), squeeze=False)
    colors = {"rflo": "#d62728", "bptt": "#1f4e9c"}
    for ax, p in zip(axes[0], periods):
        for rule in PAPER_RATES:
            v = r["runs"].get((rule, p))
            if v is None:
                continue
            c = v["curves"]
            ok = np.all(np.isfinite(c), axis=1)  # diverged networks are left out, as in the table
            med, p25, p75 = median_band(c[ok] if ok.any() else c)
            x = np.arange(1, med.size + 1)
            ax.plot(x, med, color=colors[rule], lw=1, label=f"{rule.upper()} eta {v['eta']:g}")
            ax.fill_between(x, p25, p75, color=colors[rule], alpha=0.2, lw=0)
        ax.axvline(10_000, color="0.6", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("trial")
        ax.set_title(f"T = {p} tau", fontsize=10)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("training loss (median, 25-75 %)")
    fig.suptitle("Figure 2 at the paper's rates (Methods); dotted: 10^4 trials", fontsize=10)
    fig.tight_layout()
    write_file(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"), suffix=".png")
    plt.close(fig)


def add_arguments(p):
    p.add_argument("--trials", type=int, default=None, help="trials per run (default 100,000)")
    return add_figure_arguments(
        p,
        "figure2-paper-rates",
        f"small run ({QUICK.n_networks} networks, {QUICK.trials} trials, periods "
        f"{QUICK.periods_tau} tau)",
        derivative="seed",
        init=True,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    return figure_main(
        argv, "figure2-paper-rates", DESCRIPTION, add_arguments, QUICK, FULL, run, write_outputs
    )


if __name__ == "__main__":
    sys.exit(main())
