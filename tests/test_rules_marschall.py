"""The rules and tasks of Marschall, Cho & Savin (2020) (issue #24): R-KF-RTRL
unbiased against RTRL, KeRNL against its recursion written in numpy, DNI's
exact limit and its module's update, each rule training a tiny network, and
the Add and Mimic tasks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_network, random_task, rel_err, with_derivative
from test_rules_extra import autodiff, directions

import rflo
from rflo.rules import get_rule
from rflo.rules.base import Setup
from rflo.rules.dni import SyntheticGradients
from rflo.rules.kernl import KeRNL
from rflo.tasks.marschall import MARSCHALL_TASKS, add, add_target, mimic, mimic_teacher

MATS = ("w_in", "w_rec", "w_out")


def jax_net(net, fprime="exact"):
    return with_derivative(jax.tree_util.tree_map(jnp.asarray, net), fprime)


def run_steps(rule, net, task, key=0, setup=Setup()):
    """The rule's per-step form over one trial, in Python: the state after each
    step and the summed direction (float64 numpy)."""
    x, y, m = task.trial()
    with jax.enable_x64(True):
        jn = jax_net(net)
        state = rule.init(jn, jax.random.PRNGKey(key), setup)
        h = jnp.asarray(jn.h0)
        states, total = [], None
        for t in range(1, x.shape[0]):
            state, h, _, d = rule.advance(
                state, jn, h, jnp.asarray(x[t]), jnp.asarray(y[t]), jnp.asarray(m[t]), setup
            )
            states.append(jax.tree_util.tree_map(np.asarray, state))
            d = {k: np.asarray(v) for k, v in d.items()}
            total = d if total is None else {k: total[k] + d[k] for k in d}
        return states, total


# ----------------------------------------------------------------- R-KF-RTRL


def _mean_test(rule, net, task, draws, setup=Setup()):
    """(largest |z| of the mean against RTRL, largest |z| against 'local'):
    the mean of the trial update over ``draws`` sign draws, in standard errors."""
    x, y, m = task.trial()
    with jax.enable_x64(True):
        jn = jax_net(net) if setup.route != "generic" else jax.tree_util.tree_map(jnp.asarray, net)
        args = (jnp.asarray(x), jnp.asarray(y), jnp.asarray(m))
        r = get_rule(rule)
        keys = jax.random.split(jax.random.PRNGKey(7), draws)
        samples = jax.jit(jax.vmap(lambda k: r.trial(jn, *args, k, setup)[0]))(keys)
        exact = get_rule("rtrl").trial(jn, *args, keys[0], setup)[0]
        local = get_rule("local").trial(jn, *args, keys[0], setup)[0]
    worst, worst_local = 0.0, 0.0
    for k in ("w_in", "w_rec"):
        s = np.asarray(samples[k])
        assert np.all(s.std(0) > 0), "the estimate is not random"
        mean, se = s.mean(0), s.std(0, ddof=1) / np.sqrt(draws)
        worst = max(worst, np.max(np.abs((mean - np.asarray(exact[k])) / se)))
        worst_local = max(worst_local, np.max(np.abs((mean - np.asarray(local[k])) / se)))
    np.testing.assert_allclose(
        np.asarray(samples["w_out"]),
        np.broadcast_to(np.asarray(exact["w_out"]), samples["w_out"].shape),
        rtol=1e-12,
        atol=1e-14,
    )
    return worst, worst_local


def test_rkf_rtrl_matches_rtrl_in_expectation():
    """As UORO's and KF-RTRL's test: each entry's mean over 10 000 draws within
    4.5 standard errors of RTRL's (seeded, so deterministic), while 'local' is
    many standard errors away (the test has power)."""
    worst, worst_local = _mean_test(
        "rkf_rtrl", random_network(n_rec=5), random_task(steps=20), 10000
    )
    assert worst < 4.5, worst
    assert worst_local > 8, worst_local


def test_rkf_rtrl_generic_route_is_the_closed_form():
    """On the leaky tanh cell the route for any cell draws the same signs and
    computes the same update as the closed form."""
    net, task = random_network(), random_task(steps=20)
    x, y, m = task.trial()
    with jax.enable_x64(True):
        jn = jax_net(net)
        args = (jn, jnp.asarray(x), jnp.asarray(y), jnp.asarray(m), jax.random.PRNGKey(3))
        closed = get_rule("rkf_rtrl").trial(*args)[0]
        generic = get_rule("rkf_rtrl").trial(*args, Setup(route="generic"))[0]
    for k in MATS:
        assert rel_err(generic[k], closed[k]) < 1e-10, k


@pytest.mark.slow
def test_rkf_rtrl_is_unbiased_on_another_point_neuron_cell():
    """The generic route on the leaky unit with one time constant per unit."""
    base = rflo.init_network(3, 5, 2, seed=1, cell="leaky_tau", dtype="float64")
    worst, worst_local = _mean_test(
        "rkf_rtrl", base, random_task(steps=20), 10000, Setup(params=("w_in", "w_rec", "w_out"))
    )
    assert worst < 4.5, worst
    assert worst_local > 8, worst_local


def test_rkf_rtrl_refuses_what_kf_rtrl_refuses():
    net = random_network()
    gru = rflo.init_network(2, 4, 1, cell="gru")
    with pytest.raises(ValueError, match="owns its synapses"):
        get_rule("rkf_rtrl").check(gru, Setup(params=("w_out",)))
    with pytest.raises(ValueError, match="w_rec and w_in only"):
        get_rule("rkf_rtrl").check(net, Setup(params=("w_in", "w_rec", "h0")))


# ----------------------------------------------------------------- KeRNL


def kernl_by_hand(net, task, key, noise, lr_beta, lr_gamma):
    """KeRNL's recursion in numpy (the noise drawn from the same key chain):
    per step ``(B, beta, gamma)`` and the summed direction."""
    x, y, m = task.trial()
    w_in, w_rec, w_out = (np.asarray(getattr(net, k), float) for k in MATS)
    n, n_in = w_in.shape
    a = 1.0 / float(net.tau)
    h = hn = np.asarray(net.h0, float)
    B, beta, gamma = np.zeros((n, n + n_in)), np.eye(n), np.full(n, -np.log(1 - a))
    omega, Gamma = np.zeros(n), np.zeros(n)
    key = jax.random.PRNGKey(key)
    out, total = [], {k: 0.0 for k in MATS}
    for t in range(1, x.shape[0]):
        u = w_rec @ h + w_in @ x[t]
        h_new = h + (np.tanh(u) - h) * a
        d = 1 - np.tanh(u) ** 2
        kern = np.exp(-gamma)
        B = kern[:, None] * B + np.outer(a * d, np.concatenate([h, x[t]]))
        key, sub = jax.random.split(key)
        with jax.enable_x64(True):
            xi = np.asarray(jax.random.normal(sub, (n,), jnp.float64))
        hn = hn + (np.tanh(w_rec @ hn + w_in @ x[t]) - hn) * a + noise * xi
        Gamma = kern * (Gamma - omega)
        omega = kern * omega + xi
        e = beta @ omega - (hn - h_new) / noise
        beta, gamma = (
            beta - lr_beta * np.outer(e, omega),
            np.maximum(gamma - lr_gamma * (beta.T @ e) * Gamma, 0.0),
        )
        err = m[t] * (y[t] - w_out @ h_new)
        post = beta.T @ (w_out.T @ err)
        total["w_rec"] = total["w_rec"] + post[:, None] * B[:, :n]
        total["w_in"] = total["w_in"] + post[:, None] * B[:, n:]
        total["w_out"] = total["w_out"] + np.outer(err, h_new)
        out.append((B.copy(), beta.copy(), gamma.copy()))
        h = h_new
    return out, total


@pytest.mark.slow  # moved to the slow step to keep the default run under its CPU budget
def test_kernl_follows_its_recursion():
    """Three units, eight steps, learning rates large enough that beta and
    gamma move: every step's trace, sensitivity and rates, and the summed
    update, equal the numpy recursion (the rule's trial form equals its steps)."""
    net, task = random_network(n_in=2, n_rec=3, n_out=2), random_task(steps=9, n_in=2)
    rule = KeRNL(name="kernl_test", noise=0.05, lr_beta=0.05, lr_gamma=0.05)
    states, total = run_steps(rule, net, task, key=4)
    want, want_total = kernl_by_hand(net, task, 4, 0.05, 0.05, 0.05)
    for s, (B, beta, gamma) in zip(states, want):
        assert rel_err(s.B, B) < 1e-10 and rel_err(s.beta, beta) < 1e-10
        assert rel_err(s.gamma, gamma) < 1e-10
    assert rel_err(want[-1][1], np.eye(3)) > 1e-3 and rel_err(want[-1][2], want[0][2]) > 1e-4
    for k in MATS:
        assert rel_err(total[k], want_total[k]) < 1e-10, k
    trial = directions(rule, net, task, key=4)
    for k in MATS:
        assert rel_err(trial[k], want_total[k]) < 1e-10, k


def test_kernl_without_learning_is_the_local_rule():
    """beta = I and kernel 1 - 1/tau: RFLO's trace with w_out^T feedback."""
    net, task = random_network(), random_task(steps=30)
    got = directions(KeRNL(name="kernl_frozen", lr_beta=0.0, lr_gamma=0.0), net, task)
    want = directions("local", net, task)
    for k in MATS:
        assert rel_err(got[k], want[k]) < 1e-10, k


def test_kernl_and_dni_refuse_other_cells_in_one_line():
    lif = rflo.init_network(2, 4, 1, cell="lif")
    for name in ("kernl", "dni"):
        with pytest.raises(ValueError, match="leaky tanh cell with one tau") as info:
            get_rule(name).check(lif, Setup())
        assert "\n" not in str(info.value)
        with pytest.raises(ValueError, match="leaky tanh"):
            get_rule(name).check(random_network(), Setup(route="generic"))
    with pytest.raises(ValueError, match="noise"):
        KeRNL(noise=0.0)
    with pytest.raises(ValueError, match="lr_sg"):
        SyntheticGradients(lr_sg=-1.0)


def test_kernl_next_trial_keeps_what_it_learned():
    net, task = random_network(n_rec=3), random_task(steps=9)
    rule = KeRNL(name="kernl_test", noise=0.05, lr_beta=0.05, lr_gamma=0.05)
    states, _ = run_steps(rule, net, task)
    with jax.enable_x64(True):
        nxt = rule.next_trial(states[-1], jax_net(net), jax.random.PRNGKey(1))
    np.testing.assert_array_equal(nxt.beta, states[-1].beta)
    np.testing.assert_array_equal(nxt.gamma, states[-1].gamma)
    assert np.all(np.asarray(nxt.B) == 0) and np.all(np.asarray(nxt.omega) == 0)


# ----------------------------------------------------------------- DNI


def true_credit(net, task):
    """c[t] = -dL_{>=t}/dh[t] (T-1, n_rec) by autodiff: the gradient of the
    summed loss with respect to a nudge added to h[t]."""
    x, y, m = task.trial()
    with jax.enable_x64(True):
        jn = jax_net(net)
        x, y, m = jnp.asarray(x), jnp.asarray(y), jnp.asarray(m)

        def loss(nudge):
            def body(h, inp):
                x_t, y_t, m_t, d_t = inp
                h = h + (jnp.tanh(jn.w_rec @ h + jn.w_in @ x_t) - h) / jn.tau + d_t
                return h, 0.5 * m_t * jnp.sum((y_t - jn.w_out @ h) ** 2)

            return jnp.sum(jax.lax.scan(body, jn.h0, (x[1:], y[1:], m[1:], nudge))[1])

        return -np.asarray(jax.grad(loss)(jnp.zeros((x.shape[0] - 1, net.n_rec))))


_CREDIT = {}


class PerfectDNI(SyntheticGradients):
    """DNI whose module outputs the true credit of the test's trial."""

    def credit(self, A, module_in, t):
        return jnp.asarray(_CREDIT["c"])[t]


@pytest.mark.slow  # 8 s; DNI's update is checked in the default run by test_dni_module_follows_its_update
def test_dni_with_a_perfect_synthetic_gradient_is_bptt():
    """The exact limit: with s[t] = c[t] (the true future gradient) the summed
    update is the gradient (BPTT's; RTRL's), and the bootstrapped target
    equals the prediction, so the module does not move."""
    net, task = random_network(), random_task(steps=25, mask=(np.arange(25) % 3 != 1) * 1.0)
    _CREDIT["c"] = true_credit(net, task)
    rule = PerfectDNI(name="dni_perfect", lr_sg=0.5)
    exact = autodiff(net, task)
    got = directions(rule, net, task)
    for k in MATS:
        assert rel_err(got[k], exact[k]) < 1e-10, k
    states, _ = run_steps(rule, net, task)
    with jax.enable_x64(True):
        a0 = np.asarray(rule.initial_module(jax_net(net)))
    assert np.max(np.abs(states[-1].A - a0)) < 1e-10
    # the default module is not perfect: its update differs from the gradient
    assert rel_err(directions("dni", net, task)["w_rec"], exact["w_rec"]) > 1e-2


def dni_by_hand(net, task, lr):
    """DNI's module update and weight update in numpy, step by step."""
    x, y, m = task.trial()
    w_in, w_rec, w_out = (np.asarray(getattr(net, k), float) for k in MATS)
    n, n_in = w_in.shape
    a = 1.0 / float(net.tau)
    A = np.concatenate([-w_out.T @ w_out, w_out.T, np.zeros((n, 1))], axis=1)
    h = np.asarray(net.h0, float)
    prev_in = prev_q = None
    out, total = [], {k: 0.0 for k in MATS}
    for t in range(1, x.shape[0]):
        u = w_rec @ h + w_in @ x[t]
        h_new = h + (np.tanh(u) - h) * a
        d = 1 - np.tanh(u) ** 2
        err = m[t] * (y[t] - w_out @ h_new)
        q = w_out.T @ err
        v = np.concatenate([h_new, y[t], [1.0]])
        if prev_in is not None:
            s_next = A @ v
            target = prev_q + (1 - a) * s_next + w_rec.T @ (a * d * s_next)
            A = A - lr * np.outer(A @ prev_in - target, prev_in)
        s = A @ v
        total["w_rec"] = total["w_rec"] + np.outer(s * a * d, h)
        total["w_in"] = total["w_in"] + np.outer(s * a * d, x[t])
        total["w_out"] = total["w_out"] + np.outer(err, h_new)
        out.append(A.copy())
        prev_in, prev_q, h = v, q, h_new
    return out, total


def test_dni_module_follows_its_update():
    net, task = random_network(n_rec=4), random_task(steps=12)
    rule = SyntheticGradients(name="dni_test", lr_sg=0.05)
    states, total = run_steps(rule, net, task)
    want, want_total = dni_by_hand(net, task, 0.05)
    for s, A in zip(states, want):
        assert rel_err(s.A, A) < 1e-10
    assert rel_err(want[-1], want[0]) > 1e-3  # the module learned
    for k in MATS:
        assert rel_err(total[k], want_total[k]) < 1e-10, k
        assert rel_err(directions(rule, net, task)[k], want_total[k]) < 1e-10, k
    with jax.enable_x64(True):
        nxt = rule.next_trial(states[-1], jax_net(net))
    np.testing.assert_array_equal(nxt.A, states[-1].A)
    assert int(nxt.t) == 0


# ----------------------------------------------------------------- training


@pytest.mark.slow  # test_each_rule_learns_the_periodic_task covers it more fully in the slow step
@pytest.mark.parametrize("rule", ["rkf_rtrl", "kernl", "dni"])
def test_each_rule_trains_a_tiny_network(rule):
    net = rflo.init_network(1, 8, 1, seed=3)
    res = rflo.train(
        net, rflo.periodic_task(period=20), rule, trials=40, lr=(0.0, 0.3, 0.3), online=True
    )
    loss = np.asarray(res.loss)
    assert res.diverged is None and np.all(np.isfinite(loss))
    assert loss[-5:].mean() < loss[:5].mean(), (loss[:5].mean(), loss[-5:].mean())


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["rkf_rtrl", "kernl", "dni"])
def test_each_rule_learns_the_periodic_task(rule):
    net = rflo.init_network(1, 12, 1, seed=3)
    for online in (False, True):
        loss = np.asarray(
            rflo.train(
                net,
                rflo.periodic_task(period=40),
                rule,
                trials=200,
                lr=(0.0, 0.3, 0.3),
                online=online,
            ).loss
        )
        assert np.all(np.isfinite(loss))
        assert loss[-10:].mean() < 0.35 * loss[:10].mean(), (
            online,
            loss[:10].mean(),
            loss[-10:].mean(),
        )


# ----------------------------------------------------------------- tasks


def test_add_targets_follow_the_formula():
    gen = add()
    x, y, m = gen.batch(seed=2, batch=8)
    assert x.shape == (8, 100, 2) and y.shape == (8, 100, 2) and np.all(m == 1)
    bits = x[..., 0]
    assert set(np.unique(bits)) == {0.0, 1.0} and np.all(x[:, 0] == 0)
    np.testing.assert_array_equal(x[:, 1:, 1], 1 - bits[:, 1:])
    want = np.zeros_like(bits)
    for t in range(100):
        x5 = bits[:, t - 5] if t >= 5 else 0.0
        x9 = bits[:, t - 9] if t >= 9 else 0.0
        want[:, t] = 0.5 + 0.5 * x5 - 0.25 * x9
    np.testing.assert_allclose(y[..., 0], want, atol=1e-7)
    np.testing.assert_allclose(y[..., 1], 1 - want, atol=1e-7)
    np.testing.assert_allclose(add_target(bits), want, atol=1e-7)
    other = add(lag1=2, lag2=3, n_steps=20).batch(seed=0, batch=2)
    np.testing.assert_allclose(other[1][..., 0], add_target(other[0][..., 0], 2, 3), atol=1e-7)
    # sampled labels: one-hot, with frequency the formula's probability
    xs, ys, _ = add(deterministic=False, n_steps=40).batch(seed=1, batch=3000)
    assert set(np.unique(ys)) == {0.0, 1.0} and np.all(ys.sum(-1) == 1)
    p = add_target(xs[..., 0])
    for level in (0.25, 0.5, 0.75):
        sel = p[:, 10:] == level
        assert abs(ys[:, 10:, 0][sel].mean() - level) < 0.02, level
    assert np.all(ys[:, 10:, 0][p[:, 10:] == 1.0] == 1)
    with pytest.raises(ValueError, match="must exceed the longer lag"):
        add(n_steps=9)


@pytest.mark.slow  # a training run; the Add targets' formula is checked in the default run
def test_add_trains_with_the_cross_entropy_loss():
    gen = add(n_steps=40)
    net = rflo.init_network(gen.n_in, 8, gen.n_out, seed=0)
    res = rflo.train(net, gen, "rkf_rtrl", trials=5, lr=0.1, online=True, loss="cross_entropy")
    loss = np.asarray(res.loss)
    # about log 2 per scored step at the start (39 of 40 steps scored)
    assert np.all(np.isfinite(loss)) and abs(loss[0] - np.log(2) * 39 / 40) < 0.1


@pytest.mark.slow  # a teacher network per trial; the Add targets stay in the default run
def test_mimic_targets_are_the_teacher_outputs():
    gen = mimic(n_in=3, n_out=2, n_steps=30, n_rec=6, tau=4.0, teacher_seed=5)
    x, y, m = gen.batch(seed=0, batch=2)
    assert set(np.unique(x)) == {0.0, 1.0} and np.all(x[:, 0] == 0) and np.all(m == 1)
    w_in, w_rec, w_out = mimic_teacher(3, 6, 2, gain=1.2, seed=5)
    teacher = rflo.network_from_arrays(
        w_in=w_in,
        w_rec=w_rec,
        w_out=w_out,
        b=np.zeros((6, 2)),
        h0=np.zeros(6),
        tau=4.0,
        dtype="float64",
    )
    for i in range(2):
        want = rflo.simulate(teacher, x[i])[0]
        np.testing.assert_allclose(y[i], want, atol=1e-5)
    # the same teacher every trial, a new one with another seed
    x2, y2, _ = mimic(n_in=3, n_out=2, n_steps=30, n_rec=6, tau=4.0, teacher_seed=6).batch(
        seed=0, batch=2
    )
    np.testing.assert_array_equal(x2, x)
    assert np.max(np.abs(y2 - y)) > 1e-2
    assert MARSCHALL_TASKS == {"add": add, "mimic": mimic}
