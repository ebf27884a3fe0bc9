"""Murray (2019) Figure 2 and its Dale's-law supplement, with ensembles of networks.

The periodic output task: N = 30 leaky units (tau = 10 steps), no input, one
output that must produce ``sin(2 pi t/T) + 0.5 sin(4 pi t/T) + 0.25 sin(8 pi t/T)``
over one period ``T`` per trial, starting every trial from ``h0 = 0.1``.  The
initial weights are the paper's Methods' by default
(:func:`rflo.paper.common.paper_network`; ``--init notebook`` for the seed
notebook's), f' is the seed notebook's ``1/cosh^2(10 tanh(u/10))`` (the paper's
own code for this figure; ``--derivative exact`` for ``1 - tanh^2``).  All
rules learn offline (one plain-SGD update per trial, the seed notebook's
``W += eta / T * sum_t ...``) with rates ``(0, lr_rec, lr_out)`` for
``(w_in, w_rec, w_out)``; the input weights do not matter (x = 0).

Panels (one PNG, ``figure2.png``):

a. loss during training, BPTT vs RFLO, at T = 20 tau and T = 160 tau (median
   over the networks, 25-75 % band), and the trained outputs against the
   dashed targets;
b. final loss (learning off) against the period, per rule, with the untrained
   networks in grey;
c. the alignment between vec(W_out) and vec(B^T) during RFLO training;
d. loss during training at T = 80 tau for BPTT, RFLO, "local" (locality
   without random feedback) and "random_feedback" (random feedback without
   locality).

Supplement 1 (``figure2_supplement1.png``): RFLO with Dale's law (half the
units excitatory, as the paper's Methods; signs kept through learning) against
unconstrained RFLO:
(a) loss during training at the short and the long period, (b) final loss
against the period.

Learning rates come from a grid search per rule and period: the paper's
single-rate search on its grid (1e-4 ... 0.3), then the recurrent and readout
rates apart, each point on 9 networks with other seeds than the reported ones
(see :data:`LR_SELECTION`; as sweeps: :mod:`~rflo.paper.figure2_search`); both
modes reuse the stored rates (:data:`CHOSEN_LR_METHODS`, and
:data:`CHOSEN_LR` for ``--init notebook``) unless ``--search``.
Quick mode (for CI) uses 20 and 40 tau as its short and long periods.

"random feedback without locality" learns offline here, where its summed
update ``sum_t (B err[t])^T dh[t]/dW`` (RTRL's influence tensors contracted
with random feedback) equals a backward pass that injects ``B err[t]`` instead
of ``W_out^T err[t]``; the registered ``random_feedback`` rule computes it that
way offline, in O(T N^2) instead of RTRL's O(T N^4).  ``tests/test_figure2.py``
checks that the two give the same update.

Every (rule, period) is one run description (:class:`rflo.spec.RunSpec`,
:func:`rflo.paper.figure2_train.run_spec`) trained through the library's shared
ensemble trainer.  The module's parts: :mod:`~rflo.paper.figure2_train`
(networks, training, the rate search), :mod:`~rflo.paper.figure2_summary`
(numbers and files), :mod:`~rflo.paper.figure2_plots`,
:mod:`~rflo.paper.figure2_sweep`, :mod:`~rflo.paper.figure2_search`.

Command line: ``python -m rflo.paper.figure2 --out FOLDER [--quick] [--seed N]
[--seeds S,S,...] [--init methods|notebook] [--derivative seed|exact]
[--overwrite] [--search]`` (or ``rflo figure2 ...``).  ``--sweep DIR [--backend
slurm]`` trains through :mod:`rflo.sweep` (resumable; every core; a Slurm
cluster) and draws the same figure; ``--spec`` prints that sweep's spec.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import numpy as np

from rflo.paper.common import (
    add_figure_arguments,
    apply_arguments,
    check_out,
    json_safe,
    network_seeds,
    write_text,
)
from rflo.paper.figure2_config import (  # noqa: F401  (the figure's settings, importable from here)
    CHOSEN_LR,
    CHOSEN_LR_METHODS,
    FULL,
    QUICK,
    SEARCHED_ON,
    Config,
    config,
)
from rflo.paper.figure2_plots import plot_figure2, plot_long, plot_supplement
from rflo.paper.figure2_summary import results, summarize, write_outputs
from rflo.paper.figure2_sweep import read_sweep, sweep_spec
from rflo.paper.figure2_train import (  # noqa: F401  (the figure's parts, importable from here)
    COLORS,
    DIVERGED,
    LR_SELECTION,
    RULE_LABELS,
    RULES,
    Log,
    chosen_rates,
    clean,
    final_losses,
    grid_search,
    networks,
    run_spec,
    search,
    stats,
    task_of,
    train,
    trained_outputs,
)

__all__ = [
    "Config",
    "QUICK",
    "FULL",
    "CHOSEN_LR",
    "config",
    "run",
    "write_outputs",
    "summarize",
    "plot_long",
    "sweep_spec",
    "run_sweep",
    "plot_figure2",
    "plot_supplement",
    "main",
    "LR_SELECTION",
    "final_losses",
    "grid_search",
    "networks",
    "run_spec",
]

# older names, kept for callers
_clean, _networks = clean, networks


def run(cfg: Config = QUICK, log: Optional[Callable[[str], None]] = None) -> dict:
    """Run every experiment of the figure; returns the numbers (numpy arrays).

    With ``cfg.lr = None`` the learning rates are searched first (:func:`search`).
    """
    cfg.check()
    log = Log(log)
    t0 = time.perf_counter()
    seeds = network_seeds(cfg)

    grids = []
    if cfg.lr is None:
        grids = search(cfg, log.log)
        lrs = replace(cfg, lr=chosen_rates(grids)).rates()
    else:
        lrs = cfg.rates()
        log(
            "learning rates given (no search; lr_rec/lr_out): "
            + ", ".join(
                f"{rule} {p}tau {rec:g}/{out:g}" for (rule, p), (rec, out) in sorted(lrs.items())
            )
        )

    nets = networks(cfg, "rflo", seeds)
    dale_nets = networks(cfg, "rflo_dale", seeds)
    trained = {}
    for rule, p in cfg.rate_keys():
        n = (
            min(cfg.ablation_networks, cfg.n_networks)
            if rule in ("local", "random_feedback")
            else cfg.n_networks
        )
        drawn = dale_nets if rule == "rflo_dale" else nets
        first_n = jax.tree_util.tree_map(lambda a, n=n: a[:n], drawn)
        trained[rule, p] = train(cfg, first_n, rule, p, *lrs[rule, p], seeds[:n])
        log(f"trained {rule} T={p}tau ({trained[rule, p].seconds:.1f}s)")
    return results(cfg, lrs, grids, trained, t0, log, run_long(cfg, lrs, log))


def run_long(cfg: Config, lrs: dict, log=None) -> dict:
    """BPTT and RFLO at the longest period for ``cfg.long_trials`` trials, each
    at its stored rates (the same recipe for both): ``{rule: Trained}``."""
    if not cfg.long_trials:
        return {}
    p = max(cfg.periods_tau)
    seeds = network_seeds(cfg)
    task = task_of(cfg, p)
    out = {}
    for rule in ("bptt", "rflo"):
        res = train(
            cfg, networks(cfg, rule, seeds), rule, p, *lrs[rule, p], seeds, trials=cfg.long_trials
        )
        out[rule] = Trained(
            res.networks, clean(res.loss), np.asarray(res.alignment, float), res.seconds
        )
        if log:
            log(
                f"long run {rule} T={p}tau, {cfg.long_trials} trials: final loss median "
                f"{np.median(final_losses(res.networks, task)):.3g} ({res.seconds:.0f}s)"
            )
    return out


class Trained(NamedTuple):
    """One (rule, period) of the figure, trained: stacked networks, (K, trials)
    loss and alignment curves, wall time."""

    networks: object
    loss: np.ndarray
    alignment: np.ndarray
    seconds: float


def run_sweep(cfg, folder, backend=None, devices=None, log=None) -> dict:
    """Run (or resume) the figure's sweep in ``folder`` and return :func:`run`'s
    numbers, read from the sweep's table and networks.  With ``cfg.lr = None``
    the rates are searched first, as three sweeps in ``folder/search``
    (:func:`rflo.paper.figure2_search.search`), and the figure's sweep runs in
    ``folder/figure``."""
    t0 = time.perf_counter()
    log = Log(log)
    grids = []
    if cfg.lr is None:
        from rflo.paper.figure2_search import search as search_sweeps

        folder = Path(folder)
        grids = search_sweeps(cfg, folder / "search", backend, devices, log)
        cfg, folder = replace(cfg, lr=chosen_rates(grids)), folder / "figure"
    trained = read_sweep(cfg, folder, Trained, backend=backend, devices=devices, log=log)
    return results(cfg, cfg.rates(), grids, trained, t0, log, run_long(cfg, cfg.rates(), log))


# --------------------------------------------------------------------------
# command line


DESCRIPTION = (
    "Reproduce Murray (2019) Figure 2 (panels a-d) and its Dale's-law "
    "supplement: PNGs, CSVs and summary.json in an output folder."
)


def add_arguments(p):
    """The options of ``rflo figure2`` (shared with the main command line)."""
    add_figure_arguments(
        p,
        "figure2",
        f"small run for CI ({QUICK.n_networks} networks, {QUICK.trials} trials, "
        f"periods {list(QUICK.periods_tau)} tau); the full run uses "
        f"{FULL.n_networks} networks, {FULL.trials} trials",
        derivative="seed",
        init=True,
    )
    p.add_argument(
        "--search",
        action="store_true",
        help="search the learning rates again (grid per rule and period, "
        "written to lr_search.json) instead of using the stored ones; with "
        "--sweep, as three sweeps in DIR/search (the figure's in DIR/figure); "
        "with --spec, print the paper's single-rate stage as a sweep spec",
    )
    p.add_argument(
        "--sweep",
        type=Path,
        default=None,
        metavar="DIR",
        help="train through a sweep in DIR (rflo.sweep: resumable, every core, or "
        "a Slurm cluster with --backend slurm), then draw the figure from it "
        "(the Methods' networks are the named network murray2019)",
    )
    p.add_argument(
        "--backend",
        choices=("local", "slurm", "submitit_local"),
        default="local",
        help="with --sweep: where its chunks run (default local)",
    )
    from rflo.sweep.cli import devices_arg

    p.add_argument(
        "--devices",
        type=devices_arg,
        default="auto",
        metavar="N|auto",
        help="with --sweep: JAX devices per chunk (default auto: every core)",
    )
    p.add_argument(
        "--spec",
        action="store_true",
        help="print the figure's sweep spec (TOML) and exit: run it with "
        "'rflo sweep run', then draw with 'rflo figure2 --sweep DIR'",
    )
    return p


def spec_header(spec, args) -> str:
    """The comment above a printed sweep spec: how to run it and draw from it."""
    quick = "--quick " if args.quick else ""
    init = "--init notebook " if args.init == "notebook" else ""
    if args.search:
        return (
            f"# Murray (2019) Figure 2 ({spec.name}): the paper's single-rate search (stage 1 "
            f"of 3)\n# as a sweep: rflo sweep run THIS --out DIR; the whole search and the "
            f"figure:\n# rflo figure2 {quick}{init}--search --sweep DIR --out OUT\n"
        )
    return (
        f"# Murray (2019) Figure 2 ({spec.name}) as a sweep: rflo sweep run THIS --out "
        f"DIR,\n# then rflo figure2 {quick}{init}--sweep DIR draws it\n"
    )


def _config(args):
    cfg = config("quick" if args.quick else "full", args.init)
    return apply_arguments(cfg, args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="rflo figure2", description=DESCRIPTION))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on bad arguments, 0 on --help
        return int(e.code or 0)
    if args.seed < 0:
        print("rflo figure2: error: --seed must be >= 0", file=sys.stderr)
        return 2
    if args.spec:
        from rflo.paper.figure2_search import search_spec
        from rflo.sweep.spec import spec_from_dict, spec_toml

        try:
            spec = spec_from_dict(
                search_spec(_config(args)) if args.search else sweep_spec(_config(args))
            )
        except ValueError as exc:
            print(f"rflo figure2: error: {exc}", file=sys.stderr)
            return 2
        print(spec_header(spec, args) + spec_toml(spec), end="")
        return 0
    out = Path(args.out)
    if check_out(out, args.overwrite, "rflo figure2"):
        return 2
    cfg = _config(args)
    if args.search:
        cfg = replace(cfg, lr=None, lr_searched_on=cfg.init)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.sweep is not None:
        from rflo.files import FolderBusy
        from rflo.sweep.backends import configure_host_devices

        devices = args.devices
        if args.backend == "local":
            configure_host_devices(devices)
        try:
            r = run_sweep(cfg, args.sweep, backend=args.backend, devices=devices, log=log)
        except (ValueError, FolderBusy) as exc:
            print(f"rflo figure2: error: {exc}", file=sys.stderr)
            return 2
    else:
        r = run(cfg, log=log)
    summary = write_outputs(r, out)
    if r["grid"]:
        write_text(out / "lr_search.json", json.dumps(json_safe(r["grid"]), indent=2) + "\n")
        chosen = chosen_rates(r["grid"])
        print(f"chosen rates ({cfg.mode}, {cfg.init} weights): {chosen!r}", file=sys.stderr)
    print(
        json.dumps(
            {
                "out": str(out),
                "mode": cfg.mode,
                "init": cfg.init,
                "derivative": cfg.derivative,
                "seconds": round(summary["seconds"], 1),
                "learning_rates": {
                    f"{v['rule']} {v['period_tau']}tau": v["lr_rec"]
                    for v in summary["learning_rates"]
                },
                "claims": summary["claims"],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
