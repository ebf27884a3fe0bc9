"""Motor tasks: reaching to cued targets (:func:`reach`) and movement
syllables cued by tonic inputs (:func:`syllables`, Murray 2019 Figure 4),
with the cursor's path from its velocity (:func:`cursor_path`).  Both are in
:data:`rflo.tasks.TASKS` (``make_task("reach")``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rflo._checks import check_finite_array, check_int, check_positive
from rflo.tasks.builtin import TASKS
from rflo.tasks.generator import TaskGenerator
from rflo.tasks.trial_time import check_range, steps, window

__all__ = ["reach", "syllables", "syllable_velocity", "cursor_path", "MOTOR_TASKS"]


# --------------------------------------------------------------------------
# reaching


def _reach_sample(
    key,
    batch,
    *,
    n_targets,
    cue_start,
    cue,
    min_delay,
    max_delay,
    go_width,
    move,
    hold,
    radius,
    rotation,
    n_steps,
):
    k1, k2 = jax.random.split(key)
    target = jax.random.randint(k1, (batch,), 0, n_targets)
    delay = jax.random.randint(k2, (batch,), min_delay, max_delay + 1)
    t = steps(n_steps)
    go = cue_start + cue + delay
    cue_on = window(t, jnp.full((batch,), cue_start), cue)
    x = jnp.concatenate(
        [
            jax.nn.one_hot(target, n_targets)[:, None] * cue_on[..., None],
            window(t, go, go_width)[..., None],
        ],
        axis=-1,
    ).astype(float)
    s = jnp.clip((t - go[:, None]) / move, 0.0, 1.0)
    progress = s**3 * (10 - 15 * s + 6 * s**2)  # minimum-jerk profile
    angle = 2 * jnp.pi * target / n_targets + jnp.deg2rad(rotation)
    end = radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)  # (batch, 2)
    y = progress[..., None] * end[:, None]
    mask = (t < (go + move + hold)[:, None]).astype(float)
    return x, y, mask


def reach(
    n_targets: int = 8,
    *,
    cue_start: int = 5,
    cue: int = 10,
    min_delay: int = 5,
    max_delay: int = 20,
    go_width: int = 3,
    move: int = 20,
    hold: int = 10,
    radius: float = 1.0,
    rotation: float = 0.0,
) -> TaskGenerator:
    """Center-out reaching: a 2-D trajectory to one of ``n_targets`` targets.

    Inputs ``0 .. n_targets-1`` cue the target (one-hot, ``cue`` steps from
    ``cue_start``); after a random delay in ``[min_delay, max_delay]`` input
    ``n_targets`` gives a go pulse (``go_width`` steps).  The two outputs
    (x, y position) stay at the origin until go, then move along a minimum-jerk
    path for ``move`` steps to ``radius * (cos a, sin a)`` with
    ``a = 2 pi k / n_targets + rotation`` (degrees), and hold there ``hold``
    steps; later steps are padding (``mask = 0``).  ``rotation`` rotates every
    target, as a visuomotor rotation does to the required hand path; see
    :func:`rflo.rotation.rotate_readout` and :func:`rflo.rotation.train_with_rotation`
    for rotating the network's readout mid-training.  Values: ``x`` in {0, 1},
    ``|y| <= radius``.  No discrete answer, so no accuracy.
    """
    n_targets = check_int("n_targets", n_targets, minimum=2)
    cue_start = check_int("cue_start", cue_start)
    cue = check_int("cue", cue)
    lo, hi = check_range("delay", min_delay, max_delay, minimum=0)
    go_width = check_int("go_width", go_width)
    move = check_int("move", move)
    hold = check_int("hold", hold, minimum=0)
    radius = check_positive("radius", radius)
    rotation = float(check_finite_array("rotation", [rotation], ndim=1, dtype="float64")[0])
    n_steps = cue_start + cue + hi + move + hold
    return TaskGenerator(
        "reach",
        n_targets + 1,
        2,
        n_steps,
        _reach_sample,
        dict(
            n_targets=n_targets,
            cue_start=cue_start,
            cue=cue,
            min_delay=lo,
            max_delay=hi,
            go_width=go_width,
            move=move,
            hold=hold,
            radius=radius,
            rotation=rotation,
            n_steps=n_steps,
        ),
        inputs=tuple(f"target {k}" for k in range(n_targets)) + ("go",),
        outputs=("x position", "y position"),
    )


# --------------------------------------------------------------------------
# sequences of movement syllables (Murray 2019, Figure 4)


def syllable_velocity(k, local, n_syllables: int, move: int):
    """The 2-D velocity of syllable ``k`` at step ``local`` of it: a reach in
    direction ``2 pi k / n_syllables`` with speed ``sin(pi local / move)`` for
    ``move`` steps, then 0 (the hold).  Broadcasts over ``k`` and ``local``."""
    speed = jnp.where(local < move, jnp.sin(jnp.pi * local / move), 0.0)
    angle = 2 * jnp.pi * k / n_syllables
    return jnp.stack([jnp.cos(angle) * speed, jnp.sin(angle) * speed], axis=-1)


def _syllables_sample(key, batch, *, n_syllables, slots, move, hold, n_steps):
    choice = jax.random.randint(key, (batch, slots), 0, n_syllables)
    t = jnp.arange(n_steps)
    k = choice[:, t // (move + hold)]  # (batch, T)
    x = jax.nn.one_hot(k, n_syllables)
    y = syllable_velocity(k, (t % (move + hold))[None, :], n_syllables, move)
    return x, y, jnp.ones((batch, n_steps))


def syllables(
    n_syllables: int = 4, slots: int = 4, *, move: int = 200, hold: int = 200
) -> TaskGenerator:
    """Movement syllables cued by tonic inputs (Murray 2019, Figure 4a).

    A trial is ``slots`` syllables in a row, each drawn at random from
    ``n_syllables``; while syllable ``k`` lasts (``move + hold`` steps) input
    ``k`` is on (one-hot).  The two outputs are a cursor's velocity: a reach in
    direction ``2 pi k / n_syllables`` with speed ``sin(pi t / move)`` for
    ``move`` steps, then a hold (velocity 0) for ``hold`` steps; each reach
    moves the cursor ``2 move / pi`` (1 after :func:`cursor_path`'s scaling).
    The network's state runs on from one syllable to the next, so it learns to
    start each one from wherever the last one left it.
    """
    n_syllables = check_int("n_syllables", n_syllables, minimum=2)
    slots = check_int("slots", slots)
    move = check_int("move", move)
    hold = check_int("hold", hold, minimum=0)
    return TaskGenerator(
        "syllables",
        n_syllables,
        2,
        slots * (move + hold),
        _syllables_sample,
        dict(
            n_syllables=n_syllables,
            slots=slots,
            move=move,
            hold=hold,
            n_steps=slots * (move + hold),
        ),
        inputs=tuple(f"syllable {k}" for k in range(n_syllables)),
        outputs=("x velocity", "y velocity"),
    )


def cursor_path(velocity, move: int):
    """(T, 2) cursor positions from (T, 2) velocities, scaled so that one
    syllable's reach (``sin`` speed over ``move`` steps) moves it by 1."""
    return np.cumsum(np.asarray(velocity, float), axis=0) * np.pi / (2 * move)


#: the motor tasks by name (registered in :data:`rflo.tasks.TASKS`)
MOTOR_TASKS = {"reach": reach, "syllables": syllables}
TASKS.update(MOTOR_TASKS)
