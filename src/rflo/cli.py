"""The ``rflo`` command line.

    rflo compare              the seed notebook's experiment (BPTT vs RFLO on the periodic task)
    rflo train --rule NAME    one rule on one task, optionally from/to a saved network
    rflo eval NET.npz         run a saved network with learning off and plot it
    rflo plot RESULTS         redraw the figures of a results folder

User errors (bad arguments, unreadable files) print one line and exit with
status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

__all__ = ["main"]

SEED_DEFAULTS = dict(trials=10_000, units=50, tau=10.0, period=100, lr=(0.0, 0.03, 0.03))

#: subcommands provided by other modules, each with ``main(argv) -> int``
EXTERNAL = {
    "figure2": ("rflo.paper.figure2", "reproduce Murray (2019) Figure 2 and its Dale supplement"),
    "gradients": ("rflo.gradients", "gradient quality of each rule against the exact gradient"),
    "task": ("rflo.tasks.cli", "show the built-in tasks"),
}


class UserError(Exception):
    """A problem with the command's input; reported without a traceback."""


# --------------------------------------------------------------------------
# argument parsing


def _checked(convert, ok, need):
    """An argparse type: ``convert`` the text, then require ``ok(value)``."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {need}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {need}, got {text}")
        return value

    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
_nonneg_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _checked(float, lambda v: np.isfinite(v) and v > 0, "a finite number > 0")
_rate = _checked(float, lambda v: np.isfinite(v) and v >= 0,
                 "a learning rate (learning rates must be finite and >= 0)")


def _add_common(p, *, out_help):
    d = SEED_DEFAULTS
    p.add_argument("--trials", type=_positive_int, default=d["trials"],
                   help=f"number of training trials (default {d['trials']})")
    p.add_argument("--units", type=_positive_int, default=d["units"],
                   help=f"recurrent units n_rec (default {d['units']})")
    p.add_argument("--tau", type=_positive_float, default=d["tau"],
                   help=f"membrane time constant in steps (default {d['tau']:g})")
    p.add_argument("--period", type=_positive_int, default=d["period"],
                   help=f"period of the target = steps per trial (default {d['period']})")
    p.add_argument("--lr", type=_rate, nargs=3, metavar=("IN", "REC", "OUT"), default=list(d["lr"]),
                   help="learning rates of w_in, w_rec, w_out (default 0 0.03 0.03)")
    p.add_argument("--online", action="store_true", help="update the weights at every step")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default 0)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point precision (default float32)")
    p.add_argument("--out", type=Path, default=None, help=out_help)
    p.add_argument("--overwrite", action="store_true", help="allow writing into an existing folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary table")
    p.add_argument("--progress", action="store_true",
                   help="show the progress bar even when stderr is not a terminal")
    p.add_argument("--checkpoint-every", type=_nonneg_int, default=0, metavar="N",
                   help="write a checkpoint every N trials (default: every 30 s)")
    p.add_argument("--resume", type=Path, default=None, metavar="FOLDER",
                   help="continue a killed run in FOLDER with its saved settings")


def build_parser():
    from rflo.rules import rule_names

    parser = argparse.ArgumentParser(
        prog="rflo",
        description="Train recurrent networks with local online learning rules "
                    "(RFLO, Murray 2019, eLife 8:e43299) and the exact methods (BPTT, RTRL).",
    )
    parser.add_argument("--version", action="version", version=f"rflo {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("compare", help="the seed's experiment: several rules on the periodic task",
                       description="Train one network per rule (all from the same initial "
                                   "network) on the periodic task and compare them.")
    p.add_argument("--rules", nargs="+", default=["bptt", "rflo"], metavar="RULE",
                   help=f"rules to compare (default bptt rflo; any of {', '.join(rule_names())})")
    _add_common(p, out_help="results folder (default: a new folder under ./runs)")

    p = sub.add_parser("train", help="train one rule on the periodic task",
                       description="Train one network with one rule on the periodic task.")
    p.add_argument("--rule", default="rflo", help=f"learning rule (default rflo; any of {', '.join(rule_names())})")
    p.add_argument("--init", type=Path, default=None, metavar="FILE.npz",
                   help="start from a saved network instead of a random one")
    p.add_argument("--save", type=Path, default=None, metavar="FILE.npz",
                   help="also write the trained network here")
    _add_common(p, out_help="results folder (default: a new folder under ./runs)")

    p = sub.add_parser("eval", help="run a saved network with learning off and plot it")
    p.add_argument("network", type=Path, help="a network .npz file")
    p.add_argument("--period", type=_positive_int, default=SEED_DEFAULTS["period"],
                   help="period of the target (default 100)")
    p.add_argument("--png", type=Path, default=None,
                   help="figure to write (default: NETWORK.eval.png beside the network)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing figure")

    p = sub.add_parser("plot", help="redraw the figures of a results folder")
    p.add_argument("results", type=Path, help="a folder written by 'rflo compare' or 'rflo train'")

    for name, (_, helptext) in EXTERNAL.items():
        sub.add_parser(name, help=helptext, add_help=False)
    return parser


def _version():
    from rflo import __version__

    return __version__


# --------------------------------------------------------------------------
# helpers


def _prepare_out(out, overwrite, kind):
    if out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{stamp}-{kind}"
        i = 1
        while out.exists():
            i += 1
            out = Path("runs") / f"{stamp}-{kind}-{i}"
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"output folder {out} already exists and is not empty; "
                        "choose another --out or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _show_progress(args):
    if args.quiet:
        return False
    return args.progress or sys.stderr.isatty()


class ProgressBar:
    """A tqdm bar on stderr fed by the trainer's per-chunk callback."""

    def __init__(self, rule, total, enabled):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            # delay: only runs longer than a second get a bar
            self.bar = tqdm(total=total, desc=f"{rule:>8}", unit="trial", file=sys.stderr,
                            delay=0.0 if os.environ.get("RFLO_PROGRESS_NO_DELAY") else 1.0,
                            dynamic_ncols=True, leave=True)
        self.done = 0

    def __call__(self, done, total, loss):
        if self.bar is not None:
            self.bar.update(done - self.done)
            self.bar.set_postfix_str(f"loss {loss:.3g}", refresh=False)
        self.done = done

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _summary(rows, quiet):
    if quiet:
        return
    head = f"{'rule':<16} {'final loss':>11} {'best loss':>11} {'alignment':>10} {'seconds':>8}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['rule']:<16} {r['final_loss']:>11.4g} {r['best_loss']:>11.4g} "
              f"{r['final_alignment']:>10.3f} {r['seconds']:>8.2f}")


def _settings(args, **extra):
    keys = ("trials", "units", "tau", "period", "lr", "online", "seed", "dtype", "checkpoint_every")
    s = {k: getattr(args, k) for k in keys if hasattr(args, k)}
    s["lr"] = list(s.get("lr", []))
    s.update(extra)
    return s


def _segments(trials):
    """Trials per compiled segment: about 1 % of the run (fixed by ``trials`` alone,
    so that a resumed run repeats exactly the computation of an uninterrupted one)."""
    return max(1, -(-trials // 100))


class Diverged(Exception):
    """Training stopped because a rule diverged (exit status 3)."""


def _train_one(name, net, task, args, out):
    """Train one rule from ``net`` (or from its checkpoint), checkpointing as it goes."""
    import rflo
    from rflo import checkpoint

    prog = checkpoint.load_progress(out, name) if args.resume else None
    if prog is None:
        prog = checkpoint.Progress(net, np.zeros(0), np.zeros(0), 0.0)
    if prog.done > args.trials:
        raise UserError(f"checkpoint of {name!r} has {prog.done} trials, more than --trials {args.trials}")
    seg = _segments(args.trials)
    every = args.checkpoint_every
    last_save = time.monotonic()
    bar = ProgressBar(name, args.trials, _show_progress(args))
    bar.done = prog.done
    try:
        while prog.done < args.trials:
            n = min(seg, args.trials - prog.done)
            res = rflo.train(prog.network, task, name, trials=n, lr=tuple(args.lr),
                             online=args.online, dtype=args.dtype, seed=args.seed,
                             start_trial=prog.done, chunk=seg)
            if res.diverged is not None:
                checkpoint.save_progress(out, name, prog)
                rflo.save_network(out / f"{name}.npz", prog.network)
                raise Diverged(f"{res.diverged} Saved it to {out / (name + '.npz')}.")
            prog = checkpoint.Progress(res.network, np.concatenate([prog.loss, res.loss]),
                                       np.concatenate([prog.alignment, res.alignment]),
                                       prog.seconds + res.seconds)
            bar(prog.done, args.trials, float(res.loss[-1]))
            due = (prog.done % every == 0) if every else (time.monotonic() - last_save > 30)
            if due:
                checkpoint.save_progress(out, name, prog)
                last_save = time.monotonic()
    finally:
        bar.close()
    checkpoint.save_progress(out, name, prog)
    return prog


def _train_rules(rules, net, task, args, out):
    """Train each rule from ``net``; write networks, curves and figures."""
    import rflo
    from rflo import results

    losses, aligns, outputs, summary, seconds = {}, {}, {}, [], {}
    for name in rules:
        prog = _train_one(name, net, task, args, out)
        rflo.save_network(out / f"{name}.npz", prog.network)
        losses[name], aligns[name] = prog.loss, prog.alignment
        outputs[name] = rflo.evaluate(prog.network, task).y
        seconds[name] = prog.seconds
        summary.append(dict(rule=name, final_loss=float(prog.loss[-1]),
                            best_loss=float(prog.loss.min()),
                            final_alignment=float(prog.alignment[-1]), seconds=float(prog.seconds)))
    results.write_curves(out / "results.csv", losses, aligns)
    _figures(out, losses, aligns, outputs, task)
    return summary, seconds


def _random_feedback_rules(names):
    from rflo.rules import get_rule

    return [n for n in names if getattr(get_rule(n), "feedback", None) == "random"]


def _figures(out, losses, aligns, outputs, task):
    from rflo import plots

    plots.plot_losses(losses, out / "loss.png")
    plots.plot_outputs(outputs, task.trial(0)[1], out / "outputs.png")
    rf = _random_feedback_rules(list(losses))
    if rf:
        plots.plot_alignment({r: aligns[r] for r in rf}, out / "alignment.png")


def _check_rules(names, online):
    from rflo.rules import get_rule

    rules = []
    for n in names:
        try:
            r = get_rule(n)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if online and not r.online:
            online_ok = [m for m in names if get_rule(m).online] if all(
                _known(m) for m in names) else []
            raise UserError(f"rule {r.name!r} cannot learn online; drop --online or use "
                            f"--rules {' '.join(online_ok) or 'rflo rtrl'}")
        if r.name in rules:
            raise UserError(f"rule {r.name!r} given twice")
        rules.append(r.name)
    return rules


def _known(name):
    from rflo.rules import get_rule

    try:
        get_rule(name)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------
# subcommands


RESUMABLE = ("trials", "units", "tau", "period", "lr", "online", "seed", "dtype",
             "checkpoint_every", "rules", "rule", "init")


def _start_or_resume(args, kind):
    """The output folder; on --resume, ``args`` take the run's saved settings."""
    from rflo import checkpoint

    if args.resume is None:
        return _prepare_out(args.out, args.overwrite, kind)
    try:
        saved = checkpoint.load_settings(args.resume)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if saved.get("command") != kind:
        raise UserError(f"{args.resume} is a '{saved.get('command')}' run; resume it with that command")
    for k in RESUMABLE:
        if k in saved:
            setattr(args, k, saved[k] if k != "init" or saved[k] is None else Path(saved[k]))
    if not args.quiet:
        print(f"resuming {args.resume}", file=sys.stderr)
    return Path(args.resume)


def _save_start(args, kind, net, out):
    """Write the initial network, then the settings that make the run resumable."""
    import rflo
    from rflo import checkpoint

    if args.resume is not None:
        return
    rflo.save_network(out / "initial.npz", net)
    settings = {k: getattr(args, k) for k in RESUMABLE if hasattr(args, k)}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items()}
    checkpoint.save_settings(out, {"command": kind, **settings})


def _finish(args, kind, rules, net, task, out, **extra_settings):
    from rflo import results

    t0 = time.perf_counter()
    try:
        summary, seconds = _train_rules(rules, net, task, args, out)
    except Diverged as exc:
        print(f"rflo {kind}: {exc}", file=sys.stderr)
        return 3
    results.write_metadata(out / "metadata.json", dict(
        command=kind, rules=rules,
        settings=_settings(args, task=task.name, **task.params, **extra_settings),
        seconds=seconds, summary=summary, total_seconds=time.perf_counter() - t0,
        versions=results.versions(), argv=sys.argv[1:]))
    _summary(summary, args.quiet)
    if not args.quiet:
        print(f"results in {out}")
    return 0


def cmd_compare(args):
    import rflo

    _check_rules(args.rules, args.online)
    out = _start_or_resume(args, "compare")  # on --resume, args now hold the saved settings
    rules = _check_rules(args.rules, args.online)
    task = rflo.periodic_task(period=args.period)
    net = (rflo.init_network(1, args.units, 1, seed=args.seed, tau=args.tau, dtype=args.dtype)
           if args.resume is None else _load_for_task(out / "initial.npz", task, args.dtype))
    _save_start(args, "compare", net, out)
    return _finish(args, "compare", rules, net, task, out)


def cmd_train(args):
    import rflo

    _check_rules([args.rule], args.online)
    if args.save is not None and args.save.exists() and not args.overwrite:
        raise UserError(f"--save {args.save} exists; pass --overwrite to replace it")
    if args.init is not None and args.resume is None:  # check it before creating the folder
        _load_for_task(args.init, rflo.periodic_task(period=args.period), args.dtype)
    out = _start_or_resume(args, "train")  # on --resume, args now hold the saved settings
    (rule,) = _check_rules([args.rule], args.online)
    task = rflo.periodic_task(period=args.period)
    if args.resume is not None:
        net = _load_for_task(out / "initial.npz", task, args.dtype)
    elif args.init is not None:
        net = _load_for_task(args.init, task, args.dtype)
    else:
        net = rflo.init_network(1, args.units, 1, seed=args.seed, tau=args.tau, dtype=args.dtype)
    _save_start(args, "train", net, out)
    status = _finish(args, "train", [rule], net, task, out,
                     init=None if args.init is None else str(args.init),
                     units=int(net.n_rec), tau=float(net.tau))
    if status == 0 and args.save is not None:
        rflo.save_network(args.save, rflo.load_network(out / f"{rule}.npz"))
    return status


def _load_for_task(path, task, dtype):
    import rflo

    try:
        net = rflo.load_network(path, dtype=dtype)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if net.n_in != task.n_in or net.n_out != task.n_out:
        raise UserError(f"{path}: the network has n_in={net.n_in}, n_out={net.n_out} but the "
                        f"periodic task needs n_in={task.n_in}, n_out={task.n_out}")
    return net


def cmd_eval(args):
    import rflo
    from rflo import plots

    try:
        net = rflo.load_network(args.network)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    task = rflo.periodic_task(period=args.period, n_in=net.n_in, n_out=net.n_out)
    png = args.png or args.network.with_name(args.network.stem + ".eval.png")
    if png.exists() and not args.overwrite:
        raise UserError(f"{png} exists; pass --overwrite to replace it")
    ev = rflo.evaluate(net, task)
    plots.plot_evaluation(ev.y, ev.target, png, title=f"{args.network.name}: loss {ev.loss:.3g}")
    print(f"loss {ev.loss:.6g}")
    print(f"figure {png}")
    return 0


def cmd_plot(args):
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
        s = meta["settings"]
        task = rflo.periodic_task(period=s["period"], amplitudes=s.get("amplitudes", (1, .5, .25)),
                                  harmonics=s.get("harmonics", (1, 2, 4)))
        outputs = {r: rflo.evaluate(rflo.load_network(folder / f"{r}.npz"), task).y for r in losses}
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{folder}: cannot redraw ({exc})") from None
    _figures(folder, losses, aligns, outputs, task)
    print(f"figures redrawn in {folder}")
    return 0


COMMANDS = {"compare": cmd_compare, "train": cmd_train, "eval": cmd_eval, "plot": cmd_plot}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in EXTERNAL:
        module, _ = EXTERNAL[argv[0]]
        try:
            mod = importlib.import_module(module)
        except ImportError:
            print(f"rflo: error: '{argv[0]}' is not available in this installation", file=sys.stderr)
            return 2
        return mod.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"rflo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # the library's own input checks
        print(f"rflo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
