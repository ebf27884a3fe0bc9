"""Speed and memory of rflo's learning rules, side by side with the notebook's numpy loop.

    python benchmarks/run.py            # the full benchmark (several minutes on 2 cores)
    python benchmarks/run.py --quick    # a smoke test (seconds)

For every registered rule (``rflo.rules.rule_names()``, or ``--rules``), offline
and (where the rule allows it) online, at n_rec = 20, 50, 100, 200 and T = 100
steps (float32, the seed's periodic task, one input and one output), it times:

* ``library``: rflo's compiled session (the function ``rflo.train`` runs), per trial;
* ``numpy``: the plain-numpy transcription of the notebook's ``run_trial``
  (tests/seed_notebook.py, float64 as in the notebook), for the rules it has;
* ``ensemble``: ``rflo.ensemble.train_ensemble``'s compiled call with K = 1, 8, 64
  networks, per network-trial (at n_rec = 50 unless ``--ensemble-sizes``).

Timing: compilation is done first and reported apart (``compile_s``); then the
same call is repeated many times and the per-trial time is the minimum over the
repeats (``best``; the median is reported too).  Each repeat is short, so on a
busy machine the minimum is a repeat that ran without being preempted; the
library and the numpy loop are timed alternately in this one process, so their
ratios hold even when the machine is noisy.  Rules whose trial would take more
than ``--max-trial-s`` (2 s) at a size, predicted from the smaller sizes with the
rule's cost exponent, are skipped there and say so.

Memory: for the library, XLA's own account of the compiled executable
(``jax.jit(...).lower(...).compile().memory_analysis()``: arguments + outputs +
temporaries - aliased, i.e. everything the executable holds at once); for numpy,
``tracemalloc``'s peak over one trial.  Memory rows at T = 100 and T = 10,000
show that BPTT keeps the trial's history while the online rules do not.

Results go to ``benchmarks/results.json`` (``--out``); ``benchmarks/make_table.py``
turns them into the README's table, and a log-log cost-scaling figure is drawn
to ``benchmarks/scaling.png`` (``--figure``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

import rflo  # noqa: E402
from make_table import fmt_bytes  # noqa: E402  (same folder: the table's formatting)
from make_table import fmt_time as _fmt_time  # noqa: E402
from rflo.ensemble import init_ensemble  # noqa: E402
from rflo.network import params_of  # noqa: E402
from rflo.rules import Setup, get_rule, rule_names  # noqa: E402
from rflo.rules.rtrl import influence_bytes  # noqa: E402
from rflo.trainer import (  # noqa: E402
    Config, SessionState, init_ensemble_opt_state, init_opt_state, new_guard, run_chunk,
    run_ensemble_chunk, trial_data,
)
from seed_notebook import seed_run_trial  # noqa: E402

#: the notebook's loop has these three rules; the ablations cost the same as
#: their twins (same traces, other feedback matrix), so they are timed with them.
NUMPY_TWIN = {"rflo": "rflo", "local": "rflo", "rtrl": "rtrl", "random_feedback": "rtrl",
              "bptt": "bptt"}

#: cost of one trial ~ n_rec ** exponent (per step: RTRL n^4, the others n^2)
EXPONENT = {"rtrl": 4, "random_feedback": 4}

LR = (0.0, 0.03, 0.03)  # the seed's experiment: W_in frozen

#: the ensemble size the library trains together by default on a CPU (a sweep's
#: ``max_networks``)
DEFAULT_ENSEMBLE = 64


def cost_exponent(rule):
    return EXPONENT.get(rule, 2)


# --------------------------------------------------------------------------
# machine description


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info():
    """numpy's BLAS as built and as running (threadpoolctl, when installed)."""
    info = {
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
    }
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["build"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration")}
    except Exception as exc:  # older numpy
        info["build"] = f"unavailable: {exc}"
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [
            {k: p.get(k) for k in ("internal_api", "version", "num_threads", "architecture",
                                   "threading_layer")}
            for p in threadpool_info()
        ]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed (pip install threadpoolctl)"
    return info


def kernel_info():
    """Whether rflo's compiled CPU kernels ran (rflo.kernels), and with how many threads."""
    from rflo import kernels
    from rflo.kernels import leaky_tanh

    return {"enabled": kernels.enabled(), "built": leaky_tanh.available("float32"),
            "threads": kernels.threads()}


def machine_info():
    dev = jax.devices()[0]
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "jax_device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}".rstrip(":"),
        "jax_devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "numpy_blas": blas_info(),
    }


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
    return {"best": min(walls), "median": statistics.median(walls), "cpu_best": min(cpus),
            "cpu_median": statistics.median(cpus), "repeats": len(walls)}


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
        "peak_bytes": int(m.argument_size_in_bytes + m.output_size_in_bytes
                          + m.temp_size_in_bytes - m.alias_size_in_bytes),
        "temp_bytes": int(m.temp_size_in_bytes),
        "argument_bytes": int(m.argument_size_in_bytes),
    }


# --------------------------------------------------------------------------
# the library


class LibraryRun:
    """One compiled session (single network, or an ensemble of ``k``), ready to
    run ``n <= capacity`` trials per call (``n`` is a runtime argument, as in
    ``rflo.train``: one compilation serves every call)."""

    def __init__(self, rule, online, n_rec, steps, k=None, unroll=None, capacity=1):
        unroll = unroll if unroll is not None else _default_unroll()
        cfg = Config(get_rule(rule), bool(online), Setup(unroll=unroll))
        task = rflo.periodic_task(duration=steps)
        self.data = trial_data(task, 1, "float32")
        self.lr = {n: jnp.asarray(v, jnp.float32) for n, v in zip(("w_in", "w_rec", "w_out"), LR)}
        t0 = time.perf_counter()
        if k is None:
            net = rflo.init_network(1, n_rec, 1, seed=0)
            self.net = jax.tree_util.tree_map(jnp.asarray, net)
            w = params_of(self.net)
            opt_state = init_opt_state(None, self.lr, w)
            self.state = SessionState(w, opt_state, new_guard(w, opt_state, 1e4, "float32"))
            self.key = jax.random.PRNGKey(0)
            lowered = run_chunk.lower(cfg, None, self.net, self.state, self.lr, self.key,
                                      self.data, 0, 1, capacity)
        else:
            nets = init_ensemble(1, n_rec, 1, seeds=range(k))
            self.net = jax.tree_util.tree_map(jnp.asarray, nets)
            w = params_of(self.net)
            opt_state = init_ensemble_opt_state(None, self.lr, w, None)
            guard = jax.vmap(lambda w, o: new_guard(w, o, 1e4, "float32"))(w, opt_state)
            self.state = SessionState(w, opt_state, guard)
            self.key = jnp.stack([jax.random.PRNGKey(s) for s in range(k)])
            lowered = run_ensemble_chunk.lower(cfg, None, self.net, self.state, self.lr, self.key,
                                               self.data, 0, 1, capacity, None, None)
        self.compiled = lowered.compile()
        self.compile_s = time.perf_counter() - t0
        self.memory = compiled_memory(self.compiled)

    def __call__(self, n=1):
        out = self.compiled(self.net, self.state, self.lr, self.key, self.data, 0, n)
        jax.block_until_ready(out)
        return out


def _default_unroll():
    import inspect

    return inspect.signature(rflo.train).parameters["unroll"].default


def time_library(rule, online, n_rec, steps, budget_s, k=None, unroll=None,
                 target_call_s=0.004, capacity=512):
    """Compile once, estimate the trial time, then time calls of about ``target_call_s``."""
    run = LibraryRun(rule, online, n_rec, steps, k=k, unroll=unroll, capacity=capacity)
    run(1)  # first run (allocations)
    t0 = time.perf_counter()
    run(1)
    per_call = calls_for(time.perf_counter() - t0, target_call_s)
    n = min(capacity, per_call)
    t = repeat_timing(lambda: run(n), n, budget_s)
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


# --------------------------------------------------------------------------
# peers: FranzKnut/jax_rtrl (benchmarks/peers/jax_rtrl_driver.py)

#: (rule, online) of rflo and the peer driver's name for the same training
PEER_CASES = [("rflo", True, "rflo_online"), ("rflo", False, "rflo_offline"),
              ("bptt", False, "bptt_offline"), ("rtrl", False, "rtrl_offline")]


def load_jax_rtrl(path):
    """The peer driver module, or the reason it cannot be used here."""
    if path is None:
        return None, "not asked for (--jax-rtrl PATH)"
    path = Path(path).expanduser().resolve()
    if not (path / "jax_rtrl").is_dir():
        return None, f"{path} is not a jax_rtrl checkout"
    sys.path.insert(0, str(path))
    sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))
    try:
        import jax_rtrl_driver
    except ImportError as exc:
        return None, (f"jax_rtrl does not import here ({exc}); make its environment with "
                      "benchmarks/peers/install_jax_rtrl.sh")
    return jax_rtrl_driver, None


def time_peers(driver, n_rec, steps, budget_s, rounds=3, cases=PEER_CASES):
    """rflo and the peer on the same network size, trial and SGD, alternating
    ``rounds`` times in this process; the best of every round counts."""
    task = rflo.periodic_task(duration=steps)
    x, y, _ = task.trial()
    rows = []
    for rule, online, peer_name in cases:
        ours = LibraryRun(rule, online, n_rec, steps, capacity=512)
        peer = driver.make(peer_name, n_rec, x, y, lr=LR[1])
        ours(1), peer(1)  # compile and first run
        t0 = time.perf_counter(); ours(1); n_ours = min(512, calls_for(time.perf_counter() - t0, 0.004))
        t0 = time.perf_counter(); peer(1); n_peer = calls_for(time.perf_counter() - t0, 0.004)
        best = {"library": [], "peer": []}
        for _ in range(rounds):
            best["library"].append(repeat_timing(lambda: ours(n_ours), n_ours, budget_s / rounds))
            best["peer"].append(repeat_timing(lambda: peer(n_peer), n_peer, budget_s / rounds))
        lib = min(t["best"] for t in best["library"])
        other = min(t["best"] for t in best["peer"])
        rows.append({"kind": "peer", "peer": "jax_rtrl", "rule": rule, "mode": mode_name(online),
                     "n_rec": n_rec, "steps": steps, "dtype": "float32",
                     "library": {"seconds_per_trial": lib},
                     "jax_rtrl": {"seconds_per_trial": other, "driver": peer_name},
                     "speedup": other / lib})
    return rows


# --------------------------------------------------------------------------
# before and after: the XLA paths against the compiled kernels, in one run


class xla_paths:
    """Inside: sessions compile without rflo's kernels (``RFLO_KERNELS=0``);
    a session compiled inside keeps running the XLA paths after it."""

    def __enter__(self):
        from rflo import kernels
        from rflo.kernels import leaky_tanh

        self.old = os.environ.get(kernels.ENV_DISABLE)
        os.environ[kernels.ENV_DISABLE] = "0"
        leaky_tanh._STATE.clear()
        kernels._LOADED.clear()
        jax.clear_caches()  # trace anew: the kernels are decided while tracing
        return self

    def __exit__(self, *exc):
        from rflo import kernels
        from rflo.kernels import leaky_tanh

        if self.old is None:
            os.environ.pop(kernels.ENV_DISABLE, None)
        else:
            os.environ[kernels.ENV_DISABLE] = self.old
        leaky_tanh._STATE.clear()
        kernels._LOADED.clear()
        jax.clear_caches()


KERNEL_CASES = [("rflo", True), ("rflo", False), ("bptt", False), ("rtrl", False)]


def time_kernels(n_rec, steps, budget_s, rounds=3, cases=KERNEL_CASES):
    """Each case compiled twice (kernels, XLA paths), timed alternately."""
    rows = []
    for rule, online in cases:
        fast = LibraryRun(rule, online, n_rec, steps, capacity=512)
        with xla_paths():
            slow = LibraryRun(rule, online, n_rec, steps, capacity=512)
        timed = {}
        for name, run_ in (("kernels", fast), ("xla", slow)):
            run_(1)
            t0 = time.perf_counter()
            run_(1)
            timed[name] = (run_, min(512, calls_for(time.perf_counter() - t0, 0.004)), [])
        for _ in range(rounds):
            for name, (run_, n, best) in timed.items():
                best.append(repeat_timing(lambda: run_(n), n, budget_s / rounds)["best"])
        k, x = min(timed["kernels"][2]), min(timed["xla"][2])
        rows.append({"kind": "kernels", "rule": rule, "mode": mode_name(online), "n_rec": n_rec,
                     "steps": steps, "kernels": {"seconds_per_trial": k},
                     "xla": {"seconds_per_trial": x}, "speedup": x / k})
    return rows


# --------------------------------------------------------------------------
# the benchmark


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


def fmt_time(s):
    return _fmt_time(s, micro="us")  # plain ASCII on the terminal



def mode_name(online):
    return "online" if online else "offline"


def run(args):
    results = []
    log = print if not args.json_only else (lambda *a, **k: None)
    machine = machine_info()
    log(f"JAX {machine['jax']} on device {machine['jax_device']} ({machine['jax_devices'][0]}); "
        f"CPU {machine['cpu']}, {machine['cores_usable']} usable cores; numpy {machine['numpy']}")
    log(f"numpy BLAS: {json.dumps(machine['numpy_blas'].get('threadpools'))}")

    wanted = args.rules
    if wanted is None and args.smoke:
        wanted = [r for r in ("rflo", "bptt", "rtrl") if r in rule_names()]
    rules = [r for r in rule_names() if wanted is None or r in wanted]
    unknown = sorted(set(args.rules or []) - set(rule_names()))
    if unknown:
        raise SystemExit(f"unknown rule(s) {unknown}: registered rules are {rule_names()}")
    lib_skip, np_skip = Skipper(args.max_trial_s), Skipper(args.max_trial_s)

    # ---- per-trial speed: library vs numpy, interleaved
    log(f"\n== seconds per trial, T = {args.steps}, float32 (numpy loop: float64, as the notebook)")
    header = (f"{'rule':<16}{'mode':<8}{'n_rec':>6}{'library':>12}{'numpy':>12}{'speed-up':>10}"
              f"{'compile':>10}{'lib mem':>11}{'numpy mem':>11}")
    log(header)
    for n_rec in args.sizes:
        for rule in rules:
            modes = [False] + ([True] if get_rule(rule).online else [])
            for online in modes:
                key = (rule, online)
                row = {"kind": "speed", "rule": rule, "mode": mode_name(online), "n_rec": n_rec,
                       "steps": args.steps, "dtype": "float32"}
                skip, pred = lib_skip.skip(key, rule, n_rec)
                if skip:
                    row["library"] = {"skipped": f"predicted {pred:.1f} s per trial > {args.max_trial_s} s"}
                else:
                    row["library"] = time_library(rule, online, n_rec, args.steps, args.budget,
                                                  unroll=args.unroll)
                    lib_skip.record(key, n_rec, row["library"]["seconds_per_trial"])
                if not args.no_numpy and rule in NUMPY_TWIN:
                    skip, pred = np_skip.skip(key, rule, n_rec)
                    if skip:
                        row["numpy"] = {"skipped": f"predicted {pred:.1f} s per trial > {args.max_trial_s} s"}
                    else:
                        row["numpy"] = time_numpy(rule, online, n_rec, args.steps, args.budget)
                        np_skip.record(key, n_rec, row["numpy"]["seconds_per_trial"])
                lib = row["library"].get("seconds_per_trial")
                nump = row.get("numpy", {}).get("seconds_per_trial")
                if lib and nump:
                    row["speedup"] = nump / lib
                    row["speedup_median"] = (row["numpy"]["seconds_per_trial_median"]
                                             / row["library"]["seconds_per_trial_median"])
                    row["speedup_cpu"] = (row["numpy"]["cpu_seconds_per_trial"]
                                          / row["library"]["cpu_seconds_per_trial"])
                results.append(row)
                speedup = f"{row['speedup']:.1f}x" if "speedup" in row else "-"
                compile_s = row["library"].get("compile_s")
                compile_txt = f"{compile_s:.2f} s" if compile_s is not None else "skip"
                log(f"{rule:<16}{mode_name(online):<8}{n_rec:>6}{fmt_time(lib):>12}{fmt_time(nump):>12}"
                    f"{speedup:>10}{compile_txt:>10}"
                    f"{fmt_bytes(row['library'].get('peak_bytes')):>11}"
                    f"{fmt_bytes(row.get('numpy', {}).get('peak_bytes')):>11}", flush=True)

    # ---- ensembles
    log(f"\n== ensembles (train_ensemble): seconds per network-trial, T = {args.steps}")
    log(f"{'rule':<16}{'mode':<8}{'n_rec':>6}" + "".join(f"{'K=' + str(k):>12}" for k in args.ensemble)
        + f"{'K=' + str(max(args.ensemble)) + ' vs K=' + str(min(args.ensemble)):>16}")
    for n_rec in ([] if args.no_ensemble else args.ensemble_sizes):
        for rule in rules:
            modes = [False] + ([True] if get_rule(rule).online else [])
            for online in modes:
                cells, per = [], {}
                single = None
                for k in sorted(args.ensemble):
                    row = {"kind": "ensemble", "rule": rule, "mode": mode_name(online),
                           "n_rec": n_rec, "steps": args.steps, "K": k, "dtype": "float32"}
                    if single is not None and single * k > args.max_trial_s:
                        row["library"] = {"skipped": f"predicted {single * k:.1f} s per call > {args.max_trial_s} s"}
                    else:
                        row["library"] = time_library(rule, online, n_rec, args.steps, args.budget,
                                                      k=k, unroll=args.unroll)
                        if single is None:
                            single = row["library"]["seconds_per_trial"]
                        per[k] = row["library"]["seconds_per_trial"]
                    results.append(row)
                    cells.append(fmt_time(row["library"].get("seconds_per_trial")))
                lo, hi = min(args.ensemble), max(args.ensemble)
                gain = per[lo] / per[hi] if lo in per and hi in per else None
                log(f"{rule:<16}{mode_name(online):<8}{n_rec:>6}" + "".join(f"{c:>12}" for c in cells)
                    + f"{(format(gain, '.1f') + 'x') if gain else '-':>16}", flush=True)

    # ---- before and after: the XLA paths against the kernels
    if not args.no_kernel_compare and kernel_info()["built"]:
        log(f"\n== the XLA paths against rflo's kernels (n_rec 50, T {args.steps}, alternating)")
        for row in time_kernels(50, args.steps, args.budget * 3):
            results.append(row)
            log(f"{row['rule']:<8}{row['mode']:<8} XLA {fmt_time(row['xla']['seconds_per_trial']):>10}"
                f"   kernels {fmt_time(row['kernels']['seconds_per_trial']):>10}"
                f"   {row['speedup']:.2f}x", flush=True)

    # ---- peers
    if args.jax_rtrl is not None:
        driver, why = load_jax_rtrl(args.jax_rtrl)
        log(f"\n== rflo vs FranzKnut/jax_rtrl (same network, trial and SGD; alternating, "
            f"n_rec {args.peer_size}, T {args.steps})")
        if driver is None:
            log(f"skipped: {why}")
            results.append({"kind": "peer", "peer": "jax_rtrl", "skipped": why})
        else:
            for row in time_peers(driver, args.peer_size, args.steps, args.budget * 3):
                results.append(row)
                log(f"{row['rule']:<8}{row['mode']:<8} rflo {fmt_time(row['library']['seconds_per_trial']):>10}"
                    f"   jax_rtrl {fmt_time(row['jax_rtrl']['seconds_per_trial']):>10}"
                    f"   {row['speedup']:.2f}x", flush=True)

    # ---- arithmetic: RTRL against this machine's one-core matmul peak
    if not args.no_peak and "rtrl" in rules:
        peak = matmul_peak()
        for row in results:
            if (row["kind"] == "speed" and row["rule"] == "rtrl" and row["mode"] == "offline"
                    and row["n_rec"] == 50 and "seconds_per_trial" in row["library"]):
                flops = rtrl_flops(row["n_rec"], 1, row["steps"])
                row["gflops"] = flops / row["library"]["seconds_per_trial"] / 1e9
                row["matmul_peak_gflops"] = peak
                log(f"\nrtrl offline at n_rec 50: {row['gflops']:.1f} GFLOP/s; one core's "
                    f"512x512 float32 matmul: {peak:.1f} GFLOP/s ({row['gflops'] / peak:.0%})")

    # ---- a sweep over every core
    if not args.no_sweep:
        from sweep_devices import compare

        cores = len(os.sched_getaffinity(0))
        if cores < 2:
            log("\n== sweep over every core: skipped (one usable core)")
        else:
            log(f"\n== sweep over every core ({cores} host devices vs one device pinned to one core; "
                f"64 networks x {args.sweep_trials} trials, fresh processes)")
            sweep = compare(devices=cores, trials=args.sweep_trials, rounds=args.sweep_rounds)
            results.append({"kind": "sweep", **sweep})
            for name, value in sweep["best_network_trials_per_s"].items():
                log(f"  {name:>10}: {value:9.0f} network-trials/s")
            log(f"  ratio: {sweep['ratio']:.2f}x", flush=True)

    # ---- memory against T
    log("\n== memory: library = XLA memory analysis of the compiled session (work = temporaries;"
        " total adds the weights and the task's T-long inputs/targets); numpy = tracemalloc peak")
    log(f"{'rule':<16}{'mode':<8}{'n_rec':>6}"
        + "".join(f"{'work T=' + str(t):>16}" for t in args.memory_steps)
        + "".join(f"{'total T=' + str(t):>16}" for t in args.memory_steps)
        + f"{'numpy T=' + str(max(args.memory_steps)):>16}")
    mem_cases = [(r, o) for r in rules for o in ([False] + ([True] if get_rule(r).online else []))]
    for n_rec in ([] if args.no_memory else args.memory_sizes):
        for rule, online in mem_cases:
            work, total = [], []
            for steps in args.memory_steps:
                lib = library_memory(rule, online, n_rec, steps)
                row = {"kind": "memory", "rule": rule, "mode": mode_name(online), "n_rec": n_rec,
                       "steps": steps, "dtype": "float32", "library": lib}
                if (not args.no_numpy and rule in NUMPY_TWIN and steps == max(args.memory_steps)
                        and NUMPY_TWIN[rule] == rule and cost_exponent(rule) == 2):
                    row["numpy"] = numpy_memory(rule, online, n_rec, steps)
                results.append(row)
                work.append(fmt_bytes(lib["temp_bytes"]))
                total.append(fmt_bytes(lib["peak_bytes"]))
            log(f"{rule:<16}{mode_name(online):<8}{n_rec:>6}" + "".join(f"{c:>16}" for c in work + total)
                + f"{fmt_bytes(row.get('numpy', {}).get('peak_bytes')):>16}", flush=True)

    for row in results:
        if (row["kind"] == "memory" and row["rule"] == "rtrl" and row["mode"] == "online"
                and row["steps"] == max(args.memory_steps)):
            state = influence_bytes(row["n_rec"], 1, "float32")
            row["rtrl_state_bytes"] = state
            log(f"rtrl at n_rec = {row['n_rec']} needs {fmt_bytes(state)} of influence tensors "
                f"(n^3 + n^2 n_in floats) and {fmt_bytes(row['library']['peak_bytes'])} in all "
                f"for a session, whatever T")

    targets = check_targets(results, args)
    if targets:
        log("\n== targets (n_rec 50, T 100, float32, one process unless said)")
        for t in targets:
            cpu = t.get("cpu_time_based")
            log(f"{t['name']:<46}{t['measured']:>8}  (target >= {t['target']}x)  "
                f"{'met' if t['met'] else 'NOT MET':<8}"
                + (f"  [from CPU time: {cpu:.1f}x]" if cpu else ""))
    return {
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "machine": machine,
        "settings": {
            "steps": args.steps, "sizes": args.sizes, "ensemble": args.ensemble,
            "ensemble_sizes": args.ensemble_sizes, "memory_steps": args.memory_steps,
            "memory_sizes": args.memory_sizes, "budget_s": args.budget,
            "max_trial_s": args.max_trial_s, "unroll": args.unroll or _default_unroll(),
            "learning_rates": LR, "quick": args.quick, "smoke": args.smoke,
            "jax_rtrl": str(args.jax_rtrl) if args.jax_rtrl else None,
            "kernels": kernel_info(),
            "timing": "per-trial time = wall-clock minimum over repeated short calls (median and "
                      "process CPU time also given); compilation excluded and reported as compile_s",
            "memory_library": "XLA memory_analysis of the compiled executable: "
                              "argument + output + temp - alias bytes",
            "memory_numpy": "tracemalloc peak over one trial",
            "numpy_loop": "tests/seed_notebook.py seed_run_trial (the notebook's loop, float64)",
        },
        "results": results,
        "targets": targets,
    }


def check_targets(results, args):
    """The issue's targets, from this run's rows (n_rec 50, offline)."""
    out = []
    want = {"rflo": 60, "bptt": 30, "rtrl": 3}
    for row in results:
        if (row["kind"] == "speed" and row["n_rec"] == 50 and row["mode"] == "offline"
                and row["steps"] == 100 and row["rule"] in want and "speedup" in row):
            out.append({"name": f"{row['rule']} offline vs numpy loop", "target": want[row["rule"]],
                        "measured": f"{row['speedup']:.1f}x", "value": row["speedup"],
                        "median_based": row.get("speedup_median"),
                        "cpu_time_based": row.get("speedup_cpu"),
                        "met": row["speedup"] >= want[row["rule"]]})
    ens = {}
    for row in results:
        if row["kind"] == "ensemble" and row["n_rec"] == 50 and "seconds_per_trial" in row["library"]:
            ens[(row["rule"], row["mode"], row["K"])] = (row["library"]["seconds_per_trial"],
                                                         row["library"]["cpu_seconds_per_trial"])
    for (rule, mode, k), t in sorted(ens.items()):
        if k == 64 and (rule, mode, 1) in ens and mode == "offline":
            gain = ens[(rule, mode, 1)][0] / t[0]
            out.append({"name": f"{rule} ensemble K=64 vs K=1 (network-trials/s)", "target": 4,
                        "measured": f"{gain:.1f}x", "value": gain,
                        "cpu_time_based": ens[(rule, mode, 1)][1] / t[1], "met": gain >= 4})
    # issue 16: against the peer, ensembles, every core
    peer_want = {("rflo", "online"): 2.5, ("rflo", "offline"): 5, ("bptt", "offline"): 3,
                 ("rtrl", "offline"): 1.5}
    for row in results:
        key = (row.get("rule"), row.get("mode"))
        if row["kind"] == "peer" and "speedup" in row and key in peer_want:
            out.append({"name": f"{key[0]} {key[1]} vs jax_rtrl", "target": peer_want[key],
                        "measured": f"{row['speedup']:.2f}x", "value": row["speedup"],
                        "met": row["speedup"] >= peer_want[key]})
    for row in results:
        if row["kind"] == "speed" and "gflops" in row:
            share = row["gflops"] / row["matmul_peak_gflops"]
            out.append({"name": "rtrl offline / one-core matmul peak", "target": 0.6,
                        "measured": f"{share:.2f}x", "value": share, "met": share >= 0.6})
    single = {(r["rule"], r["mode"]): r["library"]["seconds_per_trial"] for r in results
              if r["kind"] == "speed" and r["n_rec"] == 50 and "seconds_per_trial" in r["library"]}
    k_default = DEFAULT_ENSEMBLE
    for (rule, mode, k), t in sorted(ens.items()):
        if k == k_default and (rule, mode) in single:
            gain = single[(rule, mode)] / t[0]
            out.append({"name": f"{rule} {mode} ensemble K={k} vs one network (train)",
                        "target": 1.5, "measured": f"{gain:.2f}x", "value": gain,
                        "met": gain >= 1.5})
    for row in results:
        if row["kind"] == "sweep":
            out.append({"name": f"sweep on {row['devices']} cores vs one core", "target": 1.8,
                        "measured": f"{row['ratio']:.2f}x", "value": row["ratio"],
                        "met": row["ratio"] >= 1.8})
    return out


def matmul_peak(size=512, repeats=20):
    """GFLOP/s of a ``size`` x ``size`` float32 matmul on one core (a process
    pinned with taskset, so that XLA's threads cannot spread it)."""
    code = ("import time, jax, jax.numpy as jnp\n"
            f"a = jnp.ones(({size}, {size}), jnp.float32)\n"
            "f = jax.jit(lambda a: a @ a); f(a).block_until_ready()\n"
            "best = 1e9\n"
            f"for _ in range({repeats}):\n"
            "    t0 = time.perf_counter(); f(a).block_until_ready()\n"
            "    best = min(best, time.perf_counter() - t0)\n"
            f"print(2 * {size} ** 3 / best / 1e9)\n")
    import subprocess

    core = str(sorted(os.sched_getaffinity(0))[0])
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run(["taskset", "-c", core, sys.executable, "-c", code], env=env,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def rtrl_flops(n_rec, n_in, steps):
    """Floating-point operations of RTRL's influence update over a trial: the
    (n, n) Jacobian times the (n, n (n + n_in)) influence, each step."""
    return 2.0 * n_rec * n_rec * n_rec * (n_rec + n_in) * (steps - 1)


def plot_scaling(report, path, small_path=None):
    """Seconds per trial against n_rec, log-log, with the theory's slopes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["results"] if r["kind"] == "speed"
            and "seconds_per_trial" in r["library"]]
    series = {}
    for r in rows:
        series.setdefault((r["rule"], r["mode"]), []).append((r["n_rec"], r["library"]["seconds_per_trial"]))
    fig, ax = plt.subplots(figsize=(7, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, ((rule, mode), pts) in enumerate(sorted(series.items())):
        pts.sort()
        n = np.array([p[0] for p in pts], float)
        t = np.array([p[1] for p in pts], float)
        color = colors[i % len(colors)]
        label = f"{rule} {mode}"
        if len(n) >= 2:
            slope = np.polyfit(np.log(n[-2:]), np.log(t[-2:]), 1)[0]
            label += f" (measured slope {slope:.1f})"
        ax.loglog(n, t, "o-" if mode == "offline" else "s--", color=color, label=label)
        k = cost_exponent(rule)
        ax.loglog(n, t[-1] * (n / n[-1]) ** k, ":", color=color, alpha=0.6, linewidth=2)
    ax.plot([], [], "k:", alpha=0.6, linewidth=2, label="theory: RTRL ~ N^4, RFLO/BPTT ~ N^2 (per step)")
    m = report["machine"]
    ax.set_xlabel("n_rec (N)")
    ax.set_ylabel(f"seconds per trial (T = {report['settings']['steps']})")
    ax.set_title(f"rflo cost scaling on {m['jax_device']} ({m['cpu']}, {m['cores_usable']} cores)",
                 fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    if small_path is not None:
        fig.savefig(small_path, dpi=60)
    plt.close(fig)


def ints(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def names(text):
    return [v.strip().lower() for v in text.split(",") if v.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="the headline ratios in under 2 minutes: rflo (online and offline), bptt "
                        "and rtrl at n_rec 50, T 100; ensembles of 1 and 64; the sweep over every "
                        "core; jax_rtrl with --jax-rtrl; no memory rows")
    p.add_argument("--smoke", action="store_true",
                   help="a smoke test (seconds): rflo, bptt, rtrl at n_rec 8, T 20")
    p.add_argument("--jax-rtrl", type=Path, default=None, metavar="PATH",
                   help="a FranzKnut/jax_rtrl checkout: time it beside rflo (run in the environment "
                        "benchmarks/peers/install_jax_rtrl.sh makes); skipped when absent")
    p.add_argument("--peer-size", type=int, default=50, help="n_rec of the peer rows (default 50)")
    p.add_argument("--no-sweep", action="store_true", help="skip the sweep over every core")
    p.add_argument("--sweep-trials", type=int, default=1000,
                   help="trials per network in the sweep rows (default 1000)")
    p.add_argument("--sweep-rounds", type=int, default=None, help="fresh processes per setup (3; quick 1)")
    p.add_argument("--no-peak", action="store_true", help="skip the one-core matmul peak")
    p.add_argument("--no-kernel-compare", action="store_true",
                   help="skip the XLA paths against the kernels (before/after)")
    p.add_argument("--rules", type=names, default=None,
                   help=f"comma-separated rule names (default: all registered: {','.join(rule_names())})")
    p.add_argument("--sizes", type=ints, default=None, help="n_rec values (default 20,50,100,200)")
    p.add_argument("--steps", type=int, default=None, help="timesteps per trial (default 100)")
    p.add_argument("--ensemble", type=ints, default=None, help="ensemble sizes K (default 1,8,64)")
    p.add_argument("--ensemble-sizes", type=ints, default=None, help="n_rec of the ensembles (default 50)")
    p.add_argument("--memory-steps", type=ints, default=None, help="T of the memory rows (default 100,10000)")
    p.add_argument("--memory-sizes", type=ints, default=None, help="n_rec of the memory rows (default 50,100)")
    p.add_argument("--budget", type=float, default=None, help="seconds of timing per measurement (default 1.0)")
    p.add_argument("--max-trial-s", type=float, default=2.0,
                   help="skip a rule at a size where one trial (or one ensemble call) would take longer")
    p.add_argument("--unroll", type=int, default=None, help="scan unroll (default: rflo.train's)")
    p.add_argument("--no-numpy", action="store_true", help="skip the notebook's numpy loop")
    p.add_argument("--no-ensemble", action="store_true", help="skip the ensemble rows")
    p.add_argument("--no-memory", action="store_true", help="skip the memory-against-T rows")
    p.add_argument("--out", type=Path, default=None, help="JSON output (default benchmarks/results.json)")
    p.add_argument("--figure", type=Path, default=None, help="scaling figure (default benchmarks/scaling.png)")
    p.add_argument("--no-figure", action="store_true")
    p.add_argument("--json-only", action="store_true", help="print nothing but errors")
    args = p.parse_args(argv)
    smoke, quick = args.smoke, args.quick
    if smoke and quick:
        p.error("--smoke and --quick are two different runs: pick one")
    defaults = {
        "sizes": [8] if smoke else [50] if quick else [20, 50, 100, 200],
        "steps": 20 if smoke else 100,
        "ensemble": [1, 4] if smoke else [1, DEFAULT_ENSEMBLE] if quick else [1, 8, 64],
        "ensemble_sizes": [8] if smoke else [50],
        "memory_steps": [20, 200] if smoke else [100, 10000],
        "memory_sizes": [8] if smoke else [50, 100],
        "budget": 0.05 if smoke else 0.3 if quick else 1.0,
        "sweep_rounds": 1 if quick or smoke else 3,
    }
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if smoke:
        args.no_sweep = args.no_peak = args.no_kernel_compare = True
    if quick:
        args.no_memory = True
        if args.rules is None:
            args.rules = ["rflo", "bptt", "rtrl"]
    if args.steps < 2:
        p.error("--steps must be at least 2")
    short = "quick" if quick else "smoke" if smoke else None
    if args.out is None:
        args.out = ROOT / "benchmarks" / (f"results-{short}.json" if short else "results.json")
    if args.figure is None:
        args.figure = ROOT / "benchmarks" / (f"scaling-{short}.png" if short else "scaling.png")
    return args


def main(argv=None):
    args = parse_args(argv)
    report = run(args)
    text = json.dumps(report, indent=1, default=float)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, args.out)
    if not args.json_only:
        print(f"\nwrote {args.out}")
    if not args.no_figure:
        small = None if (args.quick or args.smoke) else ROOT / "docs" / "scaling.png"
        if small is not None:
            small.parent.mkdir(exist_ok=True)
        plot_scaling(report, args.figure, small)
        if not args.json_only:
            print(f"wrote {args.figure}" + (f" and {small}" if small else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
