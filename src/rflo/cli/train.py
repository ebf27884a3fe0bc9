"""``rflo train``: one network, one rule, one task (default: RFLO on the
paper's periodic task), optionally from (``--init``) and to (``--save``) a
saved network."""

from __future__ import annotations

from pathlib import Path

from rflo.cli.common import UserError
from rflo.cli.folders import (
    apply_config,
    check_init,
    check_memory,
    check_rules,
    check_seeds,
    load_for_task,
    open_session,
    plan,
)
from rflo.cli.run import add_run_arguments, finish

__all__ = ["DESCRIPTION", "add_arguments", "run"]

DESCRIPTION = (
    "Train one network with one learning rule on a task (default: RFLO on the "
    "paper's periodic task)."
)


def add_arguments(p):
    p.add_argument(
        "--save",
        type=Path,
        default=None,
        metavar="FILE.npz",
        help="also write the trained network here",
    )
    add_run_arguments(p, out_help="results folder (default: a new folder under ./runs)")


def run(args):
    import rflo

    apply_config(args)
    check_seeds(args)
    check_init(args)
    check_rules([args.rule], args.online, "--rule")
    planned = plan(args)
    if args.save is not None and args.save.exists() and not args.overwrite:
        raise UserError(f"--save {args.save} exists; pass --overwrite to replace it")
    if args.resume is None:
        cell = planned.cell
        if args.init is not None:  # check it before creating the folder
            init = load_for_task(args.init, planned.task, args.dtype)
            args.units, cell = init.n_rec, init.cell
        check_memory(args, [args.rule], planned.task, cell)
    (rule,) = check_rules([args.rule], args.online, "--rule")
    session = open_session(args, "train", [rule])  # on --resume, args hold the saved settings
    with session:
        (rule,) = check_rules(session.rules, args.online, "--rule")
        net = session.network
        status = finish(
            args,
            "train",
            session,
            init=None if args.init is None else str(args.init),
            units=int(net.n_rec),
        )
    if status == 0 and args.save is not None:
        from rflo.io import network_info

        trained = session.folder / f"{rule}.npz"
        rflo.save_network(args.save, rflo.load_network(trained), info=network_info(trained))
    return status
