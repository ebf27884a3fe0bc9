"""The machine a benchmark ran on: processor, BLAS, rflo's kernels, JAX's device,
and one core's float32 matmul peak (the yardstick of the arithmetic targets)."""

from __future__ import annotations

import ast
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


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
            {
                k: p.get(k)
                for k in (
                    "internal_api",
                    "version",
                    "num_threads",
                    "architecture",
                    "threading_layer",
                )
            }
            for p in threadpool_info()
        ]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed (pip install threadpoolctl)"
    return info


def kernel_info():
    """Whether rflo's compiled CPU kernels ran (rflo.kernels), and with how many threads."""
    from rflo import kernels
    from rflo.kernels import leaky_tanh

    return {
        "enabled": kernels.enabled(),
        "built": leaky_tanh.available("float32"),
        "threads": kernels.threads(),
    }


def _small_loops():
    """rflo's XLA option (rflo.xla_options): the threshold in force, or why not."""
    from rflo import xla_options

    return xla_options.status()


def peer_compiled():
    """A note for the peer's rows where the peer, timed in this process, compiled with
    rflo's small-loop XLA option; empty where the option is off."""
    if _small_loops()["small_loop_bytes"]:
        return " (the peer compiled in the same process, with rflo's small-loop XLA option too)"
    return ""


def machine_info():
    import jax

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
        "xla_small_loops": _small_loops(),
        "numpy_blas": blas_info(),
    }


def matmul_peak(size=512, repeats=20):
    """GFLOP/s of a ``size`` x ``size`` float32 matmul on one core (a process
    pinned with taskset, so that XLA's threads cannot spread it)."""
    code = (
        "import time, jax, jax.numpy as jnp\n"
        f"a = jnp.ones(({size}, {size}), jnp.float32)\n"
        "f = jax.jit(lambda a: a @ a); f(a).block_until_ready()\n"
        "best = 1e9\n"
        f"for _ in range({repeats}):\n"
        "    t0 = time.perf_counter(); f(a).block_until_ready()\n"
        "    best = min(best, time.perf_counter() - t0)\n"
        f"print(2 * {size} ** 3 / best / 1e9)\n"
    )
    return float(_on_one_core(code, {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}))


def _on_one_core(code, env):
    """The last line ``python -c code`` prints, run pinned to this process's first core."""
    core = str(sorted(os.sched_getaffinity(0))[0])
    out = subprocess.run(
        ["taskset", "-c", core, sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def matvec_roof(sizes, repeats=20):
    """{n: GFLOP/s} of one core's best ``n`` x ``n`` float32 matrix-vector
    product (numpy's BLAS, repeated on the same matrix, in a process pinned
    with taskset): the rate a trial's forward pass, T dependent products of
    this shape, cannot beat."""
    code = (
        "import time, numpy as np\n"
        f"out = {{}}\n"
        f"for n in {list(sizes)!r}:\n"
        "    w = np.random.default_rng(0).random((n, n), dtype=np.float32)\n"
        "    h = np.ones(n, np.float32)\n"
        "    reps = max(20, int(2e7 / (2 * n * n)))\n"
        "    best = 1e9\n"
        f"    for _ in range({repeats}):\n"
        "        t0 = time.perf_counter()\n"
        "        for _ in range(reps):\n"
        "            w @ h\n"
        "        best = min(best, (time.perf_counter() - t0) / reps)\n"
        "    out[n] = 2 * n * n / best / 1e9\n"
        "print(repr(out))\n"
    )
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    return {int(k): float(v) for k, v in ast.literal_eval(_on_one_core(code, env)).items()}


#: one process's share of the two-core probe: float32 64 x 64 matmuls on one
#: BLAS thread for a fixed time, starting together with its twins
_BURN = (
    "import os, sys, time\n"
    "import numpy as np\n"
    "a = np.random.default_rng(0).random((64, 64), dtype=np.float32)\n"
    "while time.time() < float(sys.argv[1]):\n"
    "    time.sleep(0.001)\n"
    "t0, n = time.perf_counter(), 0\n"
    "while time.perf_counter() - t0 < float(sys.argv[2]):\n"
    "    for _ in range(200):\n"
    "        a @ a\n"
    "    n += 200\n"
    "print(n / (time.perf_counter() - t0))\n"
)


def core_scaling(cores=2, seconds=1.0, rounds=3):
    """How much ``cores`` independent processes, each pinned to a core of its
    own and doing vector arithmetic (float32 64 x 64 matmuls on one BLAS
    thread, in L1), get done against one alone: the most that ``cores``
    threads can add to any vectorised loop here (two virtual cores that share
    one physical core's vector units reach well under ``cores``).  Best of
    ``rounds`` alternating rounds; None on fewer usable cores."""
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < cores:
        return None
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }

    def burst(n):
        start = time.time() + 1.0  # every process imported numpy by then
        procs = [
            subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    str(usable[i]),
                    sys.executable,
                    "-c",
                    _BURN,
                    str(start),
                    str(seconds),
                ],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(n)
        ]
        return sum(float(p.communicate()[0].strip().splitlines()[-1]) for p in procs)

    one, many = [], []
    for _ in range(rounds):
        one.append(burst(1))
        many.append(burst(cores))
    return {"cores": cores, "one": max(one), "together": max(many), "ratio": max(many) / max(one)}
