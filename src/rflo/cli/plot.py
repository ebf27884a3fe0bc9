"""``rflo plot RESULTS``: redraw the figures of a results folder; and the
figures themselves, which ``rflo train`` and ``rflo compare`` draw too."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rflo.cli.common import (
    UserError,
    network_files,
    random_feedback_rules,
    task_of,
    three,
)

__all__ = ["DESCRIPTION", "add_arguments", "run", "draw", "title"]

DESCRIPTION = "Redraw the figures of a folder written by 'rflo train' or 'rflo compare'."


def add_arguments(p):
    p.add_argument("results", type=Path, help="a folder written by 'rflo compare' or 'rflo train'")


def title(task, settings):
    """What a run's figures say it was: task, mode, rates (and optimiser)."""
    from rflo.style import mode_title

    if settings.get("lr") is None:  # compare's rates per rule
        rates = ", ".join(
            f"{r} {three(v)[1]:g}" for r, v in (settings.get("rule_lr") or {}).items()
        )
        text = (
            f"{task.name}, {'online' if settings.get('online') else 'offline'}, "
            f"lr_rec = lr_out per rule (tuned): {rates}"
        )
    else:
        text = f"{task.name}, {mode_title(settings.get('online', False), settings['lr'])}"
    if settings.get("optimizer"):
        from rflo.spec_flags import rate_text

        text += f" ({settings['optimizer']} {rate_text(settings.get('optimizer_rate'))})"
    return text


def draw(out, losses, aligns, outputs, task, settings):
    """A run's figures: loss.png, outputs.png (and alignment.png for rules
    that send errors through the random feedback)."""
    from rflo import plots

    plots.plot_losses(losses, out / "loss.png", title_suffix=title(task, settings))
    plots.plot_outputs(outputs, task.trial(0)[1], out / "outputs.png")
    rf = random_feedback_rules(list(losses))
    if rf:  # an ensemble's: the median over its networks
        plots.plot_alignment(
            {
                r: np.nanmedian(aligns[r], axis=0) if np.ndim(aligns[r]) == 2 else aligns[r]
                for r in rf
            },
            out / "alignment.png",
        )


def run(args):
    import rflo
    from rflo import results

    folder = args.results
    if not folder.is_dir():
        raise UserError(f"{folder} is not a results folder")
    for needed in ("metadata.json", "results.csv"):
        if not (folder / needed).is_file():
            raise UserError(f"{folder} has no {needed}; is it a folder written by 'rflo compare'?")
    try:
        meta = results.read_metadata(folder / "metadata.json")
        losses, aligns = results.read_curves(folder / "results.csv")
        _check_one_run(folder, meta, list(losses))
        s = meta["settings"]
        task = (
            task_of({"task": s["task_record"]})
            if "task_record" in s
            else rflo.periodic_task(period=s["period"])
        )  # folders of rflo 0.1
        if task is None:
            raise ValueError(f"cannot rebuild its task {s['task_record']}")
        first = network_files(s)[0]
        outputs = {
            r: rflo.evaluate(rflo.load_network(folder / f"{r}{first}.npz"), task).y for r in losses
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{folder}: cannot redraw ({exc})") from None
    draw(folder, losses, aligns, outputs, task, s)
    print(f"figures redrawn in {folder}")
    return 0


def _check_one_run(folder, meta, rules):
    """Every file ``plot`` reads must come from the same run."""
    from rflo import results
    from rflo.io import network_run_id

    ids = {
        "metadata.json": meta.get("run_id"),
        "results.csv": results.read_run_id(folder / "results.csv"),
    }
    ids.update(
        {
            f"{r}{tail}.npz": network_run_id(folder / f"{r}{tail}.npz")
            for r in rules
            for tail in network_files(meta.get("settings", {}))
        }
    )
    if len(set(ids.values())) != 1:
        raise UserError(
            f"{folder} mixes files of different runs "
            f"({', '.join(f'{k}: {v}' for k, v in ids.items())}); run it again "
            "with --overwrite"
        )
