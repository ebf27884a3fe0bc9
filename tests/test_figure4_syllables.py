"""Figure 4's syllable training as the Methods describe it (one random
syllable per trial, state and cursor carried, no reach out of bounds),
checked against the library's trainer run one trial at a time."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rflo
from rflo.paper.common import paper_network
from rflo.paper.figure4_syllables import syllable_trial, train_carried
from rflo.selector import reach_directions

MOVE, HOLD, LR = 6, 4, 0.05


def _net():
    net = paper_network(4, 12, 2, seed=3, tau=4.0, dtype="float64")
    return net._replace(cell=rflo.cells.get_cell("leaky_tanh", derivative="exact"))


def test_each_trial_is_the_trainers_trial_from_the_state_the_last_one_ended_in():
    """Three trials by hand: ``rflo.train`` on trial i's single-syllable task from
    a network whose h0 is the state trial i-1 ended in, as a plain SGD step."""
    net = _net()
    with jax.enable_x64(True):
        jnet = jax.tree_util.tree_map(jnp.asarray, net)
        got, loss, choices = jax.jit(lambda n, k: train_carried(n, 3, LR, MOVE, HOLD, 1.5, k))(
            jnet, jax.random.PRNGKey(5)
        )
        want, h = net, net.h0
        for i, k in enumerate(np.asarray(choices)):
            x, y, m = (np.asarray(a) for a in syllable_trial(int(k), 4, MOVE, HOLD, jnp.float64))
            task = rflo.Task(x=x, y=y, mask=m)
            res = rflo.train(want._replace(h0=h), task, "rflo", trials=1, lr=(LR, LR, LR))
            h = rflo.simulate(want._replace(h0=h), x)[1][-1]  # the state the trial ends in
            want = res.network._replace(h0=net.h0)
            assert abs(float(loss[i]) - float(res.loss[0])) < 1e-10 * max(1.0, float(res.loss[0]))
    for name in ("w_in", "w_rec", "w_out"):
        np.testing.assert_allclose(np.asarray(getattr(got, name)), getattr(want, name), rtol=1e-9)
    assert not np.allclose(np.asarray(got.w_rec), net.w_rec)  # it trained


def test_the_cursor_stays_in_bounds_and_every_syllable_is_drawn():
    net = _net()
    _, loss, choices = jax.jit(lambda n, k: train_carried(n, 400, 0.0, MOVE, HOLD, 1.0, k))(
        jax.tree_util.tree_map(jnp.asarray, net._replace(cell=rflo.cells.get_cell("leaky_tanh"))),
        jax.random.PRNGKey(0),
    )
    choices = np.asarray(choices)
    path = np.cumsum(np.asarray(reach_directions(4))[choices], axis=0)
    assert np.all(np.abs(path) <= 1.0 + 1e-6)
    counts = np.bincount(choices, minlength=4)
    assert np.all(counts > 50), counts  # uniform over the allowed ones, each often allowed
    assert np.all(np.isfinite(np.asarray(loss)))


def test_the_syllable_trial_plays_the_syllable_from_step_one():
    """Input ``k`` throughout; the target from step 1 is the syllable's velocity
    from its first step (step 0 is the trial's start state), as the built-in
    ``syllables`` task lays one slot out."""
    x, y, m = syllable_trial(2, 4, MOVE, HOLD, jnp.float32)
    assert x.shape == (MOVE + HOLD + 1, 4) and np.all(np.asarray(x)[:, 2] == 1)
    task = rflo.tasks.make_task("syllables", slots=1, move=MOVE, hold=HOLD)
    _, ty, _ = task.trial(0)
    # the task's step t plays local step t; ours step s plays local step s - 1
    ref = np.asarray(rflo.tasks.motor.syllable_velocity(2, np.arange(MOVE + HOLD), 4, MOVE))
    np.testing.assert_allclose(np.asarray(y)[1:], ref, atol=1e-6)
    assert ty.shape[1] == 2 and np.all(np.asarray(m) == 1)


def test_the_layout_and_its_rate_are_options():
    import argparse

    from rflo.paper import figure4
    from rflo.paper.common import apply_arguments

    parser = figure4.add_arguments(argparse.ArgumentParser())
    cfg = apply_arguments(figure4.QUICK, parser.parse_args([]))
    assert cfg.syllable_training == "one" and figure4.syllable_rate(cfg) == 0.003
    cfg = apply_arguments(figure4.QUICK, parser.parse_args(["--syllable-training", "four"]))
    assert cfg.syllable_training == "four" and figure4.syllable_rate(cfg) == 0.01
    with pytest.raises(SystemExit):
        parser.parse_args(["--syllable-training", "two"])
