"""Figure 4's syllable training as the paper's Methods describe it.

"RFLO learning was first used to train the network to produce a particular
reach trajectory in response to each of four tonic inputs for 10,000 trials,
with a random input chosen in each trial, subject to the constraint that the
trajectory could not move the cursor out of bounds" (Murray 2019, Materials
and methods, "Simulation details").

So a training trial is one syllable, and something runs on from one trial to
the next: the cursor (else no bound could be crossed) and, as in the loop
that plays the syllables afterwards, the network's state.  The library's
trainer starts every trial from the network's ``h0``; here trial ``i`` starts
from the state in which trial ``i - 1`` ended (the network's ``h0`` set to it,
so that the rule's own trial form runs unchanged), and picks its syllable
uniformly among those whose reach keeps the cursor within ``bounds`` reach
lengths of the start in x and y (the box the selector uses,
:func:`rflo.selector.run_loop`).  The update after each trial is the rule's
summed direction times ``lr / T`` (plain SGD, as the trainer's).

One compiled ``lax.scan`` over the trials, ``vmap``-ped over networks
(:func:`train_carried`); the trial arrays are those of the built-in
``syllables`` task with one slot (:func:`syllable_trial`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rflo.cells.base import forward
from rflo.losses import trial_loss
from rflo.network import params_of, with_params
from rflo.rules import Setup, get_rule
from rflo.selector import reach_directions
from rflo.tasks.motor import syllable_velocity

__all__ = ["syllable_trial", "train_carried"]

#: the trained parameters (the figure trains all three matrices)
NAMES = ("w_in", "w_rec", "w_out")


def syllable_trial(k, n_syllables: int, move: int, hold: int, dtype=jnp.float32):
    """``(x, y, mask)`` of one trial of syllable ``k``: ``T = move + hold + 1``
    steps (step 0 is the trial's start state), input ``k`` on throughout,
    target the reach's velocity then the hold's zero, every step scored.
    Shapes (T, n_syllables), (T, 2), (T,)."""
    steps = move + hold
    dtype = jnp.dtype(dtype)
    local = jnp.arange(steps + 1) - 1  # step s >= 1 plays the syllable's step s - 1
    x = jnp.broadcast_to(jax.nn.one_hot(k, n_syllables, dtype=dtype), (steps + 1, n_syllables))
    y = syllable_velocity(k, jnp.clip(local, 0, None), n_syllables, move).astype(dtype)
    y = jnp.where((local >= 0)[:, None], y, 0.0)
    return x, y, jnp.ones(steps + 1, dtype)


def train_carried(
    net, trials: int, lr: float, move: int, hold: int, bounds: float, key, rule="rflo"
):
    """Train ``net`` (one network; ``jax.vmap`` it for several) on ``trials``
    one-syllable trials, state and cursor carried over (module docstring).
    Returns ``(net, loss, choices)``: the trained network (its ``h0`` as
    given), each trial's loss (the trainer's, :func:`rflo.losses.trial_loss`;
    trials,) before its update, and each trial's syllable (trials,)."""
    rule = get_rule(rule)
    setup = Setup(params=NAMES)
    n_syllables = net.w_in.shape[1]
    reach = reach_directions(n_syllables)
    steps = move + hold + 1
    dtype = net.w_rec.dtype

    def body(carry, key):
        w, h, pos = carry
        allowed = jnp.all(jnp.abs(pos + reach) <= bounds + 1e-6, axis=1)
        k = jax.random.choice(key, n_syllables, p=allowed / jnp.sum(allowed))
        x, y, m = syllable_trial(k, n_syllables, move, hold, dtype)
        here = with_params(net, w)._replace(h0=h)
        direction, out = rule.trial(here, x, y, m, key, setup)
        loss = trial_loss(setup.loss, out, y, m)
        end = forward(here, x).state[-1]
        w = {n: w[n] + lr * direction[n] / steps for n in NAMES}
        return (w, end, pos + reach[k]), (loss, k)

    start = (params_of(net, NAMES), net.h0, jnp.zeros(2, dtype))
    (w, _, _), (loss, choices) = jax.lax.scan(body, start, jax.random.split(key, trials))
    return with_params(net, w), loss, choices
