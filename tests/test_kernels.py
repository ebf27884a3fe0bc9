"""The compiled CPU kernels (rflo.kernels.leaky_tanh) equal the XLA paths they replace.

Each kernel is compared with the library's own straightforward path, called
directly: the trainer's per-step online loop, the closed-form offline trials,
the forward scan.  float64 to 1e-10 (the same arithmetic in another order),
float32 to float32 rounding.  Where no compiler is found the library falls
back to the XLA path, which the last tests check.
"""

import re
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rflo
from rflo import kernels
from rflo.guard import new_guard
from rflo.kernels import leaky_tanh
from rflo.network import params_of
from rflo.rules import get_rule
from rflo.rules.base import Setup, forward
from rflo.trainer import Config, _online_update, per_param_sgd

pytestmark = pytest.mark.skipif(
    not leaky_tanh.available("float64"), reason="no C++ compiler: the kernels are not built"
)


@pytest.fixture(autouse=True)
def x64():
    """float64 arrays need JAX's x64 mode (float32 tests name their dtype)."""
    with jax.enable_x64(True):
        yield


TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=2e-5, atol=2e-6)}


def _net(dtype, n_rec=12, n_in=2, n_out=2, dale=None, connectivity=None, derivative="seed", seed=0):
    net = rflo.init_network(
        n_in, n_rec, n_out, seed=seed, dtype=dtype, dale=dale, connectivity=connectivity
    )
    if derivative != "seed":
        from rflo.cells import get_cell

        net = net._replace(cell=get_cell("leaky_tanh", derivative=derivative))
    return jax.tree_util.tree_map(jnp.asarray, net)


def _trial(dtype, n_in=2, n_out=2, steps=30, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(steps, n_in))
    y = np.sin(np.arange(steps)[:, None] / 4.0 + np.arange(n_out))
    m = (rng.random(steps) > 0.2).astype(float)
    return tuple(jnp.asarray(a, dtype) for a in (x, y, m))


def _open_guard(w, dtype):
    """A divergence guard that lets every finite update through (no loss limit)."""
    return new_guard(w, per_param_sgd({}).init(w), None, dtype)


def _xla_online(net, rule, setup, w, lr, x, y, m):
    cfg = Config(rule, True, setup)
    new_w, _, loss, out = _online_update(
        cfg,
        per_param_sgd(lr),
        net,
        w,
        None,
        x[None],
        y[None],
        m[None],
        jax.random.PRNGKey(0)[None],
        True,
    )
    return new_w, loss, out[0]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "rule,derivative,dale,connectivity,params",
    [
        ("rflo", "seed", None, None, ("w_in", "w_rec", "w_out")),
        ("local", "exact", None, None, ("w_in", "w_rec", "w_out")),
        ("rflo", "seed", 0.8, 0.5, ("w_rec", "w_out")),
        ("eprop", "seed", None, None, ("w_rec",)),
    ],
)
def test_online_kernel_equals_the_per_step_loop(
    dtype, rule, derivative, dale, connectivity, params
):
    net = _net(dtype, dale=dale, connectivity=connectivity, derivative=derivative)
    rule = get_rule(rule)
    setup = Setup(params=params)
    assert leaky_tanh.online_route(net, setup, rule.feedback)
    w = params_of(net, params)
    lr = {k: jnp.asarray(0.5, dtype) for k in params}  # large: the updates matter
    x, y, m = _trial(dtype)
    fused = rule.fused_online(net, setup)  # the kernel the trainer takes
    assert fused is not None
    w_k, w_x = w, w
    for trial in range(3):  # three trials in a row: the weights carry over
        w_k, _, loss_k, out_k = jax.jit(fused, static_argnums=8)(
            net, w_k, _open_guard(w_k, dtype), lr, trial, x, y, m, True
        )
        w_x, loss_x, out_x = jax.jit(partial(_xla_online, net, rule, setup))(w_x, lr, x, y, m)
        for k in params:
            np.testing.assert_allclose(w_k[k], w_x[k], **TOL[dtype], err_msg=k)
        np.testing.assert_allclose(out_k, out_x, **TOL[dtype])
        np.testing.assert_allclose(loss_k, loss_x, **TOL[dtype])
    assert set(w_k) == set(params)
    assert not np.allclose(w_k["w_rec"], net.w_rec)  # it learned
    if dale is not None:  # the signs hold, and absent connections stay absent
        signs = np.sign(np.asarray(w_k["w_rec"])) * np.asarray(net.sign)[None, :]
        assert np.all(signs >= 0)
        assert np.all(np.asarray(w_k["w_rec"])[np.asarray(net.mask) == 0] == 0)


def _xla_trial(rule, rule_, setup, x, y, m):
    """The XLA path the rule's offline kernel replaces, as ``net -> (d_in, d_rec, d_out, y)``."""
    from rflo.rules import bptt
    from rflo.rules import rflo as local
    from rflo.rules.base import Rule

    if rule == "rtrl":  # the influence carried forward step by step

        def ref(n):
            d, out = Rule.trial(rule_, n, x, y, m, jax.random.PRNGKey(0), setup)
            return d["w_in"], d["w_rec"], d["w_out"], out

        return ref
    closed = bptt._closed_trial if rule in ("bptt", "random_feedback") else local._closed_trial
    return lambda n: closed(n, x, y, m, rule_.feedback, setup)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "rule,derivative",
    [
        ("rflo", "seed"),
        ("local", "exact"),
        ("bptt", "exact"),
        ("random_feedback", "seed"),
        ("rtrl", "seed"),
    ],
)
def test_offline_trial_equals_the_closed_form(dtype, rule, derivative, monkeypatch):
    # 70 units: a block of 4 vectors and one of 1, padded (RTRL: 20, its columns split over
    # threads); above the size the kernels take by default, so raised here
    monkeypatch.setenv(leaky_tanh.ENV_MAX_UNITS, "128")
    net = _net(dtype, derivative=derivative, n_rec=20 if rule == "rtrl" else 70)
    rule_ = get_rule(rule)
    setup = Setup()
    assert leaky_tanh.offline_route(net, setup)
    x, y, m = _trial(dtype)
    d, out = jax.jit(lambda n: rule_.trial(n, x, y, m, jax.random.PRNGKey(0), setup))(net)
    ref = jax.jit(_xla_trial(rule, rule_, setup, x, y, m))(net)
    for k, r in zip(("w_in", "w_rec", "w_out"), ref[:3]):
        np.testing.assert_allclose(d[k], r, **TOL[dtype], err_msg=k)
    np.testing.assert_allclose(out, ref[3], **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n_rec", [5, 20, 40, 139])
def test_units_padded_to_one_two_or_three_vectors_equal_the_references(dtype, n_rec, monkeypatch):
    """The kernels pad the units to whole 64-byte vectors (16 float32, 8
    float64) and work on blocks of up to 4 of them; 5, 20 and 40 units leave a
    last block of 1, 2 or 3 vectors (float32: 16, 32, 48 units; float64: 8,
    24, 40); 139 units are past kStreamBytes (64 KiB a matrix), where the
    column passes stream the matrices instead (online, four columns at a time,
    and 3 left): each equals the XLA path, online (RFLO) and offline (BPTT)."""
    monkeypatch.setenv(leaky_tanh.ENV_MAX_UNITS, "1000")
    net = _net(dtype, n_rec=n_rec)
    x, y, m = _trial(dtype)
    setup = Setup()
    assert leaky_tanh.offline_route(net, setup)
    bptt = get_rule("bptt")
    d, out = jax.jit(lambda n: bptt.trial(n, x, y, m, jax.random.PRNGKey(0), setup))(net)
    ref = jax.jit(_xla_trial("bptt", bptt, setup, x, y, m))(net)
    for k, r in zip(("w_in", "w_rec", "w_out"), ref[:3]):
        np.testing.assert_allclose(d[k], r, **TOL[dtype], err_msg=k)
    np.testing.assert_allclose(out, ref[3], **TOL[dtype])
    rflo_ = get_rule("rflo")
    fused = rflo_.fused_online(net, setup)
    assert fused is not None
    w = params_of(net)
    lr = {k: jnp.asarray(0.5, dtype) for k in w}
    w_k, _, loss_k, out_k = jax.jit(fused, static_argnums=8)(
        net, w, _open_guard(w, dtype), lr, 0, x, y, m, True
    )
    w_x, loss_x, out_x = jax.jit(partial(_xla_online, net, rflo_, setup))(w, lr, x, y, m)
    for k in w:
        np.testing.assert_allclose(w_k[k], w_x[k], **TOL[dtype], err_msg=k)
    np.testing.assert_allclose(out_k, out_x, **TOL[dtype])
    np.testing.assert_allclose(loss_k, loss_x, **TOL[dtype])


def test_forward_equals_the_scan_and_differentiates_through_it():
    net = _net("float64", n_rec=20)
    x, _, _ = _trial("float64")
    drive = x[1:] @ net.w_in.T

    def scan(w_rec, drive, h0, tau):
        def body(h, d):
            u = w_rec @ h + d
            h = h + (jnp.tanh(u) - h) / tau
            return h, (u, h)

        return jax.lax.scan(body, h0, drive)[1]

    u, h = jax.jit(forward)(net, x)
    u_ref, h_ref = scan(net.w_rec, drive, net.h0, net.tau)
    np.testing.assert_allclose(u, u_ref, **TOL["float64"])
    np.testing.assert_allclose(h, h_ref, **TOL["float64"])
    # autodiff goes through the reference: the gradient is the scan's
    g = jax.grad(lambda w: jnp.sum(forward(net._replace(w_rec=w), x)[1] ** 2))(net.w_rec)
    g_ref = jax.grad(lambda w: jnp.sum(scan(w, drive, net.h0, net.tau)[1] ** 2))(net.w_rec)
    np.testing.assert_allclose(g, g_ref, **TOL["float64"])


def test_the_float64_tanh_is_the_library_tanh_to_a_few_units_in_the_last_place():
    """The kernels' own float64 tanh (vectors.h: exp's Taylor series, and
    expm1's below |x| 1/4, so that loops vectorise) against numpy's, one step
    of the forward kernel with tau 1 from h0 = 0, which is h = tanh(drive):
    wide and small arguments, both sides of the 1/4 switch, 0."""
    rng = np.random.default_rng(0)
    u = np.concatenate(
        [
            rng.uniform(-30, 30, 400),
            rng.uniform(-1, 1, 400),
            rng.uniform(-1, 1, 200) * 2.0 ** -rng.integers(0, 60, 200),
            [0.25, -0.25, np.nextafter(0.25, 0), 1e-300, 0.0, -0.0, 19.0, 400.0, -800.0],
        ]
    )
    n = u.size
    drive = jnp.asarray(u[None, :])
    _, h = leaky_tanh.forward(
        jnp.zeros((n, n)), drive, jnp.zeros(n), 1.0, lambda *a: pytest.fail("XLA path ran")
    )
    h = np.asarray(h)[0]
    np.testing.assert_allclose(h, np.tanh(u), rtol=1e-15, atol=0)


def test_kernels_under_vmap_equal_one_network_at_a_time():
    """An ensemble (vmap) passes every network to the kernel at once."""
    nets = [_net("float64", seed=s) for s in range(3)]
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *nets)
    x, y, m = _trial("float64")
    rule, setup = get_rule("rflo"), Setup()
    lr = {k: jnp.asarray(0.3, "float64") for k in ("w_in", "w_rec", "w_out")}
    fused = rule.fused_online(nets[0], setup)
    assert fused is not None

    def online(n):
        w = params_of(n)
        return fused(n, w, _open_guard(w, "float64"), lr, 0, x, y, m, False)

    together = jax.vmap(online)(stacked)
    assert together[3] is None  # nothing T-long kept
    d_all, _ = jax.vmap(lambda n: rule.trial(n, x, y, m, jax.random.PRNGKey(0), setup))(stacked)
    for i, net in enumerate(nets):
        alone = online(net)
        np.testing.assert_allclose(together[0]["w_rec"][i], alone[0]["w_rec"], rtol=1e-12)
        d, _ = rule.trial(net, x, y, m, jax.random.PRNGKey(0), setup)
        np.testing.assert_allclose(d_all["w_rec"][i], d["w_rec"], rtol=1e-12)


def test_train_uses_the_kernel_and_matches_the_xla_path(monkeypatch):
    """rflo.train, online RFLO: the kernel path and RFLO_KERNELS=0 give the same run
    (another ``unroll``, which the XLA loop computes identically, makes the
    second session compile anew, so that it sees the kernels off)."""
    task = rflo.periodic_task(duration=40)

    def run(unroll):
        net = rflo.init_network(1, 16, 1, seed=3, dtype="float64")
        return rflo.train(net, task, rule="rflo", trials=20, online=True, lr=0.05, unroll=unroll)

    fast = run(1)
    monkeypatch.setenv(kernels.ENV_DISABLE, "0")
    monkeypatch.setattr(leaky_tanh, "_STATE", {})
    monkeypatch.setattr(kernels, "_LOADED", {})
    slow = run(2)
    assert not leaky_tanh.available("float64")
    np.testing.assert_allclose(fast.loss, slow.loss, rtol=1e-9)
    np.testing.assert_allclose(fast.network.w_rec, slow.network.w_rec, rtol=1e-9, atol=1e-12)


def test_without_a_compiler_the_library_warns_once_and_uses_xla(monkeypatch, tmp_path):
    monkeypatch.setenv(kernels.ENV_CACHE, str(tmp_path))
    monkeypatch.setenv("CXX", "no-such-compiler")
    monkeypatch.setattr(kernels.shutil, "which", lambda name: None)
    monkeypatch.setattr(kernels, "_LOADED", {})
    monkeypatch.setattr(leaky_tanh, "_STATE", {})
    with pytest.warns(RuntimeWarning, match="no C.. compiler"):
        assert not leaky_tanh.available("float32")
    assert not leaky_tanh.online_route(_net("float32"), Setup(), "random")
    assert get_rule("rflo").fused_online(_net("float32"), Setup()) is None
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_the_build_is_cached_and_atomic():
    """A built kernel is reused (not rebuilt), and no half-written file is left."""
    first = kernels._build("leaky_tanh")
    mtime = first.stat().st_mtime_ns
    assert kernels._build("leaky_tanh") == first and first.stat().st_mtime_ns == mtime
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]


def test_every_header_the_kernel_includes_is_in_its_build_key():
    """The kernel's source includes headers beside it; a change to any of them
    must rebuild it, so each one's text is part of what the key is made from."""
    folder = Path(kernels.__file__).parent
    code = kernels._code("leaky_tanh")
    seen, todo = set(), ["leaky_tanh.cc"]
    while todo:  # the local includes, followed from header to header
        name = todo.pop()
        seen.add(name)
        text = (folder / name).read_text()
        todo += [h for h in re.findall(r'#include "([^"/]+)"', text) if h not in seen]
    headers = seen - {"leaky_tanh.cc"}
    assert {"vectors.h", "online.h", "offline.h", "workers.h"} <= headers
    for name in headers:
        assert (folder / name).read_bytes() in code, name


def test_routes_refuse_what_the_kernel_does_not_do():
    net = _net("float32")
    assert not leaky_tanh.online_route(net, Setup(loss=rflo.losses.CROSS_ENTROPY), "random")
    assert not leaky_tanh.online_route(net, Setup(route="generic"), "random")
    assert not leaky_tanh.offline_route(net, Setup(params=("w_rec", "h0")))
    lif = rflo.init_network(1, 8, 1, cell="lif")
    assert not leaky_tanh.offline_route(lif, Setup())
    gru = rflo.init_network(1, 8, 1, cell="gru")  # no w_rec: refused, not an error
    assert not leaky_tanh.offline_route(gru, Setup())
    assert not leaky_tanh.online_route(gru, Setup(), "random")
    assert not leaky_tanh.rtrl_route(gru, Setup())


def test_networks_above_the_kernels_size_run_the_xla_path(monkeypatch):
    """Beyond a size the kernels are no faster than XLA
    (benchmarks/run.py): larger networks take the XLA path, RTRL excepted."""
    limit = leaky_tanh.MAX_UNITS
    small = _net("float32", n_rec=limit["offline"])
    middle = _net("float32", n_rec=limit["offline"] + 1)
    large = _net("float32", n_rec=limit["online"] + 1)
    assert leaky_tanh.offline_route(small, Setup())
    assert not leaky_tanh.offline_route(middle, Setup())
    assert leaky_tanh.online_route(middle, Setup(), "random")
    assert not leaky_tanh.online_route(large, Setup(), "random")
    assert leaky_tanh.rtrl_route(large, Setup())
    assert get_rule("rflo").fused_online(large, Setup()) is None
    monkeypatch.setenv(leaky_tanh.ENV_MAX_UNITS, str(limit["online"] + 1))
    assert leaky_tanh.offline_route(large, Setup())
    assert leaky_tanh.online_route(large, Setup(), "random")
    monkeypatch.setenv(leaky_tanh.ENV_MAX_UNITS, "lots")
    with pytest.raises(ValueError, match="RFLO_KERNEL_MAX_UNITS must be a non-negative integer"):
        leaky_tanh.offline_route(large, Setup())


def test_kept_workers_serve_calls_side_by_side_and_fewer_threads(monkeypatch):
    """The workers kept between calls (workers.h): a call that needs fewer of
    them than were started, and two calls at once from two Python threads (one
    holds the workers, the other starts threads of its own), give the bits of
    one thread."""
    import threading

    nets = [_net("float32", n_rec=60, seed=s) for s in range(24)]
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *nets)
    x, y, m = _trial("float32", steps=200)
    rule, setup = get_rule("rflo"), Setup()

    def run():
        return jax.vmap(lambda n: rule.trial(n, x, y, m, jax.random.PRNGKey(0), setup))(stacked)

    monkeypatch.setenv(kernels.ENV_THREADS, "1")
    alone = jax.jit(run)()[0]["w_rec"]
    compiled = {}
    for threads in ("3", "2"):  # the count is read when a function is traced
        monkeypatch.setenv(kernels.ENV_THREADS, threads)
        compiled[threads] = jax.jit(run).lower().compile()
    three, two = compiled["3"], compiled["2"]
    for f in (three, two, three, two):  # 2 workers started, then 1 of them used
        np.testing.assert_array_equal(f()[0]["w_rec"], alone)
    results, errors = [None] * 4, []

    def side(i, f):
        try:
            for _ in range(5):
                results[i] = np.asarray(f()[0]["w_rec"])
        except Exception as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=side, args=(i, f)) for i, f in enumerate((three, two) * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    for r in results:
        np.testing.assert_array_equal(r, alone)


def test_threads_split_an_ensemble_without_changing_it(monkeypatch):
    """One network is one thread's work: any thread count gives the same bits."""
    nets = [_net("float32", seed=s) for s in range(5)]
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *nets)
    x, y, m = _trial("float32")
    rule, setup = get_rule("rflo"), Setup()
    outs = []
    for threads in ("1", "3"):
        monkeypatch.setenv(kernels.ENV_THREADS, threads)
        assert kernels.threads() == int(threads)
        outs.append(
            jax.vmap(lambda n: rule.trial(n, x, y, m, jax.random.PRNGKey(0), setup))(stacked)
        )  # a new function: traced anew with this thread count
    np.testing.assert_array_equal(outs[0][0]["w_rec"], outs[1][0]["w_rec"])
    # RTRL splits one network's influence columns over the threads
    rtrl, net = get_rule("rtrl"), nets[0]
    split = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv(kernels.ENV_THREADS, threads)
        split.append(
            jax.jit(lambda n: rtrl.trial(n, x, y, m, jax.random.PRNGKey(0), setup))(net)[0]
        )
    for other in split[1:]:
        for k in split[0]:
            np.testing.assert_array_equal(split[0][k], other[k], err_msg=k)
    monkeypatch.setenv(kernels.ENV_THREADS, "two")
    with pytest.raises(ValueError, match="RFLO_KERNEL_THREADS must be a positive integer"):
        kernels.threads()
