"""The evidence-accumulation task of Bellec et al. (2020): layout, statistics, answer, metric."""

import numpy as np
import pytest

from rflo.tasks import make_task, task_names
from rflo.tasks.evidence import evidence_accumulation, recall_accuracy


@pytest.fixture(scope="module")
def trials():
    # the paper's task with a short delay (the delay only adds silent-cue steps)
    gen = evidence_accumulation(delay=50)
    x, y, m = gen.batch(seed=3, batch=200)
    return gen, x, y, m


def test_registered_and_default_length():
    assert "evidence_accumulation" in task_names()
    gen = make_task("evidence_accumulation")
    # the authors' seq_len = 7 * 150 + 1200 ms, plus the initial row
    assert (gen.n_in, gen.n_out, gen.n_steps) == (40, 2, 1 + 7 * 150 + 1050 + 150)


def test_layout_rates_and_answer(trials):
    gen, x, y, m = trials
    b, t, _ = x.shape
    groups = x[:, 1:].reshape(b, t - 1, 4, 10)  # ms 0.. ; left, right, recall, noise
    assert np.all(x[:, 0] == 0)  # row 0 is never fed
    left, right = groups[..., 0, :].sum(-1), groups[..., 1, :].sum(-1)
    # each cue: 100 ms after 50 ms of silence, on exactly one side
    sides = []
    for k in range(7):
        quiet = slice(150 * k, 150 * k + 50)
        shown = slice(150 * k + 50, 150 * (k + 1))
        assert left[:, quiet].sum() == 0 and right[:, quiet].sum() == 0
        n_left, n_right = left[:, shown].sum(1), right[:, shown].sum(1)
        assert np.all((n_left == 0) != (n_right == 0))
        sides.append(n_right > 0)
        # 40 Hz on the 10 channels of the cue's side: 40 spikes expected per cue
        assert abs(np.mean(n_left + n_right) - 40.0) < 3 * np.sqrt(40.0 / b)
    sides = np.stack(sides, 1)
    assert left[:, 1050:].sum() == 0 and right[:, 1050:].sum() == 0
    # recall channels: 40 Hz during the last 150 ms only; noise: 10 Hz throughout
    recall = groups[..., 2, :]
    assert recall[:, :-150].sum() == 0
    assert abs(recall[:, -150:].mean() - 0.04) < 3 * np.sqrt(0.04 / (b * 1500))
    noise = groups[..., 3, :]
    assert abs(noise.mean() - 0.01) < 3 * np.sqrt(0.01 / noise.size)
    # p_group 0.3: 70 % of the cues on the trial's majority side (binomial, 1400 cues)
    n_right = sides.sum(1)
    majority_share = np.mean(np.maximum(n_right, 7 - n_right)) / 7
    assert 0.7 < majority_share < 0.8  # E = 0.73 at p_group 0.3 (0.65 at 0.5, 0.9 at 0.1)
    # the answer: right when more than 3 cues were right; one-hot on the recall only
    answer = (n_right > 3).astype(int)
    assert np.all(m[:, -150:] == 1) and np.all(m[:, :-150] == 0)
    assert np.all(y[:, :-150] == 0)
    assert np.array_equal(y[:, -1].argmax(1), answer) and np.all(y[:, -150:].sum(-1) == 1)
    assert 0.3 < answer.mean() < 0.7


def test_recall_accuracy_decides_on_mean_logit(trials):
    gen, x, y, m = trials
    target, mask = y[0, 1:], m[0, 1:]
    want = target[-1].argmax()
    good = np.zeros_like(target)
    good[:, want] = 1.0
    good[-1] = [0.0, 0.0]
    good[-1, 1 - want] = 5.0  # one step against, the mean still for
    assert tuple(map(int, recall_accuracy(good, target, mask))) == (1, 1)
    assert tuple(map(int, recall_accuracy(-good, target, mask))) == (0, 1)
    assert tuple(map(int, recall_accuracy(good, target, 0 * mask))) == (0, 0)


@pytest.mark.parametrize(
    "bad", [dict(n_cues=6), dict(t_cue=200), dict(p_group=0.5), dict(n_in=42), dict(rate=2.0)]
)
def test_refuses_bad_settings(bad):
    with pytest.raises(ValueError):
        evidence_accumulation(**bad)
