"""Ensembles: K independent networks trained in one compiled call (``jax.vmap``).

Each network has its own initial weights, feedback matrix, PRNG key and
(optionally) its own learning rates and task, as long as the shapes agree.
Network ``k`` of an ensemble ends with the same weights as a separate
:func:`rflo.train` run with the same network and seed (to float rounding).
"""

from __future__ import annotations

import time
import warnings
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rflo._checks import check_int, check_seed, precision
from rflo.cells.lif import check_training_firing
from rflo.network import (
    Network,
    init_network,
    param_names,
    params_of,
    to_numpy,
    trainable_names,
    with_params,
)
from rflo.optim import check_learning_rates
from rflo.tasks import Task, TaskGenerator
from rflo.train import (
    GuardState,
    _as_dtype,
    _with_derivative,
    check_fits,
    check_guard_start,
    check_network,
    check_session,
)
from rflo.trainer import (
    SessionState,
    buffer_size,
    drive_chunks,
    ensemble_data,
    init_ensemble_opt_state,
    new_guard,
    run_ensemble_chunk,
)

__all__ = [
    "stack_networks",
    "unstack_networks",
    "init_ensemble",
    "train_ensemble",
    "EnsembleResult",
]


class EnsembleResult(NamedTuple):
    """What :func:`train_ensemble` returns (numpy arrays, network axis first).

    networks : stacked :class:`~rflo.network.Network` (every array has a leading K axis).
    loss, alignment : (K, trials).
    accuracy : (K, trials) fraction correct for tasks with a metric, else None.
    diverged_at : (K,) for each network the trial (counted from 1, from the
        start of the run) at which it diverged (and was set back to its last
        network whose loss was within the limit, then frozen), or 0 if it did not.
    guard : the divergence test's state at the end (a stacked
        :class:`~rflo.train.GuardState`: best losses (K,), the networks from
        before the last trial); pass it to the call that continues the session.
    best_networks, best_loss, best_trials : for each network (stacked, (K,),
        (K,)) the one with the lowest positive loss it saw (a diverged one's
        too), that loss and the trials its updates hold (as
        :attr:`rflo.train.TrainResult.best_network`).
    """

    networks: Network
    loss: np.ndarray
    alignment: np.ndarray
    rule: str
    seconds: float
    opt_state: object
    accuracy: Optional[np.ndarray] = None
    diverged_at: Optional[np.ndarray] = None
    guard: Optional[GuardState] = None
    best_networks: Optional[Network] = None
    best_loss: Optional[np.ndarray] = None
    best_trials: Optional[np.ndarray] = None

    def network(self, k: int) -> Network:
        """Network ``k`` of the ensemble."""
        return jax.tree_util.tree_map(lambda a: a[k], self.networks)


def stack_networks(nets: Sequence[Network]) -> Network:
    """Stack networks of equal shapes into one with a leading axis."""
    nets = [check_network(n) for n in nets]
    if not nets:
        raise ValueError("an ensemble needs at least one network")
    shapes = {str(jax.tree_util.tree_map(np.shape, n)) for n in nets}
    if len(shapes) != 1:
        raise ValueError(
            "networks of an ensemble must all have the same cell, shapes and constraints"
        )
    return jax.tree_util.tree_map(lambda *a: np.stack(a), *nets)


def unstack_networks(nets: Network):
    """The list of networks in a stacked network."""
    if not isinstance(nets, Network) or np.ndim(nets.w_out) != 3:
        raise ValueError(
            "expected a stacked network (a leading axis of K networks, from "
            "rflo.init_ensemble or rflo.stack_networks); for one network use "
            "rflo.train, or give a list of networks"
        )
    k = np.shape(nets.w_out)[0]
    return [jax.tree_util.tree_map(lambda a, i=i: np.asarray(a)[i], nets) for i in range(k)]


def init_ensemble(n_in, n_rec, n_out, seeds: Sequence[int], **kwargs) -> Network:
    """``len(seeds)`` networks from :func:`rflo.init_network`, stacked."""
    return stack_networks([init_network(n_in, n_rec, n_out, seed=int(s), **kwargs) for s in seeds])


def train_ensemble(
    networks,
    task,
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
    seeds: Optional[Sequence[int]] = None,
    max_loss_growth: Optional[float] = 1e4,
    batch: int = 1,
    loss="squared_error",
    route: str = "auto",
    opt_state=None,
    start_trial: int = 0,
    guard: Optional[GuardState] = None,
) -> EnsembleResult:
    """Train K networks at once; arguments as in :func:`rflo.train`, plus:

    networks : a stacked Network (leading axis K) or a list of K networks.
    task : one :class:`~rflo.tasks.Task` or :class:`~rflo.tasks.TaskGenerator`
        for all (each network draws its own trials from its seed), or a list of
        K Tasks of equal shapes.
    lr : rates for all networks (as in :func:`rflo.train`), a (K, 3) array (one
        row ``(lr_in, lr_rec, lr_out)`` per network), or a dict by parameter
        name whose values are numbers or (K,) arrays.
    seeds : K session seeds (default ``0 .. K-1``).
    max_loss_growth : a network whose loss turns NaN/inf or exceeds this factor
        times its best is set back to its last network whose loss was within
        the limit and frozen (``None``: only NaN/inf); the others train on.
    batch : trials per update, as in :func:`rflo.train`.
    opt_state, start_trial, guard : continue an earlier session of these
        networks (its ``opt_state``, the trials it ran, its ``guard``), exactly
        as in one long session.
    """
    nets = stack_networks(
        unstack_networks(networks) if isinstance(networks, Network) else list(networks)
    )
    k = nets.w_out.shape[0]
    first = _with_derivative(unstack_networks(nets)[0], derivative)
    nets = _with_derivative(nets, derivative)
    tasks = [task] if isinstance(task, (Task, TaskGenerator)) else list(task)
    if len(tasks) not in (1, k):
        raise ValueError(f"give one task or one per network ({k}), got {len(tasks)}")
    if len({(getattr(t, "n_variants", None), t.n_steps, t.n_in, t.n_out) for t in tasks}) != 1:
        raise ValueError("the tasks of an ensemble must all have the same shapes")
    for t in tasks:
        check_fits(first, t)  # before the rates: a task that does not fit says so first
    lr, lr_axis = _ensemble_rates(lr, k, first)
    checked = check_session(
        first,
        tasks,
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
        networks=k,
        check_lr=False,
    )
    trials, start_trial, unroll, batch, max_loss_growth, rule, cfg, names, _, dtype = checked
    if seeds is None:
        seeds = list(range(k))
    seeds = [check_seed(s) for s in seeds]
    if len(seeds) != k:
        raise ValueError(f"need one seed per network ({k}), got {len(seeds)}")
    nets = _as_dtype(nets, dtype)
    if guard is not None:
        guard = _check_guard(guard, nets, k, start_trial)
    if chunk is None:
        chunk = trials if callback is None else max(1, min(trials, -(-trials // 100)))
    capacity = min(check_int("chunk", chunk), trials)

    with precision(dtype):
        if start_trial == 0:  # spiking networks that cannot learn: say so now
            check_training_firing(nets, tasks[0], "before training", ensemble=True)
    t0 = time.perf_counter()
    with precision(dtype):
        jnets = jax.tree_util.tree_map(jnp.asarray, nets)
        source, data_axis = ensemble_data(tasks, batch, dtype)
        lr_arr = {n: jnp.asarray(v, dtype) for n, v in lr.items()}
        keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
        w = params_of(jnets, names)
        if opt_state is None:
            opt_state = init_ensemble_opt_state(optimizer, lr_arr, w, lr_axis)
        else:
            opt_state = jax.tree_util.tree_map(jnp.asarray, opt_state)

        def run(state, done, n):
            return run_ensemble_chunk(
                cfg,
                optimizer,
                jnets,
                state,
                lr_arr,
                keys,
                source,
                start_trial + done,
                n,
                buffer_size(capacity),
                lr_axis,
                data_axis,
            )

        if guard is None:
            guard0 = jax.vmap(
                lambda w, o: new_guard(w, o, max_loss_growth, dtype, start=start_trial)
            )(w, opt_state)
        else:
            prev = jax.tree_util.tree_map(jnp.asarray, _as_dtype(guard.previous, dtype))
            prev_opt = (
                opt_state
                if guard.previous_opt_state is None
                else jax.tree_util.tree_map(jnp.asarray, guard.previous_opt_state)
            )
            frozen = np.full(k, -1) if guard.frozen_at is None else guard.frozen_at
            if guard.best_network is None:  # tracked from this session's start
                best_of = (w, np.full(k, np.inf), np.full(k, start_trial))
            else:
                best_net = jax.tree_util.tree_map(jnp.asarray, _as_dtype(guard.best_network, dtype))
                best_of = (params_of(best_net, names), guard.best_network_loss, guard.best_at)
            guard0 = jax.vmap(
                lambda w, o, b, p, f, bw, bl, ba: new_guard(
                    w,
                    o,
                    max_loss_growth,
                    dtype,
                    start=start_trial,
                    best=b,
                    previous=p,
                    frozen_at=f,
                    best_w=bw,
                    best_w_loss=bl,
                    best_at=ba,
                )
            )(
                w,
                opt_state,
                jnp.asarray(guard.best_loss, dtype),
                (params_of(prev, names), prev_opt),
                jnp.asarray(frozen, jnp.int32),
                best_of[0],
                jnp.asarray(best_of[1], dtype),
                jnp.asarray(best_of[2], jnp.int32),
            )
        state, losses, aligns, accs = drive_chunks(
            run, SessionState(w, opt_state, guard0), trials, capacity, callback
        )
        trained = to_numpy(with_params(jnets, state.w))
        good_w, good_opt = state.guard.good
        best_nets = to_numpy(with_params(jnets, state.guard.best_w))
        best_loss = np.asarray(state.guard.best_w_loss, float)
        best_at = np.asarray(state.guard.best_at, np.int64)
        end_guard = GuardState(
            np.asarray(state.guard.best, float),
            to_numpy(with_params(jnets, good_w)),
            jax.tree_util.tree_map(np.asarray, good_opt),
            np.asarray(state.guard.frozen_at),
            best_nets,
            best_loss,
            best_at,
        )
        seconds = time.perf_counter() - t0
        check_training_firing(trained, tasks[0], "after training", ensemble=True)
    diverged_at = np.asarray(state.guard.frozen_at) + 1
    if np.any(diverged_at > 0):
        bad = [(int(i), int(diverged_at[i])) for i in np.flatnonzero(diverged_at)]
        warnings.warn(
            f"{len(bad)} of {k} networks diverged and were frozen at their last network within the loss limit "
            f"(network, trial): {bad[:10]}{' ...' if len(bad) > 10 else ''}; the others trained on. "
            "See EnsembleResult.diverged_at; try smaller learning rates for those networks.",
            RuntimeWarning,
            stacklevel=2,
        )
    return EnsembleResult(
        trained,
        losses,
        aligns,
        rule.name,
        seconds,
        jax.tree_util.tree_map(np.asarray, state.opt_state),
        accs if tasks[0].metric is not None else None,
        diverged_at,
        end_guard,
        best_nets,
        best_loss,
        best_at,
    )


def _check_guard(guard, nets, k, start_trial):
    check_guard_start(guard, start_trial, "EnsembleResult.guard")
    best = np.asarray(guard.best_loss, float)
    if best.shape != (k,) or np.any(~(best > 0)):
        raise ValueError(f"guard.best_loss must hold {k} losses > 0 (or inf), one per network")
    if guard.frozen_at is not None and np.shape(guard.frozen_at) != (k,):
        raise ValueError(f"guard.frozen_at must hold {k} trial indices (-1: not frozen)")
    prev = _same_stack(guard.previous, nets, "guard.previous")
    if guard.best_network is None:
        return guard._replace(previous=prev, best_network_loss=None, best_at=None)
    loss = np.asarray(
        guard.best_network_loss if guard.best_network_loss is not None else np.nan, float
    )
    at = np.asarray(guard.best_at if guard.best_at is not None else -1)
    if loss.shape != (k,) or np.any(~(loss > 0)):
        raise ValueError(f"guard.best_network_loss must hold {k} losses > 0 (or inf)")
    if at.shape != (k,) or at.dtype.kind not in "iu" or np.any(at < 0) or np.any(at >= start_trial):
        raise ValueError(f"guard.best_at must hold {k} trial counts from 0 to start_trial - 1")
    return guard._replace(
        previous=prev,
        best_network=_same_stack(guard.best_network, nets, "guard.best_network"),
        best_network_loss=loss,
        best_at=at,
    )


def _same_stack(other, nets, name):
    """``other`` checked to be a stack of networks of ``nets``' shapes (with its cell)."""
    other = stack_networks(unstack_networks(other))
    if str(jax.tree_util.tree_map(np.shape, other)) != str(jax.tree_util.tree_map(np.shape, nets)):
        raise ValueError(f"{name} is not a stack of networks of this ensemble's shape")
    return other._replace(cell=nets.cell)


def _ensemble_rates(lr, k, net):
    """``(rates by name, vmap axis)``: one set for all networks (axis None) or
    one per network (axis 0; a (K, 3) table or a dict of (K,) arrays)."""
    if isinstance(lr, dict) and any(np.ndim(v) == 1 for v in lr.values()):
        checked = check_learning_rates({n: 0.0 for n in lr}, param_names(net))
        table = {}
        for n in checked:
            if np.shape(lr[n]) not in ((), (k,)):
                raise ValueError(
                    f"lr[{n!r}] must be a number or {k} numbers (one per network), "
                    f"got shape {np.shape(lr[n])}"
                )
            v = np.broadcast_to(np.asarray(lr[n], dtype=float), (k,))
            for value in v:
                check_learning_rates({n: float(value)}, param_names(net))
            table[n] = np.array(v)
        return table, 0
    lr_np = None if isinstance(lr, dict) else np.asarray(lr, dtype=float)
    if lr_np is not None and lr_np.ndim == 2:
        if lr_np.shape != (k, 3):
            raise ValueError(
                f"per-network learning rates must have shape ({k}, 3), got {lr_np.shape}"
            )
        for row in lr_np:
            check_learning_rates(tuple(row))
        return {n: lr_np[:, i] for i, n in enumerate(("w_in", "w_rec", "w_out"))}, 0
    return check_learning_rates(lr, param_names(net), trainable_names(net)), None
