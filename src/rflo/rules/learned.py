"""Rules whose state holds something *learned* that lasts from trial to trial.

Most rules' state is a set of traces of the current trial, started afresh at
every trial from :meth:`~rflo.rules.base.Rule.init`.  A few rules also learn
parameters of their own while they train the network: KeRNL's sensitivity
``beta`` and forgetting rates ``gamma``, DNI's synthetic-gradient module
``A``.  Those must carry over to the next trial, or they are learned within
a trial only and forgotten.

A rule says so by deriving from :class:`LearnedState` and naming, in
:meth:`LearnedState.carried`, the part of its state that carries over and,
in :meth:`LearnedState.resume`, how a fresh trial's state takes it back.
The trainer (:mod:`rflo.trainer`) finds these methods by name (``carried``,
``resume``, ``trial_from``, as it finds ``fused_online``) and keeps the
carried part in ``SessionState.rule_state`` across trials and chunks:

* online: each trial starts from ``resume(init(net, key), carried)`` and its
  last state's ``carried`` goes on to the next trial;
* offline: :meth:`LearnedState.trial_from` is the per-trial form that starts
  from and returns the carried part;
* a batch of ``B`` trials starts every trial from the same carried part and
  passes on its mean over the batch (as the weights get the mean update).

The carried part starts as ``carried(init(net, key))`` of the session's
first update.  A session continued by a new call of :func:`rflo.train`
(``start_trial``) starts it afresh: only the weights, the optimiser state and
the guard are handed over.  :meth:`~rflo.rules.base.Rule.trial` is unchanged,
a trial from the rule's initial state (what the gradient diagnostics and the
tests of a single trial use).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rflo.cells.base import initial_state
from rflo.network import params_of
from rflo.rules.base import DEFAULT_SETUP

__all__ = ["LearnedState"]


class LearnedState:
    """Mixin for rules with learned state (see the module docstring).  A
    subclass defines :meth:`carried` and :meth:`resume`; it has no fields."""

    def carried(self, state):
        """The part of a trial's state that carries over to the next trial."""
        raise NotImplementedError

    def resume(self, state, carried):
        """A fresh trial's ``state`` (from ``init``) with the ``carried`` part put back."""
        raise NotImplementedError

    def next_trial(self, state, net, key=None):
        """The state for a new trial that keeps what ``state`` learned (for code
        that drives ``advance`` itself)."""
        key = jax.random.PRNGKey(0) if key is None else key
        return self.resume(self.init(net, key), self.carried(state))

    def trial_from(self, carried, net, x, y_target, mask, key, setup=DEFAULT_SETUP):
        """:meth:`~rflo.rules.base.Rule.trial` from the ``carried`` part: returns
        ``(direction, y, carried after the trial)``."""

        def body(c, inp):
            h, state, acc = c
            state, h_new, y, d = self.advance(state, net, h, *inp, setup)
            return (h_new, state, jax.tree_util.tree_map(jnp.add, acc, d)), y

        zero = jax.tree_util.tree_map(jnp.zeros_like, params_of(net, setup.params))
        start = self.resume(self.init(net, key, setup), carried)
        (_, state, acc), y = jax.lax.scan(
            body,
            (initial_state(net), start, zero),
            (x[1:], y_target[1:], mask[1:]),
            unroll=setup.unroll,
        )
        return acc, y, self.carried(state)
