"""Evidence accumulation (Bellec et al. 2020, Fig. 3; after Morcos & Harvey 2016).

An agent runs down a virtual corridor, sees ``n_cues`` cues, each on its left
or its right, and after a delay must turn to the side where it saw more cues.
As in the authors' code (IGITUGraz/eligibility_propagation,
``Figure_3_and_S7_e_prop_tutorials``: ``tutorial_evidence_accumulation_with_alif.py``
and ``generate_click_task_data`` in ``tools.py``), time is in steps of 1 ms
and the ``n_in`` input channels are four equal groups of Poisson spike
trains:

* channels ``0 .. g-1`` (``g = n_in / 4``) fire at ``rate`` (40 Hz) while a
  *left* cue is shown, ``g .. 2g-1`` while a *right* cue is shown;
* cue ``k`` (``k = 0 .. n_cues-1``) is shown from ``t_interval - t_cue + k
  t_interval`` for ``t_cue`` ms (100 ms cues spaced 150 ms: 50 ms of silence
  before each);
* channels ``2g .. 3g-1`` fire at ``rate`` during the last ``recall`` ms
  (the recall cue, 150 ms);
* channels ``3g .. 4g-1`` fire at ``rate / 4`` (10 Hz) throughout (noise).

Each trial picks a side at random (probability 1/2) and shows each cue on it
with probability ``1 - p_group`` (0.7), else on the other side; the answer is
"right" (class 1) when more than ``n_cues // 2`` cues were on the right.  The
trial is ``n_cues t_interval + delay + recall`` ms (the authors' ``7 * 150 +
1200``: a delay of 1050 ms after the last cue's slot, then the 150 ms recall),
plus the initial row 0 (never fed to the network, so its inputs are 0).

Targets are one-hot ``(left, right)`` during the recall, zero elsewhere, with
``mask = 1`` on the recall only: the ``cross_entropy`` loss scores the recall
steps only, as the authors' ``loss_cls`` (softmax cross-entropy on the last
150 ms).  The answer of a trial is the class of the largest *mean* logit over
the recall (their ``y_predict``), and :func:`recall_accuracy` is that metric.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rflo._checks import check_int, check_positive
from rflo.tasks.builtin import TASKS
from rflo.tasks.generator import TaskGenerator

__all__ = ["evidence_accumulation", "recall_accuracy", "EVIDENCE_TASKS"]


def recall_accuracy(y, y_target, mask):
    """One decision per trial: the class of the largest logit summed over the
    scored steps (the recall) against the target's class there.  Returns
    ``(correct, counted)`` (counted is 1 for a trial with a recall)."""
    m = (mask > 0)[:, None]
    score = jnp.sum(jnp.where(m, y, 0.0), axis=0)
    want = jnp.sum(jnp.where(m, y_target, 0.0), axis=0)
    counted = jnp.any(m) & (jnp.max(want) > 0)
    correct = counted & (jnp.argmax(score) == jnp.argmax(want))
    return correct.astype(jnp.int32), counted.astype(jnp.int32)


def _evidence_sample(
    key, batch, *, n_in, n_cues, t_cue, t_interval, delay, recall, rate, p_group, n_steps
):
    k_side, k_cues, k_spikes = jax.random.split(key, 3)
    g = n_in // 4
    # the majority side of each trial, then each cue: on it with probability 1 - p_group
    majority = jax.random.bernoulli(k_side, 0.5, (batch, 1))
    flip = jax.random.bernoulli(k_cues, p_group, (batch, n_cues))
    right = jnp.where(flip, ~majority, majority)  # (batch, n_cues) True: cue on the right
    t = jnp.arange(n_steps) - 1  # row 0 is the initial state: ms 0 is row 1
    slot = t // t_interval  # (T,) the cue slot of each ms
    shown = (t >= 0) & (slot < n_cues) & (t - slot * t_interval >= t_interval - t_cue)
    cue_right = jnp.take_along_axis(
        right, jnp.clip(slot, 0, n_cues - 1)[None, :].repeat(batch, 0), axis=1
    )  # (batch, T)
    left_on = shown[None] & ~cue_right
    right_on = shown[None] & cue_right
    recall_on = t >= n_steps - 1 - recall  # the last ``recall`` rows
    p = jnp.concatenate(
        [
            jnp.repeat(left_on[..., None], g, axis=2) * rate,
            jnp.repeat(right_on[..., None], g, axis=2) * rate,
            jnp.broadcast_to(recall_on[None, :, None], (batch, n_steps, g)) * rate,
            jnp.broadcast_to((t >= 0)[None, :, None], (batch, n_steps, n_in - 3 * g)) * rate / 4,
        ],
        axis=2,
    )
    x = jax.random.bernoulli(k_spikes, p).astype(jnp.float32)
    answer = (jnp.sum(right, axis=1) > n_cues // 2).astype(jnp.int32)  # (batch,)
    m = jnp.broadcast_to(recall_on[None, :], (batch, n_steps)).astype(jnp.float32)
    y = jax.nn.one_hot(answer, 2)[:, None, :] * m[..., None]
    return x, y, m


def evidence_accumulation(
    n_cues: int = 7,
    *,
    t_cue: int = 100,
    t_interval: int = 150,
    delay: int = 1050,
    recall: int = 150,
    rate: float = 0.04,
    p_group: float = 0.3,
    n_in: int = 40,
) -> TaskGenerator:
    """The evidence-accumulation task of Bellec et al. (2020), Fig. 3 (module
    docstring).  Use with ``loss="cross_entropy"``; the task's metric is
    :func:`recall_accuracy` (chance 0.5).  Values: ``x`` in {0, 1}, ``y``
    one-hot on the recall, 0 before it.

    Parameters (times in ms = steps)
    ----------
    n_cues : number of cues (odd, so that one side wins; 7).
    t_cue : length of a cue (100).
    t_interval : from one cue's start to the next's (150).
    delay : from the last cue's end to the recall (1050).
    recall : length of the recall, the only scored period (150).
    rate : the cue and recall channels' spike probability per ms (0.04: 40 Hz;
        the noise channels fire at ``rate / 4``).
    p_group : the chance that a cue is on the trial's minority side (0.3).
    n_in : input channels, a multiple of 4 (left, right, recall, noise; 40).
    """
    n_cues = check_int("n_cues", n_cues)
    if n_cues % 2 == 0:
        raise ValueError(f"n_cues must be odd (no ties), got {n_cues}")
    t_cue = check_int("t_cue", t_cue)
    t_interval = check_int("t_interval", t_interval)
    if t_cue > t_interval:
        raise ValueError(f"t_cue ({t_cue}) must be <= t_interval ({t_interval})")
    delay = check_int("delay", delay, minimum=0)
    recall = check_int("recall", recall)
    rate = check_positive("rate", rate)
    if rate > 1:
        raise ValueError(f"rate is a spike probability per step and must be <= 1, got {rate}")
    p_group = check_positive("p_group", p_group)
    if p_group >= 0.5:
        raise ValueError(
            f"p_group (the chance of a cue on the minority side) must be < 0.5, got {p_group}"
        )
    n_in = check_int("n_in", n_in, minimum=4)
    if n_in % 4:
        raise ValueError(f"n_in must be a multiple of 4 (left, right, recall, noise), got {n_in}")
    n_steps = 1 + n_cues * t_interval + delay + recall
    g = n_in // 4
    return TaskGenerator(
        "evidence_accumulation",
        n_in,
        2,
        n_steps,
        _evidence_sample,
        dict(
            n_in=n_in,
            n_cues=n_cues,
            t_cue=t_cue,
            t_interval=t_interval,
            delay=delay,
            recall=recall,
            rate=rate,
            p_group=p_group,
            n_steps=n_steps,
        ),
        metric=recall_accuracy,
        inputs=tuple(
            [f"left {k}" for k in range(g)]
            + [f"right {k}" for k in range(g)]
            + [f"recall {k}" for k in range(g)]
            + [f"noise {k}" for k in range(n_in - 3 * g)]
        ),
        outputs=("left", "right"),
    )


#: the factories by name (as in :data:`rflo.tasks.TASKS`)
EVIDENCE_TASKS = {"evidence_accumulation": evidence_accumulation}
TASKS.update(EVIDENCE_TASKS)
