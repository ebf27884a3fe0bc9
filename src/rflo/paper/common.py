"""What the paper's figure commands share: the paper's initial networks,
writing outputs (atomic, plain data) and the output folder check."""

from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path

import numpy as np

from rflo.files import atomic_write

__all__ = [
    "paper_network",
    "murray_network",
    "murray_dale_network",
    "INITS",
    "network_seeds",
    "spec_train",
    "csv_text",
    "json_safe",
    "write_file",
    "write_text",
    "log_spaced",
    "check_out",
    "band_rows",
    "median_band",
    "quartiles",
    "ranges_overlap",
    "lower_verdict",
    "add_figure_arguments",
    "apply_arguments",
    "figure_main",
]


#: the initial weights a figure can start from (``--init``): the paper's
#: Methods ("Simulation details": input weights uniform over [-1, 1], readout
#: weights uniform over [-1/sqrt(N), 1/sqrt(N)], W ~ N(0, g^2/N) with g = 1.5,
#: B ~ N(0, 1)) or the seed notebook's (:func:`rflo.init_network`)
INITS = ("methods", "notebook")


def paper_network(
    n_in, n_rec, n_out, seed, tau=10.0, dtype="float32", *, init="methods", dale=None, g=1.5
):
    """The paper's network for every figure, drawn from ``seed``.

    ``init="methods"`` (the default) follows the Methods ("Simulation
    details"): ``w_in ~ U[-1, 1]``, ``w_rec ~ N(0, g^2 / N)`` with ``g = 1.5``,
    ``w_out ~ U[-1/sqrt(N), 1/sqrt(N)]``, ``b ~ N(0, 1)``; ``h0 = 0.1`` (the
    notebook's; the paper gives none).  With ``dale`` (the fraction of
    excitatory units; the Methods' Figure 2 supplement 1 uses one half) the
    first ``round(dale N)`` units are excitatory and ``w_ij <- xi_j |w_ij|``,
    as the Methods write.  ``init="notebook"`` draws the seed notebook's
    weights instead (:func:`rflo.init_network`: ``w_in`` on [-0.1, 0),
    ``w_out`` 0.1 U(-1, 1) / sqrt(N), ``b ~ N(0, 1)``), Dale's law included.
    """
    import rflo
    from rflo import network_from_arrays

    if init == "notebook":
        return rflo.init_network(
            n_in, n_rec, n_out, seed=int(seed), tau=tau, dtype=dtype, dale=dale, g=g
        )
    if init != "methods":
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    rng = np.random.default_rng(seed)
    w_in = rng.uniform(-1, 1, (n_rec, n_in))
    w_rec = g * rng.normal(size=(n_rec, n_rec)) / np.sqrt(n_rec)
    w_out = rng.uniform(-1, 1, (n_out, n_rec)) / np.sqrt(n_rec)
    b = rng.normal(size=(n_rec, n_out))
    sign = None
    if dale is not None:
        sign = np.where(np.arange(n_rec) < int(round(float(dale) * n_rec)), 1.0, -1.0)
        w_rec = sign[None, :] * np.abs(w_rec)
    return network_from_arrays(
        w_in=w_in,
        w_rec=w_rec,
        w_out=w_out,
        b=b,
        h0=np.full(n_rec, 0.1),
        tau=tau,
        sign=sign,
        dtype=dtype,
    )


#: the size and time constant of Figure 2's network (Methods and caption:
#: "N = 30 recurrent units", "tau = 10"), the named network ``"murray2019"``
MURRAY_N, MURRAY_TAU = 30, 10.0


def murray_network(seed: int, task=None):
    """Figure 2's network (N = 30, tau = 10, the Methods' weights) for
    ``task``'s inputs and outputs: the named network ``"murray2019"``
    (:mod:`rflo.networks`; ``RunSpec(network="murray2019")``, a sweep grid's
    ``network = "murray2019"``)."""
    return _murray(seed, task, None)


def murray_dale_network(seed: int, task=None):
    """:func:`murray_network` with Dale's law, half the units excitatory
    (Figure 2 supplement 1): the named network ``"murray2019_dale"``."""
    return _murray(seed, task, 0.5)


def _murray(seed, task, dale):
    n_in, n_out = (1, 1) if task is None else (task.n_in, task.n_out)
    return paper_network(n_in, MURRAY_N, n_out, int(seed), MURRAY_TAU, dale=dale)


def network_seeds(cfg) -> list:
    """The seeds of the networks a figure reports: ``cfg.seeds`` when given,
    else ``cfg.seed, cfg.seed + 1, ...`` (``cfg.n_networks`` of them)."""
    if getattr(cfg, "seeds", None):
        return [int(s) for s in cfg.seeds]
    return [cfg.seed + k for k in range(cfg.n_networks)]


def spec_train(spec, networks, *, lr=None, seeds=None, warn=False, task=None):
    """Train stacked ``networks`` as the run description ``spec``
    (:class:`rflo.spec.RunSpec`) says, through the library's
    :class:`rflo.session.Session` (:meth:`~rflo.session.Session.for_networks`,
    in memory): task, cell (f'), loss, optimiser, rule, trials, batch, online,
    dtype and the divergence guard from the spec.  ``lr`` overrides ``spec.lr``
    (a (K, 3) array gives each network its own rates, as a rate search needs);
    ``seeds`` overrides ``spec.seeds`` (a search repeats a seed across its
    rates); ``task`` one that no task name describes (a figure's variant).
    Returns the :class:`rflo.ensemble.EnsembleResult` of the run."""
    import warnings

    from rflo.session import Session

    with warnings.catch_warnings():
        if not warn:  # fast rates are meant to diverge in searches; the guard counts them
            warnings.simplefilter("ignore", RuntimeWarning)
        session = Session.for_networks(spec, networks, seeds=seeds, task=task, lr=lr)
        return session.result(session.run()[spec.rule])


def csv_text(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def json_safe(obj):
    """Non-finite floats as null (strict JSON has no Infinity/NaN)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def write_file(path, write_fn, suffix=""):
    """Atomic write, then the usual permissions (rw-r--r--)."""
    atomic_write(path, write_fn, suffix=suffix)
    os.chmod(path, 0o644)


def write_text(path, text):
    write_file(path, lambda tmp: Path(tmp).write_text(text))


def write_reproduction(out, name: str, table, curves, summary: dict, plot) -> dict:
    """A reproduction's files in ``out`` (made if missing): ``NAME.csv`` and
    ``NAME_curves.csv`` (``table`` and ``curves``: ``(header, rows)``),
    ``NAME.json`` (``summary``) and ``NAME.png`` (``plot(path)``); returns ``summary``."""
    import json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / f"{name}.csv", csv_text(*table))
    write_text(out / f"{name}_curves.csv", csv_text(*curves))
    write_text(out / f"{name}.json", json.dumps(json_safe(summary), indent=2))
    plot(out / f"{name}.png")
    return summary


def log_spaced(n, points=300):
    """About ``points`` indices into ``n`` trials, spaced evenly on a log axis."""
    return np.unique(np.round(np.geomspace(1, n, points)).astype(int)) - 1


def band_rows(curves, points=300, trials_per_step=1) -> list:
    """Rows ``[trial, median, p25, p75]`` of (K, n) curves at about ``points``
    log-spaced steps (step ``i`` is trial ``(i + 1) * trials_per_step``)."""
    med, p25, p75 = median_band(curves)
    return [
        [(i + 1) * trials_per_step, f"{med[i]:.6g}", f"{p25[i]:.6g}", f"{p75[i]:.6g}"]
        for i in log_spaced(np.shape(curves)[1], points)
    ]


def median_band(a, axis=0):
    """``(median, p25, p75)`` of ``a`` along ``axis``."""
    p25, med, p75 = np.percentile(np.asarray(a, float), [25, 50, 75], axis=axis)
    return med, p25, p75


def quartiles(a) -> dict:
    """``{"median", "p25", "p75"}`` of ``a`` (floats, JSON-ready)."""
    med, p25, p75 = median_band(a)
    return {"median": float(med), "p25": float(p25), "p75": float(p75)}


def ranges_overlap(a: dict, b: dict) -> bool:
    """Whether two :func:`quartiles` 25-75 % ranges overlap."""
    return not (a["p75"] < b["p25"] or b["p75"] < a["p25"])


def lower_verdict(mine: dict, other: dict, who: str, what: str) -> dict:
    """The verdict on a claim that ``who``'s ``what`` (:func:`quartiles`) is
    lower than the other's: reproduced only where the median is lower and the
    25-75 % ranges do not overlap."""
    overlap = ranges_overlap(mine, other)
    better = mine["median"] < other["median"]
    verdict = (
        f"reproduced: {who}'s {what} is lower and the 25-75 % ranges do not overlap"
        if better and not overlap
        else f"{who}'s median is lower but the 25-75 % ranges overlap: not shown"
        if better
        else f"not reproduced: {who}'s median {what} is not lower"
    )
    return {"ranges_overlap": overlap, "verdict": verdict}


def check_out(out, overwrite, prog) -> int:
    """0 if ``out`` may be written (a new or empty folder, or ``overwrite``),
    else print the error and return 2."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        print(f"{prog}: error: {out} exists and is not a folder", file=sys.stderr)
        return 2
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        print(
            f"{prog}: error: {out} is not empty; pass --overwrite to write into it "
            "or choose another --out",
            file=sys.stderr,
        )
        return 2
    return 0


def _seed_list(text):
    import argparse

    try:
        seeds = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes integers, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError("--seeds takes distinct integers >= 0")
    return tuple(seeds)


def add_figure_arguments(p, name: str, quick_help: str, *, derivative="exact", init=False):
    """The options every ``rflo figureN`` takes: --out, --quick, --seed, --seeds,
    --derivative, --overwrite (and --init where the figure draws Figure 2's
    networks)."""
    p.add_argument("--out", default=name, help=f"output folder (default: ./{name})")
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="first network seed; network k uses seed + k (default 0)",
    )
    p.add_argument(
        "--seeds",
        type=_seed_list,
        default=None,
        metavar="S,S,...",
        help="the networks the figure reports, by seed (e.g. 10,11,12: rerun "
        "the verdicts on other networks); overrides --seed and the mode's "
        "number of networks",
    )
    p.add_argument(
        "--derivative",
        choices=("exact", "seed"),
        default=derivative,
        help="f' of the units: 'exact' (1 - tanh^2) or 'seed', the notebook's "
        f"approximation 1/cosh^2(10 tanh(u/10)) (default {derivative})",
    )
    if init:
        p.add_argument(
            "--init",
            choices=INITS,
            default="methods",
            help="initial weights: the paper's Methods (default) or the seed "
            "notebook's (w_in on [-0.1, 0), w_out 10x smaller)",
        )
    p.add_argument(
        "--overwrite", action="store_true", help="write into an existing non-empty folder"
    )
    return p


def add_rules_argument(p, rules):
    """``--rules R,R,...``: train only some of a reproduction's ``rules`` (each
    checked against them; the config's ``rules`` field takes the tuple)."""
    import argparse

    def parse(text):
        chosen = tuple(r.strip() for r in str(text).split(",") if r.strip())
        bad = [r for r in chosen if r not in rules]
        if not chosen or bad:
            raise argparse.ArgumentTypeError(
                f"unknown rule(s) {bad or [text]}: choose from {','.join(rules)}"
            )
        return chosen

    p.add_argument(
        "--rules",
        type=parse,
        default=None,
        metavar="R,R,...",
        help=f"train only these rules (default all: {','.join(rules)})",
    )
    return p


def apply_arguments(cfg, args):
    """``cfg`` with the options applied: --seed, --seeds, and every option named
    as a field of ``cfg`` (--derivative, --init, a figure's own)."""
    from dataclasses import fields, replace

    names = {f.name for f in fields(cfg)}
    changes = {"seed": args.seed}
    if getattr(args, "seeds", None):
        changes["seeds"] = tuple(args.seeds)
        if "n_networks" in names:
            changes["n_networks"] = len(args.seeds)
    for key in names - {"mode", "seed", "seeds", "n_networks"}:  # a figure's own options
        if getattr(args, key, None) is not None:
            changes[key] = getattr(args, key)
    return replace(cfg, **changes)


def figure_main(
    argv, name: str, description: str, add_arguments, quick, full, run, write_outputs
) -> int:
    """``rflo figureN``: parse, check the folder, run quick or full, write, and
    print the verdicts as JSON; returns the exit status (2 on bad input)."""
    import argparse
    import json

    prog = f"rflo {name}"
    parser = add_arguments(argparse.ArgumentParser(prog=prog, description=description))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on bad arguments, 0 on --help
        return int(e.code or 0)
    if args.seed < 0:
        print(f"{prog}: error: --seed must be >= 0", file=sys.stderr)
        return 2
    if check_out(args.out, args.overwrite, prog):
        return 2
    cfg = apply_arguments(quick if args.quick else full, args)
    r = run(cfg, log=lambda m: print(f"[{name}] {m}", file=sys.stderr, flush=True))
    summary = write_outputs(r, Path(args.out))
    print(
        json.dumps(
            json_safe(
                {
                    "out": str(args.out),
                    "mode": cfg.mode,
                    "seconds": round(summary["seconds"], 1),
                    "claims": {k: v["verdict"] for k, v in summary["claims"].items()},
                }
            ),
            indent=2,
        )
    )
    return 0
