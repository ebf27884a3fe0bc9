"""Built-in tasks, as :class:`~rflo.tasks.TaskGenerator` s.

Time is in network steps (``tau`` is in steps too; the default network has
``tau = 10``).  Every factory validates its parameters and returns a generator
whose trials have a fixed length ``T`` (shorter trials are padded with
``mask = 0``).  ``make_task(name, **params)`` builds one by name.
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rflo._checks import check_finite_array, check_int, check_positive
from rflo.tasks.generator import TaskGenerator
from rflo.tasks.memory import delayed_match, flip_flop
from rflo.tasks.trial_time import check_range, steps, trial_length, window

__all__ = [
    "periodic",
    "ready_set_go",
    "interval_matching",
    "delayed_match",
    "flip_flop",
    "TASKS",
    "task_names",
    "make_task",
]


# --------------------------------------------------------------------------
# periodic output


def _periodic_sample(key, batch, *, period, amplitudes, harmonics, phases, n_steps, n_in):
    t = np.arange(n_steps)
    # one column per output, with the seed's arithmetic (periodic_task's when phases are 0)
    wave = np.stack(
        [
            np.sin(2 * np.pi * np.outer(t, np.asarray(h, float)) / period + np.asarray(p, float))
            @ np.asarray(a, float)
            for a, h, p in zip(amplitudes, harmonics, phases)
        ],
        axis=1,
    )
    y = jnp.broadcast_to(jnp.asarray(wave), (batch,) + wave.shape)
    return jnp.zeros((batch, n_steps, n_in)), y, jnp.ones((batch, n_steps))


def periodic(
    period: float = 100,
    amplitudes: Sequence = (1.0, 0.5, 0.25),
    harmonics: Sequence = (1, 2, 4),
    *,
    phases: Optional[Sequence] = None,
    n_out: Optional[int] = None,
    n_in: int = 1,
    duration: Optional[int] = None,
) -> TaskGenerator:
    """Periodic output (the seed's task, generalised); the same every trial.

    ``y_k[t] = sum_j amplitudes[k, j] sin(2 pi harmonics[k, j] t / period + phases[k, j])``
    with zero input.  ``amplitudes``, ``harmonics`` and ``phases`` are lists of
    ``H`` numbers (shared by all outputs) or ``n_out`` lists of ``H`` numbers
    (one sum of harmonics per output).  ``duration`` (default one period) is
    ``T``; ``n_in`` zero input channels are given (default 1).  The defaults are the notebook's: period 100 steps, amplitudes 1,
    0.5, 0.25 at harmonics 1, 2, 4.  Value range: ``|y| <= sum |amplitudes|``.
    """
    period = check_positive("period", period)
    amp = check_finite_array("amplitudes", amplitudes, ndim=(1, 2), dtype="float64")
    harm = check_finite_array("harmonics", harmonics, ndim=(1, 2), dtype="float64")
    ph = (
        np.zeros_like(amp)
        if phases is None
        else check_finite_array("phases", phases, ndim=(1, 2), dtype="float64")
    )
    rows = {a.shape[0] for a in (amp, harm, ph) if a.ndim == 2}
    if len(rows) > 1:
        raise ValueError(
            f"amplitudes, harmonics and phases disagree on the number of outputs: {rows}"
        )
    if n_out is None:
        n_out = rows.pop() if rows else 1
    n_out = check_int("n_out", n_out)
    if rows and rows != {n_out}:
        raise ValueError(f"n_out={n_out} but the amplitude/harmonic rows give {rows.pop()} outputs")
    try:
        amp, harm, ph = (
            np.broadcast_to(a if a.ndim == 2 else a[None], (n_out, amp.shape[-1]))
            for a in (amp, harm, ph)
        )
    except ValueError:
        raise ValueError(
            "amplitudes, harmonics and phases must have the same number of terms"
        ) from None
    duration = check_int(
        "duration", int(round(period)) if duration is None else duration, minimum=2
    )
    return TaskGenerator(
        "periodic",
        check_int("n_in", n_in),
        n_out,
        duration,
        _periodic_sample,
        dict(period=period, amplitudes=amp, harmonics=harm, phases=ph, n_steps=duration, n_in=n_in),
        inputs=tuple(f"none {k}" for k in range(n_in)),
        outputs=("output",) if n_out == 1 else tuple(f"output {k}" for k in range(n_out)),
    )


# --------------------------------------------------------------------------
# ready-set-go interval matching


def _rsg_sample(
    key,
    batch,
    *,
    n_steps,
    min_ready,
    max_ready,
    min_interval,
    max_interval,
    pulse_width,
    output_width,
):
    k1, k2 = jax.random.split(key)
    ready = jax.random.randint(k1, (batch,), min_ready, max_ready + 1)
    interval = jax.random.randint(k2, (batch,), min_interval, max_interval + 1)
    t = steps(n_steps)
    x = jnp.stack(
        [window(t, ready, pulse_width), window(t, ready + interval, pulse_width)], axis=-1
    ).astype(float)
    go = (ready + 2 * interval)[:, None]
    y = jnp.exp(-0.5 * ((t - go) / output_width) ** 2)[..., None]
    return x, y, jnp.ones((batch, n_steps))


def ready_set_go(
    min_interval: int = 10,
    max_interval: int = 40,
    *,
    min_ready: int = 5,
    max_ready: int = 15,
    pulse_width: int = 3,
    output_width: float = 3.0,
    n_steps: Optional[int] = None,
) -> TaskGenerator:
    """Interval matching ("ready-set-go", Jazayeri & Shadlen 2010).

    Input 0 pulses ("ready") at a random step in ``[min_ready, max_ready]``;
    input 1 pulses ("set") a random interval ``I`` in ``[min_interval,
    max_interval]`` later (pulses last ``pulse_width`` steps, height 1).  The
    output must produce a bump ``exp(-(t - go)^2 / 2 output_width^2)`` at
    ``go = set + I`` and stay at 0 otherwise; every step of the ``n_steps``
    (default: long enough for the latest go and its bump) counts.  Values:
    ``x`` in {0, 1}, ``y`` in [0, 1].  No discrete answer, so no accuracy.
    """
    lo, hi = check_range("interval", min_interval, max_interval, minimum=1)
    r_lo, r_hi = check_range("ready", min_ready, max_ready, minimum=1)
    pulse_width = check_int("pulse_width", pulse_width)
    output_width = check_positive("output_width", output_width)
    n_steps = trial_length(
        r_hi + 2 * hi + int(np.ceil(3 * output_width)) + 1, n_steps, "the latest go bump"
    )
    return TaskGenerator(
        "ready_set_go",
        2,
        1,
        n_steps,
        _rsg_sample,
        dict(
            n_steps=n_steps,
            min_ready=r_lo,
            max_ready=r_hi,
            min_interval=lo,
            max_interval=hi,
            pulse_width=pulse_width,
            output_width=output_width,
        ),
        inputs=("ready", "set"),
        outputs=("go",),
    )


def _interval_sample(key, batch, *, n_steps, ready, min_delay, max_delay, pulse_sd):
    delay = jax.random.randint(key, (batch,), min_delay, max_delay + 1)
    t = steps(n_steps)

    def pulse(at):
        return jnp.exp(-0.5 * ((t - at[:, None]) / pulse_sd) ** 2)

    x = jnp.maximum(pulse(jnp.full((batch,), ready)), pulse(ready + delay))[..., None]
    y = pulse(ready + 2 * delay)[..., None]
    return x, y, jnp.ones((batch, n_steps))


def interval_matching(
    min_delay: int = 50,
    max_delay: int = 150,
    *,
    ready: int = 50,
    pulse_sd: float = 15.0,
    n_steps: Optional[int] = None,
) -> TaskGenerator:
    """Interval matching with Gaussian pulses (Murray 2019, Figure 3).

    The input carries two Gaussian pulses (height 1, standard deviation
    ``pulse_sd`` steps): "ready" at step ``ready`` and "set" a random delay
    ``d`` in ``[min_delay, max_delay]`` later.  The output must produce the
    same pulse at ``go = set + d`` and stay at 0 otherwise; every step counts.
    The default trial (``n_steps``) ends ``4 pulse_sd`` after the latest go.
    The paper gives the pulses' width (15 steps) and the longest delays (15,
    20, 25 tau); the one input channel, the pulse height, ``ready`` and the
    shortest delay (5 tau = 50 steps, where two pulses are still distinct)
    are this library's choices.  Test one delay with ``min_delay = max_delay``.
    """
    lo, hi = check_range("delay", min_delay, max_delay, minimum=1)
    ready = check_int("ready", ready, minimum=0)
    pulse_sd = check_positive("pulse_sd", pulse_sd)
    n_steps = trial_length(
        ready + 2 * hi + int(np.ceil(4 * pulse_sd)) + 1, n_steps, "the latest go pulse"
    )
    return TaskGenerator(
        "interval_matching",
        1,
        1,
        n_steps,
        _interval_sample,
        dict(n_steps=n_steps, ready=ready, min_delay=lo, max_delay=hi, pulse_sd=pulse_sd),
        inputs=("ready and set pulses",),
        outputs=("go pulse",),
    )


# --------------------------------------------------------------------------
# registry

TASKS = {
    "periodic": periodic,
    "ready_set_go": ready_set_go,
    "interval_matching": interval_matching,
    "delayed_match": delayed_match,
    "flip_flop": flip_flop,
}


def task_names():
    """Names of the built-in tasks."""
    return sorted(TASKS)


def make_task(name: str, **params) -> TaskGenerator:
    """The built-in task ``name`` with ``params`` (the factory's keyword arguments)."""
    key = str(name).lower().replace("-", "_")
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}: use one of {task_names()}")
    try:
        return TASKS[key](**params)
    except TypeError as exc:  # unknown parameter names
        raise ValueError(f"bad parameters for task {key!r}: {exc}") from None
