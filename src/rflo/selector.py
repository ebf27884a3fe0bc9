"""A selector loop that chains a network's short outputs into long sequences.

Murray (2019, Figure 4), after Logiaco et al. (2018): a trained network makes
one short "syllable" for each of its tonic inputs.  At the end of each
syllable a selector (the "striatum") reads the network's state through weights
``w_s``, a winner-take-all picks one of its units, and that unit switches on
the network's input for the next syllable.  The transitions are learned with a
reward-modulated Hebbian rule::

    z = w_s h                              (n_choices,)  at the syllable's end
    choice = argmax(z)                     (or, with probability ``explore``, at random)
    w_s <- w_s + eta_s R z h^T             R = 1 if the transition is the target's, else 0

as the paper writes it (Results, "Learning a sequence of actions": the readout
units "receive input z_i = sum_j W^s_ij h_j", a winner-take-all picks one, and
"Delta W^s_ij = eta_s R z_i h_j"): ``z`` in the update is the readout before
the winner-take-all (``update="drive"``, the default).  ``update="choice"``
uses the one-hot of the choice instead (only the transition made is
reinforced), a variant.

Additions of this library (the paper says nothing of them): ``normalize=True``
keeps each row of ``w_s`` at unit length after each update
(:func:`normalize_rows`), so that no row grows without bound; and ``bounds``
keeps the cursor in a box: a choice whose reach would leave it is not made
(the paper's Methods apply "the constraint that the trajectory could not move
the cursor out of bounds" to the selector's choices; the box's size is ours).

Everything is pure functions of arrays (jit- and vmap-able): :func:`select`,
:func:`hebbian_update`, :func:`run_syllable`, :func:`run_loop` and
:func:`train_selector` (the network stays fixed).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rflo.cells.base import readout, step

__all__ = [
    "select",
    "hebbian_update",
    "normalize_rows",
    "run_syllable",
    "run_loop",
    "train_selector",
    "LoopResult",
    "UPDATES",
    "reach_directions",
]


def select(w_s, h, key, explore, allowed=None):
    """``(choice, z, drive)``: the winner-take-all over ``drive = w_s h``
    (n_choices, n_rec) @ (n_rec,), or a uniform random choice with
    probability ``explore``; ``z`` is the one-hot of the choice.  ``allowed``
    (n_choices,) bool: only those are chosen (greedy and random alike)."""
    drive = w_s @ h
    n = w_s.shape[0]
    allowed = jnp.ones(n, bool) if allowed is None else allowed
    k_explore, k_pick = jax.random.split(key)
    random_choice = jax.random.choice(k_pick, n, p=allowed / jnp.sum(allowed))
    choice = jnp.where(
        jax.random.uniform(k_explore) < explore,
        random_choice,
        jnp.argmax(jnp.where(allowed, drive, -jnp.inf)),
    )
    return choice, jax.nn.one_hot(choice, n, dtype=w_s.dtype), drive


def hebbian_update(w_s, z, h, reward, eta):
    """``w_s + eta * reward * outer(z, h)``: the reward-modulated Hebbian rule."""
    return w_s + eta * reward * jnp.outer(z, h)


def normalize_rows(w_s):
    """Each row of ``w_s`` scaled to unit length (a zero row stays zero)."""
    norm = jnp.linalg.norm(w_s, axis=1, keepdims=True)
    return w_s / jnp.where(norm > 0, norm, 1.0)


def run_syllable(net, state, k, n_steps: int):
    """Run the fixed network for ``n_steps`` with tonic input ``k`` (one-hot)
    from cell state ``state``; returns ``(state, y)`` with ``y`` (n_steps, n_out)."""
    x = jax.nn.one_hot(k, net.w_in.shape[1], dtype=net.w_in.dtype)

    def body(state, _):
        state = step(net, state, x)
        return state, readout(net, state)

    return jax.lax.scan(body, state, None, length=n_steps)


class LoopResult(NamedTuple):
    """The loop's run: ``y`` (n_syllables * steps, n_out) outputs, ``choices``
    (n_syllables,) the syllables played (the first given), ``rewards``
    (n_syllables - 1,) whether each transition was the target's."""

    y: jax.Array
    choices: jax.Array
    rewards: jax.Array


UPDATES = ("drive", "choice")


def reach_directions(n_choices):
    """(n_choices, 2) the unit reach of each choice: direction ``2 pi k / n``."""
    angle = 2 * jnp.pi * jnp.arange(n_choices) / n_choices
    return jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)


def run_loop(
    net,
    w_s,
    sequence,
    steps: int,
    key=None,
    explore=0.0,
    eta=0.0,
    normalize: bool = True,
    update: str = "drive",
    bounds=None,
):
    """Play ``len(sequence)`` syllables from the network's initial state: the
    first is ``sequence[0]``, each next one the selector's choice at the end of
    the one before.  With ``eta > 0`` the selector learns as it goes (each
    transition rewarded when it matches ``sequence``; ``update``: ``z`` of the
    rule, the readout before the winner-take-all or the choice's one-hot;
    ``normalize``: rows kept at unit length).  ``bounds``: the cursor starts at
    0 and a choice whose reach (:func:`reach_directions`, one reach length
    each) would take it beyond ``bounds`` in x or y is not made.  Returns
    ``(w_s, LoopResult)``."""
    if update not in UPDATES:
        raise ValueError(f"update must be one of {UPDATES}, got {update!r}")
    sequence = jnp.asarray(sequence)
    key = jax.random.PRNGKey(0) if key is None else key
    state0, y0 = run_syllable(net, net.cell.initial_state(net), sequence[0], steps)
    reach = reach_directions(w_s.shape[0])

    def body(carry, inputs):
        w_s, state, pos = carry
        target, key = inputs
        h = net.cell.output(net, state)
        allowed = None if bounds is None else jnp.all(jnp.abs(pos + reach) <= bounds + 1e-6, axis=1)
        choice, onehot, drive = select(w_s, h, key, explore, allowed)
        reward = (choice == target).astype(w_s.dtype)
        w_s = hebbian_update(w_s, drive if update == "drive" else onehot, h, reward, eta)
        w_s = normalize_rows(w_s) if normalize else w_s
        state, y = run_syllable(net, state, choice, steps)
        return (w_s, state, pos + reach[choice]), (y, choice, reward)

    keys = jax.random.split(key, sequence.shape[0] - 1)
    (w_s, _, _), (ys, choices, rewards) = jax.lax.scan(
        body, (w_s, state0, reach[sequence[0]]), (sequence[1:], keys)
    )
    y = jnp.concatenate([y0[None], ys]).reshape(-1, y0.shape[-1])
    return w_s, LoopResult(y, jnp.concatenate([sequence[:1], choices]), rewards)


def train_selector(
    net,
    w_s,
    sequence,
    steps: int,
    trials: int,
    eta,
    explore,
    key,
    normalize: bool = True,
    update: str = "drive",
    bounds=None,
):
    """Learn ``w_s`` over ``trials`` plays of ``sequence`` (the network fixed);
    returns ``(w_s, rewards)`` with ``rewards`` (trials, len(sequence) - 1)."""

    def trial(w_s, key):
        w_s, res = run_loop(net, w_s, sequence, steps, key, explore, eta, normalize, update, bounds)
        return w_s, res.rewards

    return jax.lax.scan(trial, w_s, jax.random.split(key, trials))
