"""``rflo eval NET.npz``: run a saved network with learning off, print its
loss and draw its output against the target."""

from __future__ import annotations

from pathlib import Path

from rflo.cli.common import UserError, task_of, task_params

__all__ = ["DESCRIPTION", "EVAL_PERIOD", "add_arguments", "run"]

DESCRIPTION = (
    "Run a saved network on its task with learning off; print the loss and draw "
    "its output against the target."
)

#: the periodic task's default period (its steps per trial), for ``rflo eval``
EVAL_PERIOD = 100


def _positive_int(text):
    from rflo.spec_flags import converters

    return converters()["positive_int"](text)


def add_arguments(p):
    p.add_argument("network", type=Path, help="a network .npz file")
    p.add_argument(
        "--period",
        type=_positive_int,
        default=EVAL_PERIOD,
        help="period of the target (default: the one the network was trained on, else 100)",
    )
    p.add_argument(
        "--png",
        type=Path,
        default=None,
        help="figure to write (default: NETWORK.eval.png beside the network)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing figure")


def run(args):
    import rflo
    from rflo import plots
    from rflo.io import network_info

    try:
        net = rflo.load_network(args.network)
        recorded = task_of(network_info(args.network))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if recorded is not None and "period" not in getattr(args, "given", ()):
        task = recorded
        params = ", ".join(f"{k} {v}" for k, v in task_params(task).items())
        print(
            f"task: the one the network was trained on ({task.name}: {params}; "
            "--period overrides it with the periodic task)"
        )
    else:
        task = rflo.periodic_task(period=args.period, n_in=net.n_in, n_out=net.n_out)
    png = args.png or args.network.with_name(args.network.stem + ".eval.png")
    if png.exists() and not args.overwrite:
        raise UserError(f"{png} exists; pass --overwrite to replace it")
    ev = rflo.evaluate(net, task)
    plots.plot_evaluation(ev.y, ev.target, png, title=f"{args.network.name}: loss {ev.loss:.3g}")
    print(f"loss {ev.loss:.6g}")
    print(f"figure {png}")
    return 0
