"""``rflo gradients``: the table, CSV and figure of :mod:`rflo.gradients`
(how well each rule's update points along the exact gradient)."""

from __future__ import annotations

import argparse
import csv
import math
import sys
from typing import Optional, Sequence

import numpy as np

from rflo._checks import check_int
from rflo.files import atomic_write
from rflo.gradients import (
    DEFAULT_RULES,
    SUMMARY,
    gradient_quality,
    stepwise_quality,
    training_quality,
)
from rflo.rules import get_rule
from rflo.style import rule_label, rule_style

__all__ = ["format_table", "plot_quality", "main"]


def _fmt(v) -> str:
    return "    -" if not np.isfinite(v) else f"{v:6.3f}"


def format_table(quality, stepwise=None, checkpoints=None, training=None) -> str:
    """A plain-text table of :func:`gradient_quality` results (plus the mean
    per-step cosine and the cosine at the last checkpoint, when given)."""
    head = ["rule", "cos w_in", "cos w_rec", "cos rec+in", "|D|/|G|"]
    if stepwise is not None:
        head.append("step cos")
    if training is not None:
        head.append(f"cos @{int(checkpoints[-1])}")
    rows = []
    for name, q in quality.items():
        row = [
            name,
            _fmt(q["cos"].get("w_in", math.nan)),
            _fmt(q["cos"].get("w_rec", math.nan)),
            _fmt(q["cos"][SUMMARY]),
            _fmt(q["ratio"][SUMMARY]),
        ]
        if stepwise is not None:
            c = stepwise.get(name, {}).get("cos")
            row.append(_fmt(np.nanmean(c)) if c is not None and np.any(np.isfinite(c)) else "    -")
        if training is not None:
            row.append(_fmt(training[name]["cos"][-1]))
        rows.append(row)
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]

    def line(r):
        return "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))
        )

    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def plot_quality(path, stepwise, checkpoints, training, title: str = ""):
    """Figure (written atomically to ``path``): per-step cosine along a trial,
    and cosine and norm ratio over training, one line per rule."""
    from rflo.mpl_backend import use_headless_backend

    use_headless_backend()
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    names = list(training)
    styles = {n: rule_style(n, i) for i, n in enumerate(names)}
    ax = axes[0]
    for name, v in stepwise.items():
        ax.plot(
            np.arange(1, len(v["cos"]) + 1),
            v["cos"],
            lw=1.2,
            label=rule_label(name),
            **styles[name],
        )
    ax.set(
        xlabel="step t",
        ylabel="cosine with exact -dL_t/dW",
        title="per-step contribution (before training)",
        ylim=(-1.05, 1.05),
    )
    for name in names:
        axes[1].plot(
            checkpoints,
            training[name]["cos"],
            marker="o",
            ms=3,
            label=rule_label(name),
            **styles[name],
        )
        axes[2].plot(
            checkpoints,
            training[name]["ratio"],
            marker="o",
            ms=3,
            label=rule_label(name),
            **styles[name],
        )
    axes[1].set(
        xlabel="trials trained",
        ylabel="cosine with BPTT (rec+in)",
        title="trial update over training",
        ylim=(-1.05, 1.05),
    )
    axes[2].set(
        xlabel="trials trained", ylabel="|D| / |G| (rec+in)", title="norm ratio over training"
    )
    axes[2].set_yscale("log")
    axes[2].legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()

    def write(tmp):
        fig.savefig(
            tmp, dpi=110, format=str(path).rsplit(".", 1)[-1] if "." in str(path) else "png"
        )

    atomic_write(path, write)
    plt.close(fig)


def _write_csv(path, quality, checkpoints, training):
    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["trials", "rule", "cos_rec_in", "norm_ratio_rec_in"])
            for name, v in training.items():
                for c, cos, ratio in zip(checkpoints, v["cos"], v["ratio"]):
                    w.writerow([int(c), name, f"{cos:.6g}", f"{ratio:.6g}"])

    atomic_write(path, write)


DESCRIPTION = (
    "How well each rule's update points along the exact gradient (BPTT): cosine "
    "and norm ratio along a trial and over training, on the periodic task."
)


def add_arguments(p):
    """The options of ``rflo gradients`` (shared with the main command line)."""
    p.add_argument(
        "--rules",
        nargs="+",
        default=list(DEFAULT_RULES),
        metavar="RULE",
        help=f"rules to measure (default: {' '.join(DEFAULT_RULES)})",
    )
    p.add_argument(
        "--train-rule", default="bptt", help="rule that trains the network (default: bptt)"
    )
    p.add_argument("--network", help="start from this .npz network instead of a fresh one")
    p.add_argument(
        "--units",
        "--n-rec",
        dest="n_rec",
        type=int,
        default=16,
        help="recurrent units n_rec of a fresh network (default 16)",
    )
    p.add_argument("--period", type=float, default=50.0, help="period of the periodic task (steps)")
    p.add_argument("--trials", type=int, default=300, help="training trials")
    p.add_argument("--every", type=int, default=50, help="trials between measurements")
    p.add_argument(
        "--lr",
        type=float,
        nargs=3,
        default=(0.0, 0.1, 0.1),
        metavar=("IN", "REC", "OUT"),
        help="SGD learning rates",
    )
    p.add_argument("--online", action="store_true", help="train online")
    p.add_argument("--derivative", default="exact", choices=("exact", "seed"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", help="write the figure here (.png/.pdf/.svg)")
    p.add_argument("--csv", help="write the over-training table here (CSV)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``rflo gradients``: print the table, optionally write figure and CSV."""
    parser = add_arguments(argparse.ArgumentParser(prog="rflo gradients", description=DESCRIPTION))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a bad argument (2)
        return int(exc.code or 0)
    import rflo

    try:
        rules = [r.strip() for item in args.rules for r in item.split(",") if r.strip()]
        for r in rules + [args.train_rule]:
            get_rule(r)
        for name in ("n_rec", "trials", "every"):
            check_int(name.replace("_", "-"), getattr(args, name))
        if args.period <= 1:
            raise ValueError(f"--period must be > 1 step, got {args.period}")
        if args.network:
            net = rflo.load_network(args.network, dtype="float64")
        else:
            net = rflo.init_network(1, args.n_rec, 1, seed=args.seed, dtype="float64")
        task = rflo.periodic_task(period=args.period, n_in=net.n_in, n_out=net.n_out)
        if args.online and not get_rule(args.train_rule).online:
            raise ValueError(f"--train-rule {args.train_rule} cannot learn online; drop --online")
    except ValueError as exc:
        print(f"rflo gradients: error: {exc}", file=sys.stderr)
        return 2

    quality = gradient_quality(net, task, rules, seed=args.seed, derivative=args.derivative)
    stepwise = stepwise_quality(net, task, rules, seed=args.seed, derivative=args.derivative)
    checkpoints, training, _, losses = training_quality(
        net,
        task,
        rules,
        train_rule=args.train_rule,
        trials=args.trials,
        every=args.every,
        lr=tuple(args.lr),
        online=args.online,
        seed=args.seed,
        derivative=args.derivative,
    )
    print(
        f"gradient quality against BPTT: n_rec={net.n_rec}, periodic task (period {args.period:g}), "
        f"trained with {args.train_rule}; loss {losses[0]:.4g} -> {losses[-1]:.4g}"
    )
    print(format_table(quality, stepwise, checkpoints, training))
    if args.csv:
        _write_csv(args.csv, quality, checkpoints, training)
        print(f"wrote {args.csv}")
    if args.figure:
        plot_quality(
            args.figure,
            stepwise,
            checkpoints,
            training,
            title=f"gradient quality, n_rec={net.n_rec}, trained with {args.train_rule}",
        )
        print(f"wrote {args.figure}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
