"""Figure 2's supplements 2 and 3 drawn (``supplement2.png``, ``supplement3.png``)
from :func:`rflo.paper.figure2_supplements.run`'s numbers; the conditions of
supplement 2 with their labels and colours."""

from __future__ import annotations

import numpy as np

from rflo.paper.common import median_band

__all__ = ["CONDITIONS", "LABELS", "COLORS", "plot_supplement2", "plot_supplement3"]

CONDITIONS = ("both", "readout_only", "recurrent_only")
LABELS = {
    "both": "recurrent and readout (RFLO)",
    "readout_only": "readout only (fed back via B)",
    "recurrent_only": "recurrent only (readout frozen)",
}
COLORS = {"both": "tab:red", "readout_only": "tab:orange", "recurrent_only": "tab:gray"}


def plot_supplement2(r):
    import matplotlib.pyplot as plt

    cfg = r["config"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    fig.suptitle(
        f"Fig. 2 supplement 2: which weights RFLO trains (T = {cfg.period_tau} tau, "
        f"{cfg.n_networks} networks, {cfg.mode} mode)",
        fontsize=11,
    )
    ax = axes[0]
    for cond in CONDITIONS:
        c = r["s2"][cond]["loss"]
        med, p25, p75 = median_band(c)
        x = np.arange(1, c.shape[1] + 1)
        ax.plot(x, med, color=COLORS[cond], label=LABELS[cond])
        ax.fill_between(x, p25, p75, color=COLORS[cond], alpha=0.25, lw=0)
    ax.axhline(np.median(r["untrained"]), color="0.5", ls=":", label="untrained")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel("loss")
    ax.set_title("loss during training (median, 25-75 %)", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[1]
    for i, cond in enumerate(CONDITIONS):
        v = r["s2"][cond]["final"]
        ax.scatter(np.full(v.size, i) + np.linspace(-0.15, 0.15, v.size), v, color=COLORS[cond])
        med, p25, p75 = median_band(v)
        ax.errorbar([i], [med], yerr=[[med - p25], [p75 - med]], color="k", capsize=6)
    ax.set_xticks(range(len(CONDITIONS)))
    ax.set_xticklabels([LABELS[c].replace(" (", "\n(") for c in CONDITIONS], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("final loss (learning off)")
    ax.set_title("final loss per network", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig


def plot_supplement3(r):
    import matplotlib.pyplot as plt

    cfg = r["config"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    fig.suptitle(
        f"Fig. 2 supplement 3: RFLO after {cfg.trials:,} trials (T = {cfg.period_tau} "
        f"tau, {cfg.n_networks} networks, {cfg.mode} mode)",
        fontsize=11,
    )
    for ax, key, xlabel in (
        (axes[0], "sizes", "recurrent units N"),
        (axes[1], "gains", "initial weight gain g"),
    ):
        xs = np.asarray(sorted(r[key]), float)
        for what, color, label in (
            ("final", "tab:red", "RFLO, trained"),
            ("untrained", "0.5", "untrained"),
        ):
            st = [median_band(r[key][x][what]) for x in sorted(r[key])]
            med = np.array([s[0] for s in st])
            ax.errorbar(
                xs,
                med,
                yerr=[med - [s[1] for s in st], [s[2] for s in st] - med],
                color=color,
                marker="o",
                capsize=3,
                label=label,
            )
        ax.set_xscale("log" if key == "sizes" else "linear")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("final loss (learning off)")
        ax.set_title(f"{'a' if key == 'sizes' else 'b'}  loss vs {xlabel}", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig
