"""Murray (2019) Figure 2, figure supplements 2 and 3: what RFLO needs to learn
the periodic output task.

Supplement 2 (``supplement2.png``): RFLO training both the recurrent and the
readout weights against training only one of them:

* both: Figure 2's RFLO (its stored rates at the period);
* readout only: ``w_out`` alone, at the paper's ``eta = 0.03``, in a network
  whose readout is fed back to the units through ``b``
  (:class:`rflo.cells.ReadoutFeedback`; the paper's Methods: "necessary to
  stabilize the RNN dynamics in the absence of learning of the recurrent
  weights");
* recurrent only: ``w_rec`` alone (``w_out`` frozen), at Figure 2's RFLO
  recurrent rate.  The paper: "learning is completely unsuccessful", since
  ``w_out`` cannot come into alignment with ``b``.

Supplement 3 (``supplement3.png``): the loss after the training trials
against (a) the number of units N and (b) the gain ``g`` of the initial
weights, ``w_rec ~ N(0, g^2 / N)`` and ``w_out ~ U(-1, 1) g / sqrt(N)`` (the
caption's), ``b ~ N(0, 1)``, ``h0 = 0.1``.

Settings the paper does not give, chosen here: the period (20 tau, the
short period of Figure 2), the sizes and gains, and the rates of supplement
3: one rate for ``w_rec`` and ``w_out`` per N and per g, the best of
``lr_grid`` on networks of other seeds (Figure 2's first search stage; with
one fixed rate the larger networks diverge).  Everything else
is Figure 2's: tau = 10, offline plain SGD, ``lr_in = 0``, 10,000 trials,
nine networks, the final loss with learning off.

Command line: ``rflo figure2-supplements --out FOLDER [--quick] [--seed N]
[--overwrite]``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from rflo.cells import ReadoutFeedback
from rflo.ensemble import stack_networks
from rflo.paper import figure2, figure2_train
from rflo.paper.common import (
    add_figure_arguments,
    band_rows,
    csv_text,
    figure_main,
    json_safe,
    lower_verdict,
    network_seeds,
    quartiles,
    spec_train,
    write_file,
    write_text,
)
from rflo.paper.figure2_supplements_plots import CONDITIONS, plot_supplement2, plot_supplement3

__all__ = ["Config", "QUICK", "FULL", "run", "summarize", "write_outputs", "main", "gain_network"]


@dataclass(frozen=True)
class Config:
    mode: str
    figure2_mode: str = "full"  # whose stored RFLO rates to use
    n_rec: int = 30
    tau: float = 10.0
    n_networks: int = 9
    trials: int = 10000
    period_tau: int = 20
    readout_lr: float = 0.03  # the paper's (Methods)
    sizes: tuple = (10, 30, 100, 300)
    gains: tuple = (0.5, 1.0, 1.5, 2.0, 3.0)
    #: supplement 3's rates: one rate for w_rec and w_out, picked per N and per g
    #: on grid_networks networks of other seeds (as Figure 2's first stage)
    lr_grid: tuple = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)
    grid_networks: int = 2
    seed: int = 0
    #: the networks reported, by seed (None: seed, seed + 1, ...)
    seeds: Optional[tuple] = None
    #: supplement 2's initial weights (Figure 2's): "methods" or "notebook"
    init: str = "methods"
    #: f' (Figure 2's): "seed", the notebook's, or "exact"
    derivative: str = "seed"

    def rflo_rates(self):
        """Figure 2's stored RFLO ``(lr_rec, lr_out)`` at :attr:`period_tau`,
        those stored for this run's initial weights (:attr:`init`)."""
        return figure2.config(self.figure2_mode, self.init).rates()["rflo", self.period_tau]


FULL = Config(mode="full")
QUICK = Config(
    mode="quick",
    figure2_mode="quick",
    n_networks=4,
    trials=1500,
    sizes=(10, 30, 60),
    gains=(0.5, 1.5, 3.0),
    lr_grid=(1e-3, 1e-2, 0.1),
)


def gain_network(n_rec, seed, gain, tau=10.0):
    """The caption's network: ``w_rec ~ N(0, g^2/N)``, ``w_out ~ U(-1, 1) g / sqrt(N)``,
    ``b ~ N(0, 1)``, ``h0 = 0.1``, one output, no input (``w_in`` is unused)."""
    from rflo import network_from_arrays

    rng = np.random.default_rng(seed)
    return network_from_arrays(
        w_in=rng.uniform(-1, 1, (n_rec, 1)),
        w_rec=gain * rng.normal(size=(n_rec, n_rec)) / np.sqrt(n_rec),
        w_out=gain * rng.uniform(-1, 1, (1, n_rec)) / np.sqrt(n_rec),
        b=rng.normal(size=(n_rec, 1)),
        h0=np.full(n_rec, 0.1),
        tau=tau,
        dtype="float32",
    )


def _train(cfg, nets, lr, seeds, trials):
    """RFLO on the periodic task as a :class:`rflo.spec.RunSpec` says, through
    the shared ensemble trainer (``lr`` by name, or a (K, 3) array per network)."""
    from rflo.spec import RunSpec

    distinct = len(set(seeds)) == len(seeds)
    spec = RunSpec(
        rule="rflo",
        units=int(np.shape(nets.w_rec)[-1]),
        tau=cfg.tau,
        period=int(round(cfg.period_tau * cfg.tau)),
        trials=int(trials),
        seeds=list(seeds) if distinct else None,
        # the readout-fed-back cell carries its own f' (the notebook's, as its default)
        derivative=None if nets.cell.name != "leaky_tanh" else cfg.derivative,
    )
    return spec_train(spec, nets, lr=lr, seeds=[int(s) for s in seeds])


def run(cfg: Config = QUICK, log: Optional[Callable[[str], None]] = None) -> dict:
    """Train every condition; returns the numbers (numpy arrays)."""
    log = log or (lambda m: None)
    t0 = time.perf_counter()
    seeds = network_seeds(cfg)
    lr_rec, lr_out = cfg.rflo_rates()
    fig2 = figure2.Config(
        mode=cfg.mode, n_rec=cfg.n_rec, tau=cfg.tau, init=cfg.init, derivative=cfg.derivative
    )
    task = figure2.task_of(fig2, cfg.period_tau)
    nets = figure2.networks(fig2, "rflo", seeds)
    fed_back = nets._replace(cell=ReadoutFeedback(derivative=cfg.derivative))

    # supplement 2
    rates = {
        "both": {"w_rec": lr_rec, "w_out": lr_out},
        "readout_only": {"w_out": cfg.readout_lr},
        "recurrent_only": {"w_rec": lr_rec},
    }
    s2 = {}
    for cond in CONDITIONS:
        res = _train(
            cfg, fed_back if cond == "readout_only" else nets, rates[cond], seeds, cfg.trials
        )
        s2[cond] = {
            "loss": figure2._clean(res.loss),
            "final": figure2.final_losses(res.networks, task),
        }
        log(
            f"supplement 2, {cond}: final loss median {np.median(s2[cond]['final']):.3g} "
            f"({res.seconds:.0f}s)"
        )
    untrained = figure2.final_losses(nets, task)
    untrained_fed_back = figure2.final_losses(fed_back, task)

    # supplement 3: per N and per g, the best joint rate on other seeds, then the report
    grid_seeds = figure2_train.grid_seeds(cfg)

    def best_rate(n, g):
        lanes = [s for _ in cfg.lr_grid for s in grid_seeds]
        group = stack_networks([gain_network(n, s, g, cfg.tau) for s in lanes])
        etas = np.repeat(np.asarray(cfg.lr_grid, float), len(grid_seeds))
        res = _train(
            cfg, group, np.stack([np.zeros_like(etas), etas, etas], 1), lanes, cfg.trials
        )  # fast rates are meant to diverge here (the guard counts them)
        final = figure2.final_losses(res.networks, task).reshape(len(cfg.lr_grid), -1)
        ok = (np.asarray(res.diverged_at).reshape(final.shape) == 0).all(axis=1)
        scores = np.where(ok, np.median(final, axis=1), np.inf)
        return float(cfg.lr_grid[int(np.argmin(scores))])

    def gain_runs(pairs, what):
        out = {}
        for value, (n, g) in pairs:
            eta = best_rate(n, g)
            group = stack_networks([gain_network(n, s, g, cfg.tau) for s in seeds])
            res = _train(cfg, group, {"w_rec": eta, "w_out": eta}, seeds, cfg.trials)
            out[value] = {
                "final": figure2.final_losses(res.networks, task),
                "untrained": figure2.final_losses(group, task),
                "eta": eta,
            }
            log(
                f"supplement 3, {what} = {value}: eta {eta:g}, final loss median "
                f"{np.median(out[value]['final']):.3g} ({res.seconds:.0f}s)"
            )
        return out

    sizes = gain_runs([(n, (n, 1.5)) for n in cfg.sizes], "N")
    gains = gain_runs([(g, (cfg.n_rec, g)) for g in cfg.gains], "g")
    return {
        "config": cfg,
        "seeds": seeds,
        "rates": rates,
        "task": task,
        "s2": s2,
        "untrained": untrained,
        "untrained_fed_back": untrained_fed_back,
        "sizes": sizes,
        "gains": gains,
        "seconds": time.perf_counter() - t0,
    }


def summarize(r: dict) -> dict:
    """Every panel's numbers and the paper's claims, each with its verdict."""
    cfg = r["config"]
    q = {cond: quartiles(r["s2"][cond]["final"]) for cond in CONDITIONS}
    untrained = quartiles(r["untrained"])
    claims = {}
    for other in ("readout_only", "recurrent_only"):
        claims[f"both_beat_{other}"] = {
            "paper": f"training recurrent and readout weights outperforms training the "
            f"{other.replace('_', ' ')}",
            "ours": {"both": q["both"], other: q[other]},
            **lower_verdict(q["both"], q[other], "training both", "final loss"),
        }
    fails = q["recurrent_only"]["p25"] > 0.5 * untrained["median"]
    claims["recurrent_only_fails"] = {
        "paper": "with the readout frozen, learning is completely unsuccessful",
        "ours": {"recurrent_only": q["recurrent_only"], "untrained": untrained},
        "verdict": (
            "reproduced: even the 25th percentile of its final loss is above half "
            "the untrained loss"
            if fails
            else "not reproduced: recurrent-only training brings the loss below half the "
            "untrained loss"
        ),
    }
    for key, what, values, of in (
        ("sizes", "N", cfg.sizes, "network sizes"),
        ("gains", "g", cfg.gains, "initial recurrent weights"),
    ):
        lo, hi = quartiles(r[key][values[0]]["final"]), quartiles(r[key][values[-1]]["final"])
        claims[f"larger_{what}_learns_better"] = {
            "paper": f"performance improves with larger {of}",
            "ours": {f"{what}={values[0]}": lo, f"{what}={values[-1]}": hi},
            **lower_verdict(hi, lo, f"the larger {what}", "final loss"),
        }
    return {
        "paper": "Murray (2019) eLife 8:e43299, Figure 2-figure supplements 2 and 3",
        "mode": cfg.mode,
        "config": asdict(cfg),
        "seeds": r["seeds"],
        "rates": r["rates"],
        "period_tau": cfg.period_tau,
        "supplement2": {
            "final_loss": q,
            "untrained": untrained,
            "untrained_fed_back": quartiles(r["untrained_fed_back"]),
        },
        "supplement3": {
            "sizes": {
                str(n): {
                    "eta": v["eta"],
                    "final_loss": quartiles(v["final"]),
                    "untrained": quartiles(v["untrained"]),
                }
                for n, v in r["sizes"].items()
            },
            "gains": {
                str(g): {
                    "eta": v["eta"],
                    "final_loss": quartiles(v["final"]),
                    "untrained": quartiles(v["untrained"]),
                }
                for g, v in r["gains"].items()
            },
        },
        "claims": claims,
        "seconds": float(r["seconds"]),
    }


def write_outputs(r: dict, out: Path) -> dict:
    """``supplement2.png``, ``supplement3.png``, CSVs and ``summary.json`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(r)
    write_text(out / "summary.json", json.dumps(json_safe(summary), indent=2) + "\n")
    rows = [[cond, *row] for cond in CONDITIONS for row in band_rows(r["s2"][cond]["loss"])]
    write_text(
        out / "supplement2_loss_curves.csv",
        csv_text(["condition", "trial", "median", "p25", "p75"], rows),
    )
    rows = [
        ["supplement2", cond, "", s, f"{v:.6g}"]
        for cond in CONDITIONS
        for s, v in zip(r["seeds"], r["s2"][cond]["final"])
    ]
    rows += [
        ["supplement3", "N", n, s, f"{v:.6g}"]
        for n, d in r["sizes"].items()
        for s, v in zip(r["seeds"], d["final"])
    ]
    rows += [
        ["supplement3", "g", g, s, f"{v:.6g}"]
        for g, d in r["gains"].items()
        for s, v in zip(r["seeds"], d["final"])
    ]
    write_text(
        out / "final_loss.csv",
        csv_text(["panel", "condition", "value", "network_seed", "final_loss"], rows),
    )
    from rflo.mpl_backend import use_headless_backend

    use_headless_backend()
    import matplotlib.pyplot as plt

    for name, fig in (
        ("supplement2.png", plot_supplement2(r)),
        ("supplement3.png", plot_supplement3(r)),
    ):
        write_file(
            out / name, lambda tmp, f=fig: f.savefig(tmp, dpi=110, format="png"), suffix=".png"
        )
    plt.close("all")
    return summary


DESCRIPTION = (
    "Reproduce Murray (2019) Figure 2's supplements 2 (which weights RFLO trains) "
    "and 3 (network size and initial gain): PNGs, CSVs and summary.json."
)


def add_arguments(p):
    return add_figure_arguments(
        p,
        "figure2-supplements",
        f"small run for CI ({QUICK.n_networks} networks, {QUICK.trials} trials, sizes "
        f"{list(QUICK.sizes)}, gains {list(QUICK.gains)}); the full run uses "
        f"{FULL.n_networks} networks, {FULL.trials} trials",
        derivative="seed",
        init=True,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    return figure_main(
        argv, "figure2-supplements", DESCRIPTION, add_arguments, QUICK, FULL, run, write_outputs
    )


if __name__ == "__main__":
    raise SystemExit(main())
