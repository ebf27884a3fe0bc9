"""Host arrays reach the device without compiling a program each
(:mod:`rflo.transfer`), networks are drawn on the host as JAX's own
arithmetic drew them, and the command's figures need no mathtext."""

from contextlib import contextmanager

import jax
import jax.monitoring
import jax.numpy as jnp
import matplotlib.mathtext
import numpy as np
import pytest
from matplotlib.figure import Figure

import rflo
from rflo import plots
from rflo._checks import precision
from rflo.transfer import device_array, device_tree

TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"


@contextmanager
def traced_programs():
    """The list of programs JAX traces inside the block (one entry each)."""
    seen = []

    def listener(event, duration, **kw):
        if event == TRACE_EVENT:
            seen.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.weak_type == b.weak_type
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


@pytest.mark.parametrize(
    "value, dtype",
    [
        (np.linspace(-1, 1, 7, dtype=np.float32).reshape(7, 1), None),
        (np.arange(5, dtype=np.int32), None),
        (np.float32(0.3), None),
        (0.1, "float32"),
        (0.1, None),  # a Python number keeps JAX's weak type
        (np.inf, "float32"),
        (-1, np.int32),
        (np.linspace(0, 1, 4), "float32"),  # float64 on the host
    ],
)
def test_device_array_is_jnp_asarray(value, dtype):
    _same(device_array(value, dtype), jnp.asarray(value, dtype))


def test_device_array_keeps_float64_where_x64_is_on():
    with precision("float64"):
        a = device_array(np.float64(1) / 3, "float64")
        _same(a, jnp.asarray(np.float64(1) / 3, "float64"))
        assert a.dtype == np.float64


def test_device_arrays_compile_nothing_where_jnp_asarray_would():
    host = np.arange(13 * 3, dtype=np.float32).reshape(13, 3)  # shapes no other test uses
    with traced_programs() as seen:
        tree = device_tree({"a": host, "b": np.float32(2.0), "c": None})
        device_array(np.arange(11.0), "float32")
    assert seen == []
    assert tree["c"] is None and tree["a"].shape == (13, 3)
    with traced_programs() as seen:  # the reference does compile: the test can fail
        jnp.asarray(np.arange(17 * 3, dtype=np.float32).reshape(17, 3))
    assert len(seen) >= 1


def _jax_draw(seed, n_in, n_rec, n_out, g, dtype, dale, connectivity):
    """init_network's scaling as JAX's eager arithmetic does it (the reference)."""
    k_in, k_rec, k_out, k_b, k_mask = jax.random.split(jax.random.PRNGKey(seed), 5)
    w_in = 0.1 * (jax.random.uniform(k_in, (n_rec, n_in), dtype) - 1.0)
    w_rec = g * jax.random.normal(k_rec, (n_rec, n_rec), dtype) / np.sqrt(n_rec)
    w_out = 0.1 * (2.0 * jax.random.uniform(k_out, (n_out, n_rec), dtype) - 1.0) / np.sqrt(n_rec)
    b = jax.random.normal(k_b, (n_rec, n_out), dtype) / np.sqrt(n_out)
    if connectivity is not None:
        mask = (jax.random.uniform(k_mask, (n_rec, n_rec)) < connectivity).astype(dtype)
        w_rec = w_rec * mask
    if dale is not None:
        n_exc = int(round(dale * n_rec))
        n_inh = n_rec - n_exc
        sign = jnp.where(jnp.arange(n_rec) < n_exc, 1.0, -1.0).astype(dtype)
        a = n_exc / n_inh
        scale = jnp.where(sign > 0, 1.0, a) * np.sqrt(n_rec / (n_exc + a * a * n_inh))
        w_rec = jnp.abs(w_rec) * (sign * scale.astype(dtype))
    return {"w_in": w_in, "w_rec": w_rec, "w_out": w_out, "b": b}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "shape, g, dale, connectivity",
    [((1, 50, 1), 1.5, None, None), ((3, 37, 2), 0.9, 0.8, None), ((2, 23, 3), 1.2, 0.7, 0.4)],
)
def test_networks_drawn_on_the_host_equal_jax_arithmetic_bit_for_bit(
    dtype, shape, g, dale, connectivity
):
    net = rflo.init_network(*shape, seed=11, g=g, dtype=dtype, dale=dale, connectivity=connectivity)
    with precision(dtype):
        ref = _jax_draw(11, *shape, g, dtype, dale, connectivity)
    for name, want in ref.items():
        got = np.asarray(getattr(net, name))
        assert got.dtype == np.dtype(dtype), name
        assert got.tobytes() == np.asarray(want).tobytes(), name


@pytest.mark.parametrize("seed", [2**31 - 1, 2**31, 2**32 - 1])
def test_seeds_past_int32_draw_what_jax_draws(seed):
    """A network's draws are one compiled call; its seed must reach it whole
    (every seed up to 2**32 - 1 is valid, as jax.random.PRNGKey takes it)."""
    net = rflo.init_network(2, 9, 1, seed=seed, connectivity=0.5)
    ref = _jax_draw(seed, 2, 9, 1, 1.5, "float32", None, 0.5)
    for name, want in ref.items():
        assert np.asarray(getattr(net, name)).tobytes() == np.asarray(want).tobytes(), name


def test_plain_math_writes_log_labels_without_mathtext():
    assert plots.plain_math(r"$\mathdefault{10^{-3}}$") == "10⁻³"
    assert plots.plain_math(r"$\mathdefault{10^{12}}$") == "10¹²"
    assert plots.plain_math(r"$\mathdefault{2\times10^{-1}}$") == "2×10⁻¹"
    assert plots.plain_math(r"$\mathdefault{1}$") == "1"
    assert plots.plain_math("trial") == "trial"
    assert plots.plain_math(r"$\alpha$") == r"$\alpha$"  # not a log label: unchanged


def test_command_figures_never_parse_mathtext(tmp_path, monkeypatch):
    def refuse(*args, **kw):
        raise AssertionError("mathtext was parsed")

    monkeypatch.setattr(matplotlib.mathtext.MathTextParser, "parse", refuse)
    t = np.arange(1, 301)
    plots.plot_losses({"rflo": 0.3 * t**-0.5, "bptt": 0.3 / t}, tmp_path / "l.png", "periodic")
    plots.plot_alignment({"rflo": 1 - np.exp(-t / 50)}, tmp_path / "a.png")
    plots.plot_losses({"rflo": np.array([0.31, 0.29])}, tmp_path / "short.png")  # minor labels
    for name in ("l.png", "a.png", "short.png"):
        assert (tmp_path / name).stat().st_size > 1000

    fig = Figure()
    ax = fig.subplots()
    ax.plot([1e-3, 1e2], [1, 2])
    plots.log_axis(ax, "x")
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "10⁻²" in labels and "10¹" in labels and not any("$" in s for s in labels)
