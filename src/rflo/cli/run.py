"""A training run of ``rflo train`` and ``rflo compare``, once its
:class:`rflo.session.Session` is open: each rule trained through the session
(progress, log, stop on SIGINT/SIGTERM, divergence), then the run's files
(networks, ``results.csv``, ``metadata.json``, figures) and its summary."""

from __future__ import annotations

import sys
import time

import numpy as np

from rflo.cli.common import rule_lr, seeds, settings, spec, three
from rflo.cli.plot import draw
from rflo.cli.progress import ProgressBar, RunLog, show_progress, summary
from rflo.segments import Diverged, Interrupted, StopRequest

__all__ = ["add_run_arguments", "finish", "train_rules", "setting_columns"]


def add_run_arguments(p, *, out_help, command="train"):
    """The run's settings (one option per field of :class:`rflo.spec.RunSpec`)
    and the command's own options (folder, config, output)."""
    from pathlib import Path

    from rflo.spec import cli_options

    for option, (dest, kw) in cli_options(command).items():
        p.add_argument(option, dest=dest, **kw)
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE.toml",
        help="settings from a TOML file (flags override it; every run writes its own "
        "as RUN/config.toml)",
    )
    p.add_argument("--out", type=Path, default=None, help=out_help)
    p.add_argument("--overwrite", action="store_true", help="allow writing into an existing folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary table")
    p.add_argument(
        "--progress",
        action="store_true",
        help="show the progress bar even when stderr is not a terminal",
    )
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="continue a killed run in FOLDER with its saved settings",
    )


def finish(args, kind, session, **extra_settings):
    """Train every rule of ``session`` and write the run's files; the exit
    status (0, 3 diverged, 130/143 stopped by a signal)."""
    from rflo import results, runconfig

    t0 = time.perf_counter()
    task, rules, out, run_id = session.task, session.rules, session.folder, session.run_id
    log = RunLog(out, run_id)
    with StopRequest() as stop:
        try:
            rows, seconds = train_rules(session, args, stop, log)
        except (Diverged, Interrupted) as exc:
            print(f"rflo {kind}: {exc}", file=sys.stderr)
            log.write(str(exc))
            return 3 if isinstance(exc, Diverged) else stop.status
    results.write_metadata(
        out / "metadata.json",
        dict(
            command=kind,
            run_id=run_id,
            rules=rules,
            settings=settings(args, task_record=runconfig.task_record(task), **extra_settings),
            seconds=seconds,
            summary=rows,
            total_seconds=time.perf_counter() - t0,
            versions=results.versions(),
            argv=sys.argv[1:],
        ),
    )
    summary(rows, args.quiet)
    if not args.quiet:
        print(f"results in {out}")
    return 0


def train_rules(session, args, stop, log):
    """Train each rule of the session; write networks, curves and figures."""
    import rflo
    from rflo import results

    task, net, out, run_id, rules = (
        session.task,
        session.network,
        session.folder,
        session.run_id,
        session.rules,
    )
    members_of = seeds(args)
    mode = show_progress(args)

    def progress(rule, total, done):
        bar = ProgressBar(rule, total, mode, log)
        bar.done = done
        return bar

    losses, aligns, outputs, rows, seconds, diverged = {}, {}, {}, [], {}, {}
    for name in rules:
        prog = session.train_rule(name, stop, progress)
        seconds[name] = prog.seconds
        losses[name], aligns[name] = prog.loss, prog.alignment
        if members_of is None:
            log.write(f"{name}: done, {prog.done} trials, final loss {float(prog.loss[-1]):.4g}")
            session.save_networks(name, prog)
            outputs[name] = rflo.evaluate(prog.network, task).y
            rows.append(
                dict(
                    rule=name,
                    lr_rec=three(rule_lr(args, name))[1],
                    final_loss=float(prog.loss[-1]),
                    best_loss=float(prog.loss.min()),
                    final_alignment=float(prog.alignment[-1]),
                    seconds=float(prog.seconds),
                )
            )
            continue
        diverged[name] = np.asarray(prog.frozen_at) + 1
        members = session.save_networks(name, prog)
        outputs[name] = rflo.evaluate(members[0], task).y
        final = prog.loss[:, -1]
        bad = [(s, int(d)) for s, d in zip(members_of, diverged[name]) if d > 0]
        log.write(
            f"{name}: done, {prog.done} trials, {len(members_of)} networks, median final "
            f"loss {float(np.nanmedian(final)):.4g}"
            + (f"; diverged and frozen (seed, trial): {bad}" if bad else "")
        )
        rows.append(
            dict(
                rule=name,
                lr_rec=three(rule_lr(args, name))[1],
                final_loss=float(np.nanmedian(final)),
                best_loss=float(np.nanmedian(np.nanmin(prog.loss, axis=1))),
                final_alignment=float(np.nanmedian(prog.alignment[:, -1])),
                seconds=float(prog.seconds),
                networks=len(members_of),
                diverged=[list(b) for b in bad],
            )
        )
    results.write_curves(
        out / "results.csv",
        {name: setting_columns(args, task, name, net) for name in rules},
        losses,
        aligns,
        run_id=run_id,
        diverged_at=diverged if members_of is not None else None,
    )
    draw(out, losses, aligns, outputs, task, settings(args))
    return rows, seconds


def setting_columns(args, task, rule, net):
    """A rule's settings as the tidy table's columns (those of a sweep's table:
    the spec's table fields, then those of its optional fields that differ
    from their defaults, then rates by name); a list, one per network, for an
    ensemble."""
    from rflo import runconfig
    from rflo.cli.common import default
    from rflo.spec import grid_keys, table_keys

    values = spec(args).as_dict()
    params = runconfig.task_record(task)["params"]
    lr = rule_lr(args, rule)
    rates = dict(zip(("lr_in", "lr_rec", "lr_out"), three(lr)))
    mine = {"rule": rule, "task": task.name, "cell": net.cell.name, "units": net.n_rec}
    cols = {}
    for key in table_keys():
        cols["loss_function" if key == "loss" else key] = (
            rates[key] if key in rates else mine.get(key, values.get(key))
        )
        if key == "task":  # its parameters follow it
            cols.update({f"set.{k}": v for k, v in params.items() if k != "n_steps"})
    cols.update(
        {
            k: values[k]
            for k in grid_keys()
            if k not in table_keys() and k != "lr" and values[k] != default(k)
        }
    )  # columns only where set, as in sweeps
    if isinstance(lr, dict):
        cols.update(
            {f"lr.{k}": float(v) for k, v in lr.items() if k not in ("w_in", "w_rec", "w_out")}
        )
    members_of = seeds(args)
    return cols if members_of is None else [{**cols, "seed": s} for s in members_of]
