"""The panels of Figure 3 (:func:`plot_figure3`), from :func:`rflo.paper.figure3.run`'s numbers."""

from __future__ import annotations

import numpy as np

from rflo.paper.common import median_band

__all__ = ["plot_figure3"]


_SHADES = {
    "rflo": {15: "#d62728", 20: "#1f77b4", 25: "#9467bd"},
    "bptt": {15: "#2ca02c", 20: "#17becf", 25: "#1f4e9c"},
}


def plot_figure3(r: dict, summary: dict, test_trial):
    """The figure; ``test_trial(delay, n_steps)`` gives panel a's test trial
    ``(x, y, mask)``: the figure's task with that delay."""
    import matplotlib.pyplot as plt

    from rflo.style import rule_label

    cfg = r["config"]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    # panel a: the shortest condition's test trial
    # a: one test trial, input, target and the outputs
    ax = axes[0, 0]
    short = min(m for _, m in cfg.conditions)
    shown = [(rule, m) for rule, m in cfg.conditions if m == short]
    d = r["examples"][shown[0]][0]
    n = r["n_steps"][shown[0]]
    x, y, _ = test_trial(d, n)
    t = np.arange(n)
    for c in range(x.shape[1]):
        ax.plot(
            t,
            x[:, c],
            color="0.6",
            lw=1,
            ls="-" if c == 0 else "-.",
            label=(
                "input (ready, set)" if x.shape[1] == 1 else ("input 1 (ready)", "input 2 (set)")[c]
            ),
        )
    ax.plot(t, y[:, 0], "k--", lw=1.2, label="target (go)")
    for rule, m in shown:
        ax.plot(
            t,
            r["examples"][rule, m][1],
            color=_SHADES[rule].get(m),
            lw=1.3,
            label=f"{rule_label(rule)} (trained up to {m} tau)",
        )
    ax.set_xlabel("step")
    ax.set_title(
        f"a. a test trial, delay {d / cfg.tau:g} tau (network seed {r['seeds'][0]})", fontsize=10
    )
    ax.legend(fontsize=7)
    # b, c: produced against delay
    for ax, rule, letter in ((axes[0, 1], "rflo", "b"), (axes[1, 0], "bptt", "c")):
        top = 0
        for (rl, m), prod in sorted(r["produced"].items()):
            if rl != rule:
                continue
            dl = np.asarray(r["delays"][rl, m]) / cfg.tau
            med, p25, p75 = median_band(prod / cfg.tau)
            color = _SHADES[rule].get(m)
            ax.plot(dl, med, "o-", ms=3, color=color, label=f"trained up to {m} tau")
            ax.fill_between(dl, p25, p75, color=color, alpha=0.2, lw=0)
            top = max(top, dl.max())
        ax.plot([0, top], [0, top], "k:", lw=1, label="perfect")
        ax.set_xlabel("delay between input pulses (tau)")
        ax.set_ylabel("produced interval (tau)")
        ax.set_title(
            f"{letter}. {rule_label(rule)}: median and 25-75 % over {cfg.n_networks} networks",
            fontsize=10,
        )
        ax.legend(fontsize=7)
    # d: loss during training
    ax = axes[1, 1]
    for (rule, m), c in sorted(r["curves"].items()):
        med, p25, p75 = median_band(c)
        trials = (np.arange(c.shape[1]) + 1) * cfg.batch
        color = _SHADES[rule].get(m)
        ax.plot(
            trials,
            med,
            color=color,
            ls="-" if rule == "rflo" else "--",
            label=f"{rule_label(rule)}, up to {m} tau",
        )
        ax.fill_between(trials, p25, p75, color=color, alpha=0.15, lw=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel("loss")
    ax.set_title("d. loss during training", fontsize=10)
    ax.legend(fontsize=7)
    fig.suptitle(
        f"Murray (2019) Figure 3, interval matching ({cfg.mode}): N = {cfg.n_rec}, "
        f"{cfg.updates * cfg.batch} trials in batches of {cfg.batch}, rates "
        + ", ".join(f"{rule_label(k)} {v:g}" for k, v in cfg.lr),
        fontsize=10,
    )
    fig.tight_layout()
    return fig
