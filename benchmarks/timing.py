"""Timing the library and the notebook's numpy loop: repeated short calls, one
compiled session per measurement (``LibraryRun``), XLA's memory account."""

from __future__ import annotations

import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # seed_notebook.py: the notebook's loop, reused

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from make_table import fmt_time as _fmt_time  # noqa: E402  (same folder)
from seed_notebook import seed_run_trial  # noqa: E402

import rflo  # noqa: E402
from rflo.ensemble import init_ensemble  # noqa: E402
from rflo.network import param_names, params_of, trainable_names  # noqa: E402
from rflo.rules import Setup, get_rule  # noqa: E402
from rflo.trainer import (  # noqa: E402
    Config,
    SessionState,
    init_ensemble_opt_state,
    init_opt_state,
    new_guard,
    run_chunk,
    run_ensemble_chunk,
    trial_data,
)

#: the notebook's loop has these three rules; the ablations cost the same as
#: their twins (same traces, other feedback matrix), so they are timed with them.
NUMPY_TWIN = {
    "rflo": "rflo",
    "local": "rflo",
    "rtrl": "rtrl",
    "random_feedback": "rtrl",
    "bptt": "bptt",
}

#: cost of one trial ~ n_rec ** exponent (per step: RTRL n^4, the others n^2)
EXPONENT = {"rtrl": 4, "random_feedback": 4}

LR = (0.0, 0.03, 0.03)  # the seed's experiment: W_in frozen

#: the ensemble size the library trains together by default on a CPU (a sweep's
#: ``max_networks``)
DEFAULT_ENSEMBLE = 64


def cost_exponent(rule):
    return EXPONENT.get(rule, 2)


def mode_name(online):
    return "online" if online else "offline"


def fmt_time(s):
    return _fmt_time(s, micro="us")  # plain ASCII on the terminal


# --------------------------------------------------------------------------
# timing helpers


def repeat_timing(fn, trials_per_call, budget_s, min_repeats=5, max_repeats=300):
    """Call ``fn()`` (which runs ``trials_per_call`` trials) repeatedly for about
    ``budget_s`` seconds.  Returns per-trial seconds: wall-clock minimum and
    median, process CPU-time minimum (all threads; unaffected by time the
    process spent descheduled on a busy machine), and the number of calls."""
    walls, cpus = [], []
    start = time.perf_counter()
    while len(walls) < max_repeats and (
        len(walls) < min_repeats or time.perf_counter() - start < budget_s
    ):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append((time.perf_counter() - t0) / trials_per_call)
        cpus.append((time.process_time() - c0) / trials_per_call)
    return {
        "best": min(walls),
        "median": statistics.median(walls),
        "cpu_best": min(cpus),
        "cpu_median": statistics.median(cpus),
        "repeats": len(walls),
    }


def calls_for(seconds_per_trial, target_s):
    """Trials per call so that one call takes about ``target_s``."""
    return max(1, int(target_s / max(seconds_per_trial, 1e-9)))


def compiled_memory(compiled):
    """XLA's memory analysis of a compiled executable: ``total`` = arguments +
    outputs + temporaries - aliased (everything it holds at once) and ``temp``
    (its working memory, without the task data and weights passed in)."""
    m = compiled.memory_analysis()
    if m is None:
        return {"peak_bytes": None, "temp_bytes": None}
    return {
        "peak_bytes": int(
            m.argument_size_in_bytes
            + m.output_size_in_bytes
            + m.temp_size_in_bytes
            - m.alias_size_in_bytes
        ),
        "temp_bytes": int(m.temp_size_in_bytes),
        "argument_bytes": int(m.argument_size_in_bytes),
    }


# --------------------------------------------------------------------------
# the library


class LibraryRun:
    """One compiled session (single network, or an ensemble of ``k``), ready to
    run ``n <= capacity`` trials per call (``n`` is a runtime argument, as in
    ``rflo.train``: one compilation serves every call)."""

    def __init__(
        self,
        rule,
        online,
        n_rec,
        steps,
        k=None,
        unroll=None,
        capacity=1,
        cell=None,
        distinct=None,
        route="auto",
    ):
        """``cell``: a cell name (default the leaky tanh); ``distinct``: for large
        ensembles, make only this many different networks and repeat them to K
        (the same arithmetic; building thousands on the host would take longer
        than the timing)."""
        kw = {} if cell is None else {"cell": cell}
        unroll = unroll if unroll is not None else _default_unroll()
        rates = dict(zip(("w_in", "w_rec", "w_out"), LR))
        setup = Setup(unroll=unroll, route=route)
        if cell is not None:  # a cell without the three matrices trains what it has
            probe = rflo.init_network(1, 2, 1, seed=0, **kw)
            if not set(rates) <= set(param_names(probe)):
                rates = {n: LR[1] for n in trainable_names(probe)}
                setup = setup._replace(params=tuple(rates))
        cfg = Config(get_rule(rule), bool(online), setup)
        task = rflo.periodic_task(duration=steps)
        self.data = trial_data(task, 1, "float32")
        self.lr = {n: jnp.asarray(v, jnp.float32) for n, v in rates.items()}
        t0 = time.perf_counter()
        if k is None:
            net = rflo.init_network(1, n_rec, 1, seed=0, **kw)
            self.net = jax.tree_util.tree_map(jnp.asarray, net)
            w = params_of(self.net, tuple(rates))
            opt_state = init_opt_state(None, self.lr, w)
            self.state = SessionState(w, opt_state, new_guard(w, opt_state, 1e4, "float32"))
            self.key = jax.random.PRNGKey(0)
            lowered = run_chunk.lower(
                cfg, None, self.net, self.state, self.lr, self.key, self.data, 0, 1, capacity
            )
        else:
            made = k if distinct is None else max(1, min(k, distinct))
            nets = jax.tree_util.tree_map(
                jnp.asarray, init_ensemble(1, n_rec, 1, seeds=range(made), **kw)
            )
            if made < k:
                reps = -(-k // made)
                nets = jax.tree_util.tree_map(
                    lambda a: jnp.tile(a, (reps,) + (1,) * (a.ndim - 1))[:k], nets
                )
            self.net = nets
            w = params_of(self.net, tuple(rates))
            opt_state = init_ensemble_opt_state(None, self.lr, w, None)
            guard = jax.vmap(lambda w, o: new_guard(w, o, 1e4, "float32"))(w, opt_state)
            self.state = SessionState(w, opt_state, guard)
            self.key = jnp.stack([jax.random.PRNGKey(s) for s in range(k)])
            lowered = run_ensemble_chunk.lower(
                cfg,
                None,
                self.net,
                self.state,
                self.lr,
                self.key,
                self.data,
                0,
                1,
                capacity,
                None,
                None,
            )
        self.compiled = lowered.compile()
        self.compile_s = time.perf_counter() - t0
        self.memory = compiled_memory(self.compiled)

    def __call__(self, n=1):
        out = self.compiled(self.net, self.state, self.lr, self.key, self.data, 0, n)
        jax.block_until_ready(out)
        return out


def _default_unroll():
    """What ``rflo.train`` uses when not told (``unroll=None``): 1 on a CPU."""
    from rflo.session_checks import default_unroll

    return default_unroll()


def time_library(
    rule,
    online,
    n_rec,
    steps,
    budget_s,
    k=None,
    unroll=None,
    target_call_s=0.004,
    capacity=512,
    cell=None,
    min_repeats=5,
    route="auto",
):
    """Compile once, estimate the trial time, then time calls of about ``target_call_s``."""
    run = LibraryRun(
        rule, online, n_rec, steps, k=k, unroll=unroll, capacity=capacity, cell=cell, route=route
    )
    run(1)  # first run (allocations)
    t0 = time.perf_counter()
    run(1)
    per_call = calls_for(time.perf_counter() - t0, target_call_s)
    n = min(capacity, per_call)
    t = repeat_timing(lambda: run(n), n, budget_s, min_repeats=min_repeats)
    per_net = k or 1
    return {
        "seconds_per_trial": t["best"] / per_net,
        "seconds_per_trial_median": t["median"] / per_net,
        "cpu_seconds_per_trial": t["cpu_best"] / per_net,
        "cpu_seconds_per_trial_median": t["cpu_median"] / per_net,
        "trials_per_s": per_net / t["best"],
        "compile_s": run.compile_s,
        "trials_per_call": n,
        "repeats": t["repeats"],
        **run.memory,
    }


def library_memory(rule, online, n_rec, steps):
    """Compile only (nothing runs) and read XLA's memory analysis."""
    run = LibraryRun(rule, online, n_rec, steps, capacity=1)
    return {**run.memory, "compile_s": run.compile_s}


# --------------------------------------------------------------------------
# the notebook's numpy loop


def numpy_problem(n_rec, steps):
    net = rflo.init_network(1, n_rec, 1, seed=0)
    task = rflo.periodic_task(duration=steps)
    x, y, _ = task.trial()
    w = {k: np.asarray(getattr(net, k), float) for k in ("w_in", "w_rec", "w_out", "b")}
    return w, np.asarray(net.h0, float), float(net.tau), np.asarray(x, float), np.asarray(y, float)


def time_numpy(rule, online, n_rec, steps, budget_s):
    w, h0, tau, x, y = numpy_problem(n_rec, steps)
    learning = NUMPY_TWIN[rule]

    def one():
        seed_run_trial(w, h0, tau, x, y, eta=LR, learning=learning, online=online)

    tracemalloc.start()
    t0 = time.perf_counter()
    one()
    first = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    t = repeat_timing(one, 1, budget_s, min_repeats=1 if first > 1 else 3)
    best = min(t["best"], first)
    return {
        "seconds_per_trial": best,
        "seconds_per_trial_median": t["median"],
        "cpu_seconds_per_trial": t["cpu_best"],
        "cpu_seconds_per_trial_median": t["cpu_median"],
        "trials_per_s": 1.0 / best,
        "repeats": t["repeats"] + 1,
        "peak_bytes": int(peak),
    }


def numpy_memory(rule, online, n_rec, steps):
    w, h0, tau, x, y = numpy_problem(n_rec, steps)
    tracemalloc.start()
    seed_run_trial(w, h0, tau, x, y, eta=LR, learning=NUMPY_TWIN[rule], online=online)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"peak_bytes": int(peak)}


class Skipper:
    """Predicts a trial's time at a size from the measured smaller sizes."""

    def __init__(self, max_trial_s):
        self.max_trial_s = max_trial_s
        self.seen = {}

    def predict(self, key, rule, n_rec):
        if key not in self.seen:
            return None
        n0, t0 = self.seen[key]
        return t0 * (n_rec / n0) ** cost_exponent(rule)

    def skip(self, key, rule, n_rec):
        p = self.predict(key, rule, n_rec)
        return p is not None and p > self.max_trial_s, p

    def record(self, key, n_rec, seconds):
        self.seen[key] = (n_rec, seconds)
