"""Memory tasks, as :class:`~rflo.tasks.TaskGenerator` s (built-in:
:data:`rflo.tasks.TASKS` holds them, :mod:`rflo.tasks.builtin` re-exports
them): delayed match-to-sample (:func:`delayed_match`) and flip-flop memory
(:func:`flip_flop`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rflo._checks import check_int, check_positive
from rflo.tasks.generator import TaskGenerator, sign_accuracy
from rflo.tasks.trial_time import check_range, steps, window

__all__ = ["delayed_match", "flip_flop"]


# --------------------------------------------------------------------------
# delayed match-to-sample


def _dms_sample(
    key, batch, *, n_stimuli, fixation, sample, min_delay, max_delay, test, response, n_steps
):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    first = jax.random.randint(k1, (batch,), 0, n_stimuli)
    match = jax.random.bernoulli(k2, 0.5, (batch,))
    other = (first + jax.random.randint(k3, (batch,), 1, n_stimuli)) % n_stimuli
    second = jnp.where(match, first, other)
    delay = jax.random.randint(k4, (batch,), min_delay, max_delay + 1)
    t = steps(n_steps)
    t_test = fixation + sample + delay
    in_sample = window(t, jnp.full((batch,), fixation), sample)
    in_test = window(t, t_test, test)
    x = (
        jax.nn.one_hot(first, n_stimuli)[:, None] * in_sample[..., None]
        + jax.nn.one_hot(second, n_stimuli)[:, None] * in_test[..., None]
    )
    answer = jnp.where(match, 1.0, -1.0)[:, None]
    y = jnp.where(window(t, t_test + test, response), answer, 0.0)[..., None]
    mask = (t < (t_test + test + response)[:, None]).astype(float)
    return x, y, mask


def delayed_match(
    n_stimuli: int = 2,
    *,
    fixation: int = 5,
    sample: int = 10,
    min_delay: int = 10,
    max_delay: int = 30,
    test: int = 10,
    response: int = 10,
) -> TaskGenerator:
    """Delayed match-to-sample.

    After ``fixation`` steps a sample stimulus (one of ``n_stimuli``, one-hot on
    the inputs) is shown for ``sample`` steps; after a random delay in
    ``[min_delay, max_delay]`` a test stimulus is shown for ``test`` steps (the
    same as the sample with probability 1/2, otherwise another one).  For
    ``response`` steps after the test the output must be +1 (match) or -1
    (non-match); before that it must be 0.  Steps after the response (short
    delays) are padding, ``mask = 0``.  Values: ``x`` in {0, 1}, ``y`` in
    {-1, 0, 1}.  Accuracy: sign of the output in the response window.
    """
    n_stimuli = check_int("n_stimuli", n_stimuli, minimum=2)
    fixation = check_int("fixation", fixation)
    sample = check_int("sample", sample)
    lo, hi = check_range("delay", min_delay, max_delay, minimum=0)
    test = check_int("test", test)
    response = check_int("response", response)
    n_steps = fixation + sample + hi + test + response
    return TaskGenerator(
        "delayed_match",
        n_stimuli,
        1,
        n_steps,
        _dms_sample,
        dict(
            n_stimuli=n_stimuli,
            fixation=fixation,
            sample=sample,
            min_delay=lo,
            max_delay=hi,
            test=test,
            response=response,
            n_steps=n_steps,
        ),
        metric=sign_accuracy,
        inputs=tuple(f"stimulus {k}" for k in range(n_stimuli)),
        outputs=("match (+1) / non-match (-1)",),
    )


# --------------------------------------------------------------------------
# flip-flop memory


def _flip_flop_sample(key, batch, *, n_bits, n_steps, rate, pulse_width):
    k1, k2 = jax.random.split(key)
    t = steps(n_steps)[..., None]  # (1, T, 1)
    event = jax.random.bernoulli(k1, rate, (batch, n_steps, n_bits)) & (t >= 1)
    sign = jnp.where(jax.random.bernoulli(k2, 0.5, (batch, n_steps, n_bits)), 1.0, -1.0)
    pulses = jnp.where(event, sign, 0.0)
    # each pulse lasts pulse_width steps: a running sum over the last pulse_width steps
    c = jnp.cumsum(pulses, axis=1)
    shifted = jnp.pad(c, ((0, 0), (pulse_width, 0), (0, 0)))[:, :n_steps]
    x = jnp.clip(c - shifted, -1.0, 1.0)
    # the output holds the sign of the latest pulse on its channel (0 before the first)
    last = jax.lax.cummax(jnp.where(event, jnp.broadcast_to(t, event.shape), -1), axis=1)
    y = jnp.where(last >= 0, jnp.take_along_axis(pulses, jnp.maximum(last, 0), axis=1), 0.0)
    return x, y, jnp.ones((batch, n_steps))


def flip_flop(
    n_bits: int = 2, n_steps: int = 100, *, rate: float = 0.04, pulse_width: int = 3
) -> TaskGenerator:
    """Flip-flop memory (Sussillo & Barak 2013).

    Each of ``n_bits`` inputs receives occasional pulses of +1 or -1 (a pulse
    starts at each step with probability ``rate`` and lasts ``pulse_width``
    steps); output ``k`` must hold the sign of the latest pulse on input ``k``
    (0 before the first).  Every one of the ``n_steps`` steps counts.  Values: ``x`` and ``y`` in
    [-1, 1].  Accuracy: sign of the outputs where the target is set (nonzero).
    """
    n_bits = check_int("n_bits", n_bits)
    n_steps = check_int("n_steps", n_steps, minimum=2)
    rate = check_positive("rate", rate)
    if rate > 1:
        raise ValueError(f"rate is a probability per step and must be <= 1, got {rate}")
    pulse_width = check_int("pulse_width", pulse_width)
    return TaskGenerator(
        "flip_flop",
        n_bits,
        n_bits,
        n_steps,
        _flip_flop_sample,
        dict(n_bits=n_bits, n_steps=n_steps, rate=rate, pulse_width=pulse_width),
        metric=sign_accuracy,
        inputs=tuple(f"bit {k} pulses" for k in range(n_bits)),
        outputs=tuple(f"bit {k} memory" for k in range(n_bits)),
    )
