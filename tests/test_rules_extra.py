"""e-prop, UORO, KF-RTRL, SnAp and truncated BPTT against the exact gradient
(in the cases where they must be exact) and against each other."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_network, random_task, rel_err, with_derivative
from test_exactness import summed_loss

import rflo
from rflo.rules import get_rule
from rflo.rules.base import Rule
from rflo.rules.snap import SnAp, snap_pattern
from rflo.rules.tbptt import TruncatedBPTT

MATS = ("w_in", "w_rec", "w_out")


def directions(rule, net, task, key=0, fprime="exact"):
    """The rule's summed trial direction (offline, weights fixed), float64 numpy."""
    x, y, m = task.trial()
    with jax.enable_x64(True):
        jn = with_derivative(jax.tree_util.tree_map(jnp.asarray, net), fprime)
        d, _ = get_rule(rule).trial(
            jn, jnp.asarray(x), jnp.asarray(y), jnp.asarray(m), jax.random.PRNGKey(key)
        )
        return {k: np.asarray(d[k]) for k in MATS}


def per_step_directions(rule, net, task, key=0):
    """The same through the rule's per-step form (``Rule.trial``'s default scan)."""
    x, y, m = task.trial()
    with jax.enable_x64(True):
        jn = with_derivative(jax.tree_util.tree_map(jnp.asarray, net), "exact")
        d, _ = Rule.trial(
            get_rule(rule),
            jn,
            jnp.asarray(x),
            jnp.asarray(y),
            jnp.asarray(m),
            jax.random.PRNGKey(key),
        )
        return {k: np.asarray(d[k]) for k in MATS}


def autodiff(net, task):
    """-dL/dW of the summed trial loss by jax.grad (exact tanh')."""
    x, y, m = task.trial()
    with jax.enable_x64(True):
        w = tuple(jnp.asarray(getattr(net, k), jnp.float64) for k in MATS)
        g = jax.grad(summed_loss)(w, net, jnp.asarray(x), jnp.asarray(y), jnp.asarray(m), jnp.tanh)
        return {k: -np.asarray(gk) for k, gk in zip(MATS, g)}


def assert_same(a, b, tol=1e-10, mats=MATS):
    for k in mats:
        assert np.max(np.abs(b[k])) > 1e-6, k
        assert rel_err(a[k], b[k]) < tol, (k, rel_err(a[k], b[k]))


def masked_network(mask, seed=0, n_in=3, n_out=2):
    base = random_network(n_in=n_in, n_rec=mask.shape[0], n_out=n_out, seed=seed)
    return rflo.network_from_arrays(
        w_in=base.w_in,
        w_rec=np.asarray(base.w_rec) * mask,
        w_out=base.w_out,
        b=base.b,
        h0=base.h0,
        tau=10.0,
        mask=mask,
        dtype="float64",
    )


# ----------------------------------------------------------------- e-prop


def test_eprop_trace_is_rflo_trace():
    """For leaky rate units (z = h, internal dynamics = the leak) e-prop's
    eligibility trace is RFLO's trace: e-prop with w_out^T feedback is the
    'local' rule and e-prop with random feedback is RFLO, to rounding.  (The
    e-prop rules run their per-step form; local / rflo their reorganised sum.)"""
    net, task = random_network(), random_task(steps=40)
    eprop, eprop_random = directions("eprop", net, task), directions("eprop_random", net, task)
    assert_same(eprop, directions("local", net, task))
    assert_same(eprop_random, directions("rflo", net, task))
    assert rel_err(eprop["w_rec"], eprop_random["w_rec"]) > 0.1  # the feedbacks differ


@pytest.mark.slow
@pytest.mark.parametrize("online", [False, True])
def test_eprop_trains_like_local_and_rflo(online):
    net, task = random_network(), random_task(steps=30)
    for ep, twin in (("eprop", "local"), ("eprop_random", "rflo")):
        a = rflo.train(net, task, ep, trials=3, lr=0.1, online=online, dtype="float64").network
        b = rflo.train(net, task, twin, trials=3, lr=0.1, online=online, dtype="float64").network
        for k in MATS:
            np.testing.assert_allclose(getattr(a, k), getattr(b, k), rtol=0, atol=1e-12)


def test_eprop_is_exact_without_recurrence():
    """With w_rec = 0 the dropped recurrent path vanishes: e-prop is the gradient
    (of every matrix, including w_rec at 0); with recurrence it is not."""
    base = random_network()
    net = base._replace(w_rec=np.zeros_like(base.w_rec))
    task = random_task(steps=40)
    exact = autodiff(net, task)
    assert_same(directions("eprop", net, task), exact)
    assert rel_err(directions("eprop", base, task)["w_rec"], autodiff(base, task)["w_rec"]) > 0.1
    # trained with w_rec frozen at 0 (lr_rec = 0): the update is -lr/T dL/dW
    lr, steps = 0.2, task.n_steps
    res = rflo.train(
        net, task, "eprop", trials=1, lr=(lr, 0.0, lr), dtype="float64", derivative="exact"
    )
    assert np.all(res.network.w_rec == 0)
    for k in ("w_in", "w_out"):
        np.testing.assert_allclose(
            getattr(res.network, k) - getattr(net, k), lr / steps * exact[k], rtol=1e-9, atol=1e-14
        )


# ----------------------------------------------------------------- SnAp


@pytest.mark.slow  # 3 s; SnAp equal to RTRL with a full pattern stays in the default run (sparse network)
def test_snap2_on_a_fully_connected_network_is_rtrl():
    net, task = random_network(), random_task(steps=30)
    exact = autodiff(net, task)
    assert_same(directions("snap2", net, task), exact)
    assert_same(directions("snap2", net, task), directions("rtrl", net, task))
    assert rel_err(directions("snap1", net, task)["w_rec"], exact["w_rec"]) > 0.1


def test_snap_with_a_full_pattern_on_a_sparse_network_is_rtrl():
    """A ring: unit i projects to i+1 only.  SnAp-n keeps entries reachable
    within n-1 hops, so the full pattern needs n = n_rec; SnAp-2 is approximate."""
    n = 6
    mask = np.roll(np.eye(n), 1, axis=0)  # mask[k, i] = 1 for k = i + 1
    net, task = masked_network(mask), random_task(steps=30)
    with jax.enable_x64(True):
        assert np.all(np.asarray(snap_pattern(net, n)) == 1)
        assert np.sum(np.asarray(snap_pattern(net, 2))) == 2 * n
    exact = autodiff(net, task)
    assert_same(directions(SnAp(name="snap6", order=n), net, task), exact)
    assert rel_err(directions("snap2", net, task)["w_rec"] * mask, exact["w_rec"] * mask) > 0.01


def test_snap1_is_exact_when_units_only_excite_themselves():
    """Diagonal connectivity: the influence really is diagonal, so SnAp-1 is
    RTRL; e-prop/RFLO, which drop the self-connection, are not."""
    n = 5
    net, task = masked_network(np.eye(n)), random_task(steps=30)
    exact = autodiff(net, task)
    got = directions("snap1", net, task)
    assert_same(
        {k: got[k] * (np.eye(n) if k == "w_rec" else 1) for k in MATS},
        {k: exact[k] * (np.eye(n) if k == "w_rec" else 1) for k in MATS},
    )
    assert rel_err(directions("eprop", net, task)["w_in"], exact["w_in"]) > 0.01


def test_snap1_differs_from_eprop_only_by_the_self_connection():
    base = random_network()
    no_self = base._replace(w_rec=np.asarray(base.w_rec) * (1 - np.eye(base.n_rec)))
    task = random_task(steps=30)
    assert_same(directions("snap1", no_self, task), directions("eprop", no_self, task))
    assert (
        rel_err(directions("snap1", base, task)["w_rec"], directions("eprop", base, task)["w_rec"])
        > 1e-3
    )


def test_snap_order_is_checked():
    with pytest.raises(ValueError, match="order"):
        SnAp(order=0)


# ----------------------------------------------------------------- truncated BPTT


@pytest.mark.parametrize(
    "k", [pytest.param(29, marks=pytest.mark.slow), 30, pytest.param(100, marks=pytest.mark.slow)]
)
def test_tbptt_with_a_window_covering_the_trial_is_bptt(k):
    """T = 30 steps (29 transitions): any k >= T - 1 is one window."""
    net, task = random_network(), random_task(steps=30, mask=(np.arange(30) % 4 != 1) * 1.0)
    exact = autodiff(net, task)
    got = directions(TruncatedBPTT(window=k), net, task)
    assert_same(got, exact)
    assert_same(got, directions("bptt", net, task), tol=1e-12)


def test_tbptt_short_window_is_an_approximation():
    net, task = random_network(), random_task(steps=30)
    got = directions(TruncatedBPTT(window=3), net, task)
    assert rel_err(got["w_rec"], autodiff(net, task)["w_rec"]) > 0.05


@pytest.mark.slow  # moved to the slow step to keep the default run under its CPU budget
def test_tbptt_per_step_form_equals_its_trial_form():
    """20 transitions = two full windows of k = 10: the per-step (online) form
    summed over the trial equals the trial (offline) form."""
    net, task = random_network(), random_task(steps=21)
    assert_same(per_step_directions("tbptt", net, task), directions("tbptt", net, task))


@pytest.mark.slow  # moved to the slow step to keep the default run under its CPU budget
def test_tbptt_online_updates_every_k_steps():
    """Online with SGD: window 1's update (old weights) is applied at step k;
    window 2 then runs from the same state with the new weights."""
    k, lr = 5, 0.3
    net, task = random_network(), random_task(steps=2 * k + 1)
    x, y, m = task.trial()
    steps = x.shape[0]
    rule = TruncatedBPTT(window=k)
    res = rflo.train(
        net, task, rule, trials=1, lr=lr, online=True, dtype="float64", derivative="exact"
    )
    first = rflo.Task(x=x[: k + 1], y=y[: k + 1])
    d1 = directions(rule, net, first)
    w1 = {kk: np.asarray(getattr(net, kk)) + lr / steps * d1[kk] for kk in MATS}
    from rflo.train import simulate

    h_k = simulate(net, x[: k + 1], dtype="float64")[1][-1]  # state after window 1
    net1 = net._replace(h0=h_k, **w1)
    d2 = directions(rule, net1, rflo.Task(x=x[k:], y=y[k:]))
    for kk in MATS:
        np.testing.assert_allclose(
            getattr(res.network, kk), w1[kk] + lr / steps * d2[kk], rtol=0, atol=1e-12
        )


def test_tbptt_window_is_checked():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="window"):
            TruncatedBPTT(window=bad)


# ----------------------------------------------------------------- UORO, KF-RTRL


@pytest.mark.parametrize("rule", ["uoro", "kf_rtrl"])
def test_unbiased_rules_match_rtrl_in_expectation(rule):
    """Mean of the trial update over many sign draws (jax.vmap over keys) against
    RTRL's.  Each entry's mean is within 4.5 standard errors (over ~40 entries a
    false failure has probability ~3e-4; the draws are seeded, so the test is
    deterministic), and the same test rejects 'local' (its w_rec update is many
    standard errors away), so it has power."""
    draws = 10000
    net, task = random_network(n_rec=5), random_task(steps=20)
    x, y, m = task.trial()
    with jax.enable_x64(True):
        jn = with_derivative(jax.tree_util.tree_map(jnp.asarray, net), "exact")
        args = (jnp.asarray(x), jnp.asarray(y), jnp.asarray(m))
        r = get_rule(rule)
        keys = jax.random.split(jax.random.PRNGKey(7), draws)
        samples = jax.jit(jax.vmap(lambda k: r.trial(jn, *args, k)[0]))(keys)
    exact = directions("rtrl", net, task)
    local = directions("local", net, task)
    worst_local = 0.0
    for k in ("w_in", "w_rec"):
        s = np.asarray(samples[k])
        assert np.all(s.std(0) > 0), "the estimate is not random"
        mean, se = s.mean(0), s.std(0, ddof=1) / np.sqrt(draws)
        z = (mean - exact[k]) / se
        assert np.max(np.abs(z)) < 4.5, (k, np.max(np.abs(z)))
        worst_local = max(worst_local, np.max(np.abs((mean - local[k]) / se)))
    assert worst_local > 8
    # w_out is exact in every draw
    np.testing.assert_allclose(
        np.asarray(samples["w_out"]),
        np.broadcast_to(exact["w_out"], samples["w_out"].shape),
        rtol=1e-12,
        atol=1e-14,
    )


@pytest.mark.parametrize("rule", ["uoro", "kf_rtrl"])
def test_random_rules_use_the_trial_key(rule):
    net, task = random_network(), random_task(steps=20)
    a, b, c = (directions(rule, net, task, key=k)["w_rec"] for k in (0, 0, 1))
    np.testing.assert_array_equal(a, b)
    assert rel_err(a, c) > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["uoro", "kf_rtrl"])
def test_random_rules_follow_the_session_seed(rule):
    net, task = random_network(), random_task(steps=20)
    r0 = rflo.train(net, task, rule, trials=2, lr=0.1, online=True, seed=0).network.w_rec
    r0b = rflo.train(net, task, rule, trials=2, lr=0.1, online=True, seed=0).network.w_rec
    r1 = rflo.train(net, task, rule, trials=2, lr=0.1, online=True, seed=1).network.w_rec
    np.testing.assert_array_equal(r0, r0b)
    assert np.max(np.abs(r0 - r1)) > 1e-6


# ----------------------------------------------------------------- learning

NEW_RULES = ["eprop", "eprop_random", "uoro", "kf_rtrl", "snap1", "snap2", "tbptt"]


def _learns(rule, online):
    net = rflo.init_network(1, 12, 1, seed=3)
    task = rflo.periodic_task(period=40)
    loss = np.asarray(
        rflo.train(net, task, rule, trials=200, lr=(0.0, 0.3, 0.3), online=online).loss
    )
    assert np.all(np.isfinite(loss))
    assert loss[-10:].mean() < 0.35 * loss[:10].mean(), (loss[:10].mean(), loss[-10:].mean())


# e-prop = local/rflo and SnAp-2 = RTRL on this dense network (tested above):
# their learning runs go with the slow tests
@pytest.mark.parametrize(
    "rule",
    [
        r if r in ("uoro", "kf_rtrl", "snap1", "tbptt") else pytest.param(r, marks=pytest.mark.slow)
        for r in NEW_RULES
    ],
)
def test_new_rules_learn_the_periodic_task_offline(rule):
    _learns(rule, online=False)


@pytest.mark.slow
@pytest.mark.parametrize("rule", NEW_RULES)
def test_new_rules_learn_the_periodic_task_online(rule):
    _learns(rule, online=True)


@pytest.mark.slow  # the batch logic is the same for every rule (test_tasks checks it)
def test_tbptt_online_in_a_batch_of_identical_trials_equals_one_trial():
    """The batched online path must feed errors to a rule's observe() as the
    single-trial path does (truncated BPTT needs its window's errors)."""
    net = rflo.init_network(1, 6, 1, seed=2, dtype="float64")
    task = rflo.periodic_task(period=23)
    one = rflo.train(net, task, "tbptt", trials=3, lr=0.1, online=True)
    two = rflo.train(net, task, "tbptt", trials=3, lr=0.1, online=True, batch=2)
    np.testing.assert_allclose(two.network.w_rec, one.network.w_rec, rtol=1e-12, atol=1e-14)
    assert np.max(np.abs(one.network.w_rec - net.w_rec)) > 1e-6
