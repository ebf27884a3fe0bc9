import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # seed_notebook.py

import rflo  # noqa: E402


def pytest_configure(config):
    """The default run (``-m 'not slow'``, the README's command) is bound by XLA
    compilation, not by running: it compiles with XLA's backend optimisation
    level 0, which cuts its CPU time by about a fifth.  The code and every
    tolerance are the same; only the machine code is less optimised, and the
    slow step (``-m slow``) compiles as users' runs do.  The flag must be set
    before JAX starts its backend (lazily, at the first computation)."""
    if (config.getoption("markexpr") or "").strip() == "not slow":
        flag = "--xla_backend_optimization_level=0"
        flags = os.environ.get("XLA_FLAGS", "")
        if flag not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {flag}".strip()
        _share_compilations(config)
    else:  # the slow step: command-line runs in subprocesses write no cache into ~/.cache
        os.environ.setdefault("RFLO_NO_COMPILE_CACHE", "1")


def _share_compilations(config):
    """The default run also keeps JAX's compilation cache in a folder of its
    own for the session, so that a program that several tests compile alike
    (the same rule on the same small network) is compiled once: about a tenth
    less CPU time.  Nothing is shared
    with other runs (the folder is new and removed at the end), and what runs
    is the same compiled program; the command-line runs the tests start in
    subprocesses use the same folder instead of the user's ~/.cache/rflo."""
    import shutil
    import tempfile

    import jax

    if jax.config.jax_compilation_cache_dir:  # the user's own cache: leave it
        return
    folder = tempfile.mkdtemp(prefix="rflo-test-xla-")
    jax.config.update("jax_compilation_cache_dir", folder)
    # command-line runs in subprocesses share it (and leave ~/.cache alone)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each test file, free JAX's compiled programs if the process holds
    more than half of its memory-mapping limit (:mod:`rflo.compiled`): one
    pytest process of the slow step compiles enough programs to reach it, and
    the next compilation then dies with a segmentation fault (CI, exit 139)."""
    yield
    from rflo.compiled import release_if_crowded

    release_if_crowded()


def random_network(n_in=3, n_rec=8, n_out=2, seed=0, dtype="float64", tau=10.0):
    """A network with every matrix random and nonzero (including w_in)."""
    rng = np.random.default_rng(seed)
    return rflo.network_from_arrays(
        w_in=rng.normal(size=(n_rec, n_in)) / np.sqrt(n_in),
        w_rec=1.5 * rng.normal(size=(n_rec, n_rec)) / np.sqrt(n_rec),
        w_out=rng.normal(size=(n_out, n_rec)) / np.sqrt(n_rec),
        b=rng.normal(size=(n_rec, n_out)),
        h0=0.1 * rng.normal(size=n_rec),
        tau=tau,
        dtype=dtype,
    )


def random_task(steps=30, n_in=3, n_out=2, seed=1, mask=None):
    rng = np.random.default_rng(seed)
    return rflo.Task(x=rng.normal(size=(steps, n_in)), y=rng.normal(size=(steps, n_out)), mask=mask)


def session_args(net, rule, online, lr, steps):
    """The arguments of ``trainer.run_chunk`` (and ``run_trials``) for one
    float32 trial of ``rflo.periodic_task(duration=steps)`` on ``net``, with
    plain SGD at the rates ``lr`` (a dict by parameter name): the parameters
    ``lr`` names are the trained ones."""
    import jax
    import jax.numpy as jnp

    from rflo.network import params_of
    from rflo.rules import Setup, get_rule
    from rflo.trainer import Config, SessionState, init_opt_state, new_guard, trial_data

    net = jax.tree_util.tree_map(jnp.asarray, net)
    lr = {k: jnp.asarray(v, jnp.float32) for k, v in lr.items()}
    w = params_of(net, tuple(lr))
    opt_state = init_opt_state(None, lr, w)
    state = SessionState(w, opt_state, new_guard(w, opt_state, 1e4, "float32"))
    cfg = Config(get_rule(rule), online, Setup(params=tuple(lr)))
    data = trial_data(rflo.periodic_task(duration=steps), 1, "float32")
    return cfg, None, net, state, lr, jax.random.PRNGKey(0), data, 0, 1, 1


def with_derivative(net, name):
    """``net`` whose leaky tanh cell uses f' ``name`` ("seed" or "exact")."""
    from rflo.cells import LeakyTanh

    return net._replace(cell=LeakyTanh(name))


def seed_weights(net):
    return {k: np.asarray(getattr(net, k), float) for k in ("w_in", "w_rec", "w_out", "b")}


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.fixture
def small_net():
    return random_network()


@pytest.fixture
def small_task():
    return random_task()


def run_cli(*args):
    """``(exit status, stderr)`` of ``rflo ARGS`` run in this process (stdout dropped)."""
    import contextlib
    import io

    from rflo.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
    return code, err.getvalue()
