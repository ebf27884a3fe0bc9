"""Figure 2's pictures: panels a-d, the long-period run, and supplement 1 (Dale)."""

from __future__ import annotations

import numpy as np

from rflo.paper.figure2_train import COLORS, RULE_LABELS, rate_text, stats

__all__ = ["plot_figure2", "plot_long", "plot_supplement"]


def _band(ax, curve, color, label):
    med, p25, p75 = stats(curve)
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
    fig.suptitle(
        f"Murray (2019) Fig. 2, reproduced ({cfg.mode} mode: {n} networks, "
        f"{cfg.trials} trials, N={cfg.n_rec}, tau={cfg.tau:g})",
        fontsize=12,
    )
    short, long_ = cfg.panel_a_periods_tau[0], cfg.panel_a_periods_tau[-1]
    for ax, p in zip(axes[0, :2], (short, long_)):
        for rule in ("bptt", "rflo"):
            _band(
                ax,
                r["curves"][rule, p],
                COLORS[rule],
                f"{RULE_LABELS[rule]} (lr {rate_text(r['lr'][rule, p])})",
            )
        ax.axhline(
            np.median(r["untrained"][p]), color=COLORS["untrained"], ls=":", label="untrained"
        )
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
            ax.plot(
                t,
                r["outputs"][rule, p][k] + offset,
                color=COLORS[rule],
                lw=1.3,
                label=RULE_LABELS[rule] if p == short else None,
            )
            ax.plot(
                t,
                target + offset,
                color="k",
                ls="--",
                lw=0.9,
                label="target" if (p == short and rule == "bptt") else None,
            )
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
        st = [stats(r["final"][rule, p]) for p in ps]
        med = np.array([s[0] for s in st])
        ax.errorbar(
            ps,
            med,
            yerr=[med - [s[1] for s in st], [s[2] for s in st] - med],
            color=COLORS[rule],
            marker="o",
            capsize=3,
            label=RULE_LABELS[rule],
        )
    ax.plot(
        ps,
        [np.median(r["untrained"][p]) for p in ps],
        color=COLORS["untrained"],
        marker="s",
        label="untrained",
    )
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
        _band(
            ax,
            r["alignment"]["rflo", p],
            cmap(0.35 + 0.65 * i / max(1, len(ps) - 1)),
            f"T = {p} tau",
        )
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
        _band(
            ax,
            c,
            COLORS[rule],
            f"{RULE_LABELS[rule]} (n={c.shape[0]}, lr {rate_text(r['lr'][rule, p])})",
        )
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
    fig.suptitle(
        f"Fig. 2a at T = {p} tau with {cfg.long_trials:,} trials ({cfg.n_networks} "
        "networks, each rule at its searched rates)",
        fontsize=11,
    )
    ax = axes[0]
    for rule in ("bptt", "rflo"):
        _band(
            ax,
            r["long"][rule]["curves"],
            COLORS[rule],
            f"{RULE_LABELS[rule]} (lr {rate_text(r['lr'][rule, p])})",
        )
    ax.axhline(np.median(r["untrained"][p]), color=COLORS["untrained"], ls=":", label="untrained")
    _loss_axes(ax, "loss during training (median, 25-75 % band)")
    ax.legend(fontsize=8, loc="lower left")
    ax = axes[1]
    target = r["tasks"][p].y[1:, 0]
    t = np.arange(1, target.size + 1) / target.size
    for i, rule in enumerate(("bptt", "rflo")):
        f = r["long"][rule]["final"]
        k = int(np.argsort(f)[len(f) // 2])  # the median network
        ax.plot(
            t, r["long"][rule]["outputs"][k] - 4.0 * i, color=COLORS[rule], label=RULE_LABELS[rule]
        )
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
    fig.suptitle(
        f"Fig. 2 supplement 1: RFLO with Dale's law ({cfg.dale:.0%} excitatory units) "
        f"vs unconstrained RFLO ({cfg.mode} mode, {cfg.n_networks} networks)",
        fontsize=11,
    )
    for ax, p in zip(axes, shown):
        _band(ax, r["curves"]["rflo", p], COLORS["rflo"], "RFLO, unconstrained")
        _band(ax, r["curves"]["rflo_dale", p], COLORS["rflo_dale"], RULE_LABELS["rflo_dale"])
        ax.axhline(
            np.median(r["untrained"][p]),
            color=COLORS["rflo"],
            ls=":",
            label="untrained, unconstrained",
        )
        ax.axhline(
            np.median(r["untrained_dale"][p]),
            color=COLORS["rflo_dale"],
            ls=":",
            label="untrained, Dale",
        )
        _loss_axes(ax, f"a  loss during training, T = {p} tau")
        ax.legend(fontsize=8, loc="lower left")
    from matplotlib.ticker import NullFormatter

    ax = axes[-1]
    periods = np.asarray(ps)
    for rule in ("rflo", "rflo_dale"):
        st = [stats(r["final"][rule, p]) for p in periods]
        med = np.array([v[0] for v in st])
        ax.errorbar(
            periods,
            med,
            yerr=[med - [v[1] for v in st], [v[2] for v in st] - med],
            color=COLORS[rule],
            marker="o",
            capsize=3,
            label=RULE_LABELS[rule] if rule != "rflo" else "RFLO, unconstrained",
        )
    ax.plot(
        periods,
        [np.median(r["untrained"][p]) for p in periods],
        color=COLORS["untrained"],
        marker="s",
        label="untrained",
    )
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
