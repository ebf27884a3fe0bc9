"""The divergence guard of a training session, and the readout alignment it
records (:mod:`rflo.trainer` carries both through its compiled loop).

After each update the :class:`Guard` compares the trial's loss with
``growth`` times the best so far and checks that the new parameters are
finite.  The loss of trial ``i`` is measured on the network from before its
update, so the guard also keeps the last network whose loss was within the
limit; at the first failure the network is set back to that one, frozen, and
records NaN losses from then on.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rflo.transfer import device_array

__all__ = ["Guard", "new_guard", "guard_step", "alignment"]


def alignment(net):
    """Cosine between vec(b^T) and vec(w_out) (the seed's readout alignment)."""
    bt = net.b.T
    return jnp.vdot(bt, net.w_out) / (jnp.linalg.norm(bt) * jnp.linalg.norm(net.w_out))


class Guard(NamedTuple):
    """Divergence guard of one network, carried through the compiled loop.

    best : () best positive loss so far (a loss of exactly 0, e.g. a trial with
    an all-zero mask, says nothing about divergence and is not a best);
    growth : () allowed factor over ``best`` (inf: no growth test);
    frozen_at : () int, the trial at which the network diverged, or -1;
    good : ``(w, opt_state)`` of the last network whose loss was within the
    limit (the network a trial's loss is measured on is the one before the
    trial's update); good_at : () int, the trials whose updates ``good`` holds.
    A diverged network is set back to ``good``, keeps it, and records NaN
    losses from then on.
    best_w : the parameters ``w`` of the network with the lowest positive loss
    seen, ``best_w_loss`` (that loss: ``best``, or inf when the session
    continues one that did not pass its best network on) and ``best_at`` (the
    trials whose updates it holds; its loss is that of the trial after them).
    One more copy of the parameters, not of their optimiser state.
    """

    best: jax.Array
    growth: jax.Array
    frozen_at: jax.Array
    good: tuple
    good_at: jax.Array
    best_w: dict
    best_w_loss: jax.Array
    best_at: jax.Array


def new_guard(
    w,
    opt_state,
    max_loss_growth,
    dtype,
    *,
    start=0,
    best=np.inf,
    previous=None,
    frozen_at=-1,
    best_w=None,
    best_w_loss=None,
    best_at=None,
):
    """The guard of a session that starts at trial ``start`` with parameters
    ``w`` and ``opt_state``.  A session that continues another passes that
    session's ``best`` loss, ``previous = (w, opt_state)`` from before its
    last trial, ``frozen_at`` (an ensemble's network that diverged stays
    frozen) and its best network (``best_w``, ``best_w_loss``, ``best_at``),
    so that the test runs on as in one long session.  Without ``best_w`` the
    best network is tracked from this session's start (``w``, loss inf)."""
    growth = np.inf if max_loss_growth is None else max_loss_growth
    good, good_at = ((w, opt_state), start) if previous is None else (previous, start - 1)
    if best_w is None:
        best_w, best_w_loss, best_at = w, np.inf, start
    return Guard(
        device_array(best, dtype),
        device_array(growth, dtype),
        device_array(frozen_at, np.int32),
        good,
        device_array(good_at, np.int32),
        best_w,
        device_array(best_w_loss, dtype),
        device_array(best_at, np.int32),
    )


def guard_step(guard: Guard, trial, old, new, loss):
    """``(kept, guard, loss)`` after update ``trial``, which took the network from
    ``old`` to ``new`` (pytrees ``(w, opt_state)``) and had ``loss``.

    ``kept`` is ``new`` while the run is healthy; at the first trial whose loss
    is NaN/inf or past ``growth`` times the best, or whose update is not
    finite, and from then on, it is ``guard.good``."""
    # one number that is finite iff every entry is (a sum overflows only for
    # entries near the float range, which is divergence too): one reduction per
    # leaf instead of an elementwise test and two reductions
    finite = jnp.isfinite(sum(jnp.sum(a) for a in jax.tree_util.tree_leaves(new)))
    loss_ok = jnp.isfinite(loss) & (loss <= guard.growth * guard.best)
    healthy = guard.frozen_at < 0
    measured = healthy & loss_ok  # ``old`` produced a loss within the limit
    good = jax.tree_util.tree_map(lambda g, o: jnp.where(measured, o, g), guard.good, old)
    take = measured & finite
    kept = jax.tree_util.tree_map(lambda g, b: jnp.where(take, b, g), good, new)
    # the network ``old`` measured the lowest loss yet (counted as ``best`` is)
    lowest = take & (loss > 0) & (loss < guard.best_w_loss)
    best_w = jax.tree_util.tree_map(lambda b, o: jnp.where(lowest, o, b), guard.best_w, old[0])
    guard = Guard(
        jnp.where(take & (loss > 0), jnp.minimum(guard.best, loss), guard.best),
        guard.growth,
        jnp.where(healthy & ~take, trial, guard.frozen_at).astype(jnp.int32),
        good,
        jnp.where(measured, trial, guard.good_at).astype(jnp.int32),
        best_w,
        jnp.where(lowest, loss, guard.best_w_loss),
        jnp.where(lowest, trial, guard.best_at).astype(jnp.int32),
    )
    return kept, guard, jnp.where(healthy, loss, jnp.nan)
