"""Trial generators, built-in tasks, minibatches and accuracy."""

import numpy as np
import optax
import pytest
from conftest import random_network

import rflo
from rflo.ensemble import init_ensemble, train_ensemble, unstack_networks
from rflo.rotation import rotate_readout, train_with_rotation
from rflo.tasks import (
    Task,
    TaskGenerator,
    argmax_accuracy,
    make_task,
    sign_accuracy,
    task_names,
)
from rflo.trainer import TrialSource, trial_data

# small versions of every task (short trials compile and run fast)
SMALL = {
    "periodic": dict(period=40),
    "ready_set_go": dict(min_interval=5, max_interval=15, max_ready=8),
    "interval_matching": dict(min_delay=8, max_delay=16, ready=6, pulse_sd=2.0),
    "syllables": dict(slots=2, move=10, hold=2),
    "delayed_match": dict(fixation=2, sample=4, min_delay=0, max_delay=4, test=4, response=6),
    "flip_flop": dict(n_bits=2, n_steps=40, rate=0.08),
    "reach": dict(n_targets=4, cue=5, min_delay=2, max_delay=6, move=10, hold=5),
    "add": dict(n_steps=30),
    "mimic": dict(n_steps=40, n_rec=8),
    "evidence_accumulation": dict(
        n_cues=3, t_cue=4, t_interval=6, delay=4, recall=6, rate=0.4, p_group=0.1, n_in=8
    ),
}
#: tasks scored only at their end (a decision after a delay), not from the start
SCORED_AT_THE_END = {"evidence_accumulation": 150}  # its default recall


def test_every_builtin_task_has_a_small_version():
    assert sorted(SMALL) == task_names()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_shapes_masks_and_ranges(name):
    gen = make_task(name)
    x, y, m = gen.batch(seed=3, batch=6)
    t = gen.n_steps
    assert x.shape == (6, t, gen.n_in) and y.shape == (6, t, gen.n_out) and m.shape == (6, t)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(y))
    assert set(np.unique(m)) <= {0.0, 1.0}
    if name in SCORED_AT_THE_END:  # exactly the last steps (the recall) are scored
        end = SCORED_AT_THE_END[name]
        assert np.all(m[:, -end:] == 1) and np.all(m[:, :-end] == 0)
    else:
        assert np.all(m[:, : t // 2] == 1)  # trials are scored from their start
    lo, hi = {
        "periodic": (-1.75, 1.75),
        "ready_set_go": (0, 1),
        "delayed_match": (-1, 1),
        "flip_flop": (-1, 1),
        "reach": (-1, 1),
        "interval_matching": (0, 1),
        "syllables": (-1, 1),
        "add": (0, 1),
        "mimic": (-1, 1),
        "evidence_accumulation": (0, 1),
    }[name]
    assert lo <= y.min() and y.max() <= hi
    assert -1 <= x.min() and x.max() <= 1
    import inspect
    import re

    make = rflo.tasks.TASKS[name]  # every parameter is documented in the docstring
    for param in inspect.signature(make).parameters:
        assert re.search(rf"\b{param}\b", make.__doc__), (name, param)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_same_key_same_batch(name):
    gen = make_task(name, **SMALL[name])
    # gen.batch(seed) is gen.sample(PRNGKey(seed)), compiled
    a = gen.batch(seed=7, batch=4)
    b = gen.batch(seed=7, batch=4)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    if name != "periodic":  # every other task is random
        c = gen.batch(seed=8, batch=4)
        assert not np.array_equal(a[1], c[1])
        assert not np.array_equal(a[1][0], a[1][1]) or not np.array_equal(a[0][0], a[0][1])


def test_generators_are_hashable_static_values():
    a, b = make_task("flip_flop", n_bits=3), make_task("flip_flop", n_bits=3)
    assert a == b and hash(a) == hash(b)
    assert a != make_task("flip_flop", n_bits=2)
    assert make_task("periodic", amplitudes=[1, 0.5], harmonics=[1, 3]).n_out == 1


def test_periodic_generator_is_the_seed_task():
    gen = make_task("periodic")
    x, y, m = gen.trial()
    x0, y0, m0 = rflo.periodic_task().trial()
    np.testing.assert_array_equal(y, y0.astype(np.float32))
    np.testing.assert_array_equal(x, 0)


@pytest.mark.slow
def test_periodic_generator_trains_like_the_seed_task():
    net = rflo.init_network(1, 20, 1, seed=0)
    a = rflo.train(net, rflo.periodic_task(period=30), "rflo", trials=5)
    b = rflo.train(net, make_task("periodic", period=30), "rflo", trials=5)
    np.testing.assert_allclose(a.network.w_rec, b.network.w_rec, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-6)
    assert b.accuracy is None


def test_periodic_several_outputs():
    gen = make_task(
        "periodic",
        period=20,
        amplitudes=[[1.0, 0.0], [0.0, 2.0]],
        harmonics=[1, 2],
        phases=[[0, 0], [np.pi / 2, np.pi / 2]],
        duration=40,
    )
    assert gen.n_out == 2 and gen.n_steps == 40
    _, y, _ = gen.trial()
    t = np.arange(40)
    np.testing.assert_allclose(y[:, 0], np.sin(2 * np.pi * t / 20), atol=1e-6)
    np.testing.assert_allclose(y[:, 1], 2 * np.cos(4 * np.pi * t / 20), atol=1e-5)


def _onsets(channel):
    """Indices where a 0/1 signal switches on."""
    return np.flatnonzero(np.diff(np.concatenate([[0], channel])) > 0)


def test_ready_set_go_produces_the_interval_after_set():
    gen = make_task("ready_set_go", min_interval=8, max_interval=30)
    x, y, _ = gen.batch(seed=1, batch=20)
    intervals = []
    for b in range(20):
        (ready,), (set_,) = _onsets(x[b, :, 0]), _onsets(x[b, :, 1])
        interval = set_ - ready
        assert 8 <= interval <= 30
        assert np.argmax(y[b, :, 0]) == set_ + interval
        intervals.append(interval)
    assert len(set(intervals)) > 5


def test_delayed_match_answers_match_or_not():
    gen = make_task("delayed_match", n_stimuli=3)
    x, y, m = gen.batch(seed=2, batch=30)
    answers = set()
    for b in range(30):
        on = np.flatnonzero(x[b].sum(axis=1) > 0)
        first, second = x[b, on[0]], x[b, on[-1]]
        response = np.flatnonzero(y[b, :, 0] != 0)
        assert len(response) == 10 and response[0] == on[-1] + 1
        want = 1.0 if np.array_equal(first, second) else -1.0
        assert np.all(y[b, response, 0] == want)
        assert np.all(m[b, : response[-1] + 1] == 1) and np.all(m[b, response[-1] + 1 :] == 0)
        answers.add(want)
    assert answers == {1.0, -1.0}


def test_flip_flop_holds_the_last_pulse():
    gen = make_task("flip_flop", n_bits=3, n_steps=80, rate=0.05, pulse_width=1)
    x, y, _ = gen.batch(seed=4, batch=5)
    for b in range(5):
        for k in range(3):
            held = 0.0
            for t in range(80):
                if x[b, t, k] != 0:
                    held = x[b, t, k]
                assert y[b, t, k] == held
    assert np.any(y == 1) and np.any(y == -1)


@pytest.mark.parametrize("rotation", [0.0, 90.0])
def test_reach_ends_at_the_cued_target(rotation):
    gen = make_task("reach", n_targets=4, rotation=rotation)
    x, y, m = gen.batch(seed=5, batch=12)
    for b in range(12):
        cued = np.argmax(x[b, :, :4].sum(axis=0))
        last = np.flatnonzero(m[b])[-1]
        angle = np.pi / 2 * cued + np.deg2rad(rotation)
        np.testing.assert_allclose(y[b, last], [np.cos(angle), np.sin(angle)], atol=1e-5)
        go = _onsets(x[b, :, 4])[0]
        np.testing.assert_array_equal(y[b, : go + 1], 0)


def test_a_stacked_task_at_batch_1_keeps_the_seed_order():
    """Update i of a K-trial bank at batch 1 uses trial i % K (the seed's loop)."""
    bank = _bank(k=3, steps=10)
    src = trial_data(bank, 1, "float32")
    assert isinstance(src, TrialSource) and src.generator is None and src.batch == 1
    for i in (0, 4, 8):
        x, y, m = src.draw(i, None)
        assert x.shape[0] == 1
        np.testing.assert_allclose(np.asarray(x[0]), bank.trial(i % 3)[0], rtol=1e-6)
        assert not np.allclose(np.asarray(x[0]), bank.trial((i + 1) % 3)[0], rtol=1e-3)
    assert trial_data(make_task("periodic"), 1, "float32").generator is not None


def _bank(k=3, steps=12, seed=0):
    rng = np.random.default_rng(seed)
    return Task(x=rng.normal(size=(k, steps, 2)), y=rng.normal(size=(k, steps, 1)))


@pytest.mark.parametrize("rule", ["rflo", "bptt"])
def test_offline_minibatch_averages_the_trials_updates(rule):
    net = random_network(n_in=2, n_rec=6, n_out=1)
    bank = _bank(k=2)
    lr = (0.1, 0.2, 0.3)
    both = rflo.train(net, bank, rule, trials=1, lr=lr, batch=2)
    single = [rflo.train(net, Task(*bank.trial(j)), rule, trials=1, lr=lr) for j in range(2)]
    for name in ("w_in", "w_rec", "w_out"):
        mean_step = np.mean([getattr(s.network, name) - getattr(net, name) for s in single], axis=0)
        np.testing.assert_allclose(
            getattr(both.network, name) - getattr(net, name), mean_step, rtol=1e-9, atol=1e-12
        )
    np.testing.assert_allclose(both.loss[0], np.mean([s.loss[0] for s in single]), rtol=1e-12)


def test_online_minibatch_averages_each_steps_updates():
    """With two timesteps (one update) the per-step average is checkable."""
    net = random_network(n_in=2, n_rec=6, n_out=1)
    bank = _bank(k=2, steps=2)
    lr = (0.1, 0.2, 0.3)
    both = rflo.train(net, bank, "rflo", trials=1, lr=lr, batch=2, online=True)
    single = [
        rflo.train(net, Task(*bank.trial(j)), "rflo", trials=1, lr=lr, online=True)
        for j in range(2)
    ]
    for name in ("w_in", "w_rec", "w_out"):
        mean_step = np.mean([getattr(s.network, name) - getattr(net, name) for s in single], axis=0)
        np.testing.assert_allclose(
            getattr(both.network, name) - getattr(net, name), mean_step, rtol=1e-9, atol=1e-12
        )


@pytest.mark.parametrize("online", [pytest.param(False, marks=pytest.mark.slow), True])
def test_a_batch_of_identical_trials_is_one_trial(online):
    net = random_network(n_in=2, n_rec=6, n_out=1)
    one = Task(*_bank(k=1, steps=15).trial(0))
    three = Task(*(np.repeat(a[None], 3, axis=0) for a in one.trial(0)))
    a = rflo.train(net, one, "rflo", trials=4, online=online)
    b = rflo.train(net, three, "rflo", trials=4, online=online, batch=3)
    np.testing.assert_allclose(b.network.w_rec, a.network.w_rec, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-10)


def test_batches_walk_through_a_bank():
    """Update i uses bank entries (i B + b) % K: checked through the losses at lr = 0."""
    net = random_network(n_in=2, n_rec=6, n_out=1)
    bank = _bank(k=3)
    res = rflo.train(net, bank, "bptt", trials=3, lr=0.0, batch=2)
    ev = [rflo.evaluate(net, bank, j).loss for j in range(3)]
    np.testing.assert_allclose(
        res.loss, [(ev[0] + ev[1]) / 2, (ev[2] + ev[0]) / 2, (ev[1] + ev[2]) / 2], rtol=1e-10
    )


def test_accuracy_metrics_on_known_outputs():
    y_target = np.array([[0.0], [1.0], [1.0], [-1.0]])
    y = np.array([[5.0], [0.2], [-0.1], [-3.0]])
    correct, counted = sign_accuracy(y, y_target, np.array([1.0, 1.0, 1.0, 1.0]))
    assert (int(correct), int(counted)) == (2, 3)
    correct, counted = sign_accuracy(y, y_target, np.array([1.0, 1.0, 0.0, 0.0]))
    assert (int(correct), int(counted)) == (1, 1)
    onehot = np.eye(3)[[0, 0, 2, 2, 1]]  # fixation, fixation, choice 2, choice 2, choice 1
    out = np.eye(3)[[1, 0, 2, 1, 1]]
    correct, counted = argmax_accuracy(out, onehot, np.ones(5))
    assert (int(correct), int(counted)) == (2, 3)


@pytest.mark.slow  # moved to the slow step to keep the default run under its CPU budget
def test_accuracy_is_reported_per_trial_for_tasks_with_a_metric():
    gen = make_task("flip_flop", **SMALL["flip_flop"])
    net = rflo.init_network(2, 24, 2, seed=1)
    res = rflo.train(net, gen, "rflo", trials=400, batch=4, lr=0.1)
    assert res.accuracy.shape == (400,)
    assert np.all((res.accuracy >= 0) & (res.accuracy <= 1))
    assert res.loss[-20:].mean() < 0.6 * res.loss[:20].mean()
    assert res.accuracy[-20:].mean() > res.accuracy[:20].mean() + 0.15
    # a stacked bank keeps the metric
    banked = rflo.train(net, gen.to_task(8), "rflo", trials=3, batch=2)
    assert banked.accuracy.shape == (3,)


def _train_small(name, rule, trials=400):
    gen = make_task(name, **SMALL[name])
    if name == "delayed_match":  # the short DMS needs fast units; plain SGD plateaus for long
        net = rflo.init_network(gen.n_in, 32, gen.n_out, seed=1, tau=2.0)
        return rflo.train(net, gen, rule, trials=trials, batch=8, optimizer=optax.adam(3e-3))
    net = rflo.init_network(gen.n_in, 24, gen.n_out, seed=1)
    return rflo.train(net, gen, rule, trials=trials, batch=4, lr=0.1)


@pytest.mark.slow  # 4.6 s; learning stays in the default run: test_learning.py, test_cross_entropy_learns_a_decision
def test_short_training_reduces_the_loss():
    """One task here (flip-flop with rflo is above); every task and rule: the slow test."""
    res = _train_small("reach", "bptt")
    assert res.loss[-20:].mean() < 0.8 * res.loss[:20].mean()


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["rflo", "bptt"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_short_training_reduces_the_loss_on_every_task(name, rule):
    res = _train_small(name, rule, trials=1000 if name == "delayed_match" else 400)
    assert res.loss[-20:].mean() < 0.85 * res.loss[:20].mean()
    if res.accuracy is not None:
        assert res.accuracy[-50:].mean() > res.accuracy[:50].mean() + 0.15


@pytest.mark.slow  # 5 s; ensembles equal separate runs is checked in the default run (test_ensemble.py)
def test_ensemble_with_a_generator_equals_separate_runs():
    gen = make_task("flip_flop", **SMALL["flip_flop"])
    nets = init_ensemble(2, 12, 2, seeds=[0, 1])
    ens = train_ensemble(nets, gen, "rflo", trials=4, batch=2, seeds=[3, 4])
    assert ens.loss.shape == ens.accuracy.shape == (2, 4)
    for k, net in enumerate(unstack_networks(nets)):
        single = rflo.train(net, gen, "rflo", trials=4, batch=2, seed=3 + k)
        np.testing.assert_allclose(ens.network(k).w_rec, single.network.w_rec, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ens.accuracy[k], single.accuracy, rtol=1e-5)
    with pytest.raises(ValueError, match="one TaskGenerator"):
        train_ensemble(
            nets,
            [gen, make_task("flip_flop", **{**SMALL["flip_flop"], "rate": 0.2})],
            "rflo",
            trials=2,
        )


def test_bad_task_arguments_are_rejected():
    with pytest.raises(ValueError, match="unknown task"):
        make_task("nope")
    with pytest.raises(ValueError, match="bad parameters"):
        make_task("flip_flop", bits=2)
    with pytest.raises(ValueError, match="max_interval"):
        make_task("ready_set_go", min_interval=20, max_interval=10)
    with pytest.raises(ValueError, match="too short"):
        make_task("ready_set_go", n_steps=20)
    with pytest.raises(ValueError, match="same number of terms"):
        make_task("periodic", amplitudes=[1, 2], harmonics=[1, 2, 3])
    with pytest.raises(ValueError, match="batch"):
        rflo.train(rflo.init_network(1, 5, 1), make_task("periodic"), trials=1, batch=0)
    with pytest.raises(ValueError, match="2 inputs"):
        rflo.train(rflo.init_network(1, 5, 1), make_task("ready_set_go"), trials=1)
    with pytest.raises(ValueError, match="sample_fn"):
        TaskGenerator("x", 1, 1, 10, sample_fn=3)


@pytest.mark.slow  # 2.6 s; a task wrapper, the others stay in the default run
def test_rotate_readout_rotates_the_output():
    net = rflo.init_network(9, 10, 2, seed=0)
    x = np.random.default_rng(0).normal(size=(20, 9))
    y0, _, _ = rflo.simulate(net, x)
    y1, _, _ = rflo.simulate(rotate_readout(net, 90.0), x)
    np.testing.assert_allclose(y1, np.stack([-y0[:, 1], y0[:, 0]], axis=1), atol=1e-5)
    with pytest.raises(ValueError, match="2 outputs"):
        rotate_readout(rflo.init_network(1, 5, 1), 30)
    with pytest.raises(ValueError, match="rotate_at"):
        train_with_rotation(net, make_task("reach"), trials=10, rotate_at=10)


@pytest.mark.slow
def test_visuomotor_rotation_raises_the_error_then_adapts():
    gen = make_task("reach", **SMALL["reach"])
    net = rflo.init_network(gen.n_in, 24, 2, seed=1)
    res = train_with_rotation(
        net, gen, "rflo", trials=1200, rotate_at=600, degrees=90, lr=(0.1, 0.1, 0.1), batch=4
    )
    assert res.loss.shape == (1200,)
    before, jump, late = res.loss[580:600].mean(), res.loss[600:605].mean(), res.loss[-20:].mean()
    assert jump > 1.5 * before  # the rotation hurts ...
    assert late < 0.7 * jump  # ... and learning recovers
    with pytest.raises(ValueError, match="rotate_at"):
        train_with_rotation(net, gen, trials=10, rotate_at=10)


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(("reach", "delayed_match"), marks=pytest.mark.slow),  # 3.6 s: CLI + PNGs
        pytest.param(("periodic", "ready_set_go", "flip_flop"), marks=pytest.mark.slow),
    ],
)
def test_task_show_cli_writes_pngs(tmp_path, capsys, names):
    from rflo.tasks.cli import main

    for name in names:
        out = tmp_path / f"{name}.png"
        assert main(["show", name, "--out", str(out), "--seed", "2"]) == 0
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["show", "flip_flop", "--out", str(tmp_path / "f.png"), "--set", "n_bits=3"]) == 0
    assert main(["list"]) == 0
    assert "flip_flop" in capsys.readouterr().out
    assert main(["show", "nope"]) == 2
    assert main(["show", "flip_flop", "--set", "bits=3"]) == 2
    assert main(["show", "flip_flop", "--set", "n_bits"]) == 2
    assert "error" in capsys.readouterr().err


# --------------------------------------------------------------------------
# NeuroGym adapter


class _Space:
    def __init__(self, shape=None, n=None):
        self.shape, self.n = shape, n


class FakeTrialEnv:
    """The part of NeuroGym's TrialEnv API the adapter uses: ``seed``,
    ``new_trial`` (sets ``ob`` (T_i, n_obs) and ``gt`` (T_i,)), the spaces."""

    def __init__(self):
        self.observation_space = _Space(shape=(2,))
        self.action_space = _Space(n=3)
        self.rng = np.random.default_rng(0)

    def seed(self, seed=None):
        self.rng = np.random.default_rng(seed)

    def new_trial(self):
        t = int(self.rng.integers(4, 9))
        choice = int(self.rng.integers(1, 3))
        self.ob = np.zeros((t, 2))
        self.ob[:, 0] = 1.0  # fixation cue
        self.ob[:-1, 1] = 1.0 if choice == 1 else -1.0
        self.gt = np.zeros(t, dtype=int)
        self.gt[-1] = choice
        return {"ground_truth": choice}


class _Wrapper:  # like gymnasium's wrappers: the TrialEnv is .unwrapped
    def __init__(self, env):
        self.unwrapped = env


def test_neurogym_adapter_on_a_fake_environment():
    from rflo.tasks import neurogym_task

    task = neurogym_task(_Wrapper(FakeTrialEnv()), n_trials=20, seed=3, response_weight=5.0)
    again = neurogym_task(FakeTrialEnv(), n_trials=20, seed=3, response_weight=5.0)
    np.testing.assert_array_equal(task.stacked()[0], again.stacked()[0])  # seeded
    x, y, m = task.stacked()
    assert task.n_steps == 9 and x.shape == (20, 9, 2) and y.shape == (20, 9, 3)
    assert task.metric is argmax_accuracy
    np.testing.assert_array_equal(m[:, 0], 0)  # the initial state is never scored
    lengths = (m > 0).sum(axis=1)
    assert set(lengths) <= set(range(4, 9)) and len(set(lengths)) > 1
    for i, t in enumerate(lengths):
        np.testing.assert_array_equal(y[i, 1 : t + 1].sum(axis=1), 1)  # one-hot where scored
        np.testing.assert_array_equal(y[i, t + 1 :], 0)  # padding
        np.testing.assert_array_equal(m[i, 1:t], 1)
        assert m[i, t] == 5.0  # the decision step is weighted
        assert y[i, t, 1 if x[i, 1, 1] > 0 else 2] == 1
    with pytest.raises(ValueError, match="too short"):
        neurogym_task(FakeTrialEnv(), n_trials=20, n_steps=5)
    with pytest.raises(ValueError, match="not a NeuroGym"):
        neurogym_task(object(), n_trials=2)


@pytest.mark.parametrize("rule", [pytest.param("rflo", marks=pytest.mark.slow), "bptt"])
def test_cross_entropy_learns_a_decision(rule):
    """Softmax cross-entropy on one-hot action targets (the NeuroGym layout):
    RFLO's random feedback carries the loss's error as BPTT's exact gradient does."""
    from rflo.tasks import neurogym_task
    from rflo.train import score

    bank = neurogym_task(FakeTrialEnv(), n_trials=64, seed=0, response_weight=5.0)
    test = neurogym_task(
        FakeTrialEnv(), n_trials=64, seed=1, n_steps=bank.n_steps, response_weight=5.0
    )
    net = rflo.init_network(2, 16, 3, seed=0)
    loss0, acc0 = score(net, test, loss="cross_entropy")
    res = rflo.train(net, bank, rule, trials=150, batch=8, lr=1.0, loss="cross_entropy")
    loss, acc = score(res.network, test, loss="cross_entropy")
    assert acc0 < 0.5 and acc > 0.75, (acc0, acc)
    assert loss < 0.6 * loss0


@pytest.mark.parametrize("loss,lr", [("squared_error", 0.1), ("cross_entropy", 0.3)])
def test_neurogym_perceptual_decision_is_learned(loss, lr):
    ngym = pytest.importorskip(
        "neurogym",
        reason="neurogym is not installed (optional extra: pip install 'rflo[neurogym]')",
    )
    from rflo.tasks import neurogym_task
    from rflo.train import score

    assert ngym is not None
    env = "PerceptualDecisionMaking-v0"
    bank = neurogym_task(env, 400, seed=0, env_kwargs=dict(dt=100), response_weight=10.0)
    test = neurogym_task(
        env, 200, seed=1, n_steps=bank.n_steps, env_kwargs=dict(dt=100), response_weight=10.0
    )
    assert bank.n_in == 3 and bank.n_out == 3 and bank.metric is argmax_accuracy
    net = rflo.init_network(3, 40, 3, seed=0)
    _, acc0 = score(net, test, loss=loss)
    for rule in ("rflo", "bptt"):
        res = rflo.train(net, bank, rule, trials=600, batch=16, lr=lr, loss=loss)
        _, acc = score(res.network, test, loss=loss)
        assert res.accuracy.shape == (600,)
        assert acc > 0.7 > acc0 + 0.1, (rule, acc0, acc)


@pytest.mark.slow
def test_ensemble_of_banked_tasks_reports_accuracy():
    gen = make_task("flip_flop", **SMALL["flip_flop"])
    banks = [gen.to_task(6, seed=s) for s in (0, 1)]
    nets = init_ensemble(2, 12, 2, seeds=[0, 0])
    ens = train_ensemble(nets, banks, "bptt", trials=5, batch=3)
    assert ens.accuracy.shape == (2, 5)
    for k, bank in enumerate(banks):
        single = rflo.train(unstack_networks(nets)[k], bank, "bptt", trials=5, batch=3, seed=k)
        np.testing.assert_allclose(ens.loss[k], single.loss, rtol=1e-5)
        np.testing.assert_allclose(ens.accuracy[k], single.accuracy, rtol=1e-5)
    assert not np.allclose(ens.loss[0], ens.loss[1])


def test_interval_matching_puts_the_go_pulse_one_delay_after_set():
    """Murray (2019) Fig. 3: Gaussian pulses (SD 15 steps) at ready, set = ready + d
    and go = set + d; a fixed delay with min_delay = max_delay."""
    for d in (50, 120):
        gen = make_task("interval_matching", min_delay=d, max_delay=d)
        x, y, m = gen.trial(0, 3)
        peaks = [
            t
            for t in range(1, gen.n_steps - 1)
            if x[t, 0] > x[t - 1, 0] and x[t, 0] >= x[t + 1, 0] and x[t, 0] > 0.5
        ]
        assert peaks == [50, 50 + d]
        assert int(np.argmax(y[:, 0])) == 50 + 2 * d and y.max() == 1.0
        assert np.isclose(y[50 + 2 * d + 15, 0], np.exp(-0.5))  # one SD away
        assert gen.n_steps == 50 + 2 * d + 61 and np.all(m == 1)
    with pytest.raises(ValueError, match="too short"):
        make_task("interval_matching", n_steps=100)


def test_syllables_cue_each_reach_and_move_the_cursor_by_one():
    from rflo.tasks.motor import cursor_path

    gen = make_task("syllables", slots=3, move=40, hold=20)
    x, y, m = gen.trial(0, 5)
    assert x.shape == (180, 4) and y.shape == (180, 2) and np.all(m == 1)
    cued = [int(np.argmax(x[s * 60])) for s in range(3)]
    for s, k in enumerate(cued):
        assert np.all(x[s * 60 : (s + 1) * 60, k] == 1) and np.all(
            x[s * 60 : (s + 1) * 60].sum(1) == 1
        )
        np.testing.assert_allclose(y[s * 60 + 40 : (s + 1) * 60], 0, atol=1e-6)  # the hold
    path = cursor_path(y, 40)
    step = path[59] - np.vstack([[0, 0], path])[0]
    angle = 2 * np.pi * cued[0] / 4
    np.testing.assert_allclose(step, [np.cos(angle), np.sin(angle)], atol=2e-2)


def test_tasks_name_their_channels():
    from rflo.tasks import TaskGenerator, make_task

    assert make_task("ready_set_go").inputs == ("ready", "set")
    assert make_task("reach", n_targets=3).inputs == ("target 0", "target 1", "target 2", "go")
    assert make_task("reach").outputs == ("x position", "y position")
    for name in rflo.task_names():
        task = make_task(name)
        assert len(task.inputs) == task.n_in and len(task.outputs) == task.n_out
    plain = TaskGenerator("t", 2, 1, 5, lambda key, batch: None)
    assert plain.inputs == ("in 0", "in 1") and plain.outputs == ("out 0",)
    with pytest.raises(ValueError, match="inputs must name all 2 channels"):
        TaskGenerator("t", 2, 1, 5, lambda key, batch: None, inputs=("a",))
