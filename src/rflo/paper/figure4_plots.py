"""The panels of Figure 4 (:func:`plot_figure4`), from :func:`rflo.paper.figure4.run`'s numbers."""

from __future__ import annotations

import numpy as np

from rflo.paper.common import median_band

__all__ = ["plot_figure4"]


def _path(y, cfg):
    from rflo.tasks.motor import cursor_path

    return cursor_path(y, cfg.move)


_COLORS = {"target": "k", "loop": "#d62728", "rflo": "#ff7f0e", "bptt": "#1f4e9c"}


def plot_figure4(r: dict, summary: dict):
    import matplotlib.pyplot as plt

    cfg = r["config"]
    n = r["loop_y"].shape[1]
    fig = plt.figure(figsize=(12, 7.5))
    grid = fig.add_gridspec(2, 3)
    ax = fig.add_subplot(grid[0, 0])
    for k in range(4):
        p = _path(r["syllables"][0, k], cfg)
        ax.plot(p[:, 0], p[:, 1], lw=1.5, label=f"input {k}")
    ax.plot(0, 0, "k+")
    ax.set_aspect("equal")
    ax.set_title("a. the four syllables (RFLO), network 0", fontsize=10)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[0, 1])
    rew = r["rewards"].mean(axis=2)  # (K, trials): fraction of transitions rewarded
    window = max(1, cfg.selector_trials // 50)
    smooth = np.array([np.convolve(v, np.ones(window) / window, mode="valid") for v in rew])
    med, p25, p75 = median_band(smooth)
    x = np.arange(smooth.shape[1]) + window
    ax.plot(x, med, color=_COLORS["loop"])
    ax.fill_between(x, p25, p75, color=_COLORS["loop"], alpha=0.2, lw=0)
    ax.axhline(
        1 - cfg.explore * 3 / 4,
        color="0.5",
        ls=":",
        lw=1,
        label=f"best with {cfg.explore:g} exploration",
    )
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("selector trial")
    ax.set_ylabel("transitions rewarded")
    ax.set_title("b. the selector learns the transitions", fontsize=10)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[0, 2])
    ax.plot(*_path(r["target"], cfg).T, color="k", ls="--", lw=1.2, label="target")
    ax.plot(*_path(r["loop_y"][0], cfg).T, color=_COLORS["loop"], lw=1.5, label="loop (RFLO)")
    for rule, y in r["baselines"].items():
        ax.plot(
            *_path(y[0, -n:], cfg).T, color=_COLORS[rule], lw=1.2, label=f"no loop, {rule.upper()}"
        )
    ax.set_aspect("equal")
    ax.set_title(
        f"c. the {len(cfg.sequence) * (cfg.move + cfg.hold) / cfg.tau:g} tau sequence, network 0",
        fontsize=10,
    )
    ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[1, :2])
    t = np.arange(n) / cfg.tau
    for d, name in enumerate(("x", "y")):
        off = 2.5 * (1 - d)
        ax.plot(t, r["target"][:, d] + off, "k--", lw=1)
        ax.plot(t, r["loop_y"][0, :, d] + off, color=_COLORS["loop"], lw=1.2)
        for rule, y in r["baselines"].items():
            ax.plot(t, y[0, -n:, d] + off, color=_COLORS[rule], lw=1)
        ax.text(-4, off, f"{name} velocity", fontsize=8, ha="right", va="center")
    ax.set_yticks([])
    ax.set_xlabel("time (tau)")
    ax.set_title("d. outputs against the target (dashed); colours as in c", fontsize=10)
    ax = fig.add_subplot(grid[1, 2])
    rows = summary["outputs"]
    names = list(rows)
    colors = [_COLORS["loop"]] + [_COLORS[k] for k in r["baselines"]]
    for i, (name, color) in enumerate(zip(names, colors)):
        vals = rows[name]["per_network_position_error"]
        ax.plot(np.full(len(vals), i), vals, "o", color=color, alpha=0.7)
        ax.plot([i - 0.25, i + 0.25], [rows[name]["position_error"]["median"]] * 2, color=color)
    ax.set_xticks(
        range(len(names)), ["loop\n(RFLO)"] + [f"no loop\n{k.upper()}" for k in r["baselines"]]
    )
    ax.set_ylabel("cursor error (reach lengths)")
    ax.set_title(f"e. every network ({cfg.n_networks}), median bar", fontsize=10)
    fig.suptitle(
        f"Murray (2019) Figure 4 ({cfg.mode}): N = {cfg.n_rec}; loop "
        f"{cfg.syllable_trials} + {cfg.selector_trials} trials, no loop "
        f"{cfg.baseline_trials} trials",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
