"""Figures (matplotlib's object API with the Agg canvas: no screen needed).

Every function takes numpy data and a path, writes one PNG atomically and
returns the path.
"""

from __future__ import annotations

import re
from typing import Dict, Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation

from rflo.files import atomic_write
from rflo.style import rule_label, rule_style

__all__ = [
    "plot_losses",
    "plot_outputs",
    "plot_alignment",
    "plot_evaluation",
    "save_figure",
    "log_axis",
    "PlainLogFormatter",
    "plain_math",
]

#: digits and minus as superscripts (⁰¹²³⁴⁵⁶⁷⁸⁹⁻), all in matplotlib's DejaVu Sans
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_MATH = re.compile(r"^\$\\mathdefault\{(.*)\}\$$")
_POWER = re.compile(r"\^\{(-?\d+)\}")


def plain_math(label: str) -> str:
    """A log axis' tick label (``$\\mathdefault{2\\times10^{-3}}$``) as plain
    text (``2×10⁻³``); any other label unchanged."""
    found = _MATH.match(label)
    if found is None:
        return label
    body = _POWER.sub(lambda p: p.group(1).translate(_SUPERSCRIPT), found.group(1))
    body = body.replace(r"\times", "\u00d7")  # ×
    return label if "\\" in body or "{" in body else body


class PlainLogFormatter(LogFormatterSciNotation):
    """matplotlib's log-axis labels (``10⁻³``, ``2×10⁻¹``) written in plain
    text with Unicode superscripts instead of mathtext: a figure without
    mathtext does not build its parser, which costs a command about 0.1 s."""

    def __call__(self, x, pos=None):
        return plain_math(super().__call__(x, pos))


def log_axis(ax, which: str = "x"):
    """Put ``ax``'s ``which`` axis (``"x"`` or ``"y"``) on a log scale labelled
    by :class:`PlainLogFormatter` (major and minor ticks, as matplotlib's log
    scale labels them)."""
    axis = {"x": ax.xaxis, "y": ax.yaxis}[which]
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_formatter(PlainLogFormatter(10))
    axis.set_minor_formatter(PlainLogFormatter(10, labelOnlyBase=False))


def _color(rule, i):
    return rule_style(rule, i)["color"]


def save_figure(fig: Figure, path, dpi=110, margins=None):
    """Write ``fig`` to ``path`` as PNG, atomically.  ``margins``: the space
    around the axes in inches (``left``, ``right``, ``bottom``, ``top``, and
    ``wspace`` between axes, a fraction of their width), for a figure whose
    labels are known to fit them; otherwise ``tight_layout`` works them out,
    which draws the figure once more (0.1 s of the 0.2 s a command's figure
    takes)."""
    if margins is None:
        fig.tight_layout()
    else:
        w, h = fig.get_size_inches()
        fig.subplots_adjust(
            left=margins["left"] / w,
            right=1 - margins["right"] / w,
            bottom=margins["bottom"] / h,
            top=1 - margins["top"] / h,
            wspace=margins.get("wspace"),
        )
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    return path


def _margins(title_lines=1, left=0.7, **more):
    """Margins (inches) of the commands' one-row figures: tick labels and an
    axis label at the ``left`` (0.7: labels of four characters such as
    "10⁻¹"; 0.9: of seven, such as "−0.0025") and below, a title of
    ``title_lines`` lines above."""
    return {"left": left, "right": 0.15, "bottom": 0.5, "top": 0.12 + 0.2 * title_lines, **more}


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
    log_axis(ax, "x")
    if any(np.any(np.asarray(v, float) > 0) for v in losses.values()):
        log_axis(ax, "y")
    ax.set_xlabel("trial")
    ax.set_ylabel("loss")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("Learning curves" + (f"\n{title_suffix}" if title_suffix else ""), fontsize=10)
    return save_figure(fig, path, margins=_margins(2 if title_suffix else 1))


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
    return save_figure(fig, path, margins=_margins(left=0.9, wspace=0.08))


def plot_alignment(alignments: Dict[str, np.ndarray], path):
    """Readout alignment cos(vec(b^T), vec(w_out)) against trial."""
    fig = Figure(figsize=(4.5, 3.2))
    ax = fig.subplots()
    for i, (rule, a) in enumerate(alignments.items()):
        a = np.asarray(a)
        ax.plot(np.arange(1, a.size + 1), a, lw=1.2, label=rule_label(rule), **rule_style(rule, i))
    log_axis(ax, "x")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylim(-1, 1)
    ax.set_xlabel("trial")
    ax.set_ylabel("alignment of Wᵒᵘᵗ with Bᵀ")  # Unicode, not mathtext (see PlainLogFormatter)
    ax.set_title("Readout alignment with feedback")
    ax.legend(fontsize=8, frameon=False)
    return save_figure(fig, path, margins=_margins(left=0.9))


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
    return save_figure(fig, path, margins=_margins(left=0.9))
