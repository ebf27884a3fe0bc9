"""Figure 2's numbers: every panel's summary, the paper's claims checked, each
comparison's 25-75 % ranges, and the files (CSVs, JSON, curves, PNGs)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from rflo.paper.common import (
    band_rows,
    csv_text,
    json_safe,
    network_seeds,
    quartiles,
    ranges_overlap,
    write_file,
    write_text,
)
from rflo.paper.figure2_train import (
    DIVERGED,
    LR_SELECTION,
    clean,
    final_losses,
    networks,
    rate_text,
    stats,
    task_of,
    trained_outputs,
)

__all__ = ["summarize", "write_outputs", "long_numbers", "rate_text", "results"]


def long_numbers(cfg, long_runs):
    """Curves, final losses and outputs of :func:`run_long`'s networks."""
    if not long_runs:
        return {}
    task = task_of(cfg, max(cfg.periods_tau))
    return {
        rule: {
            "curves": t.loss,
            "final": final_losses(t.networks, task),
            "outputs": trained_outputs(t.networks, task),
            "seconds": t.seconds,
        }
        for rule, t in long_runs.items()
    }


def tail_mean(curve, frac=0.05):
    n = max(1, int(round(curve.shape[-1] * frac)))
    return curve[..., -n:].mean(axis=-1)


def summarize(r: dict) -> dict:
    """The numbers behind every panel, JSON-ready, and the paper's claims checked."""
    cfg = r["config"]

    def st(a):
        med, p25, p75 = stats(np.asarray(a))
        return {
            "median": float(med),
            "p25": float(p25),
            "p75": float(p75),
            "diverged": int(np.sum(np.asarray(a) >= DIVERGED)),
        }

    final = {
        f"{rule}": {str(p): st(v) for (rl, p), v in r["final"].items() if rl == rule}
        for rule in sorted({k[0] for k in r["final"]})
    }
    untrained = {str(p): st(v) for p, v in r["untrained"].items()}
    untrained_dale = {str(p): st(v) for p, v in r["untrained_dale"].items()}
    align = {}
    for p in cfg.periods_tau:
        a = r["alignment"]["rflo", p]
        align[str(p)] = {
            "initial": st(r["initial_alignment"]),
            "after_first_trial": st(a[:, 0]),
            "end": st(tail_mean(a)),
        }
    short, long_ = min(cfg.panel_a_periods_tau), max(cfg.panel_a_periods_tau)
    u_short = np.median(r["untrained"][short])
    claims = {
        "rflo_learns_short_period_10x": bool(np.median(r["final"]["rflo", short]) * 10 <= u_short),
        "bptt_learns_short_period_10x": bool(np.median(r["final"]["bptt", short]) * 10 <= u_short),
        "bptt_beats_rflo_long_period": bool(
            np.median(r["final"]["bptt", long_]) < np.median(r["final"]["rflo", long_])
        ),
        "bptt_beats_rflo_long_period_3x": bool(
            3 * np.median(r["final"]["bptt", long_]) < np.median(r["final"]["rflo", long_])
        ),
        "rflo_alignment_rises_short_period": bool(
            np.median(tail_mean(r["alignment"]["rflo", short]))
            > np.median(r["initial_alignment"]) + 0.2
        ),
    }
    for p in cfg.dale_periods_tau:
        claims[f"dale_rflo_within_3x_of_rflo_T{p}tau"] = bool(
            np.median(r["final"]["rflo_dale", p]) <= 3 * np.median(r["final"]["rflo", p])
        )
    return {
        "paper": "Murray (2019) eLife 8:e43299, Figure 2 and Figure 2-figure supplement 1",
        "mode": cfg.mode,
        "config": asdict(cfg),
        "seeds": r["seeds"],
        "loss": "0.5 * sum_{t=1}^{T-1} (y*[t] - y[t])^2 / T, one trial, learning off "
        f"(losses not finite or above {DIVERGED:g} are stored as {DIVERGED:g})",
        "learning_rates": [
            {
                "rule": rule,
                "period_tau": p,
                "lr_in": 0.0,
                "lr_rec": rec,
                "lr_out": out,
                "at_grid_edge": [
                    name
                    for name, v in (("lr_rec", rec), ("lr_out", out))
                    if v in (min(cfg.lr_grid), max(cfg.lr_grid))
                ],
            }
            for (rule, p), (rec, out) in sorted(r["lr"].items())
        ],
        "lr_selection": LR_SELECTION,
        "lr_grid": r["grid"],
        "untrained": untrained,
        "untrained_dale": untrained_dale,
        "final_loss": final,
        "alignment": align,
        "dale": {str(p): v for p, v in r["dale_check"].items()},
        "long_period": {
            rule: {
                "trials": cfg.long_trials,
                "final_loss": st(v["final"]),
                "seconds": float(v["seconds"]),
            }
            for rule, v in r.get("long", {}).items()
        },
        "claims": claims,
        "ranges": _ranges(r, cfg),
        "seconds": float(r["seconds"]),
    }


def _ranges(r, cfg) -> dict:
    """Each comparison the paper makes, as the two rules' final-loss quartiles
    and whether their 25-75 % ranges overlap (a difference is shown only where
    they do not)."""

    def versus(a, b, p):
        qa, qb = quartiles(clean(r["final"][a, p])), quartiles(clean(r["final"][b, p]))
        return {
            a: qa,
            b: qb,
            "ranges_overlap": ranges_overlap(qa, qb),
            "lower_median": a if qa["median"] < qb["median"] else b,
        }

    out = {f"bptt_vs_rflo_T{p}tau": versus("bptt", "rflo", p) for p in cfg.periods_tau}
    out.update(
        {f"rflo_dale_vs_rflo_T{p}tau": versus("rflo_dale", "rflo", p) for p in cfg.dale_periods_tau}
    )
    d = cfg.panel_d_period_tau
    out.update(
        {
            f"{rule}_vs_rflo_T{d}tau": versus(rule, "rflo", d)
            for rule in ("local", "random_feedback")
        }
    )
    if r.get("long"):
        p = max(cfg.periods_tau)
        qa = quartiles(clean(r["long"]["bptt"]["final"]))
        qb = quartiles(clean(r["long"]["rflo"]["final"]))
        out[f"bptt_vs_rflo_T{p}tau_{cfg.long_trials}_trials"] = {
            "bptt": qa,
            "rflo": qb,
            "ranges_overlap": ranges_overlap(qa, qb),
            "lower_median": "bptt" if qa["median"] < qb["median"] else "rflo",
        }
    return out


def write_outputs(r: dict, out: Path) -> dict:
    """Write the PNGs, CSVs, JSON and the per-network curves (.npz) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(r)
    write_text(
        out / "summary.json", json.dumps(json_safe(summary), indent=2, allow_nan=False) + "\n"
    )

    rows = [
        [rule, p, *row]
        for (rule, p), c in sorted(r["curves"].items())
        for row in band_rows(clean(c))
    ]
    write_text(
        out / "loss_curves.csv",
        csv_text(["rule", "period_tau", "trial", "median", "p25", "p75"], rows),
    )

    rows = [
        [p, *row]
        for p, a in sorted((p, a) for (rule, p), a in r["alignment"].items() if rule == "rflo")
        for row in band_rows(clean(a))
    ]
    write_text(
        out / "alignment.csv", csv_text(["period_tau", "trial", "median", "p25", "p75"], rows)
    )

    rows = []
    seeds = r["seeds"]
    for p, v in sorted(r["untrained"].items()):
        rows += [["untrained", p, seeds[k], "", "", f"{x:.6g}"] for k, x in enumerate(v)]
    for p, v in sorted(r["untrained_dale"].items()):
        rows += [["untrained_dale", p, seeds[k], "", "", f"{x:.6g}"] for k, x in enumerate(v)]
    for (rule, p), v in sorted(r["final"].items()):
        rows += [[rule, p, seeds[k], *r["lr"][rule, p], f"{x:.6g}"] for k, x in enumerate(v)]
    write_text(
        out / "final_loss.csv",
        csv_text(["rule", "period_tau", "network_seed", "lr_rec", "lr_out", "final_loss"], rows),
    )

    rows = []
    for (rule, p), y in sorted(r["outputs"].items()):
        target = r["tasks"][p].y[1:, 0]
        for t in range(y.shape[1]):
            rows.append([rule, p, t + 1, f"{target[t]:.6g}"] + [f"{v:.6g}" for v in y[:, t]])
    write_text(
        out / "outputs.csv",
        csv_text(["rule", "period_tau", "t", "target"] + [f"y_seed{s}" for s in seeds], rows),
    )

    arrays = {f"loss_{rule}_T{p}": c for (rule, p), c in r["curves"].items()}
    arrays.update({f"alignment_{rule}_T{p}": a for (rule, p), a in r["alignment"].items()})
    write_file(out / "curves.npz", lambda tmp: np.savez_compressed(tmp, **arrays), suffix=".npz")

    from rflo.mpl_backend import use_headless_backend

    use_headless_backend()
    from rflo.paper.figure2_plots import plot_figure2, plot_long, plot_supplement

    fig = plot_figure2(r, summary)
    write_file(
        out / "figure2.png", lambda tmp: fig.savefig(tmp, dpi=110, format="png"), suffix=".png"
    )
    fig = plot_supplement(r, summary)
    write_file(
        out / "figure2_supplement1.png",
        lambda tmp: fig.savefig(tmp, dpi=110, format="png"),
        suffix=".png",
    )
    if r.get("long"):
        rows = [
            [rule, *row]
            for rule, v in sorted(r["long"].items())
            for row in band_rows(clean(v["curves"]))
        ]
        write_text(
            out / "long_period.csv", csv_text(["rule", "trial", "median", "p25", "p75"], rows)
        )
        fig = plot_long(r)
        write_file(
            out / "figure2_long_period.png",
            lambda tmp: fig.savefig(tmp, dpi=110, format="png"),
            suffix=".png",
        )
    import matplotlib.pyplot as plt

    plt.close("all")
    return summary


def results(cfg, lrs, grids, trained, t0, log, long_runs=None) -> dict:
    """The figure's numbers from its trained networks (``{(rule, period):
    Trained or EnsembleResult}``)."""
    seeds = network_seeds(cfg)
    tasks = {p: task_of(cfg, p) for p in cfg.periods_tau}
    curves, aligns, final, outputs = {}, {}, {}, {}
    nets = networks(cfg, "rflo", seeds)
    untrained = {p: final_losses(nets, tasks[p]) for p in cfg.periods_tau}
    dale_nets = networks(cfg, "rflo_dale", seeds)
    untrained_dale = {p: final_losses(dale_nets, tasks[p]) for p in cfg.dale_periods_tau}
    dale_check = {}
    for rule, p in cfg.rate_keys():
        res = trained[rule, p]
        curves[rule, p] = clean(res.loss)
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
        log(
            f"{rule} T={p}tau lr_rec/lr_out={rate_text(lrs[rule, p])}: final loss median "
            f"{np.median(final[rule, p]):.3g} (untrained {np.median(untrained[p]):.3g})"
            f"{msg}" + (f", {res.seconds:.1f}s" if res.seconds else "")
        )

    initial_alignment = np.asarray(
        [
            np.vdot(np.asarray(nets.b[k]).T, np.asarray(nets.w_out[k]))
            / (np.linalg.norm(nets.b[k]) * np.linalg.norm(nets.w_out[k]))
            for k in range(len(seeds))
        ]
    )
    return {
        "config": cfg,
        "seeds": seeds,
        "lr": lrs,
        "grid": grids,
        "tasks": tasks,
        "untrained": untrained,
        "untrained_dale": untrained_dale,
        "curves": curves,
        "alignment": aligns,
        "initial_alignment": initial_alignment,
        "final": final,
        "outputs": outputs,
        "dale_check": dale_check,
        "long": long_numbers(cfg, long_runs or {}),
        "seconds": time.perf_counter() - t0,
    }
