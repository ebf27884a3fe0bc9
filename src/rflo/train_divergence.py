"""Divergence across :func:`rflo.train.train` calls: what the guard carries
from one session to the next (:class:`GuardState`) and its checks, and the
words of a diverged session's message (its cause, the rates, the best
network, advice)."""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from rflo._checks import check_int
from rflo.network import Network
from rflo.session_checks import check_network

__all__ = [
    "GuardState",
    "best_said",
    "check_guard_start",
    "check_guard",
    "advice",
    "rates_said",
    "divergence_cause",
]


class GuardState(NamedTuple):
    """What the divergence test of a session needs to go on in the next one
    (numpy): the best positive loss so far, and the network (with its
    optimiser state) from before the session's last trial, which is the one
    kept if the next trial's loss is already past the limit.  ``frozen_at``
    (ensembles, (K,)): the trial index at which each network diverged and was
    frozen, or -1; a frozen network stays frozen in the next session.
    ``best_network``, ``best_network_loss``, ``best_at``: the network with the
    lowest loss seen, that loss and the trials it holds (None: the next
    session tracks its best from its own start)."""

    best_loss: float
    previous: Network
    previous_opt_state: object = None
    frozen_at: object = None
    best_network: Optional[Network] = None
    best_network_loss: object = None
    best_at: object = None


def best_said(loss, trials):
    """The best network, in words (for the messages of a diverged run)."""
    if not np.isfinite(loss):
        return "no loss was seen to be the lowest yet"
    which = "the initial network" if trials == 0 else f"the one after trial {trials}"
    return f"the best, with the lowest loss seen ({loss:.4g}, on trial {trials + 1}), is {which}"


def check_guard_start(guard, start_trial, where="result.guard"):
    """A ``guard`` continues an earlier session: it must be a :class:`GuardState`
    (``where`` says where to find one) and come with that session's ``start_trial``."""
    if not isinstance(guard, GuardState):
        raise ValueError(
            f"guard must be the GuardState of an earlier session ({where}), "
            f"got {type(guard).__name__}"
        )
    if start_trial < 1:
        raise ValueError("guard continues an earlier session: give its start_trial (>= 1) too")


def check_guard(guard, net, start_trial):
    check_guard_start(guard, start_trial)
    best = float(guard.best_loss)
    if not (best > 0 or best == np.inf) or np.isnan(best):
        raise ValueError(f"guard.best_loss must be > 0 (or inf), got {guard.best_loss!r}")
    prev = _same_shape(guard.previous, net, "guard.previous")
    guard = guard._replace(previous=prev)
    if guard.best_network is None:
        return guard._replace(best_network_loss=None, best_at=None)
    loss = float(guard.best_network_loss if guard.best_network_loss is not None else np.nan)
    if not (loss > 0):
        raise ValueError(
            f"guard.best_network_loss must be > 0 (or inf), got {guard.best_network_loss!r}"
        )
    at = check_int("guard.best_at", guard.best_at, minimum=0)
    if at >= start_trial:
        raise ValueError(f"guard.best_at ({at}) must be below start_trial ({start_trial})")
    return guard._replace(
        best_network=_same_shape(guard.best_network, net, "guard.best_network"),
        best_network_loss=loss,
        best_at=at,
    )


def _same_shape(other, net, name):
    """``other`` checked to be a network of ``net``'s shapes (with its cell)."""
    other = check_network(other)
    for k in ("w_in", "w_rec", "w_out"):
        if np.shape(getattr(other, k)) != np.shape(getattr(net, k)):
            raise ValueError(
                f"{name} is not a network of this session's shape "
                f"({k} {np.shape(getattr(other, k))} vs {np.shape(getattr(net, k))})"
            )
    mine, theirs = ({k: np.shape(v) for k, v in (n.extra or {}).items()} for n in (net, other))
    if mine != theirs:  # the cell's own parameters (all of them, for a cell that owns its synapses)
        raise ValueError(
            f"{name} is not a network of this session's shape (the cell's "
            f"parameters {theirs} vs {mine})"
        )
    return other._replace(cell=net.cell)


def advice(net, rule, frozen_at, optimizer):
    """The likely cause of a divergence, in one sentence."""
    if frozen_at == 0:
        return (
            "It failed on the first trial, before any update mattered: check the task's "
            "inputs and targets and the initial weights (their scale g, tau)."
        )
    what = "the optimiser's rate" if optimizer is not None else "the learning rates"
    why = f"Likely cause: {what} too large for this network (n_rec={net.n_rec})"
    if getattr(rule, "feedback", None) == "random":
        why += (
            f"; rule {rule.name!r} sends errors through the random feedback b, often much "
            "larger than w_out, so its recurrent rate usually needs to be smaller than the "
            "readout's"
        )
    return why + ". Try rates about 10 times smaller."


def rates_said(lr):
    if tuple(lr) == ("w_in", "w_rec", "w_out"):
        return "lr_in, lr_rec, lr_out = " + str(tuple(lr.values()))
    return ", ".join(f"{k}={v:g}" for k, v in lr.items())


def divergence_cause(losses, state, growth):
    bad = float(losses[-1])
    if not np.isfinite(bad):
        return "the loss became NaN or inf"
    best = float(state.guard.best)
    if growth is not None and bad > growth * best:
        return f"the loss {bad:.3g} grew past {growth:g} times its best {best:.3g}"
    return "a parameter became NaN or inf"
