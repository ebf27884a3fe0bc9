"""Dale's law and a fixed connectivity mask hold through training, for every rule."""

import numpy as np
import pytest
from conftest import random_task

import rflo
from rflo.ensemble import train_ensemble
from rflo.rules import get_rule, rule_names

# large enough that unconstrained updates push many weights across zero
LR = (1.0, 20.0, 1.0)


def constrained_net(seed=0, n_rec=8):
    """A Dale network (75 % excitatory) with a sparse mask, small recurrent
    weights (so that updates would carry many across zero) and a large readout
    (so that errors fed back through w_out^T are as large as through b)."""
    net = rflo.init_network(2, n_rec, 1, seed=seed, dale=0.75, connectivity=0.6)
    return net._replace(w_rec=np.asarray(net.w_rec) * 0.01, w_out=np.asarray(net.w_out) * 20)


def violations(net, sign, mask):
    """(number of weights of the wrong sign, number of absent connections present)."""
    w = np.asarray(net.w_rec)
    return int(np.sum(sign[None, :] * w < 0)), int(np.sum(w[mask == 0] != 0))


def check_constraints(net, before):
    """Every column of w_rec keeps its unit's sign; absent connections stay absent."""
    sign = np.asarray(before.sign)
    mask = np.asarray(before.mask)
    assert np.array_equal(np.asarray(net.sign), sign)
    assert np.array_equal(np.asarray(net.mask), mask)
    w = np.asarray(net.w_rec)
    for j in range(w.shape[1]):
        assert np.all(sign[j] * w[:, j] >= 0), f"column {j} left its unit's sign {sign[j]:+.0f}"
    assert violations(net, sign, mask) == (0, 0)


def modes():
    for name in rule_names():
        yield name, False
        if get_rule(name).online:
            yield name, True


TASK = random_task(steps=12, n_in=2, n_out=1, seed=3)


#: rules whose constraint cases run in the slow step (each has a relative in the default run)
SLOW_RULES = ("rkf_rtrl", "kernl", "dni")


@pytest.mark.parametrize(
    "rule,online",
    [pytest.param(r, o, marks=pytest.mark.slow) if r in SLOW_RULES else (r, o) for r, o in modes()],
)
def test_dale_and_mask_hold_after_training(rule, online):
    net = constrained_net()
    assert np.any(np.asarray(net.sign) < 0) and np.any(np.asarray(net.sign) > 0)
    assert np.any(np.asarray(net.mask) == 0)
    res = rflo.train(net, TASK, rule, trials=15, lr=LR, online=online)
    check_constraints(res.network, net)
    assert not np.allclose(net.w_rec, res.network.w_rec), "training did not change w_rec"
    assert np.all(np.isfinite(res.loss))


@pytest.mark.parametrize("rule,online", [("rflo", True), ("bptt", False)])
def test_the_same_training_unconstrained_breaks_both(rule, online):
    """The setting above really stresses the constraints: without them, weights
    change sign and absent connections grow."""
    net = constrained_net()
    free = net._replace(sign=None, mask=None)
    res = rflo.train(free, TASK, rule, trials=15, lr=LR, online=online)
    wrong_sign, grown = violations(res.network, np.asarray(net.sign), np.asarray(net.mask))
    assert wrong_sign > 0 and grown > 0


@pytest.mark.parametrize("rule,online", [("rflo", True), ("bptt", False)])
def test_constraints_hold_after_every_update(rule, online):
    """Trials of two timesteps are one update each: check after every one, and
    that some updates were clipped at zero."""
    net = constrained_net(seed=1)
    task = random_task(steps=2, n_in=2, n_out=1, seed=4)
    cur, clipped = net, 0
    for i in range(8):
        nxt = rflo.train(cur, task, rule, trials=1, lr=LR, online=online, start_trial=i).network
        check_constraints(nxt, net)
        clipped += int(np.sum((np.asarray(nxt.w_rec) == 0) & (np.asarray(cur.w_rec) != 0)))
        cur = nxt
    assert clipped > 0


def test_constraints_hold_in_an_ensemble():
    nets = [constrained_net(seed=s) for s in (0, 1, 2)]
    res = train_ensemble(nets, TASK, "rflo", trials=15, lr=LR)
    for k, before in enumerate(nets):
        check_constraints(res.network(k), before)
        assert not np.allclose(before.w_rec, res.network(k).w_rec)


def test_balanced_dale_initialisation():
    """The default Dale draw balances excitation and inhibition: each unit's mean
    recurrent input is about zero and each row keeps the unconstrained
    E sum_j w_ij^2 = g^2; balanced=False keeps the unconstrained magnitudes."""
    n, g = 200, 1.5
    free = rflo.init_network(1, n, 1, seed=5, g=g)
    bal = rflo.init_network(1, n, 1, seed=5, g=g, dale=0.8)
    raw = rflo.init_network(1, n, 1, seed=5, g=g, dale=0.8, balanced=False)
    sign = np.asarray(bal.sign)
    assert np.sum(sign > 0) == 160
    for net in (bal, raw):
        assert np.all(sign[None, :] * np.asarray(net.w_rec) >= 0)
    np.testing.assert_allclose(np.abs(raw.w_rec), np.abs(free.w_rec), rtol=1e-6)
    # per presynaptic unit, one factor: 1 for excitatory, 4 times that for inhibitory
    ratio = np.abs(bal.w_rec) / np.abs(free.w_rec)
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[0], ratio.shape), rtol=1e-5)
    np.testing.assert_allclose(ratio[0, sign < 0] / ratio[0, sign > 0][0], 4.0, rtol=1e-5)
    # raw: every unit gets a large positive mean input, (2*0.8-1) g sqrt(2n/pi) ~ 10
    row_raw = np.asarray(raw.w_rec).sum(axis=1)
    row_bal = np.asarray(bal.w_rec).sum(axis=1)
    assert row_raw.mean() > 8
    assert abs(row_bal.mean()) < 0.5
    assert abs(np.mean(np.sum(np.asarray(bal.w_rec) ** 2, axis=1)) / g**2 - 1) < 0.15
    # and the spectrum: no large outlier eigenvalue once balanced
    assert np.abs(np.linalg.eigvals(raw.w_rec)).max() > 5
    assert np.abs(np.linalg.eigvals(bal.w_rec)).max() < 2.5


def test_balanced_must_be_a_bool():
    with pytest.raises(ValueError, match="balanced must be True or False"):
        rflo.init_network(1, 5, 1, dale=0.8, balanced="yes")
