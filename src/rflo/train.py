"""Training a network: :func:`train` and what it returns.

:func:`train` runs a session of many trials through the compiled core
(:mod:`rflo.trainer`; ensembles: :mod:`rflo.ensemble`), in chunks of trials
(for progress reports); the chunking does not change the result, because
every chunk runs the same compiled code.  Its settings are checked first
(:mod:`rflo.session_checks`); a network with learning off is
:mod:`rflo.simulation`'s (:func:`simulate`, :func:`evaluate`, :func:`score`,
importable from here too).

Per trial the seed's bookkeeping is kept::

    loss      = sum_t loss.step(y[t], y*[t], m[t]) / (T n_out)   (outputs during the trial;
                squared error: 0.5 * sum_t m[t] |y*[t] - y[t]|^2 / (T n_out))
    alignment = <vec(b^T), vec(w_out)> / (|b| |w_out|)          (after the trial's update)
"""

from __future__ import annotations

import time
import warnings
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rflo._checks import check_int, check_seed, precision
from rflo.cells.lif import check_training_firing
from rflo.network import Network, params_of, to_numpy, with_params
from rflo.session_checks import (  # noqa: F401  (importable from here, as they were)
    CheckedSession,
    as_dtype,
    check_fits,
    check_network,
    check_session,
    check_session_memory,
    prepare_session,
    with_derivative,
)
from rflo.simulation import Evaluation, evaluate, score, simulate  # noqa: F401
from rflo.tasks import Task
from rflo.train_divergence import (  # noqa: F401  (importable from here, as they were)
    GuardState,
    advice,
    best_said,
    check_guard,
    check_guard_start,
    divergence_cause,
    rates_said,
)
from rflo.trainer import (
    SessionState,
    buffer_size,
    drive_chunks,
    init_opt_state,
    new_guard,
    run_chunk,
    trial_data,
)
from rflo.transfer import device_array, device_tree

__all__ = ["train", "TrainResult", "GuardState", "simulate", "evaluate", "Evaluation", "score"]

#: the names they had here (rflo.ensemble and rflo.gradients import them)
_as_dtype, _with_derivative = as_dtype, with_derivative


class TrainResult(NamedTuple):
    """What :func:`train` returns (numpy arrays).

    network : the trained :class:`~rflo.network.Network`.
    loss : (trials,) per-trial loss, from the outputs produced during each trial.
    alignment : (trials,) cosine between vec(b^T) and vec(w_out) after each trial.
    rule : the rule's name.
    seconds : wall time of the session, compilation included.
    opt_state : the optimiser state at the end (to continue training).
    diverged : ``None``, or a message saying at which trial and why training
        stopped early; ``network`` is then the last one whose loss was within
        the limit, and ``loss`` ends at the trial that diverged.
    trials_done : trials whose updates ``network`` contains, counted from the
        start of the run (``start_trial`` included).
    accuracy : (trials,) fraction correct per trial for tasks with an accuracy
        metric (NaN for a trial without a response window), else None.
    guard : the divergence test's state at the end (:class:`GuardState`);
        pass it to the next :func:`train` call that continues this session.
    best_network : the network with the lowest positive loss seen (the loss of
        a trial is measured on the network from before its update), also
        when training diverged: ``best_loss`` is that loss and ``best_trials``
        the trials whose updates it holds (its loss is that of trial
        ``best_trials + 1``, counted from 1).  A session that continues one
        whose guard holds no best network tracks it from its own start.
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
    guard: Optional["GuardState"] = None
    best_network: Optional[Network] = None
    best_loss: Optional[float] = None
    best_trials: Optional[int] = None


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
    derivative: Optional[str] = None,
    dtype: Optional[str] = None,
    chunk: Optional[int] = None,
    callback: Optional[Callable[[int, int, float], None]] = None,
    unroll: Optional[int] = None,
    seed: int = 0,
    max_loss_growth: Optional[float] = 1e4,
    opt_state=None,
    start_trial: int = 0,
    batch: int = 1,
    loss="squared_error",
    route: str = "auto",
    guard: Optional[GuardState] = None,
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
    lr : learning rates of plain SGD (the seed's ``eta``): ``(lr_in, lr_rec,
        lr_out)`` (default ``(0, 0.03, 0.03)``), one number for the cell's
        default parameters, or a dict by parameter name (e.g. ``{"w_rec": 0.03,
        "w_out": 0.03, "tau": 0.01}``): the parameters it names are trained, the
        others frozen.  With an ``optimizer`` only the names matter.
    online : update the weights at every step instead of once per trial.
    optimizer : an optax gradient transformation to use instead of plain SGD
        (then ``lr`` only says which parameters are trained).
    derivative : f' of the leaky tanh cell: ``"seed"`` (the notebook's) or
        ``"exact"``; default: the cell's own setting (``"seed"``).
    dtype : ``"float32"`` or ``"float64"``; default the network's.
    chunk : trials per compiled chunk (default: all at once, or about 1 % of the
        session when a ``callback`` is given).  Does not change the result;
        sessions with the same ``chunk`` (up to 65536) share one compilation.
    callback : called after each chunk as ``callback(done, total, last_loss)``.
    unroll : timesteps per iteration of the compiled time loop (speed only).
        Default: 1 on a CPU, 10 on a GPU, where each iteration of XLA's loop has a
        fixed cost of a few microseconds (``rflo.session_checks.default_unroll``).
    seed : seed of the session's PRNG key (trial ``i`` gets ``fold_in(key, i)``),
        or the key itself (a ``jax.random.PRNGKey``); only rules that draw
        random numbers use it.
    max_loss_growth : stop when a trial's loss exceeds this factor times its
        best so far (NaN/inf in the loss or parameters always stops); the network
        returned is the last one whose loss was within the limit (a trial's
        loss is measured on the network from before its update).  ``None``
        turns the growth test off.
    opt_state, start_trial, guard : continue an earlier session: its
        ``opt_state``, the number of trials it ran, and its ``guard`` (so that
        the divergence test holds across sessions as in one long one).
    batch : trials per update (default 1, the seed's): the rule's update
        directions are averaged over the batch (offline: per trial; online: at
        each step), and the loss is averaged over the batch.  A stacked Task's
        update ``i`` uses entries ``(i batch + b) % K``.
    loss : ``"squared_error"`` (default, the seed's), ``"cross_entropy"``
        (one-hot class targets) or a :class:`~rflo.losses.Loss`.
    route : ``"auto"`` (closed-form rule routes for the leaky tanh cell where
        they exist), ``"generic"`` (Jacobian-vector products, any cell) or
        ``"closed_form"``.

    Returns
    -------
    :class:`TrainResult`
    """
    # ---- validate everything before computing anything (as train_ensemble does)
    key = _session_key(seed)
    net = _with_derivative(check_network(net), derivative)
    checked = check_session(
        net,
        [task],
        rule,
        lr,
        trials=trials,
        start_trial=start_trial,
        unroll=unroll,
        batch=batch,
        max_loss_growth=max_loss_growth,
        online=online,
        optimizer=optimizer,
        loss=loss,
        route=route,
        dtype=dtype,
    )
    trials, start_trial, unroll, batch, max_loss_growth, rule, cfg, names, lr, dtype = checked
    if guard is not None:
        guard = check_guard(guard, net, start_trial)
    net = _as_dtype(net, dtype)
    if chunk is None:
        chunk = trials if callback is None else max(1, min(trials, -(-trials // 100)))
    # the compiled chunk length: a given ``chunk`` (up to 65536) is kept even when
    # the session is shorter, so that sessions of any length up to it (the
    # command line's segments) share one compilation
    chunk = check_int("chunk", chunk)
    capacity = chunk if chunk <= 2**16 else min(chunk, trials)

    with precision(dtype):
        if start_trial == 0:  # a spiking network that cannot learn: say so now
            check_training_firing(net, task, "before training")
    t0 = time.perf_counter()
    with precision(dtype):
        jnet = device_tree(net)
        source = trial_data(task, batch, dtype)
        lr_arr = {k: device_array(v, dtype) for k, v in lr.items()}
        w = params_of(jnet, names)
        if opt_state is None:
            opt_state = init_opt_state(optimizer, lr_arr, w)
        previous, best_of = None, {}
        if guard is not None:
            prev_net = device_tree(_as_dtype(guard.previous, dtype))
            previous = (
                params_of(prev_net, names),
                opt_state if guard.previous_opt_state is None else guard.previous_opt_state,
            )
            if guard.best_network is not None:
                best_net = device_tree(_as_dtype(guard.best_network, dtype))
                best_of = dict(
                    best_w=params_of(best_net, names),
                    best_w_loss=guard.best_network_loss,
                    best_at=guard.best_at,
                )

        def run(state, done, n):
            return run_chunk(
                cfg,
                optimizer,
                jnet,
                state,
                lr_arr,
                key,
                source,
                start_trial + done,
                n,
                buffer_size(capacity),
            )

        best = np.inf if guard is None else guard.best_loss
        state0 = SessionState(
            w,
            opt_state,
            new_guard(
                w,
                opt_state,
                max_loss_growth,
                dtype,
                start=start_trial,
                best=best,
                previous=previous,
                **best_of,
            ),
        )
        state, losses, aligns, accs = drive_chunks(
            run, state0, trials, capacity, callback, stop_when_frozen=True
        )
        trained = to_numpy(with_params(jnet, state.w))
        good_w, good_opt = state.guard.good
        best_net = to_numpy(with_params(jnet, state.guard.best_w))
        best_loss, best_at = float(state.guard.best_w_loss), int(state.guard.best_at)
        end_guard = GuardState(
            float(state.guard.best),
            to_numpy(with_params(jnet, good_w)),
            jax.tree_util.tree_map(np.asarray, good_opt),
            best_network=best_net,
            best_network_loss=best_loss,
            best_at=best_at,
        )
        seconds = time.perf_counter() - t0
        check_training_firing(trained, task, "after training")
    diverged = None
    done = start_trial + len(losses)
    frozen_at = int(state.guard.frozen_at)
    if frozen_at >= 0:
        bad = frozen_at - start_trial  # index of the trial that diverged
        losses, aligns, accs = losses[: bad + 1], aligns[: bad + 1], accs[: bad + 1]
        done = int(state.guard.good_at)
        diverged = (
            f"rule {rule.name!r} diverged at trial {frozen_at + 1}: "
            f"{divergence_cause(losses, state, max_loss_growth)} "
            f"(learning rates {rates_said(lr)}); "
            f"the network kept is the one after trial {done}, the last whose loss "
            f"was within the limit; {_best_said(best_loss, best_at)} (best_network). "
            f"{advice(net, rule, frozen_at, optimizer)}"
        )
        warnings.warn(diverged, RuntimeWarning, stacklevel=2)
    return TrainResult(
        network=trained,
        loss=losses,
        alignment=aligns,
        rule=rule.name,
        seconds=seconds,
        opt_state=state.opt_state,
        diverged=diverged,
        trials_done=done,
        accuracy=accs if task.metric is not None else None,
        guard=end_guard,
        best_network=best_net,
        best_loss=best_loss,
        best_trials=best_at,
    )


_best_said = best_said


def _session_key(seed):
    """The session's key: ``PRNGKey(seed)``, or ``seed`` if it is a key already."""
    if (
        isinstance(seed, (jax.Array, np.ndarray))
        and np.shape(seed) == (2,)
        and np.asarray(seed).dtype == np.uint32
    ):
        return jnp.asarray(seed)
    return jax.random.PRNGKey(check_seed(seed))
