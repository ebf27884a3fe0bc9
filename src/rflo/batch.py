"""Minibatches and generated trials inside the compiled training loop.

:func:`rflo.train.run_trials` takes its trials either as the seed's stacked
arrays ``(xs, ys, ms)`` (one trial per update; that path is unchanged) or as a
:class:`TrialSource`, handled here: a batch of ``B`` trials per update, drawn
from a :class:`~rflo.tasks.TaskGenerator` or from a stacked task's bank, with
an optional accuracy metric.

Per update ``i`` (key ``k = fold_in(key, i)``, ``k_sample, k_rule = split(k)``):

* the trials: ``generator.sample(k_sample, B)``, or bank entries
  ``(i B + b) % K`` for ``b = 0 .. B-1``;
* offline: each trial's direction by ``rule.trial`` (``jax.vmap`` over the
  batch, rule keys ``split(k_rule, B)``), averaged, then one update;
* online: at each step every trial's step direction (``vmap`` over the batch,
  each trial carrying its own traces and state), averaged, then one update;
* loss: the seed's per-trial loss averaged over the batch; accuracy:
  ``sum(correct) / sum(counted)`` over the batch (NaN without a metric).
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from rflo.network import with_weights
from rflo.network import derivative as lookup_derivative
from rflo.tasks import TaskGenerator

__all__ = ["TrialSource", "trial_data", "ensemble_data", "run_batches", "score"]


@jax.tree_util.register_pytree_node_class
class TrialSource:
    """Where a session's trials come from (a pytree: the bank arrays are its
    leaves; the generator, batch size, metric and dtype are static)."""

    def __init__(self, arrays, generator: Optional[TaskGenerator], batch: int,
                 metric: Optional[Callable], dtype: str):
        self.arrays = arrays
        self.generator = generator
        self.batch = batch
        self.metric = metric
        self.dtype = dtype

    def tree_flatten(self):
        return (self.arrays,), (self.generator, self.batch, self.metric, self.dtype)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children[0], *aux)

    def draw(self, trial, key):
        """The batch of update ``trial``: (B, T, n_in), (B, T, n_out), (B, T)."""
        if self.generator is not None:
            x, y, m = self.generator.sample(key, self.batch)
            return tuple(jnp.asarray(a, self.dtype) for a in (x, y, m))
        xs, ys, ms = self.arrays
        idx = (trial * self.batch + jnp.arange(self.batch)) % xs.shape[0]
        return xs[idx], ys[idx], ms[idx]


def trial_data(task, batch: int, dtype: str):
    """What :func:`rflo.train.run_trials` takes for ``task``: the seed's stacked
    arrays for a :class:`Task` without a metric at ``batch=1``, a
    :class:`TrialSource` otherwise."""
    if isinstance(task, TaskGenerator):
        return TrialSource(None, task, batch, task.metric, dtype)
    arrays = tuple(jnp.asarray(a) for a in task.stacked(dtype))
    if batch == 1 and task.metric is None:
        return arrays
    return TrialSource(arrays, None, batch, task.metric, dtype)


def ensemble_data(tasks, batch: int, dtype: str):
    """``(data, data_axis)`` for :func:`rflo.ensemble.train_ensemble`: one task
    for all networks (axis None) or one per network (stacked, axis 0)."""
    if any(isinstance(t, TaskGenerator) for t in tasks):
        if len(set(tasks)) != 1:
            raise ValueError(
                "an ensemble takes one TaskGenerator for all networks (each network draws its "
                "own trials from its seed); for different tasks per network give stacked Tasks, "
                "e.g. generator.to_task(n_trials)")
        return trial_data(tasks[0], batch, dtype), None
    if len({t.metric for t in tasks}) != 1:
        raise ValueError("the tasks of an ensemble must all have the same accuracy metric")
    if len(tasks) == 1:
        return trial_data(tasks[0], batch, dtype), None
    stacked = tuple(jnp.stack(parts) for parts in zip(*(t.stacked(dtype) for t in tasks)))
    if batch == 1 and tasks[0].metric is None:
        return stacked, 0
    return TrialSource(stacked, None, batch, tasks[0].metric, dtype), 0


# --------------------------------------------------------------------------


def _offline_batch(rule, apply, fprime, unroll, net, w, opt_state, x, y, m, keys):
    net_w = with_weights(net, w)
    dirs, traj = jax.vmap(
        lambda x, y, m, k: rule.trial(net_w, x, y, m, k, fprime, unroll))(x, y, m, keys)
    direction = jax.tree_util.tree_map(lambda d: jnp.mean(d, axis=0), dirs)
    w, opt_state = apply(w, opt_state, direction, x.shape[1])
    return w, opt_state, traj.y


def _online_batch(rule, apply, fprime, unroll, net, w, opt_state, x, y, m, keys):
    n_steps = x.shape[1]

    def one(net_t, state, h, x_t, y_t, m_t):
        state, h_new, out, _, direction = rule.advance(state, net_t, h, x_t, y_t, m_t, fprime)
        return state, h_new, out, direction

    def body(carry, inp):
        w, opt_state, states, h = carry
        net_t = with_weights(net, w)
        states, h, out, dirs = jax.vmap(one, in_axes=(None, 0, 0, 0, 0, 0))(net_t, states, h, *inp)
        w, opt_state = apply(w, opt_state, jax.tree_util.tree_map(lambda d: jnp.mean(d, 0), dirs),
                             n_steps)
        return (w, opt_state, states, h), out

    states = jax.vmap(lambda k: rule.init(with_weights(net, w), k))(keys)
    h = jnp.broadcast_to(net.h0, (x.shape[0],) + net.h0.shape)
    time_major = tuple(jnp.swapaxes(a[:, 1:], 0, 1) for a in (x, y, m))
    (w, opt_state, _, _), out = jax.lax.scan(body, (w, opt_state, states, h), time_major,
                                             unroll=unroll)
    return w, opt_state, jnp.swapaxes(out, 0, 1)


def run_batches(cfg, opt, net, state, key, source: TrialSource, start, n, capacity):
    """:func:`rflo.train.run_trials` for a :class:`TrialSource`.

    Returns ``(state, losses, alignments, accuracies)``, buffers of length
    ``capacity`` (accuracy NaN when the task has no metric).
    """
    from rflo.train import SessionState, _apply, alignment, guard_step, trial_loss

    rule, online, fprime_name, unroll = cfg[:4]
    fprime = lookup_derivative(fprime_name)
    batch_trial = _online_batch if online else _offline_batch

    def apply(w, opt_state, direction, n_steps):
        return _apply(opt, net, w, opt_state, direction, n_steps)

    def body(i, carry):
        w, opt_state, guard, losses, aligns, accs = carry
        trial = start + i
        k_sample, k_rule = jax.random.split(jax.random.fold_in(key, trial))
        x, y, m = source.draw(trial, k_sample)
        new_w, new_opt, out = batch_trial(rule, apply, fprime, unroll, net, w, opt_state,
                                          x, y, m, jax.random.split(k_rule, source.batch))
        loss = jnp.mean(jax.vmap(trial_loss)(out, y, m))
        if guard is None:
            w, opt_state = new_w, new_opt
        else:
            (w, opt_state), guard, loss = guard_step(guard, trial, (w, opt_state),
                                                     (new_w, new_opt), loss)
        if source.metric is None:
            acc = jnp.nan
        else:
            correct, counted = jax.vmap(source.metric)(out, y[:, 1:], m[:, 1:])
            counted = jnp.sum(counted)
            acc = jnp.where(counted > 0, jnp.sum(correct) / jnp.maximum(counted, 1), jnp.nan)
        losses = losses.at[i].set(loss)
        aligns = aligns.at[i].set(alignment(with_weights(net, w)))
        accs = accs.at[i].set(acc)
        return w, opt_state, guard, losses, aligns, accs

    buf = jnp.zeros((capacity,), net.w_rec.dtype)
    w, opt_state, guard, losses, aligns, accs = jax.lax.fori_loop(
        0, n, body, (state.w, state.opt_state, state.guard, buf, buf, buf))
    return SessionState(w, opt_state, guard), losses, aligns, accs


# --------------------------------------------------------------------------
# scoring with learning off


def _score(net, x, y, m, metric):
    from rflo.rules.base import forward
    from rflo.train import trial_loss

    def one(x, y, m):
        _, h = forward(net, x)
        out = h @ net.w_out.T
        loss = trial_loss(out, y, m)
        if metric is None:
            return loss, jnp.zeros(()), jnp.zeros(())
        correct, counted = metric(out, y[1:], m[1:])
        return loss, correct, counted

    loss, correct, counted = jax.vmap(one)(x, y, m)
    return jnp.mean(loss), jnp.sum(correct), jnp.sum(counted)


_score_jit = jax.jit(_score, static_argnums=(4,))


def score(net, task, n_trials: int = 256, *, seed: int = 0):
    """Loss and accuracy of ``net`` on a set of trials, with learning off.

    A :class:`TaskGenerator` draws ``n_trials`` fresh trials from ``seed``;
    a :class:`Task` uses all its trials (``n_trials`` is ignored).  Returns
    ``(mean loss, accuracy)``; accuracy is the pooled fraction correct of the
    task's metric (None without a metric; NaN if no step was counted).
    """
    from rflo._checks import check_int, precision
    from rflo.train import check_fits, check_network

    net = check_network(net)
    check_fits(net, task)
    if isinstance(task, TaskGenerator):
        x, y, m = task.batch(check_int("seed", seed, minimum=0), check_int("n_trials", n_trials))
    else:
        x, y, m = task.stacked(net.dtype)
    with precision(net.dtype):
        jnet = jax.tree_util.tree_map(jnp.asarray, net)
        loss, correct, counted = _score_jit(jnet, *(jnp.asarray(a, net.dtype) for a in (x, y, m)),
                                            task.metric)
    if task.metric is None:
        return float(loss), None
    counted = float(counted)
    return float(loss), (float(correct) / counted if counted > 0 else float("nan"))
