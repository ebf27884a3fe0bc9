"""The trainer: sessions of many trials, compiled end to end.

A session is a ``lax.fori_loop`` over trials inside ``jax.jit``; each trial is a
``lax.scan`` over timesteps.  Sessions run in chunks of trials (for progress
reports); the chunking does not change the result, because every chunk runs the
same compiled code.

Per trial the seed's bookkeeping is kept::

    loss      = 0.5 * sum_t m[t] |y*[t] - y[t]|^2 / (T n_out)        (outputs during the trial)
    alignment = <vec(b^T), vec(w_out)> / (|b| |w_out|)               (after the trial's update)
"""

from __future__ import annotations

import time
import warnings
from functools import partial
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rflo._checks import check_dtype, check_finite_array, check_int, check_positive, precision
from rflo.network import (
    Network, apply_constraints, network_from_arrays, to_numpy, weights_of, with_weights,
)
from rflo.network import derivative as lookup_derivative
from rflo.optim import check_learning_rates, per_matrix_sgd
from rflo.network import Weights
from rflo.rules import get_rule
from rflo.rules.base import forward
from rflo.tasks import Task, TaskGenerator
from rflo.batch import TrialSource, run_batches, trial_data

__all__ = ["train", "TrainResult", "simulate", "evaluate", "Evaluation", "alignment",
           "check_network", "check_fits", "run_trials", "drive_chunks", "SessionState", "Guard",
           "make_optimizer"]


class TrainResult(NamedTuple):
    """What :func:`train` returns (numpy arrays).

    network : the trained :class:`~rflo.network.Network`.
    loss : (trials,) per-trial loss, from the outputs produced during each trial.
    alignment : (trials,) cosine between vec(b^T) and vec(w_out) after each trial.
    rule : the rule's name.
    seconds : wall time of the session, compilation included.
    opt_state : the optimiser state at the end (to continue training).
    diverged : ``None``, or a message saying at which trial and why training
        stopped early; ``network`` is then the last finite one, and ``loss`` ends
        at the trial that diverged.
    trials_done : trials whose updates ``network`` contains.
    accuracy : (trials,) fraction correct per trial for tasks with an accuracy
        metric (NaN for a trial without a response window), else None.
    """

    network: Network
    loss: np.ndarray
    alignment: np.ndarray
    rule: str
    seconds: float
    opt_state: object
    diverged: Optional[str] = None
    trials_done: int = 0
    accuracy: Optional[np.ndarray] = None


class Evaluation(NamedTuple):
    """One trial with learning off: ``y`` (T, n_out), ``h`` and ``u`` (T, n_rec),
    the ``target`` (T, n_out) and the trial's ``loss``.

    Row 0 is the initial state: ``h[0] = h0``, ``y[0] = w_out h0``, ``u[0] = 0``.
    """

    y: np.ndarray
    h: np.ndarray
    u: np.ndarray
    target: np.ndarray
    loss: float


def alignment(net: Network):
    """Cosine between vec(b^T) and vec(w_out) (the seed's readout alignment)."""
    bt = net.b.T
    return jnp.vdot(bt, net.w_out) / (jnp.linalg.norm(bt) * jnp.linalg.norm(net.w_out))


def trial_loss(y, y_target, mask):
    """``0.5 * sum_t m[t] |y*[t] - y[t]|^2 / (T n_out)`` over steps 1..T-1.

    ``y`` has the T-1 rows of steps 1..T-1; ``y_target`` and ``mask`` all T rows.
    """
    t, n_out = y_target.shape
    sq = (y_target[1:] - y) ** 2
    return 0.5 * jnp.sum(mask[1:, None] * sq) / (t * n_out)


# --------------------------------------------------------------------------
# one trial


def _apply(optimizer, net, w, opt_state, direction, n_steps):
    grads = jax.tree_util.tree_map(lambda d: -d / n_steps, direction)
    updates, opt_state = optimizer.update(grads, opt_state, w)
    w = optax.apply_updates(w, updates)
    return w._replace(w_rec=apply_constraints(net, w.w_rec)), opt_state


def _online_trial(rule, optimizer, fprime, unroll, net, w, opt_state, x, y_target, mask, key):
    """One trial with an update at every step; returns ``w, opt_state, loss``.

    Only O(1)-in-T state is carried (weights, trace state, ``h`` and the running
    squared error), so memory does not grow with the trial's length.
    """
    n_steps, n_out = y_target.shape

    def body(t, carry):
        w, opt_state, state, h, sq = carry
        x_t, y_t, m_t = x[t], y_target[t], mask[t]  # indexed, not sliced: no T-long copies
        state, h_new, y, _, d = rule.advance(state, with_weights(net, w), h, x_t, y_t, m_t, fprime)
        w, opt_state = _apply(optimizer, net, w, opt_state, d, n_steps)
        diff = y_t - y
        return w, opt_state, state, h_new, sq + m_t * jnp.sum(diff * diff)

    zero = jnp.zeros((), y_target.dtype)
    carry0 = (w, opt_state, rule.init(with_weights(net, w), key), net.h0, zero)
    w, opt_state, _, _, sq = jax.lax.fori_loop(1, n_steps, body, carry0, unroll=unroll)
    return w, opt_state, 0.5 * sq / (n_steps * n_out)


def _trial(cfg, optimizer, net, w, opt_state, x, y_target, mask, key):
    """One learning trial; returns the new weights, optimiser state and loss."""
    rule, online, fprime_name, unroll = cfg
    fprime = lookup_derivative(fprime_name)
    if online:
        return _online_trial(rule, optimizer, fprime, unroll,
                             net, w, opt_state, x, y_target, mask, key)
    direction, traj = rule.trial(with_weights(net, w), x, y_target, mask, key, fprime, unroll)
    w, opt_state = _apply(optimizer, net, w, opt_state, direction, x.shape[0])
    return w, opt_state, trial_loss(traj.y, y_target, mask)


def make_optimizer(optimizer, lr):
    """The optax transformation a session uses: ``optimizer``, or plain SGD at ``lr``."""
    return per_matrix_sgd(lr) if optimizer is None else optimizer


class Guard(NamedTuple):
    """Divergence guard of one network, carried through the compiled loop.

    best : () best loss so far; growth : () allowed factor over ``best`` (inf:
    no growth test); frozen_at : () int, the trial at which the network
    diverged, or -1.  A diverged network keeps its last finite weights and
    records NaN losses from then on, without stopping the others of an ensemble.
    """

    best: jax.Array
    growth: jax.Array
    frozen_at: jax.Array


def new_guard(max_loss_growth, dtype):
    growth = np.inf if max_loss_growth is None else max_loss_growth
    return Guard(jnp.asarray(np.inf, dtype), jnp.asarray(growth, dtype), jnp.asarray(-1, jnp.int32))


def guard_step(guard: Guard, trial, old, new, loss):
    """``(kept, guard, loss)``: ``new`` (a pytree) unless this trial diverged or the
    network was already frozen, in which case ``old``."""
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree_util.tree_leaves(new)]))
    ok = jnp.isfinite(loss) & finite & (loss <= guard.growth * guard.best)
    healthy = guard.frozen_at < 0
    take = ok & healthy
    kept = jax.tree_util.tree_map(lambda a, b: jnp.where(take, b, a), old, new)
    guard = Guard(jnp.where(take, jnp.minimum(guard.best, loss), guard.best), guard.growth,
                  jnp.where(healthy & ~ok, trial, guard.frozen_at).astype(jnp.int32))
    return kept, guard, jnp.where(healthy, loss, jnp.nan)


class SessionState(NamedTuple):
    """Everything that changes during a session (a pytree).  ``guard`` (a
    :class:`Guard`, or None) freezes a network that diverges, inside the loop."""

    w: Weights
    opt_state: object
    guard: Optional[Guard] = None


def run_trials(cfg, optimizer, net, state, lr, key, data, start, n, capacity):
    """Trials ``start .. start+n-1`` of a session (pure; jit and vmap friendly).

    ``cfg = (rule, online, derivative_name, unroll)`` is static.  ``data = (xs,
    ys, ms)`` are stacks of shape (K, T, ...); trial ``i`` uses entry ``i % K``
    and the PRNG key ``fold_in(key, i)``.  ``capacity`` (static) is the length of
    the returned loss and alignment buffers; entries past ``n`` are zero.
    Returns ``(state, losses, alignments)``.

    ``data`` may instead be a :class:`rflo.batch.TrialSource` (generated trials,
    minibatches, accuracy): then see :func:`rflo.batch.run_batches`, which also
    returns an accuracy buffer.
    """
    opt = make_optimizer(optimizer, lr)
    if isinstance(data, TrialSource):
        return run_batches(cfg, opt, net, state, key, data, start, n, capacity)
    xs, ys, ms = data
    k = xs.shape[0]

    def body(i, carry):
        w, opt_state, guard, losses, aligns = carry
        trial = start + i
        j = trial % k
        new_w, new_opt, loss = _trial(cfg, opt, net, w, opt_state, xs[j], ys[j], ms[j],
                                      jax.random.fold_in(key, trial))
        if guard is None:
            w, opt_state = new_w, new_opt
        else:
            (w, opt_state), guard, loss = guard_step(guard, trial, (w, opt_state),
                                                     (new_w, new_opt), loss)
        losses = losses.at[i].set(loss)
        aligns = aligns.at[i].set(alignment(with_weights(net, w)))
        return w, opt_state, guard, losses, aligns

    buf = jnp.zeros((capacity,), net.w_rec.dtype)
    w, opt_state, guard, losses, aligns = jax.lax.fori_loop(
        0, n, body, (state.w, state.opt_state, state.guard, buf, buf))
    return SessionState(w, opt_state, guard), losses, aligns


@partial(jax.jit, static_argnums=(0, 1, 9))
def _run_trials_jit(cfg, optimizer, net, state, lr, key, data, start, n, capacity):
    return run_trials(cfg, optimizer, net, state, lr, key, data, start, n, capacity)


@partial(jax.jit, static_argnums=(0,))
def _init_opt_state(optimizer, lr, w):
    return make_optimizer(optimizer, lr).init(w)


def drive_chunks(run_chunk, state, trials, capacity, callback=None, check=None):
    """Run a session in chunks of at most ``capacity`` trials.

    ``run_chunk(state, start, n) -> (state, losses, alignments, ...)`` with
    buffers whose last axis is the trial (any number of them, losses first).
    Calls ``callback(done, trials, last_loss)`` after each chunk.
    ``check(state, losses_of_chunk, start)``, if given, may return
    ``(message, index)`` to stop: then the state from before that chunk is kept
    and the curves end at trial ``index``.  Returns ``(state, stop, losses,
    alignments, ...)`` with numpy curves; ``stop`` is ``None`` or what ``check``
    returned.
    """
    parts = []
    done = 0
    stop = None
    while done < trials:
        n = min(capacity, trials - done)
        new_state, *bufs = run_chunk(state, done, n)
        bufs = [np.asarray(b[..., :n]) for b in bufs]
        if check is not None:
            stop = check(new_state, bufs[0], done)
            if stop is not None:
                keep = stop[1] - done + 1  # curves up to and including the bad trial
                parts.append([b[..., :keep] for b in bufs])
                break
        state = new_state
        parts.append(bufs)
        done += n
        if callback is not None:
            callback(done, trials, float(np.mean(bufs[0][..., -1])))
    return (state, stop, *(np.concatenate(c, axis=-1) for c in zip(*parts)))


def divergence_check(max_growth, best0=np.inf):
    """A ``check`` for :func:`drive_chunks` (one network): stop at the first trial
    whose loss is NaN/inf or exceeds ``max_growth`` times the best loss so far,
    or when a weight is no longer finite."""
    best = [best0]

    def check(state, losses, start):
        for i, loss in enumerate(losses):
            if not np.isfinite(loss):
                return ("the loss became NaN or inf", start + i)
            if max_growth is not None and loss > max_growth * best[0]:
                return (f"the loss {loss:.3g} grew past {max_growth:g} times its best {best[0]:.3g}",
                        start + i)
            best[0] = min(best[0], float(loss))
        for name, w in zip(("w_in", "w_rec", "w_out"), state.w):
            if not np.all(np.isfinite(np.asarray(w))):
                return (f"{name} became NaN or inf", start + len(losses) - 1)
        return None

    return check


# --------------------------------------------------------------------------
# checks


def check_network(net) -> Network:
    """Validate a network (shapes, finiteness, constraints); returns a numpy copy."""
    if not isinstance(net, Network):
        raise ValueError(
            f"expected an rflo Network (see rflo.init_network / rflo.load_network), got {type(net).__name__}"
        )
    arrays = {k: (None if v is None else np.asarray(v)) for k, v in net._asdict().items()}
    return network_from_arrays(**arrays)


def check_fits(net: Network, task):
    """Raise if the task's input/output sizes do not match the network."""
    if not isinstance(task, (Task, TaskGenerator)):
        raise ValueError(
            "expected an rflo Task or TaskGenerator (e.g. rflo.periodic_task(), "
            f"rflo.tasks.make_task('flip_flop')), got {type(task).__name__}")
    if task.n_in != net.n_in:
        raise ValueError(
            f"the task has {task.n_in} inputs but the network has n_in={net.n_in}; "
            "build the network with the task's input size"
        )
    if task.n_out != net.n_out:
        raise ValueError(
            f"the task has {task.n_out} outputs but the network has n_out={net.n_out}; "
            "build the network with the task's output size"
        )


def _as_dtype(net: Network, dtype) -> Network:
    return jax.tree_util.tree_map(lambda a: np.asarray(a, dtype), net)


# --------------------------------------------------------------------------
# public entry points


def train(
    net: Network,
    task: Task,
    rule="rflo",
    trials: int = 1000,
    lr=(0.0, 0.03, 0.03),
    *,
    online: bool = False,
    optimizer: Optional[optax.GradientTransformation] = None,
    derivative: str = "seed",
    dtype: Optional[str] = None,
    chunk: Optional[int] = None,
    callback: Optional[Callable[[int, int, float], None]] = None,
    unroll: int = 1,
    seed: int = 0,
    max_loss_growth: Optional[float] = 1e4,
    opt_state=None,
    start_trial: int = 0,
    batch: int = 1,
) -> TrainResult:
    """Train ``net`` on ``task`` for ``trials`` trials with a learning rule.

    Parameters
    ----------
    net : the network (not modified; a trained copy is returned).
    task : a :class:`~rflo.tasks.Task` (fixed trials) or a
        :class:`~rflo.tasks.TaskGenerator` (trials drawn in the compiled loop).
    rule : rule name (``"rflo"``, ``"bptt"``, ``"rtrl"``, ``"local"``,
        ``"random_feedback"``, ...) or a :class:`~rflo.rules.Rule`.
    trials : number of trials.
    lr : learning rates ``(lr_in, lr_rec, lr_out)`` of plain SGD (the seed's
        ``eta``; default ``(0, 0.03, 0.03)``), or one number for all three.
    online : update the weights at every step instead of once per trial.
    optimizer : an optax gradient transformation to use instead of plain SGD
        (then ``lr`` is ignored).
    derivative : f' used by the rules: ``"seed"`` (the notebook's) or ``"exact"``.
    dtype : ``"float32"`` or ``"float64"``; default the network's.
    chunk : trials per compiled chunk (default: all at once, or about 1 % of the
        session when a ``callback`` is given).  Does not change the result.
    callback : called after each chunk as ``callback(done, total, last_loss)``.
    unroll : timesteps per iteration of the compiled time loop (speed only; 1 is
        fastest on CPU, where XLA runs each op of the loop body separately).
    seed : seed of the session's PRNG key (trial ``i`` gets ``fold_in(key, i)``);
        only rules that draw random numbers use it.
    max_loss_growth : stop (at the end of the chunk) when the loss exceeds this
        factor times its best so far; NaN/inf in the loss or weights always stops.
        ``None`` turns the growth test off.
    opt_state, start_trial : continue an earlier session (its ``opt_state``
        and the number of trials it ran).
    batch : trials per update (default 1, the seed's): the rule's update
        directions are averaged over the batch (offline: per trial; online: at
        each step), and the loss is averaged over the batch.  A stacked Task's
        update ``i`` uses entries ``(i batch + b) % K``.

    Returns
    -------
    :class:`TrainResult`
    """
    # ---- validate everything before computing anything
    rule = get_rule(rule)
    trials = check_int("trials", trials)
    start_trial = check_int("start_trial", start_trial, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    if max_loss_growth is not None:
        max_loss_growth = check_positive("max_loss_growth", max_loss_growth)
    unroll = check_int("unroll", unroll)
    batch = check_int("batch", batch)
    lr = check_learning_rates(lr)
    if online and not rule.online:
        raise ValueError(
            f"rule {rule.name!r} cannot learn online (it needs the whole trial); "
            "use online=False, or an online rule such as 'rflo' or 'rtrl'"
        )
    lookup_derivative(derivative)
    if optimizer is not None and not isinstance(optimizer, optax.GradientTransformation):
        raise ValueError("optimizer must be an optax.GradientTransformation, e.g. optax.adam(1e-3)")
    net = check_network(net)
    check_fits(net, task)
    dtype = check_dtype(dtype or net.dtype)
    net = _as_dtype(net, dtype)
    if chunk is None:
        chunk = trials if callback is None else max(1, min(trials, -(-trials // 100)))
    chunk = check_int("chunk", chunk)
    capacity = min(chunk, trials)

    cfg = (rule, bool(online), derivative, unroll)
    t0 = time.perf_counter()
    with precision(dtype):
        jnet = jax.tree_util.tree_map(jnp.asarray, net)
        data = trial_data(task, batch, dtype)
        lr_arr = jnp.asarray(lr, dtype)
        key = jax.random.PRNGKey(seed)
        w = weights_of(jnet)
        if opt_state is None:
            opt_state = _init_opt_state(optimizer, lr_arr, w)

        def run_chunk(state, done, n):
            return _run_trials_jit(cfg, optimizer, jnet, state, lr_arr, key, data,
                                   start_trial + done, n, capacity)

        state, stop, losses, aligns, *accs = drive_chunks(
            run_chunk, SessionState(w, opt_state), trials, capacity, callback,
            check=divergence_check(max_loss_growth))
        trained = to_numpy(with_weights(jnet, state.w))
    diverged = None
    done = trials if stop is None else (stop[1] // capacity) * capacity
    if stop is not None:
        diverged = (f"rule {rule.name!r} diverged at trial {start_trial + stop[1] + 1}: {stop[0]} "
                    f"(lr_in, lr_rec, lr_out = {lr}); the network kept is the last finite one, "
                    f"after trial {start_trial + done}. Try smaller learning rates.")
        warnings.warn(diverged, RuntimeWarning, stacklevel=2)
    return TrainResult(
        network=trained,
        loss=losses,
        alignment=aligns,
        rule=rule.name,
        seconds=time.perf_counter() - t0,
        opt_state=state.opt_state,
        diverged=diverged,
        trials_done=done,
        accuracy=accs[0] if task.metric is not None else None,
    )


@partial(jax.jit, static_argnums=(2,))
def _simulate_jit(net, x, unroll):
    u, h = forward(net, x, unroll)
    h_all = jnp.concatenate([net.h0[None], h])
    u_all = jnp.concatenate([jnp.zeros_like(net.h0)[None], u])
    return h_all @ net.w_out.T, h_all, u_all


def simulate(net: Network, x, *, dtype: Optional[str] = None):
    """Run ``net`` on inputs ``x`` (T, n_in) with learning off.

    Returns ``y`` (T, n_out), ``h`` (T, n_rec), ``u`` (T, n_rec) as numpy arrays;
    row 0 is the initial state (``u[0] = 0``).
    """
    net = check_network(net)
    dtype = check_dtype(dtype or net.dtype)
    x = _checks_x(x, net, dtype)
    net = _as_dtype(net, dtype)
    with precision(dtype):
        y, h, u = _simulate_jit(jax.tree_util.tree_map(jnp.asarray, net), jnp.asarray(x), 1)
        return np.asarray(y), np.asarray(h), np.asarray(u)


def _checks_x(x, net, dtype):
    x = check_finite_array("x", x, ndim=2, dtype=dtype)
    if x.shape[1] != net.n_in:
        raise ValueError(f"x must have shape (T, n_in={net.n_in}), got {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"x needs at least 2 timesteps, got {x.shape[0]}")
    return x


def evaluate(net: Network, task: Task, trial: int = 0, *, dtype: Optional[str] = None) -> Evaluation:
    """Run one trial of ``task`` with learning off and score it."""
    net = check_network(net)
    check_fits(net, task)
    x, y_target, mask = task.trial(trial)
    y, h, u = simulate(net, x, dtype=dtype)
    loss = 0.5 * np.sum(mask[1:, None] * (y_target[1:] - y[1:]) ** 2) / y_target.size
    return Evaluation(y, h, u, np.asarray(y_target), float(loss))
