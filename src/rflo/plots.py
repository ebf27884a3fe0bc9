"""Figures (matplotlib's object API with the Agg canvas: no screen needed).

Every function takes numpy data and a path, writes one PNG atomically and
returns the path.
"""

from __future__ import annotations

from typing import Dict, Mapping

import numpy as np
from matplotlib.figure import Figure

from rflo.files import atomic_write
from rflo.style import rule_label, rule_style

__all__ = ["plot_losses", "plot_outputs", "plot_alignment", "plot_evaluation", "save_figure"]


def _color(rule, i):
    return rule_style(rule, i)["color"]


def save_figure(fig: Figure, path, dpi=110):
    """Write ``fig`` to ``path`` as PNG, atomically."""
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    return path


def plot_losses(losses: Mapping[str, np.ndarray], path, title_suffix=""):
    """Every rule's loss against trial on one log-log axis (its style:
    :mod:`rflo.style`), with its final value in the legend; ``title_suffix``
    says the mode and rates.  A rule's (K, trials) curves (an ensemble) are
    drawn as their median with the 25-75 % band."""
    import warnings

    fig = Figure(figsize=(5.6, 3.8))
    ax = fig.subplots()
    for i, (rule, loss) in enumerate(losses.items()):
        loss = np.asarray(loss, float)
        many = loss.ndim == 2
        if many:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN (frozen) trials
                lo, loss, hi = np.nanpercentile(loss, [25, 50, 75], axis=0)
        trials = np.arange(1, loss.size + 1)
        ok = loss > 0  # log axes: a loss of exactly 0 (nothing to fit) is not drawn
        style = rule_style(rule, i)
        what = f"median of {len(np.asarray(losses[rule]))}, " if many else ""
        ax.plot(
            trials[ok],
            loss[ok],
            lw=1.3,
            **style,
            label=f"{rule_label(rule)} ({what}final {loss[-1]:.2g})",
        )
        if many:
            ax.fill_between(trials[ok], lo[ok], hi[ok], color=style["color"], alpha=0.2, lw=0)
    ax.set_xscale("log")
    if any(np.any(np.asarray(v, float) > 0) for v in losses.values()):
        ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel("loss")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("Learning curves" + (f"\n{title_suffix}" if title_suffix else ""), fontsize=10)
    return save_figure(fig, path)


def plot_outputs(outputs: Mapping[str, np.ndarray], target: np.ndarray, path):
    """Each rule's output (learning off) against the dashed target."""
    rules = list(outputs)
    target = np.asarray(target)
    fig = Figure(figsize=(3.2 * len(rules) + 0.6, 3.0))
    axes = fig.subplots(1, len(rules), sharey=True, squeeze=False)[0]
    t = np.arange(target.shape[0])
    for i, (ax, rule) in enumerate(zip(axes, rules)):
        y = np.asarray(outputs[rule])
        for k in range(y.shape[1]):
            ax.plot(
                t, y[:, k], color=_color(rule, i + k), lw=1.5, label="output" if k == 0 else None
            )
            ax.plot(t, target[:, k], "--k", lw=1, label="target" if k == 0 else None)
        ax.set_title(rule_label(rule))
        ax.set_xlabel("time (steps)")
        ax.legend(loc="lower left", fontsize=8, frameon=False)
    axes[0].set_ylabel("y")
    return save_figure(fig, path)


def plot_alignment(alignments: Dict[str, np.ndarray], path):
    """Readout alignment cos(vec(b^T), vec(w_out)) against trial."""
    fig = Figure(figsize=(4.5, 3.2))
    ax = fig.subplots()
    for i, (rule, a) in enumerate(alignments.items()):
        a = np.asarray(a)
        ax.semilogx(
            np.arange(1, a.size + 1), a, lw=1.2, label=rule_label(rule), **rule_style(rule, i)
        )
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylim(-1, 1)
    ax.set_xlabel("trial")
    ax.set_ylabel(r"alignment of $W^{out}$ with $B^T$")
    ax.set_title("Readout alignment with feedback")
    ax.legend(fontsize=8, frameon=False)
    return save_figure(fig, path)


def plot_evaluation(y: np.ndarray, target: np.ndarray, path, title="output with learning off"):
    """One network's output against the dashed target."""
    fig = Figure(figsize=(5, 3))
    ax = fig.subplots()
    t = np.arange(target.shape[0])
    for k in range(y.shape[1]):
        ax.plot(t, y[:, k], lw=1.5, label=f"output {k}" if y.shape[1] > 1 else "output")
        ax.plot(t, target[:, k], "--k", lw=1, label="target" if k == 0 else None)
    ax.set_xlabel("time (steps)")
    ax.set_ylabel("y")
    ax.set_title(title)
    ax.legend(fontsize=8, frameon=False)
    return save_figure(fig, path)
