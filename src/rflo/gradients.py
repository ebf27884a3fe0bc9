"""Gradient quality: how well each rule's update points along the exact gradient.

Following Marschall, Cho & Savin (2020, JMLR 21:135), each rule's update
direction ``D ~ -dL/dW`` is compared with the exact ``-dL/dW`` from the ``bptt``
rule (itself checked against ``jax.grad`` in the test suite) by

* the cosine ``<D, G> / (|D| |G|)`` (1: the exact direction, 0: orthogonal), and
* the norm ratio ``|D| / |G|`` (1: the exact step size),

for one trial with the weights fixed (:func:`gradient_quality`), per timestep
for the rules that have a per-step form, against RTRL's exact contribution of
that step ``-dL_t/dW`` (:func:`stepwise_quality`), and at checkpoints along a
training session (:func:`training_quality`).  ``w_out`` gets the exact update
``err h^T`` from every rule, so the summary numbers (key ``"rec+in"``) cover
``w_rec`` and ``w_in`` together; per-matrix numbers are reported as well.

The command line (``main``) trains a network on the periodic task, writes a
table (text, and CSV with ``--csv``) and a figure (``--figure``).

The per-step comparison runs RTRL (O(n_rec^4) per step): keep ``n_rec`` to a
few dozen.

For a cell that owns its synapses (GRU, LSTM, LRU, a stack) the parameters
compared are all of the cell's and ``w_out`` (keys by name, e.g. ``"nu_log"``),
and ``"rec+in"`` covers all of the cell's; the table's ``w_in`` and ``w_rec``
columns show the cell's parameters of those names (``-`` where it has none).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from contextlib import contextmanager
from functools import partial
from typing import Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rflo._checks import check_dtype, check_int, precision
from rflo.cells.base import initial_state, owns_synapses
from rflo.files import atomic_write
from rflo.network import Network
from rflo.network import derivative as lookup_derivative
from rflo.rules import get_rule
from rflo.rules.base import Setup
from rflo.rules.tbptt import TruncatedBPTT
from rflo.style import rule_label, rule_style
from rflo.tasks import Task
from rflo.train import _with_derivative, train

__all__ = [
    "cosine",
    "norm_ratio",
    "rule_directions",
    "gradient_quality",
    "stepwise_quality",
    "training_quality",
    "format_table",
    "plot_quality",
    "main",
    "DEFAULT_RULES",
]

DEFAULT_RULES = (
    "rflo",
    "local",
    "random_feedback",
    "eprop",
    "eprop_random",
    "uoro",
    "kf_rtrl",
    "snap1",
    "snap2",
    "tbptt",
    "rtrl",
)
SUMMARY = "rec+in"
MATRICES = ("w_in", "w_rec", "w_out")


def cosine(a, b) -> float:
    """Cosine between two arrays (flattened); NaN when either is zero."""
    a, b = np.ravel(a), np.ravel(b)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else math.nan


def norm_ratio(a, b) -> float:
    """``|a| / |b|``; NaN when ``b`` is zero."""
    nb = np.linalg.norm(np.ravel(b))
    return float(np.linalg.norm(np.ravel(a)) / nb) if nb > 0 else math.nan


def _params(net) -> tuple:
    """The parameters compared: ``w_in``, ``w_rec``, ``w_out``; for a cell that
    owns its synapses, all of the cell's (sorted) and ``w_out``."""
    return tuple(sorted(net.extra)) + ("w_out",) if owns_synapses(net.cell) else MATRICES


def _inner(w) -> list:
    """The names the ``"rec+in"`` summary covers (all but ``w_out``)."""
    return (
        ["w_rec", "w_in"]
        if "w_rec" in w and "w_in" in w and len(w) == 3
        else [k for k in w if k != "w_out"]
    )


def _summary(w) -> np.ndarray:
    return np.concatenate([np.ravel(w[k]) for k in _inner(w)])


def _rules(rules) -> list:
    rules = [get_rule(r) for r in rules]  # ValueError for unknown names
    if not rules:
        raise ValueError("give at least one rule")
    return rules


def _check_inputs(net, task, trial):
    if not isinstance(net, Network):
        raise ValueError(f"expected an rflo Network, got {type(net).__name__}")
    if not isinstance(task, Task):
        raise ValueError(f"expected an rflo Task, got {type(task).__name__}")
    if task.n_in != net.n_in or task.n_out != net.n_out:
        raise ValueError(
            f"task has n_in={task.n_in}, n_out={task.n_out} but the network "
            f"n_in={net.n_in}, n_out={net.n_out}"
        )
    check_int("trial", trial, minimum=0)


@partial(jax.jit, static_argnums=(0, 6))
def _trial_direction(rule, net, x, y, m, key, setup=Setup()):
    return rule.trial(net, x, y, m, key, setup)[0]


@partial(jax.jit, static_argnums=(0, 6))
def _step_directions(rule, net, x, y, m, key, setup=Setup()):
    """Each step's contribution (stacked over steps 1..T-1) of a per-step rule."""

    def body(carry, inp):
        h, state = carry
        state, h_new, _, d = rule.advance(state, net, h, *inp, setup)
        return (h_new, state), d

    _, d = jax.lax.scan(
        body, (initial_state(net), rule.init(net, key, setup)), (x[1:], y[1:], m[1:])
    )
    return d


@contextmanager
def _one_trial(net, task, rules, trial, seed, derivative, dtype):
    """Check the inputs, then (inside the precision ``dtype`` asks for) yield
    ``(rules, net, x, y, mask, key)`` as jax arrays for trial ``trial``."""
    _check_inputs(net, task, trial)
    rules = _rules(rules)
    lookup_derivative(derivative)
    dtype = check_dtype(dtype)
    if not owns_synapses(net.cell):  # a cell that owns its synapses has its own derivatives
        net = _with_derivative(net, derivative)
    with precision(dtype):
        jnet = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), net)
        x, y, m = (jnp.asarray(a, dtype) for a in task.trial(trial))
        yield rules, jnet, x, y, m, jax.random.PRNGKey(seed)


def rule_directions(
    net: Network,
    task: Task,
    rules,
    *,
    trial: int = 0,
    seed: int = 0,
    derivative: str = "exact",
    dtype: str = "float64",
) -> Dict[str, Dict[str, np.ndarray]]:
    """Each rule's summed update direction for one trial (weights fixed).

    Returns ``{rule name: {"w_in", "w_rec", "w_out": array}}`` (for a cell that
    owns its synapses: its parameters by name and ``w_out``); rules that draw
    random numbers use ``PRNGKey(seed)``.
    """
    out = {}
    names = _params(net)
    with _one_trial(net, task, rules, trial, seed, derivative, dtype) as (
        rules,
        jnet,
        x,
        y,
        m,
        key,
    ):
        setup = Setup(params=names)
        for rule in rules:
            if names != MATRICES:
                rule.check(jnet, setup)  # e.g. a local rule and a stack: say so by name
            d = _trial_direction(rule, jnet, x, y, m, key, setup)
            out[rule.name] = {k: np.asarray(d[k]) for k in names}
    return out


def gradient_quality(
    net: Network,
    task: Task,
    rules=DEFAULT_RULES,
    *,
    trial: int = 0,
    seed: int = 0,
    derivative: str = "exact",
    dtype: str = "float64",
) -> Dict[str, Dict[str, Dict[str, float]]]:
    """Cosine and norm ratio of each rule's trial update against BPTT's.

    Returns ``{rule: {"cos": {matrix or "rec+in": float}, "ratio": {...}}}``
    (NaN where the exact gradient of a matrix is zero, e.g. ``w_in`` with zero
    input).
    """
    rules = _rules(rules)
    dirs = rule_directions(
        net,
        task,
        list(rules) + [get_rule("bptt")],
        trial=trial,
        seed=seed,
        derivative=derivative,
        dtype=dtype,
    )
    exact = dirs["bptt"]
    out = {}
    for rule in rules:
        d = dirs[rule.name]
        cos = {k: cosine(d[k], exact[k]) for k in d}
        ratio = {k: norm_ratio(d[k], exact[k]) for k in d}
        cos[SUMMARY] = cosine(_summary(d), _summary(exact))
        ratio[SUMMARY] = norm_ratio(_summary(d), _summary(exact))
        out[rule.name] = {"cos": cos, "ratio": ratio}
    return out


def has_step_form(rule) -> bool:
    """Whether per-step contributions of ``rule`` are comparable with RTRL's:
    rules with a per-step form, except truncated BPTT (its contributions come
    in lumps at window ends)."""
    rule = get_rule(rule)
    return rule.online and not isinstance(rule, TruncatedBPTT)


def stepwise_quality(
    net: Network,
    task: Task,
    rules=DEFAULT_RULES,
    *,
    trial: int = 0,
    seed: int = 0,
    derivative: str = "exact",
    dtype: str = "float64",
) -> Dict[str, Dict[str, np.ndarray]]:
    """Per-step cosine and norm ratio (``w_rec`` and ``w_in`` together) of each
    rule's contribution at step ``t`` against the exact ``-dL_t/dW`` (RTRL's).

    Rules without a comparable per-step form (``bptt``, ``tbptt``) are skipped.
    Returns ``{rule: {"cos": (T-1,), "ratio": (T-1,)}}``; NaN at steps whose
    error is zero.
    """
    out = {}
    names = _params(net)
    with _one_trial(net, task, rules, trial, seed, derivative, dtype) as (
        rules,
        jnet,
        x,
        y,
        m,
        key,
    ):
        rules = [r for r in rules if has_step_form(r)]
        setup = Setup(params=names)

        def flat(d):
            parts = [np.asarray(d[k]) for k in _inner(d)]
            return np.concatenate([a.reshape(a.shape[0], -1) for a in parts], axis=1)

        exact = flat(_step_directions(get_rule("rtrl"), jnet, x, y, m, key, setup))
        ne = np.linalg.norm(exact, axis=1)
        for rule in rules:
            if names != MATRICES:
                rule.check(jnet, setup)
            d = flat(_step_directions(rule, jnet, x, y, m, key, setup))
            nd = np.linalg.norm(d, axis=1)
            ok = (ne > 0) & (nd > 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                cos = np.where(ok, np.sum(d * exact, axis=1) / (nd * ne), np.nan)
                ratio = np.where(ne > 0, nd / ne, np.nan)
            out[rule.name] = {"cos": cos, "ratio": ratio}
    return out


def training_quality(
    net: Network,
    task: Task,
    rules=DEFAULT_RULES,
    *,
    train_rule="bptt",
    trials: int = 300,
    every: int = 50,
    lr=(0.0, 0.1, 0.1),
    online: bool = False,
    optimizer=None,
    seed: int = 0,
    derivative: str = "exact",
    dtype: str = "float64",
):
    """Gradient quality at checkpoints of a training session.

    Trains ``net`` with ``train_rule`` for ``trials`` trials and measures
    :func:`gradient_quality` (on trial 0 of ``task``) before training and after
    every ``every`` trials.  Returns ``(checkpoints, quality, network, losses)``:
    ``checkpoints`` the trial counts (C,), ``quality[rule] = {"cos": (C,),
    "ratio": (C,)}`` (the ``"rec+in"`` summaries), the trained network and the
    training losses (trials,).
    """
    rules = _rules(rules)
    get_rule(train_rule)
    trials = check_int("trials", trials)
    every = check_int("every", every)
    _check_inputs(net, task, 0)
    checkpoints = [0]
    quality = {r.name: {"cos": [], "ratio": []} for r in rules}
    losses: List[np.ndarray] = []
    opt_state = None

    def measure(current):
        q = gradient_quality(current, task, rules, seed=seed, derivative=derivative, dtype=dtype)
        for name, v in q.items():
            quality[name]["cos"].append(v["cos"][SUMMARY])
            quality[name]["ratio"].append(v["ratio"][SUMMARY])

    measure(net)
    done = 0
    while done < trials:
        n = min(every, trials - done)
        res = train(
            net,
            task,
            train_rule,
            trials=n,
            lr=lr,
            online=online,
            optimizer=optimizer,
            derivative=derivative,
            dtype=dtype,
            seed=seed,
            opt_state=opt_state,
            start_trial=done,
        )
        net, opt_state = res.network, res.opt_state
        losses.append(np.asarray(res.loss))
        done += n
        checkpoints.append(done)
        measure(net)
    quality = {k: {m: np.asarray(v[m]) for m in v} for k, v in quality.items()}
    return np.asarray(checkpoints), quality, net, np.concatenate(losses)


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
