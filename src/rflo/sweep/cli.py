"""``rflo sweep``: many networks over a grid of settings, resumable, into one table.

rflo sweep plan SPEC.toml                       print the chunks
rflo sweep run SPEC.toml --out DIR [--backend local|slurm|submitit_local] [--devices N]
rflo sweep run DIR                              resume: run only the missing chunks
rflo sweep status DIR
rflo sweep collect DIR -o table.parquet         (or .csv)
rflo sweep plot DIR --x COL [--y final_loss] [--hue rule] [-o fig.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "add_arguments", "DESCRIPTION"]

DESCRIPTION = (
    "Train many networks over a grid of settings (rules, learning rates, seeds, "
    "tasks, sizes) on every core, a GPU or a Slurm cluster; resumable chunk by "
    "chunk; results in one tidy table (needs the sweep extra: "
    "pip install 'rflo[sweep]')."
)


def devices_arg(text):
    """argparse type of ``--devices``: ``auto`` or a positive integer."""
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a positive integer, got {text!r}")
    return n


def add_arguments(parser):
    """The verbs and options of ``rflo sweep`` (shared with the main command line)."""
    sub = parser.add_subparsers(
        dest="verb", required=True, metavar="{plan,run,status,collect,plot}"
    )
    p = sub.add_parser(
        "plan",
        help="print the chunks a spec makes",
        description="Print the grid's size and the chunks (compiled calls) of "
        "a sweep spec, without training.",
    )
    p.add_argument("spec", type=Path, help="a sweep spec (.toml) or a sweep folder")
    p = sub.add_parser(
        "run",
        help="run a sweep, or resume one",
        description="Run the chunks of a sweep that are not finished. "
        "Interrupted or failed chunks run again next time.",
    )
    p.add_argument("spec", type=Path, help="a sweep spec (.toml), or a sweep folder to resume")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the sweep's folder (needed with a spec; one folder per sweep)",
    )
    p.add_argument(
        "--backend",
        choices=("local", "slurm", "submitit_local"),
        default=None,
        help="where chunks run (default: the spec's, else local)",
    )
    p.add_argument(
        "--devices",
        type=devices_arg,
        default=None,
        metavar="N|auto",
        help="JAX devices to split each chunk over (default: the spec's, else auto: "
        "every core of a CPU, every GPU)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace another sweep's results in --out"
    )
    p.add_argument(
        "--no-wait", action="store_true", help="slurm backends: submit the jobs and return"
    )
    p = sub.add_parser(
        "status",
        help="how many chunks are done, failed or missing",
        description="Count a sweep folder's finished, failed and missing chunks.",
    )
    p.add_argument("folder", type=Path)
    p = sub.add_parser(
        "collect",
        help="gather the finished chunks into one table",
        description="Write the table of every finished chunk (parquet or CSV).",
    )
    p.add_argument("folder", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, metavar="TABLE.parquet|.csv")
    p = sub.add_parser(
        "plot",
        help="median and 25-75 %% of a column against another",
        description="Draw the median of --y against --x with 25-75 %% bands "
        "over networks, one line per --hue value.",
    )
    p.add_argument("folder", type=Path)
    p.add_argument("--x", required=True, help="a column, e.g. lr_rec, units, set.period, trial")
    p.add_argument("--y", default="final_loss", help="a column (default final_loss)")
    p.add_argument("--hue", default="rule", help="a column (default rule; 'none' for one line)")
    p.add_argument(
        "-o", "--output", type=Path, default=None, help="the figure (default DIR/plot_Y_by_X.png)"
    )
    return parser


def _spec_of(path: Path):
    from rflo.sweep import Sweep

    if path.is_dir():
        return Sweep.from_folder(path)
    return Sweep.from_toml(path)


def _plan(args):
    sweep = _spec_of(args.spec)
    chunks = sweep.plan(check=True)
    spec = sweep.spec
    print(f"{spec!r}")
    print(
        f"{len(spec.points())} networks x {spec.trials} trials in {len(chunks)} chunks "
        f"(at most {spec.max_networks} networks each); a row per {spec.record_every} trials"
    )
    from rflo.sweep.spec import is_lane

    swept = [k for k in spec.columns() if not is_lane(k) and len(_values(spec, k)) > 1]
    for c in chunks:
        pad = f" (+{c.lanes - len(c.points)} padding)" if c.lanes > len(c.points) else ""
        print(
            f"  {c.id}  {len(c.points):4d} networks{pad}  "
            + " ".join(f"{k}={c.points[0][k]}" for k in swept)
        )
    return 0


def _values(spec, column):
    return spec.task_grid[column[4:]] if column.startswith("set.") else spec.grid[column]


def _run(args):
    from rflo.sweep import Sweep
    from rflo.sweep.backends import configure_host_devices

    if args.spec.is_dir():
        if args.out is not None and args.out.resolve() != args.spec.resolve():
            raise ValueError("to resume give the folder alone: rflo sweep run DIR")
        out, sweep = args.spec, Sweep.from_folder(args.spec)
    else:
        if args.out is None:
            raise ValueError("give the sweep's folder: rflo sweep run SPEC.toml --out DIR")
        out, sweep = args.out, Sweep.from_toml(args.spec)
    backend = args.backend or sweep.spec.backend["name"]
    devices = args.devices or sweep.spec.backend["devices"]
    if backend == "local" and not configure_host_devices(devices):  # pragma: no cover
        print("note: JAX had started; using the devices it has", file=sys.stderr)
    result = sweep.run(
        out,
        backend=backend,
        devices=devices,
        overwrite=args.overwrite,
        wait=not args.no_wait,
        compile_cache=True,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    if args.no_wait and backend != "local":
        print(
            f"submitted; rflo sweep status {out} tells progress, rflo sweep run {out} "
            "collects and resubmits what is missing"
        )
        return 0
    print(
        f"{out}: {result.num_rows} rows; rflo sweep collect {out} -o table.parquet writes the table"
    )
    return 0


def _status(args):
    from rflo.sweep import status

    st = status(args.folder)
    print(
        f"{args.folder}: {st['done']} of {st['total']} chunks done, {st['failed']} failed, "
        f"{st['missing']} missing, {st['damaged']} damaged ({st['networks']} networks)"
    )
    for row in st["chunks"]:
        if row["state"] == "failed":
            last = (args.folder / "failed" / f"{row['id']}.txt").read_text().strip()
            print(f"  failed {row['id']}: {last.splitlines()[-1] if last else '?'}")
        elif row["state"] == "damaged":
            print(f"  damaged {row['id']}: {row['why']}")
    return 0 if st["failed"] == 0 and st["damaged"] == 0 else 1


def _collect(args):
    import warnings

    from rflo.sweep import collect

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = collect(args.folder, args.output)
    for w in caught:
        print(f"note: {w.message}", file=sys.stderr)
    print(f"wrote {args.output} ({table.num_rows} rows, {table.num_columns} columns)")
    return 0


def _plot(args):
    import warnings

    from rflo.sweep import collect, plot

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = collect(args.folder)
    hue = None if args.hue == "none" else args.hue
    out = args.output or args.folder / f"plot_{args.y}_by_{args.x}.png"
    plot(table, args.x, args.y, hue, path=out)
    print(f"wrote {out}")
    return 0


VERBS = {"plan": _plan, "run": _run, "status": _status, "collect": _collect, "plot": _plot}


def main(argv=None) -> int:
    """Entry point of ``rflo sweep``; returns the exit status (2 on bad input)."""
    from rflo.files import FolderBusy

    parser = add_arguments(argparse.ArgumentParser(prog="rflo sweep", description=DESCRIPTION))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return VERBS[args.verb](args)
    except (ValueError, FolderBusy) as exc:
        print(f"rflo sweep {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # chunks failed: the others are written
        print(f"rflo sweep {args.verb}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"interrupted; finished chunks are kept: rflo sweep run {getattr(args, 'out', None) or getattr(args, 'spec', '')} "
            "resumes",
            file=sys.stderr,
        )
        return 130
