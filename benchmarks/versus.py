"""rflo beside others, timed alternately in one process: FranzKnut/jax_rtrl
(benchmarks/peers/jax_rtrl_driver.py) and rflo's own XLA paths against its
compiled kernels (before and after)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import jax
from timing import LR, ROOT, LibraryRun, calls_for, mode_name, repeat_timing

import rflo
from rflo.cells import LeakyTanh

# --------------------------------------------------------------------------
# peers: FranzKnut/jax_rtrl (benchmarks/peers/jax_rtrl_driver.py)

#: (rule, online) of rflo and the peer driver's name for the same training
PEER_CASES = [
    ("rflo", True, "rflo_online"),
    ("rflo", False, "rflo_offline"),
    ("bptt", False, "bptt_offline"),
    ("rtrl", False, "rtrl_offline"),
]


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
        return None, (
            f"jax_rtrl does not import here ({exc}); make its environment with "
            "benchmarks/peers/install_jax_rtrl.sh"
        )
    return jax_rtrl_driver, None


#: rflo's cell beside the peer: the leaky tanh with the true derivative
#: ``1 - tanh(u)**2``, which the peer's autodiff and traces use (rflo's default,
#: the notebook's ``1 / cosh(10 tanh(u / 10))**2``, costs rflo 6-10 us more per
#: trial at n_rec 50: a different computation, not a slower one)
PEER_CELL = LeakyTanh(derivative="exact")


def time_peers(driver, n_rec, steps, budget_s, rounds=3, cases=PEER_CASES):
    """rflo and the peer on the same network size, trial, derivative and SGD,
    alternating ``rounds`` times in this process; the best of every round counts."""
    task = rflo.periodic_task(duration=steps)
    x, y, _ = task.trial()
    rows = []
    for rule, online, peer_name in cases:
        ours = LibraryRun(rule, online, n_rec, steps, capacity=512, cell=PEER_CELL)
        peer = driver.make(peer_name, n_rec, x, y, lr=LR[1])
        ours(1), peer(1)  # compile and first run
        t0 = time.perf_counter()
        ours(1)
        n_ours = min(512, calls_for(time.perf_counter() - t0, 0.004))
        t0 = time.perf_counter()
        peer(1)
        n_peer = calls_for(time.perf_counter() - t0, 0.004)
        best = {"library": [], "peer": []}
        for _ in range(rounds):
            best["library"].append(
                repeat_timing(lambda o=ours, n=n_ours: o(n), n_ours, budget_s / rounds)
            )
            best["peer"].append(
                repeat_timing(lambda p=peer, n=n_peer: p(n), n_peer, budget_s / rounds)
            )
        lib = min(t["best"] for t in best["library"])
        other = min(t["best"] for t in best["peer"])
        rows.append(
            {
                "kind": "peer",
                "peer": "jax_rtrl",
                "rule": rule,
                "mode": mode_name(online),
                "n_rec": n_rec,
                "steps": steps,
                "dtype": "float32",
                "derivative": PEER_CELL.derivative,
                "library": {"seconds_per_trial": lib},
                "jax_rtrl": {"seconds_per_trial": other, "driver": peer_name},
                "speedup": other / lib,
            }
        )
    return rows


# --------------------------------------------------------------------------
# before and after: the XLA paths against the compiled kernels, in one run


@contextlib.contextmanager
def kernel_env(name, value):
    """Inside: sessions compile with the kernel setting ``$name = value``
    (``rflo.kernels.ENV_DISABLE``, ``ENV_THREADS``); the kernels are decided
    while tracing, so JAX's traces and the loaded kernels are forgotten on the
    way in and out, and a session compiled inside keeps the setting after it."""
    from rflo import kernels
    from rflo.kernels import leaky_tanh

    def forget():
        leaky_tanh._STATE.clear()
        kernels._LOADED.clear()
        jax.clear_caches()

    old = os.environ.get(name)
    os.environ[name] = str(value)
    forget()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old
        forget()


def xla_paths():
    """Inside: sessions compile without rflo's kernels (``RFLO_KERNELS=0``)."""
    from rflo import kernels

    return kernel_env(kernels.ENV_DISABLE, "0")


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
            for run_, n, best in timed.values():
                best.append(repeat_timing(lambda r=run_, k=n: r(k), n, budget_s / rounds)["best"])
        k, x = min(timed["kernels"][2]), min(timed["xla"][2])
        rows.append(
            {
                "kind": "kernels",
                "rule": rule,
                "mode": mode_name(online),
                "n_rec": n_rec,
                "steps": steps,
                "kernels": {"seconds_per_trial": k},
                "xla": {"seconds_per_trial": x},
                "speedup": x / k,
            }
        )
    return rows
