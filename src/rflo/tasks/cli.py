"""``rflo task``: list the built-in tasks and draw one trial of a task.

    rflo task list
    rflo task show NAME [--out FILE.png] [--seed N] [--set KEY=VALUE ...]

``--set`` passes a parameter to the task's factory (values are Python
literals: ``--set n_bits=3 --set rate=0.1 --set amplitudes=[1,0.5]``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from rflo.runconfig import parse_set
from rflo.tasks.builtin import TASKS, make_task, task_names

__all__ = ["main", "plot_trial"]


def plot_trial(task, path, seed: int = 0, title=None, xy=None) -> Path:
    """Draw one trial of ``task`` (a Task or TaskGenerator) to the PNG ``path``:
    inputs, targets with the unscored steps shaded, and (``xy``; default for
    the ``reach`` task) the target path in the plane of outputs 0 and 1.
    Returns the path."""
    from rflo.mpl_backend import use_headless_backend

    use_headless_backend()
    import matplotlib.pyplot as plt

    from rflo.files import atomic_write

    x, y, m = task.trial(0, seed) if hasattr(task, "sample") else task.trial(0)
    t = np.arange(x.shape[0])
    two_d = (task.name == "reach" if xy is None else bool(xy)) and y.shape[1] >= 2
    fig, axes = plt.subplots(
        2,
        2 if two_d else 1,
        figsize=(10 if two_d else 7, 5),
        squeeze=False,
        gridspec_kw=dict(width_ratios=[2, 1]) if two_d else None,
    )
    ax_in, ax_out = axes[0, 0], axes[1, 0]
    names_in = getattr(task, "inputs", ()) or [f"in {k}" for k in range(x.shape[1])]
    names_out = getattr(task, "outputs", ()) or [f"out {k}" for k in range(y.shape[1])]
    for k in range(x.shape[1]):
        ax_in.plot(t, x[:, k], lw=1.2, label=names_in[k])
    ax_in.set_ylabel("input")
    ax_in.set_title(title or f"{task.name}: one trial (seed {seed})")
    for k in range(y.shape[1]):
        # line styles differ too: outputs that coincide (x = y at 45 degrees) stay visible
        ax_out.plot(
            t, y[:, k], lw=1.5, ls=("-", "--", ":", "-.")[k % 4], label=f"target: {names_out[k]}"
        )
    unscored = m <= 0
    if np.any(unscored):
        ax_out.fill_between(
            t,
            0,
            1,
            where=unscored,
            color="0.85",
            step="mid",
            transform=ax_out.get_xaxis_transform(),
            label="not scored",
        )
    ax_out.set_ylabel("target output")
    ax_out.set_xlabel("step")
    for ax in (ax_in, ax_out):
        if ax.get_legend_handles_labels()[0] and len(ax.get_legend_handles_labels()[0]) <= 10:
            ax.legend(fontsize=7, loc="upper right")
    if two_d:
        gs = axes[0, 1].get_gridspec()
        axes[0, 1].remove()
        axes[1, 1].remove()
        ax2 = fig.add_subplot(gs[:, 1])
        params = dict(getattr(task, "param_dict", None) or {})
        if task.name == "reach" and "n_targets" in params:  # every target, this trial's filled
            angle = 2 * np.pi * np.arange(params["n_targets"]) / params["n_targets"] + np.deg2rad(
                params.get("rotation", 0.0)
            )
            ax2.plot(
                params["radius"] * np.cos(angle),
                params["radius"] * np.sin(angle),
                "o",
                mfc="none",
                color="0.6",
                label="targets",
            )
        ax2.plot(y[:, 0], y[:, 1], "-", color="C0", label="this trial's path")
        ax2.plot(y[-1, 0], y[-1, 1], "o", color="C0")
        ax2.legend(
            fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False
        )
        ax2.plot(0, 0, "k+")
        ax2.set_aspect("equal")
        lim = 1.2 * max(np.max(np.abs(y)), params.get("radius", 0.0), 1e-3)
        ax2.set_xlim(-lim, lim)
        ax2.set_ylim(-lim, lim)
        ax2.set_title("target path (outputs 0, 1)")
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return path


DESCRIPTION = "The built-in tasks: list them, or draw one trial of one."


def _plain_text(doc: str) -> str:
    """A docstring line without its reStructuredText markup."""
    import re

    doc = re.sub(r":[a-z]+:`~?([^`]+)`", lambda m: m.group(1).split(".")[-1], doc)
    return doc.replace("``", "")


def add_arguments(parser):
    """The verbs and options of ``rflo task`` (shared with the main command line)."""
    sub = parser.add_subparsers(dest="verb", required=True, metavar="{list,show}")
    sub.add_parser("list", help="list the built-in tasks", description="List the built-in tasks.")
    show = sub.add_parser(
        "show",
        help="draw one trial of a task to a PNG",
        description="Draw one trial of a task (inputs, targets, mask) to a PNG.",
    )
    show.add_argument("name", help=f"one of {', '.join(task_names())}")
    show.add_argument("--out", default=None, help="output PNG (default task_NAME.png)")
    show.add_argument("--seed", type=int, default=0, help="seed of the drawn trial (default 0)")
    show.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="task parameters, e.g. --set n_bits=3",
    )
    return parser


def main(argv=None) -> int:
    """Entry point of ``rflo task``; returns the exit status (2 on bad arguments)."""
    parser = add_arguments(argparse.ArgumentParser(prog="rflo task", description=DESCRIPTION))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.verb == "list":
        for name in task_names():
            doc = (TASKS[name].__doc__ or "").strip().splitlines()[0]
            print(f"{name:18s} {_plain_text(doc)}")
        return 0
    try:
        if args.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {args.seed}")
        task = make_task(args.name, **parse_set(args.set))
    except ValueError as exc:
        print(f"rflo task show: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(f"task_{task.name}.png")
    path = plot_trial(task, out, seed=args.seed)
    params = ", ".join(f"{k}={v}" for k, v in task.params if k != "n_steps")
    print(
        f"wrote {path} ({task.name}: n_in={task.n_in}, n_out={task.n_out}, T={task.n_steps}; {params})"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
