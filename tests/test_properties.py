"""Property-based tests: every input is accepted with finite results, or rejected
with a clear ValueError -- never a crash deep inside JAX."""

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import rflo

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.floats(-2, 2), max_size=4),
    hnp.arrays(
        np.float64,
        hnp.array_shapes(max_dims=3, max_side=4),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
    ),
)


def _accepted_or_clear(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        assert str(exc), "an error must say what is wrong"
        return None


@SETTINGS
@given(n_in=anything, n_rec=anything, tau=anything, g=anything, dtype=anything)
def test_init_network_any_arguments(n_in, n_rec, tau, g, dtype):
    kwargs = {}
    if tau is not None:
        kwargs["tau"] = tau
    if g is not None:
        kwargs["g"] = g
    if dtype is not None:
        kwargs["dtype"] = dtype
    net = _accepted_or_clear(rflo.init_network, n_in, n_rec, 1, **kwargs)
    if net is not None:
        for a in jax.tree_util.tree_leaves(net):  # the arrays (the cell has none)
            assert np.all(np.isfinite(a))


@SETTINGS
@given(x=anything, y=anything, mask=anything)
def test_task_any_arrays(x, y, mask):
    task = _accepted_or_clear(rflo.Task, x=x, y=y, mask=mask)
    if task is not None:
        try:
            xs, ys, ms = task.stacked()
        except ValueError as exc:  # finite in float64 but beyond float32: the clear error
            assert "too large for float32" in str(exc) and "float64" in str(exc)
            xs, ys, ms = task.stacked("float64")
        assert xs.shape[:2] == ys.shape[:2] == ms.shape
        assert np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))


@pytest.mark.slow  # fifteen compilations; test_validation covers train's checks by hand
@settings(SETTINGS, max_examples=15)
@given(
    # two shapes (the smallest possible, and a general one): examples share their
    # compilations, and hypothesis spends its examples on values, rules and modes
    shape=st.sampled_from([(1, 1, 1, 2), (5, 2, 3, 12)]),
    rule=st.sampled_from(["rflo", "bptt", "rtrl", "local", "random_feedback"]),
    online=st.booleans(),
    dtype=st.sampled_from(["float32", "float64"]),
    scale=st.floats(0, 10),
    lr=st.floats(0, 1),
    seed=st.integers(0, 2**31 - 1),
)
def test_train_small_problems(shape, rule, online, dtype, scale, lr, seed):
    n_rec, n_in, n_out, steps = shape
    rng = np.random.default_rng(seed)
    net = rflo.init_network(n_in, n_rec, n_out, seed=seed % 1000, dtype=dtype)
    task = rflo.Task(
        x=scale * rng.normal(size=(steps, n_in)), y=scale * rng.normal(size=(steps, n_out))
    )
    res = _accepted_or_clear(rflo.train, net, task, rule, trials=2, lr=lr, online=online)
    if res is None:
        assert online and rule == "bptt"
        return
    assert res.loss.shape[0] >= 1
    if res.diverged is None:
        assert np.all(np.isfinite(res.loss))
    for w in (res.network.w_in, res.network.w_rec, res.network.w_out):
        assert np.all(np.isfinite(w))


@SETTINGS
@given(x=anything)
def test_simulate_any_input(x):
    net = rflo.init_network(2, 4, 1)
    out = _accepted_or_clear(rflo.simulate, net, x)
    if out is not None:
        y, h, u = out
        assert np.all(np.isfinite(y)) and y.shape == (np.shape(x)[0], 1)


@SETTINGS
@given(data=st.binary(max_size=2000))
def test_load_network_any_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "net.npz"
    path.write_bytes(data)
    with pytest.raises(ValueError):
        rflo.load_network(path)


@SETTINGS
@given(
    drop=st.sampled_from(["", "w_in", "w_rec", "w_out", "b", "h0", "tau"]),
    corrupt=st.sampled_from(["", "nan", "shape", "dtype", "scalar"]),
    key=st.sampled_from(["w_in", "w_rec", "w_out", "b", "h0"]),
)
def test_load_network_malformed_corpus(tmp_path_factory, drop, corrupt, key):
    arrays = {
        k: np.asarray(v)
        for k, v in rflo.init_network(2, 5, 1)._asdict().items()
        if v is not None and k != "cell"
    }
    arrays.pop(drop, None)
    if corrupt == "nan" and key in arrays:
        arrays[key] = np.full_like(arrays[key], np.nan)
    elif corrupt == "shape" and key in arrays:
        arrays[key] = np.zeros(arrays[key].shape + (2,))
    elif corrupt == "dtype" and key in arrays:
        arrays[key] = np.array(["a"] * arrays[key].size)
    elif corrupt == "scalar" and key in arrays:
        arrays[key] = np.asarray(1.0)
    path = tmp_path_factory.mktemp("corpus") / "net.npz"
    np.savez(path, **arrays)
    if not drop and not corrupt:
        assert rflo.load_network(path).n_rec == 5
    else:
        with pytest.raises(ValueError):
            rflo.load_network(path)
