"""The generic (any-cell) rule routes, the Setup axes, and the rule interface.

* on the leaky tanh cell every rule's generic route (Jacobian-vector products)
  equals its closed form, for both losses, offline and online;
* with ``h0`` and ``tau`` trained as well, the exact rules' generic updates
  equal ``-jax.grad`` of the summed loss of an independent forward loop;
* RFLO with a trained ``h0`` equals the hand-written trace equations;
* every rule takes either feedback, and bad settings are refused up front.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_network, random_task, rel_err, with_derivative

import rflo
from rflo.losses import CROSS_ENTROPY, SQUARED_ERROR
from rflo.rules import Setup, get_rule, register, rule_names
from rflo.rules.bptt import BackpropThroughTime
from rflo.rules.rflo import LocalTraceRule
from rflo.rules.snap import SnAp
from rflo.rules.tbptt import TruncatedBPTT

LOSSES = {"squared_error": SQUARED_ERROR, "cross_entropy": CROSS_ENTROPY}
#: the library's rules (other tests register rules of their own)
BUILTIN = (
    "bptt",
    "eprop",
    "eprop_random",
    "kf_rtrl",
    "local",
    "random_feedback",
    "rflo",
    "rtrl",
    "snap1",
    "snap2",
    "tbptt",
    "uoro",
)

#: every loss; cross-entropy (the generic routes are the same code) in the slow step
LOSS_PARAMS = [
    pytest.param(name, marks=pytest.mark.slow) if name == "cross_entropy" else name
    for name in sorted(LOSSES)
]


def _problem(loss, steps=10, seed=0):
    net = with_derivative(random_network(n_in=2, n_rec=5, n_out=2, seed=seed), "exact")
    rng = np.random.default_rng(seed + 1)
    x = rng.normal(size=(steps, 2))
    if loss is CROSS_ENTROPY:
        y = np.eye(2)[rng.integers(0, 2, size=steps)]
    else:
        y = rng.normal(size=(steps, 2))
    m = (np.arange(steps) % 4 != 1).astype(float)
    return net, x, y, m


def _as_jax(net, *arrays):
    return (jax.tree_util.tree_map(jnp.asarray, net),) + tuple(jnp.asarray(a) for a in arrays)


@pytest.mark.parametrize("loss", LOSS_PARAMS)
def test_generic_routes_equal_the_closed_forms(loss):
    """All registered rules at once (one compilation per loss)."""
    loss = LOSSES[loss]
    with jax.enable_x64(True):
        net, x, y, m = _as_jax(*_problem(loss))
        key = jax.random.PRNGKey(3)

        @jax.jit
        def both(net, x, y, m):
            out = {}
            for name in BUILTIN:
                rule = get_rule(name)
                out[name] = tuple(
                    rule.trial(net, x, y, m, key, Setup(loss=loss, route=r))[0]
                    for r in ("closed_form", "generic")
                )
            return out

        for name, (closed, generic) in both(net, x, y, m).items():
            assert set(closed) == set(generic) == {"w_in", "w_rec", "w_out"}
            for k in closed:
                assert np.max(np.abs(closed[k])) > 1e-6, (name, k)
                assert rel_err(generic[k], closed[k]) < 1e-10, (name, k)


@pytest.mark.parametrize("rule", ["rflo", "tbptt", pytest.param("uoro", marks=pytest.mark.slow)])
def test_generic_online_training_equals_the_closed_form(rule):
    net = random_network(n_in=2, n_rec=5, n_out=2)
    task = random_task(steps=13, n_in=2, n_out=2)
    kw = dict(trials=2, lr=(0.1, 0.2, 0.1), online=True, dtype="float64", seed=4)
    a = rflo.train(net, task, TruncatedBPTT(window=4) if rule == "tbptt" else rule, **kw)
    b = rflo.train(
        net, task, TruncatedBPTT(window=4) if rule == "tbptt" else rule, route="generic", **kw
    )
    for k in ("w_in", "w_rec", "w_out"):
        assert rel_err(getattr(b.network, k), getattr(a.network, k)) < 1e-10
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-10)


def _summed_loss(params, net, x, y, m, loss):
    """sum_t loss.step(y[t], y*[t], m[t]) of the leaky tanh network, written here."""

    def body(h, x_t):
        h = h + (jnp.tanh(params["w_rec"] @ h + params["w_in"] @ x_t) - h) / params["tau"]
        return h, params["w_out"] @ h

    _, out = jax.lax.scan(body, params["h0"], x[1:])
    return jnp.sum(jax.vmap(loss.step)(out, y[1:], m[1:]))


@pytest.mark.parametrize("loss", LOSS_PARAMS)
def test_exact_rules_on_every_parameter_are_the_gradient(loss):
    """bptt, rtrl, snap2 (full connectivity: equal to RTRL) and tbptt with one
    window, training w_in, w_rec, w_out, h0 and tau: -jax.grad to 1e-8."""
    loss = LOSSES[loss]
    names = ("w_in", "w_rec", "w_out", "h0", "tau")
    rules = [get_rule("bptt"), get_rule("rtrl"), get_rule("snap2"), TruncatedBPTT(window=50)]
    with jax.enable_x64(True):
        net, x, y, m = _as_jax(*_problem(loss, steps=12))
        params = {k: getattr(net, k) for k in names}
        want = jax.grad(_summed_loss)(params, net, x, y, m, loss)
        setup = Setup(loss=loss, params=names)
        for rule in rules:
            got, _ = jax.jit(
                lambda n, rule=rule: rule.trial(n, x, y, m, jax.random.PRNGKey(0), setup)
            )(net)
            assert set(got) == set(names)
            for k in names:
                assert np.max(np.abs(want[k])) > 1e-8
                assert rel_err(got[k], -want[k]) < 1e-8, (rule.name, k)


def test_rflo_with_a_trained_initial_state_is_the_hand_written_rule():
    """RFLO's traces with h0 trained: p = c p + a f'(u) h_prev^T, and h0's own
    trace decays as c^t; dW = (b err) * trace, dh0 = (b err) * c^t."""
    net, x, y, m = _problem(SQUARED_ERROR, steps=9)
    w_in, w_rec, w_out, b, h0 = (
        np.asarray(getattr(net, k)) for k in ("w_in", "w_rec", "w_out", "b", "h0")
    )
    a = 1.0 / float(net.tau)
    c = 1.0 - a
    h, p, q, e0 = h0.copy(), np.zeros_like(w_rec), np.zeros_like(w_in), np.ones_like(h0)
    want = {k: np.zeros_like(v) for k, v in (("w_in", w_in), ("w_rec", w_rec), ("h0", h0))}
    for t in range(1, x.shape[0]):
        u = w_rec @ h + w_in @ x[t]
        d = 1 - np.tanh(u) ** 2
        p = c * p + a * np.outer(d, h)
        q = c * q + a * np.outer(d, x[t])
        e0 = c * e0
        h = h + (np.tanh(u) - h) * a
        g = b @ (m[t] * (y[t] - w_out @ h))
        want["w_rec"] += g[:, None] * p
        want["w_in"] += g[:, None] * q
        want["h0"] += g * e0
    with jax.enable_x64(True):
        jn, jx, jy, jm = _as_jax(net, x, y, m)
        got, _ = get_rule("rflo").trial(
            jn, jx, jy, jm, jax.random.PRNGKey(0), Setup(params=("w_in", "w_rec", "h0"))
        )
    for k in want:
        assert rel_err(got[k], want[k]) < 1e-10, k


def test_every_rule_takes_either_feedback():
    """Random-feedback BPTT and SnAp-2 are random_feedback (full influence, b);
    readout-feedback RFLO is 'local'."""
    net, x, y, m = _problem(SQUARED_ERROR)
    with jax.enable_x64(True):
        args = _as_jax(net, x, y, m) + (jax.random.PRNGKey(0),)
        ref = get_rule("random_feedback").trial(*args)[0]
        for rule in (
            BackpropThroughTime(name="bptt_b", feedback="random"),
            SnAp(name="snap2_b", order=2, feedback="random"),
        ):
            got = rule.trial(*args)[0]
            for k in ref:
                assert rel_err(got[k], ref[k]) < 1e-10, (rule.name, k)
        local = get_rule("local").trial(*args)[0]
        readout_rflo = LocalTraceRule(name="rflo_w", feedback="readout").trial(*args)[0]
        for k in local:
            assert rel_err(readout_rflo[k], local[k]) < 1e-12
        # and the feedback matters: b is not w_out^T
        bptt = get_rule("bptt").trial(*args)[0]
        assert rel_err(ref["w_rec"], bptt["w_rec"]) > 1e-3


def test_the_builtin_rules_are_registered():
    assert set(BUILTIN) <= set(rule_names())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="feedback must be one of"):
        LocalTraceRule(feedback="rnadom")
    with pytest.raises(ValueError, match="already registered"):
        register(LocalTraceRule(name="rflo", feedback="readout"))
    register(get_rule("rflo"))  # the same rule again is fine
    net, task = random_network(), random_task()
    with pytest.raises(ValueError, match="shared by all units.*freeze it"):
        rflo.train(net, task, "rflo", trials=1, lr={"w_rec": 0.1, "tau": 0.1})
    with pytest.raises(ValueError, match="does not have.*'bias'"):
        rflo.train(net, task, "bptt", trials=1, lr={"bias": 0.1})
    with pytest.raises(ValueError, match="route='closed_form' needs"):
        rflo.train(net, task, "bptt", trials=1, lr={"w_rec": 0.1, "h0": 0.1}, route="closed_form")
    with pytest.raises(ValueError, match="route must be one of"):
        rflo.train(net, task, "bptt", trials=1, route="fast")
    with pytest.raises(ValueError, match="factors the influence of w_rec and w_in only"):
        rflo.train(net, task, "kf_rtrl", trials=1, lr={"w_rec": 0.1, "h0": 0.1})
    with pytest.raises(ValueError, match="unknown loss"):
        rflo.train(net, task, "bptt", trials=1, loss="hinge")


def test_training_tau_and_h0_with_bptt_lowers_the_loss():
    net = random_network(n_in=3, n_rec=8, n_out=2)
    task = random_task(steps=30)
    res = rflo.train(
        net, task, "bptt", trials=60, lr={"w_rec": 0.1, "w_out": 0.1, "h0": 0.5, "tau": 5.0}
    )
    assert res.loss[-1] < 0.95 * res.loss[0]
    assert float(res.network.tau) != float(net.tau)
    assert not np.allclose(res.network.h0, net.h0)


def test_online_tbptt_with_one_window_is_offline_bptt_on_every_parameter():
    """One window of T-1 steps: the weights change once, at the last step, by
    BPTT's update (h0 and tau included)."""
    steps = 14
    net = random_network(n_in=3, n_rec=6, n_out=2)
    task = random_task(steps=steps)
    lr = {"w_in": 0.1, "w_rec": 0.2, "w_out": 0.1, "h0": 0.3, "tau": 2.0}
    kw = dict(trials=1, lr=lr, dtype="float64")
    online = rflo.train(
        net, task, TruncatedBPTT(name="tbptt_all", window=steps - 1), online=True, **kw
    ).network
    offline = rflo.train(net, task, "bptt", **kw).network
    for k in lr:
        assert rel_err(getattr(online, k), getattr(offline, k)) < 1e-12, k
        assert rel_err(getattr(online, k), getattr(net, k)) > 1e-6, k
