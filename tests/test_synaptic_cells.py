"""Cells that own their synapses (GRU, LSTM, LRU, Stack, from_function) under every rule.

* the exact rules (BPTT, RTRL, SnAp-2, TBPTT with one window) give
  ``-jax.grad`` of the summed trial loss of a forward loop written here from
  the cells' docstrings (not the library's ``cell.step``), for every parameter;
* on the LRU (diagonal recurrence) the local rules (e-prop, SnAp-1, RFLO's
  traces) are exact too;
* e-prop on the LSTM is Bellec et al. (2020)'s LSTM eligibility traces,
  written by hand in numpy;
* what cannot work is refused with a one-line ValueError;
* rflo.train, train_ensemble, value_and_grad, simulate and evaluate run on
  these cells (and training lowers the loss).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import rel_err

import rflo
from rflo.cells import Stack, from_function
from rflo.ensemble import train_ensemble
from rflo.losses import SQUARED_ERROR
from rflo.network import params_of, trainable_names
from rflo.rules import Rule, Setup, get_rule
from rflo.rules.rflo import LocalTraceRule
from rflo.rules.tbptt import TruncatedBPTT

N_IN, N_REC, N_OUT, STEPS = 2, 4, 2, 8


# --------------------------------------------------------------------------
# a vanilla tanh RNN as plain functions (rflo.cells.from_function)


def _rnn_init(key, n_in, n_rec):
    k_in, k_rec = jax.random.split(key)
    return {
        "w_in": jax.random.normal(k_in, (n_rec, n_in)) / np.sqrt(n_in),
        "w_rec": jax.random.normal(k_rec, (n_rec, n_rec)) / np.sqrt(n_rec),
        "bias": jnp.full((n_rec,), 0.1),
    }


def _rnn_step(p, h, x):
    return jnp.tanh(p["w_in"] @ x + p["w_rec"] @ h + p["bias"])


TANH_RNN = from_function(
    _rnn_init, _rnn_step, unit_axes={"w_in": 0, "w_rec": 0, "bias": 0}, name="tanh_rnn"
)

CELLS = {
    "gru": "gru",
    "lstm": "lstm",
    "lru": "lru",
    "stack": Stack(layers=("gru", "lru"), widths=(5,)),
    "tanh_rnn": TANH_RNN,
}


# --------------------------------------------------------------------------
# independent reference models: the units' outputs z (steps 1..T-1) from the
# inputs xs = x[1:], written from the docstrings of gated.py and lru.py


def _sigmoid(a):
    return 1.0 / (1.0 + jnp.exp(-a))


def gru_outputs(p, xs):
    """r, u gates, candidate c = tanh(W_c x + b_c + r * (U_c h)), h = (1-u) c + u h."""
    n = p["w_rec"].shape[1]
    h, out = jnp.zeros(n, xs.dtype), []
    for x in xs:
        ax, ah = p["w_in"] @ x + p["bias"], p["w_rec"] @ h
        r = _sigmoid(ax[:n] + ah[:n])
        u = _sigmoid(ax[n : 2 * n] + ah[n : 2 * n])
        c = jnp.tanh(ax[2 * n :] + r * ah[2 * n :])
        h = (1 - u) * c + u * h
        out.append(h)
    return jnp.stack(out)


def lstm_outputs(p, xs):
    """Gates i, f, g, o; c = f c + i g, h = o tanh(c)."""
    n = p["w_rec"].shape[1]
    c = h = jnp.zeros(n, xs.dtype)
    out = []
    for x in xs:
        a = p["w_in"] @ x + p["w_rec"] @ h + p["bias"]
        i, f = _sigmoid(a[:n]), _sigmoid(a[n : 2 * n])
        g, o = jnp.tanh(a[2 * n : 3 * n]), _sigmoid(a[3 * n :])
        c = f * c + i * g
        h = o * jnp.tanh(c)
        out.append(h)
    return jnp.stack(out)


def lru_outputs(p, xs):
    """Complex diagonal recurrence h = lambda h + gamma B x; z = (Re h, Im h)."""
    lam = jnp.exp(-jnp.exp(p["nu_log"])) * jnp.exp(1j * jnp.exp(p["theta_log"]))
    gamma = jnp.exp(p["gamma_log"])
    b = p["b_re"] + 1j * p["b_im"]
    h, out = jnp.zeros(lam.shape, lam.dtype), []
    for x in xs:
        h = lam * h + gamma * (b @ x)
        out.append(jnp.concatenate([h.real, h.imag]))
    return jnp.stack(out)


def stack_outputs(p, xs):
    """A GRU layer feeding an LRU layer, read out from the top."""
    layer = [
        {k.split(".", 1)[1]: v for k, v in p.items() if k.startswith(f"layer{i}.")} for i in (0, 1)
    ]
    return lru_outputs(layer[1], gru_outputs(layer[0], xs))


def tanh_rnn_outputs(p, xs):
    h, out = jnp.zeros(p["w_rec"].shape[0], xs.dtype), []
    for x in xs:
        h = jnp.tanh(p["w_in"] @ x + p["w_rec"] @ h + p["bias"])
        out.append(h)
    return jnp.stack(out)


REFERENCE = {
    "gru": gru_outputs,
    "lstm": lstm_outputs,
    "lru": lru_outputs,
    "stack": stack_outputs,
    "tanh_rnn": tanh_rnn_outputs,
}


def summed_loss(params, cell, x, y, m):
    """L = sum_{t>=1} 0.5 m[t] |y*[t] - w_out z[t]|^2."""
    z = REFERENCE[cell]({k: v for k, v in params.items() if k != "w_out"}, x[1:])
    out = z @ params["w_out"].T
    return 0.5 * jnp.sum(m[1:, None] * (y[1:] - out) ** 2)


# --------------------------------------------------------------------------
# shared problems (float64), built once


def _network(cell, seed=0):
    """A float64 network of ``cell`` with every parameter moved off its
    initialisation (biases nonzero) and an O(1) readout."""
    net = rflo.init_network(N_IN, N_REC, N_OUT, cell=CELLS[cell], dtype="float64", seed=seed)
    rng = np.random.default_rng(seed + 10)
    extra = {k: v + 0.2 * rng.normal(size=v.shape) for k, v in net.extra.items()}
    w_out = rng.normal(size=net.w_out.shape) / np.sqrt(net.w_out.shape[1])
    return net._replace(extra=extra, w_out=w_out)


def _data(seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(STEPS, N_IN))
    y = rng.normal(size=(STEPS, N_OUT))
    m = (np.arange(STEPS) % 4 != 2).astype(float)  # some steps do not count
    return x, y, m


_CACHE = {}


def problem(cell):
    """``(net, x, y, m, names, want)`` with ``want = jax.grad`` of the reference loss."""
    if cell not in _CACHE:
        with jax.enable_x64(True):
            net = jax.tree_util.tree_map(jnp.asarray, _network(cell))
            x, y, m = (jnp.asarray(a) for a in _data())
            names = tuple(trainable_names(net))
            want = jax.jit(jax.grad(summed_loss), static_argnums=1)(
                params_of(net, names), cell, x, y, m
            )
        _CACHE[cell] = net, x, y, m, names, want
    return _CACHE[cell]


def direction(cell, rule):
    """The rule's summed direction on ``cell``'s problem (cached)."""
    key = (cell, rule if isinstance(rule, str) else (rule.name, rule))
    if key not in _CACHE:
        net, x, y, m, names, _ = problem(cell)
        rule = get_rule(rule)
        setup = Setup(SQUARED_ERROR, names)
        with jax.enable_x64(True):
            rule.check(net, setup)
            d, _ = jax.jit(lambda n: rule.trial(n, x, y, m, jax.random.PRNGKey(0), setup))(net)
        _CACHE[key] = {k: np.asarray(v) for k, v in d.items()}
    return _CACHE[key]


# --------------------------------------------------------------------------
# 1. exact rules: -jax.grad of the independent loop


EXACT = {
    "bptt": "bptt",
    "rtrl": "rtrl",
    "snap2": "snap2",
    "tbptt_one_window": TruncatedBPTT(name="tbptt_one_window", window=STEPS),
}


@pytest.mark.parametrize(
    "cell,rule",
    [
        pytest.param(c, r, marks=pytest.mark.slow)
        if (c == "stack" and r != "rtrl") or (c == "tanh_rnn" and r not in ("bptt", "rtrl"))
        else (c, r)
        for r in sorted(EXACT)
        for c in sorted(CELLS)
    ],
)  # a stack's and a function cell's SnAp-2/TBPTT: slow step
def test_exact_rules_are_the_gradient_of_the_independent_model(cell, rule):
    *_, names, want = problem(cell)
    got = direction(cell, EXACT[rule])
    assert set(got) == set(names) and "w_out" in names and len(names) > 1
    for k in names:
        assert np.max(np.abs(want[k])) > 1e-6, k
        assert rel_err(got[k], -np.asarray(want[k])) < 1e-8, (k, rel_err(got[k], -want[k]))


# --------------------------------------------------------------------------
# 2. SnAp-2 is RTRL; on the LRU the local rules are RTRL too


@pytest.mark.parametrize(
    "cell", [pytest.param(c, marks=pytest.mark.slow) if c == "stack" else c for c in sorted(CELLS)]
)
def test_snap2_is_rtrl_and_one_window_tbptt_is_bptt(cell):
    for rule, exact in (("snap2", "rtrl"), (EXACT["tbptt_one_window"], "bptt")):
        got, want = direction(cell, rule), direction(cell, exact)
        for k in want:
            assert rel_err(got[k], want[k]) < 1e-12, (rule, k)


@pytest.mark.slow  # the default run keeps the exactness tests; these train and compile more
@pytest.mark.parametrize("cell", ["gru", "stack"])
def test_online_tbptt_with_one_window_is_the_gradient(cell):
    """The per-step form (a window of T-1 steps, flushed at the last step)."""
    net, x, y, m, names, want = problem(cell)
    rule = TruncatedBPTT(name="tbptt_online", window=STEPS - 1)
    with jax.enable_x64(True):
        got, _ = jax.jit(
            lambda n: Rule.trial(
                rule, n, x, y, m, jax.random.PRNGKey(0), Setup(SQUARED_ERROR, names)
            )
        )(net)
    for k in names:
        assert rel_err(got[k], -np.asarray(want[k])) < 1e-8, k


@pytest.mark.parametrize(
    "rule, exact",
    [
        ("eprop", "rtrl"),
        ("snap1", "rtrl"),
        ("local", "rtrl"),  # RFLO's trace with readout feedback
        ("rflo", "random_feedback"),  # RFLO's trace with random feedback b: RTRL with b
    ],
)
def test_local_rules_are_exact_on_the_lru(rule, exact):
    got, want = direction("lru", rule), direction("lru", exact)
    assert set(got) == set(want)
    for k in want:
        assert np.max(np.abs(want[k])) > 1e-6, k
        assert rel_err(got[k], want[k]) < 1e-10, (k, rel_err(got[k], want[k]))


def test_readout_feedback_rflo_is_local_on_the_lru():
    rflo_readout = LocalTraceRule(name="rflo_readout", feedback="readout")
    got, want = direction("lru", rflo_readout), direction("lru", "local")
    for k in want:
        assert rel_err(got[k], want[k]) < 1e-12, k


def test_local_rules_are_not_exact_on_the_gru():
    """The contrast: with recurrence between units e-prop drops a path."""
    got, want = direction("gru", "eprop"), direction("gru", "rtrl")
    assert rel_err(got["w_rec"], want["w_rec"]) > 1e-3
    assert rel_err(got["w_out"], want["w_out"]) < 1e-12  # the readout is always exact


# --------------------------------------------------------------------------
# 3. e-prop on the LSTM: Bellec et al. (2020)'s eligibility traces in numpy


def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def lstm_eprop_by_hand(p, w_out, x, y, m):
    """Bellec et al.'s LSTM e-prop (symmetric feedback w_out^T), in numpy.

    Rows r of w_in, w_rec, bias (gates i, f, g, o stacked) belong to unit
    r % n.  With the recurrent input h[t-1] held fixed:
    eps_c[t] = f[t] eps_c[t-1] + dc[t]/dtheta,
    e[t] = o (1 - tanh^2 c[t]) eps_c[t] + dh[t]/dtheta (through o),
    d theta += L[t] e[t] with L[t] = w_out^T err[t]; d w_out += err[t] h[t]^T.
    """
    w_in, w_rec, bias = p["w_in"], p["w_rec"], p["bias"]
    n = w_rec.shape[1]
    c, h = np.zeros(n), np.zeros(n)
    eps = {"w_in": np.zeros_like(w_in), "w_rec": np.zeros_like(w_rec), "bias": np.zeros_like(bias)}
    d = {k: np.zeros_like(v) for k, v in (*eps.items(), ("w_out", w_out))}
    for t in range(1, x.shape[0]):
        a = w_in @ x[t] + w_rec @ h + bias
        i, f, g, o = _sig(a[:n]), _sig(a[n : 2 * n]), np.tanh(a[2 * n : 3 * n]), _sig(a[3 * n :])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        # partial derivatives of c[t] and h[t] (through o) by each row's gate current
        dc_da = np.concatenate([g * i * (1 - i), c * f * (1 - f), i * (1 - g**2), np.zeros(n)])
        dh_da = np.concatenate([np.zeros(3 * n), np.tanh(c_new) * o * (1 - o)])
        forget = np.tile(f, 4)
        dh_dc = np.tile(o * (1 - np.tanh(c_new) ** 2), 4)
        err = m[t] * (y[t] - w_out @ h_new)
        signal = np.tile(w_out.T @ err, 4)  # L[t] of each row's unit
        for k, pre in (("w_in", x[t]), ("w_rec", h), ("bias", None)):
            new_c = dc_da if pre is None else np.outer(dc_da, pre)
            imm_h = dh_da if pre is None else np.outer(dh_da, pre)
            eps[k] = (forget if pre is None else forget[:, None]) * eps[k] + new_c
            trace = (dh_dc if pre is None else dh_dc[:, None]) * eps[k] + imm_h
            d[k] += (signal if pre is None else signal[:, None]) * trace
        d["w_out"] += np.outer(err, h_new)
        c, h = c_new, h_new
    return d


def test_eprop_on_the_lstm_is_bellecs_eligibility_traces():
    net = rflo.init_network(2, 3, N_OUT, cell="lstm", dtype="float64", seed=3)
    rng = np.random.default_rng(5)
    net = net._replace(
        extra={k: v + 0.3 * rng.normal(size=v.shape) for k, v in net.extra.items()},
        w_out=rng.normal(size=net.w_out.shape),
    )
    x, y = rng.normal(size=(6, 2)), rng.normal(size=(6, N_OUT))
    m = np.array([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    want = lstm_eprop_by_hand(
        {k: np.asarray(v) for k, v in net.extra.items()}, np.asarray(net.w_out), x, y, m
    )
    names = ("bias", "w_in", "w_rec", "w_out")
    with jax.enable_x64(True):
        got, _ = get_rule("eprop").trial(
            jax.tree_util.tree_map(jnp.asarray, net),
            jnp.asarray(x),
            jnp.asarray(y),
            jnp.asarray(m),
            jax.random.PRNGKey(0),
            Setup(SQUARED_ERROR, names),
        )
    for k in names:
        assert np.max(np.abs(want[k])) > 1e-6, k
        assert rel_err(got[k], want[k]) < 1e-10, (k, rel_err(got[k], want[k]))


# --------------------------------------------------------------------------
# 4. refusals


def _one_line_error(fn, phrase):
    with pytest.raises(ValueError, match=phrase) as info:
        fn()
    assert "\n" not in str(info.value)


def _tiny_task():
    return rflo.periodic_task(period=20, n_in=N_IN, n_out=N_OUT)


@pytest.mark.parametrize("rule", ["eprop", "rflo", "snap1"])
def test_local_rules_refuse_a_stack(rule):
    net = rflo.init_network(N_IN, N_REC, N_OUT, cell=CELLS["stack"], dtype="float64")
    _one_line_error(
        lambda: rflo.train(net, _tiny_task(), rule, trials=1, lr=0.1),
        "not one index shared by its state",
    )


def test_refusals():
    task = _tiny_task()
    gru = rflo.init_network(N_IN, N_REC, N_OUT, cell="gru", dtype="float64")
    _one_line_error(
        lambda: rflo.train(gru, task, "kf_rtrl", trials=1, lr=0.1), "cell 'gru' owns its synapses"
    )
    no_axes = from_function(_rnn_init, _rnn_step, name="no_axes")
    net = rflo.init_network(N_IN, N_REC, N_OUT, cell=no_axes, dtype="float64")
    _one_line_error(lambda: rflo.train(net, task, "eprop", trials=1, lr=0.1), "shared by all units")
    lru = rflo.init_network(N_IN, N_REC, N_OUT, cell="lru", dtype="float64")
    _one_line_error(
        lambda: rflo.train(lru, task, "rtrl", trials=1, lr=(0.1, 0.1, 0.1)),
        r"lr as three numbers names \(w_in, w_rec, w_out\)",
    )
    _one_line_error(
        lambda: rflo.init_network(N_IN, N_REC, N_OUT, cell="gru", dale=0.8),
        "dale applies to point-neuron cells",
    )


# --------------------------------------------------------------------------
# 5. the public functions on these cells


def _periodic_task():
    """The periodic task (period 20) with a cosine of the period as input: the
    task's own input is zero, which leaves an LRU (and a GRU starting from
    zero) silent."""
    task = rflo.periodic_task(period=20)
    return rflo.Task(x=np.cos(2 * np.pi * np.arange(20) / 20)[:, None], y=task.y)


@pytest.mark.slow  # the default run keeps the exactness tests; these train and compile more
@pytest.mark.parametrize("rule", ["rtrl", "eprop"])
@pytest.mark.parametrize("cell", ["gru", "lstm", "lru"])
def test_training_lowers_the_loss(cell, rule):
    net = rflo.init_network(1, 5, 1, cell=cell, seed=0)
    # one number (the cell's default parameters) or a dict by name
    lr = {"w_out": 0.5, **{k: 0.5 for k in net.extra}} if cell == "lru" else 1.0
    res = rflo.train(net, _periodic_task(), rule, trials=40, lr=lr)
    assert res.diverged is None and np.all(np.isfinite(res.loss))
    assert np.mean(res.loss[-3:]) < 0.7 * res.loss[0], res.loss


@pytest.mark.slow  # an ensemble run; the default run keeps the exactness of every cell
def test_train_ensemble_on_the_gru():
    nets = [rflo.init_network(1, 4, 1, cell="gru", seed=s) for s in (0, 1)]
    res = train_ensemble(nets, _periodic_task(), "rtrl", trials=3, lr=0.2)
    assert res.loss.shape == (2, 3) and np.all(np.isfinite(res.loss))
    assert not np.allclose(res.loss[0], res.loss[1])
    for k, net in enumerate(nets):
        trained = res.network(k)
        assert not np.allclose(trained.extra["w_rec"], net.extra["w_rec"])


def test_value_and_grad_is_the_gradient_of_the_mean_loss():
    """value_and_grad returns L / T and -direction / T = jax.grad(L) / T."""
    net, x, y, m, names, want = problem("gru")
    with jax.enable_x64(True):
        value, grads = jax.jit(rflo.value_and_grad("rtrl"))(net, x, y, m)
        loss = jax.jit(summed_loss, static_argnums=1)(params_of(net, names), "gru", x, y, m)
    assert set(grads) == set(names)
    rtrl = direction("gru", "rtrl")
    np.testing.assert_allclose(float(value), float(loss) / STEPS, rtol=1e-12)
    for k in names:
        assert rel_err(grads[k], np.asarray(want[k]) / STEPS) < 1e-8, k
        assert rel_err(grads[k], -rtrl[k] / STEPS) < 1e-12, k


@pytest.mark.parametrize("cell", ["gru", pytest.param("lru", marks=pytest.mark.slow)])
def test_simulate_and_evaluate(cell):
    """Shapes (T, n_z) (n_z = 2 n_rec for the LRU), row 0 the initial state,
    and the values of the independent model."""
    net, x, y, m, names, _ = problem(cell)
    n_z = net.w_out.shape[1]
    assert n_z == (2 * N_REC if cell == "lru" else N_REC)
    out, z, u = rflo.simulate(net, np.asarray(x))
    assert out.shape == (STEPS, N_OUT) and z.shape == (STEPS, n_z) and u.shape == (STEPS, n_z)
    with jax.enable_x64(True):
        ref = REFERENCE[cell](net.extra, x[1:])
        loss = jax.jit(summed_loss, static_argnums=1)(params_of(net, names), cell, x, y, m)
    np.testing.assert_allclose(z[1:], ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(z[0], 0.0)
    np.testing.assert_allclose(out, z @ np.asarray(net.w_out).T, rtol=0, atol=1e-12)
    ev = rflo.evaluate(net, rflo.Task(x=np.asarray(x), y=np.asarray(y), mask=np.asarray(m)))
    assert ev.y.shape == (STEPS, N_OUT) and ev.h.shape == (STEPS, n_z)
    np.testing.assert_allclose(ev.loss, float(loss) / (STEPS * N_OUT), rtol=1e-10)
