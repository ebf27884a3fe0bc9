"""A selector loop that chains a network's short outputs into long sequences.

Murray (2019, Figure 4), after Logiaco et al. (2018): a trained network makes
one short "syllable" for each of its tonic inputs.  At the end of each
syllable a selector (the "striatum") reads the network's state through weights
``w_s``, a winner-take-all picks one of its units, and that unit switches on
the network's input for the next syllable.  The transitions are learned with a
reward-modulated Hebbian rule::

    drive = w_s h                          (n_choices,)  at the syllable's end
    choice = argmax(drive)                 (or, with probability ``explore``, at random)
    z = one_hot(choice)                    the selector's output
    w_s <- w_s + eta_s R z h^T             R = 1 if the transition is the target's, else 0

The paper writes ``z_i = sum_j W^s_ij h_j`` for the readout and the update
``eta_s R z_i h_j``; here ``z`` in the update is the selector's output after
the winner-take-all (1 for the chosen unit, 0 for the others), so that only
the transition that was made is reinforced (with the summed drive every unit
would be, in proportion to its drive).

The rule alone lets a row grow without bound: the unit rewarded most often
(the first transition's, rewarded in every trial) then wins everywhere.
``normalize=True`` (the default, a choice of this library; the paper does not
say) keeps each row of ``w_s`` at unit length after each update
(:func:`normalize_rows`), so that a unit wins where the state is most like the
states its transition was rewarded in.

Everything is pure functions of arrays (jit- and vmap-able): :func:`select`,
:func:`hebbian_update`, :func:`run_syllable`, :func:`run_loop` and
:func:`train_selector` (the network stays fixed).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rflo.cells.base import readout, step

__all__ = ["select", "hebbian_update", "normalize_rows", "run_syllable", "run_loop",
           "train_selector", "LoopResult"]


def select(w_s, h, key, explore):
    """``(choice, z, drive)``: the winner-take-all over ``drive = w_s h``
    (n_choices, n_rec) @ (n_rec,), or a uniform random choice with
    probability ``explore``; ``z`` is the one-hot of the choice."""
    drive = w_s @ h
    k_explore, k_pick = jax.random.split(key)
    random_choice = jax.random.randint(k_pick, (), 0, w_s.shape[0])
    choice = jnp.where(jax.random.uniform(k_explore) < explore, random_choice,
                       jnp.argmax(drive))
    return choice, jax.nn.one_hot(choice, w_s.shape[0], dtype=w_s.dtype), drive


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


def run_loop(net, w_s, sequence, steps: int, key=None, explore=0.0, eta=0.0,
             normalize: bool = True):
    """Play ``len(sequence)`` syllables from the network's initial state: the
    first is ``sequence[0]``, each next one the selector's choice at the end of
    the one before.  With ``eta > 0`` the selector learns as it goes (each
    transition rewarded when it matches ``sequence``; ``normalize``: rows kept
    at unit length).  Returns ``(w_s, LoopResult)``."""
    sequence = jnp.asarray(sequence)
    key = jax.random.PRNGKey(0) if key is None else key
    state0, y0 = run_syllable(net, net.cell.initial_state(net), sequence[0], steps)

    def body(carry, inputs):
        w_s, state = carry
        target, key = inputs
        h = net.cell.output(net, state)
        choice, z, _ = select(w_s, h, key, explore)
        reward = (choice == target).astype(w_s.dtype)
        w_s = hebbian_update(w_s, z, h, reward, eta)
        w_s = normalize_rows(w_s) if normalize else w_s
        state, y = run_syllable(net, state, choice, steps)
        return (w_s, state), (y, choice, reward)

    keys = jax.random.split(key, sequence.shape[0] - 1)
    (w_s, _), (ys, choices, rewards) = jax.lax.scan(body, (w_s, state0), (sequence[1:], keys))
    y = jnp.concatenate([y0[None], ys]).reshape(-1, y0.shape[-1])
    return w_s, LoopResult(y, jnp.concatenate([sequence[:1], choices]), rewards)


def train_selector(net, w_s, sequence, steps: int, trials: int, eta, explore, key,
                   normalize: bool = True):
    """Learn ``w_s`` over ``trials`` plays of ``sequence`` (the network fixed);
    returns ``(w_s, rewards)`` with ``rewards`` (trials, len(sequence) - 1)."""

    def trial(w_s, key):
        w_s, res = run_loop(net, w_s, sequence, steps, key, explore, eta, normalize)
        return w_s, res.rewards

    return jax.lax.scan(trial, w_s, jax.random.split(key, trials))
