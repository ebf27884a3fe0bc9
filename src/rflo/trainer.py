"""The trainer's compiled core: one loop over trials, for single runs and ensembles.

A session is a ``lax.fori_loop`` over updates inside ``jax.jit``; each update
draws a batch of ``B`` trials from a :class:`TrialSource` (a fixed task's bank
or a generator), runs the rule over them (offline: one update per batch from
the rule's per-trial directions; online: one update per step from the
per-step directions), and applies the optimiser and the network's
constraints.  An ensemble is the same function under ``jax.vmap``.

Per update ``i`` (key ``k = fold_in(key, i)``, ``k_sample, k_rule = split(k)``):

* the trials: ``generator.sample(k_sample, B)``, or bank entries
  ``(i B + b) % K`` for ``b = 0 .. B-1`` (with ``B = 1`` the bank's single
  trial uses the key ``k`` itself, as the seed's loop did);
* loss: the trial loss (:func:`rflo.losses.trial_loss`) averaged over the
  batch; accuracy ``sum(correct) / sum(counted)`` (NaN without a metric);
* alignment: cosine of ``vec(b^T)`` and ``vec(w_out)`` after the update.

Divergence (one semantics everywhere): after each update a :class:`Guard`
compares the trial's loss with ``growth`` times the best so far and checks
that the new parameters are finite.  The loss of trial ``i`` is measured on
the network from before its update, so the guard also keeps the last network
whose loss was within the limit; at the first failure the network is set back
to that one, frozen, and records NaN losses from then on.  Single runs stop
at the end of the chunk in which that happened.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rflo import xla_options
from rflo.cells.base import initial_state
from rflo.guard import Guard, alignment, guard_step, new_guard  # noqa: F401  (importable from here)
from rflo.losses import trial_loss
from rflo.network import apply_constraints, with_params
from rflo.trial_source import (  # noqa: F401  (importable from here, as they were)
    TrialSource,
    ensemble_data,
    trial_data,
)

__all__ = [
    "TrialSource",
    "trial_data",
    "ensemble_data",
    "alignment",
    "Guard",
    "new_guard",
    "guard_step",
    "SessionState",
    "per_param_sgd",
    "make_optimizer",
    "run_trials",
    "run_chunk",
    "run_ensemble_chunk",
    "init_opt_state",
    "init_ensemble_opt_state",
    "drive_chunks",
    "buffer_size",
    "Config",
    "gradients",
]


class Config(NamedTuple):
    """The static part of a session: the rule, whether it learns online, and
    the rule's :class:`~rflo.rules.base.Setup`."""

    rule: object
    online: bool
    setup: object


class SessionState(NamedTuple):
    """Everything that changes during a session (a pytree): the trained
    parameters ``w`` (a dict by name), the optimiser state and the :class:`Guard`."""

    w: dict
    opt_state: object
    guard: Guard
    rule_state: object = None  # what the rule learned across trials (rflo.rules.learned), or None


# --------------------------------------------------------------------------
# optimiser


def per_param_sgd(lr: dict) -> optax.GradientTransformation:
    """Plain SGD with one learning rate per parameter name (values may be
    traced, so that rates can be swept with ``jax.vmap``)."""

    def init(params):
        return optax.EmptyState()

    def update(grads, state, params=None):
        return {k: -lr[k] * g for k, g in grads.items()}, state

    return optax.GradientTransformation(init, update)


def make_optimizer(optimizer, lr):
    """The optax transformation a session uses: ``optimizer``, or plain SGD at ``lr``."""
    return per_param_sgd(lr) if optimizer is None else optimizer


def gradients(direction, n_steps):
    """The gradient estimates a rule's update ``direction`` (summed over a
    trial's ``n_steps`` steps) stands for: ``-direction / n_steps``, so that
    plain SGD at rate ``lr`` moves ``w`` by ``lr * direction / n_steps``."""
    return {k: -d / n_steps for k, d in direction.items()}


def _apply(optimizer, net, w, opt_state, direction, n_steps):
    grads = gradients(direction, n_steps)
    updates, opt_state = optimizer.update(grads, opt_state, w)
    w = optax.apply_updates(w, updates)
    if "w_rec" in w:
        w = {**w, "w_rec": apply_constraints(net, w["w_rec"])}
    return net.cell.constrain(w), opt_state


# --------------------------------------------------------------------------
# one update


def _mean0(tree):
    return jax.tree_util.tree_map(lambda d: jnp.mean(d, axis=0), tree)


def _offline_update(cfg, opt, net, w, opt_state, x, y, m, keys, learned=None):
    rule, _, setup = cfg
    net_w = with_params(net, w)

    def trial(x, y, m, k):
        if learned is None:
            return (*rule.trial(net_w, x, y, m, k, setup), None)
        return rule.trial_from(learned, net_w, x, y, m, k, setup)

    if x.shape[0] == 1:
        direction, out, learned = trial(x[0], y[0], m[0], keys[0])
        out = out[None]
    else:
        dirs, out, learned = jax.vmap(trial)(x, y, m, keys)
        direction, learned = _mean0(dirs), _mean0(learned)
    w, opt_state = _apply(opt, net, w, opt_state, direction, x.shape[1])
    loss = jnp.mean(jax.vmap(partial(trial_loss, setup.loss))(out, y, m))
    return w, opt_state, loss, out, learned


def _online_update(cfg, opt, net, w, opt_state, x, y, m, keys, keep_outputs):
    """:func:`_online_learned` for a rule without learned state: ``(w,
    opt_state, loss, outputs)``."""
    return _online_learned(cfg, opt, net, w, opt_state, x, y, m, keys, keep_outputs)[:4]


def _online_learned(cfg, opt, net, w, opt_state, x, y, m, keys, keep_outputs, learned=None):
    """A batch of trials with an update at every step.  Carries O(1)-in-T state
    (parameters, traces, cell states, the running loss); the outputs only when
    the task's accuracy needs them.  ``learned``: the rule's learned state
    (:mod:`rflo.rules.learned`) that each trial starts from, or None."""
    rule, _, setup = cfg
    n_batch, n_steps, n_out = y.shape
    single = n_batch == 1

    def advance(net_t, state, h, x_t, y_t, m_t):
        state, h, out, d = rule.advance(state, net_t, h, x_t, y_t, m_t, setup)
        return state, h, out, d, setup.loss.step(out, y_t, m_t)

    def body(t, carry):
        w, opt_state, states, h, total, *outs = carry
        net_t = with_params(net, w)
        if single:  # indexed, not sliced: no T-long copies
            states, h, out, d, lt = advance(net_t, states, h, x[0, t], y[0, t], m[0, t])
            out = out[None]
        else:
            states, h, out, d, lt = jax.vmap(advance, in_axes=(None, 0, 0, 0, 0, 0))(
                net_t, states, h, x[:, t], y[:, t], m[:, t]
            )
            d, lt = _mean0(d), jnp.mean(lt)
        w, opt_state = _apply(opt, net, w, opt_state, d, n_steps)
        if keep_outputs:
            outs = [outs[0].at[:, t - 1].set(out)]
        return (w, opt_state, states, h, total + lt, *outs)

    net0 = with_params(net, w)
    h0 = initial_state(net0)

    def init(k):
        s = rule.init(net0, k, setup)
        return s if learned is None else rule.resume(s, learned)

    if single:
        states = init(keys[0])
    else:
        states = jax.vmap(init)(keys)
        h0 = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (n_batch,) + a.shape), h0)
    outs = [jnp.zeros((n_batch, n_steps - 1, n_out), y.dtype)] if keep_outputs else []
    zero = jnp.zeros((), y.dtype)
    w, opt_state, states, _, total, *outs = jax.lax.fori_loop(
        1, n_steps, body, (w, opt_state, states, h0, zero, *outs), unroll=setup.unroll
    )
    outs = outs[0] if keep_outputs else None
    norm = n_steps * n_out if setup.loss.per_output else n_steps
    if learned is not None:
        learned = rule.carried(_mean0(states) if not single else states)
    return w, opt_state, total / norm, outs, learned


def _on_cpu(result):
    """A compiled route's ``(w, guard, loss, outputs)`` with a batch axis on the outputs."""
    w, guard, loss, out = result
    return w, guard, loss, (None if out is None else out[None])


def _fused(on_cpu, fallback, guard, trial, w, opt_state):
    """An update and its divergence guard by a rule's compiled route
    (``on_cpu() -> (w, guard, loss, outputs)``, see
    :meth:`rflo.rules.base.Rule.fused_offline` and ``fused_online``) on the CPU
    backend, elsewhere by ``fallback() -> (w, opt_state, loss, outputs)`` and
    :func:`guard_step` (plain SGD, one trial per update)."""

    def elsewhere():
        new_w, new_opt, loss, out = fallback()
        (kept, _), new_guard, loss = guard_step(
            guard, trial, (w, opt_state), (new_w, new_opt), loss
        )
        return kept, new_guard, loss, out

    w, guard, loss, out = jax.lax.platform_dependent(cpu=on_cpu, default=elsewhere)
    return (w, opt_state), guard, loss, out


def run_trials(
    cfg: Config,
    optimizer,
    net,
    state: SessionState,
    lr,
    key,
    source: TrialSource,
    start,
    n,
    capacity,
):
    """Updates ``start .. start+n-1`` of a session (pure; jit and vmap friendly).

    ``cfg`` and ``capacity`` (the length of the returned buffers; entries past
    ``n`` are zero) are static.  Returns ``(state, losses, alignments,
    accuracies)``; accuracies are NaN when the task has no metric.
    """
    opt = make_optimizer(optimizer, lr)
    rule, online, setup = cfg
    metric = source.metric
    learned = state.rule_state  # a rule's learned state lasts across trials (rflo.rules.learned)
    if learned is None and getattr(rule, "carried", None) is not None:
        learned = rule.carried(rule.init(with_params(net, state.w), key, setup))
    fused = None  # the rule's compiled route for a whole update with plain SGD
    if optimizer is None and source.batch == 1 and learned is None:
        route = getattr(rule, "fused_online" if online else "fused_offline", None)
        fused = route(net, setup) if route is not None else None

    def body(i, carry):
        w, opt_state, guard, learned, losses, aligns, *accs = carry
        trial = start + i
        k = jax.random.fold_in(key, trial)
        if source.generator is None and source.batch == 1:
            k_sample, rule_keys = k, k[None]
        else:
            k_sample, k_rule = jax.random.split(k)
            rule_keys = jax.random.split(k_rule, source.batch)
        x, y, m = source.draw(trial, k_sample)
        keep = metric is not None
        if fused is not None:  # the update and the guard in one call
            extra = (keep,) if online else ()  # an online trial keeps its outputs on request
            update = _online_update if online else _offline_update
            (w, opt_state), guard, loss, out = _fused(
                lambda: _on_cpu(fused(net, w, guard, lr, trial, x[0], y[0], m[0], *extra)),
                lambda: update(cfg, opt, net, w, opt_state, x, y, m, rule_keys, *extra)[:4],
                guard,
                trial,
                w,
                opt_state,
            )
        elif online:
            new_w, new_opt, loss, out, learned = _online_learned(
                cfg, opt, net, w, opt_state, x, y, m, rule_keys, keep, learned
            )
        else:
            new_w, new_opt, loss, out, learned = _offline_update(
                cfg, opt, net, w, opt_state, x, y, m, rule_keys, learned
            )
        if fused is None:
            (w, opt_state), guard, loss = guard_step(
                guard, trial, (w, opt_state), (new_w, new_opt), loss
            )
        if metric is not None:  # no buffer work for tasks without a metric
            correct, counted = jax.vmap(metric)(out, y[:, 1:], m[:, 1:])
            counted = jnp.sum(counted)
            acc = jnp.where(counted > 0, jnp.sum(correct) / jnp.maximum(counted, 1), jnp.nan)
            accs = [accs[0].at[i].set(acc)]
        losses = losses.at[i].set(loss)
        aligns = aligns.at[i].set(alignment(with_params(net, w)))
        return (w, opt_state, guard, learned, losses, aligns, *accs)

    buf = jnp.zeros((capacity,), net.w_out.dtype)
    accs = [buf] if metric is not None else []
    w, opt_state, guard, learned, losses, aligns, *accs = jax.lax.fori_loop(
        0, n, body, (state.w, state.opt_state, state.guard, learned, buf, buf, *accs)
    )
    accs = accs[0] if metric is not None else jnp.full((capacity,), jnp.nan, buf.dtype)
    return SessionState(w, opt_state, guard, learned), losses, aligns, accs


@partial(xla_options.jit, static_argnums=(0, 1, 9))
def run_chunk(cfg, optimizer, net, state, lr, key, source, start, n, capacity):
    """:func:`run_trials`, compiled."""
    return run_trials(cfg, optimizer, net, state, lr, key, source, start, n, capacity)


@partial(xla_options.jit, static_argnums=(0, 1, 9, 10, 11))
def run_ensemble_chunk(
    cfg, optimizer, nets, state, lr, keys, source, start, n, capacity, lr_axis, data_axis
):
    """:func:`run_trials` for K networks at once (``jax.vmap`` over the leading axis)."""
    fn = partial(run_trials, cfg, optimizer)
    return jax.vmap(fn, in_axes=(0, 0, lr_axis, 0, data_axis, None, None, None))(
        nets, state, lr, keys, source, start, n, capacity
    )


@partial(jax.jit, static_argnums=(0,))
def init_opt_state(optimizer, lr, w):
    return make_optimizer(optimizer, lr).init(w)


@partial(jax.jit, static_argnums=(0, 3))
def init_ensemble_opt_state(optimizer, lr, w, lr_axis):
    return jax.vmap(lambda rate, w: make_optimizer(optimizer, rate).init(w), in_axes=(lr_axis, 0))(
        lr, w
    )


def buffer_size(chunk: int) -> int:
    """The compiled buffer length for chunks of ``chunk`` updates: the next power
    of two, so that sessions of different lengths share one compilation."""
    return 1 << max(0, int(chunk) - 1).bit_length()


def drive_chunks(run, state, trials, capacity, callback=None, stop_when_frozen=False):
    """Run a session in chunks of at most ``capacity`` updates (host side).

    ``run(state, start, n) -> (state, losses, alignments, accuracies)`` with
    buffers whose last axis is the trial.  Calls ``callback(done, trials,
    last_loss)`` after each chunk.  With ``stop_when_frozen`` (single runs)
    the session ends after the chunk in which the guard froze the network.
    Returns ``(state, losses, alignments, accuracies)`` with numpy curves.
    """
    parts = []
    done = 0
    while done < trials:
        n = min(capacity, trials - done)
        state, *bufs = run(state, done, n)
        parts.append([np.asarray(b)[..., :n] for b in bufs])  # sliced on the host
        done += n
        if callback is not None:
            last = parts[-1][0][..., -1]
            callback(
                done,
                trials,
                float(np.mean(last[np.isfinite(last)]))
                if np.any(np.isfinite(last))
                else float("nan"),
            )
        if stop_when_frozen and int(state.guard.frozen_at) >= 0:
            break
    return (state, *(np.concatenate(c, axis=-1) for c in zip(*parts)))
