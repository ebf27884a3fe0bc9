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

The command line (``rflo gradients``, :mod:`rflo.gradients_cli`) trains a
network on the periodic task, writes a table (text, and CSV with ``--csv``)
and a figure (``--figure``).

The per-step comparison runs RTRL (O(n_rec^4) per step): keep ``n_rec`` to a
few dozen.

For a cell that owns its synapses (GRU, LSTM, LRU, a stack) the parameters
compared are all of the cell's and ``w_out`` (keys by name, e.g. ``"nu_log"``),
and ``"rec+in"`` covers all of the cell's; the table's ``w_in`` and ``w_rec``
columns show the cell's parameters of those names (``-`` where it has none).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from functools import partial
from typing import Dict, List

import jax
import jax.numpy as jnp
import numpy as np

from rflo._checks import check_dtype, check_int, precision
from rflo.cells.base import initial_state, owns_synapses
from rflo.network import Network
from rflo.network import derivative as lookup_derivative
from rflo.rules import get_rule
from rflo.rules.base import Setup
from rflo.rules.tbptt import TruncatedBPTT
from rflo.tasks import Task
from rflo.train import _with_derivative, train

__all__ = [
    "cosine",
    "norm_ratio",
    "rule_directions",
    "gradient_quality",
    "stepwise_quality",
    "training_quality",
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
