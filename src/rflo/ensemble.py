"""Ensembles: K independent networks trained in one compiled call (``jax.vmap``).

Each network has its own initial weights, feedback matrix, PRNG key and
(optionally) its own learning rates and task, as long as the shapes agree.
Network ``k`` of an ensemble ends with the same weights as a separate
:func:`rflo.train` run with the same network and seed (to float rounding).
"""

from __future__ import annotations

import time
import warnings
from functools import partial
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rflo._checks import check_dtype, check_int, check_positive, precision
from rflo.network import Network, init_network, to_numpy, weights_of, with_weights
from rflo.network import derivative as lookup_derivative
from rflo.optim import check_learning_rates
from rflo.rules import get_rule
from rflo.batch import ensemble_data
from rflo.tasks import Task, TaskGenerator
from rflo.train import (
    SessionState, new_guard, _as_dtype, check_fits, check_network, drive_chunks, make_optimizer,
    run_trials,
)

__all__ = ["stack_networks", "unstack_networks", "init_ensemble", "train_ensemble",
           "EnsembleResult"]


class EnsembleResult(NamedTuple):
    """What :func:`train_ensemble` returns (numpy arrays, network axis first).

    networks : stacked :class:`~rflo.network.Network` (every array has a leading K axis).
    loss, alignment : (K, trials).
    accuracy : (K, trials) fraction correct for tasks with a metric, else None.
    diverged_at : (K,) for each network the trial (counted from 1) at which it
        diverged and was frozen with its last finite weights, or 0 if it did not.
    """

    networks: Network
    loss: np.ndarray
    alignment: np.ndarray
    rule: str
    seconds: float
    opt_state: object
    accuracy: Optional[np.ndarray] = None
    diverged_at: Optional[np.ndarray] = None

    def network(self, k: int) -> Network:
        """Network ``k`` of the ensemble."""
        return jax.tree_util.tree_map(lambda a: a[k], self.networks)


def stack_networks(nets: Sequence[Network]) -> Network:
    """Stack networks of equal shapes into one with a leading axis."""
    nets = [check_network(n) for n in nets]
    if not nets:
        raise ValueError("an ensemble needs at least one network")
    shapes = {tuple((None if v is None else v.shape) for v in n) for n in nets}
    if len(shapes) != 1:
        raise ValueError("networks of an ensemble must all have the same shapes and constraints")
    return jax.tree_util.tree_map(lambda *a: np.stack(a), *nets)


def unstack_networks(nets: Network):
    """The list of networks in a stacked network."""
    k = np.shape(nets.w_rec)[0]
    return [jax.tree_util.tree_map(lambda a: np.asarray(a[i]), nets) for i in range(k)]


def init_ensemble(n_in, n_rec, n_out, seeds: Sequence[int], **kwargs) -> Network:
    """``len(seeds)`` networks from :func:`rflo.init_network`, stacked."""
    return stack_networks([init_network(n_in, n_rec, n_out, seed=int(s), **kwargs) for s in seeds])


@partial(jax.jit, static_argnums=(0, 1, 9, 10, 11))
def _ensemble_chunk(cfg, optimizer, nets, state, lr, keys, data, start, n, capacity,
                    lr_axis, data_axis):
    fn = partial(run_trials, cfg, optimizer)
    return jax.vmap(fn, in_axes=(0, 0, lr_axis, 0, data_axis, None, None, None))(
        nets, state, lr, keys, data, start, n, capacity)


@partial(jax.jit, static_argnums=(0, 3))
def _ensemble_opt_init(optimizer, lr, w, lr_axis):
    return jax.vmap(lambda l, w: make_optimizer(optimizer, l).init(w), in_axes=(lr_axis, 0))(lr, w)


def train_ensemble(
    networks,
    task,
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
    seeds: Optional[Sequence[int]] = None,
    max_loss_growth: Optional[float] = 1e4,
    batch: int = 1,
) -> EnsembleResult:
    """Train K networks at once; arguments as in :func:`rflo.train`, plus:

    networks : a stacked Network (leading axis K) or a list of K networks.
    task : one :class:`~rflo.tasks.Task` or :class:`~rflo.tasks.TaskGenerator`
        for all (each network draws its own trials from its seed), or a list of
        K Tasks of equal shapes.
    lr : three rates for all networks, or a (K, 3) array (one row per network).
    seeds : K session seeds (default ``0 .. K-1``).
    max_loss_growth : a network whose loss turns NaN/inf or exceeds this factor
        times its best is frozen at its last finite weights (``None``: only
        NaN/inf); the others train on.
    batch : trials per update, as in :func:`rflo.train`.
    """
    rule = get_rule(rule)
    trials = check_int("trials", trials)
    unroll = check_int("unroll", unroll)
    batch = check_int("batch", batch)
    lookup_derivative(derivative)
    if online and not rule.online:
        raise ValueError(
            f"rule {rule.name!r} cannot learn online (it needs the whole trial); use online=False"
        )
    nets = stack_networks(unstack_networks(networks) if isinstance(networks, Network)
                          else list(networks))
    k = nets.w_rec.shape[0]
    first = unstack_networks(nets)[0]
    tasks = [task] if isinstance(task, (Task, TaskGenerator)) else list(task)
    if len(tasks) not in (1, k):
        raise ValueError(f"give one task or one per network ({k}), got {len(tasks)}")
    for t in tasks:
        check_fits(first, t)
    if len({(getattr(t, "n_variants", None), t.n_steps, t.n_in, t.n_out) for t in tasks}) != 1:
        raise ValueError("the tasks of an ensemble must all have the same shapes")
    lr_np = np.asarray(lr, dtype=float)
    if lr_np.ndim == 2:
        if lr_np.shape != (k, 3):
            raise ValueError(f"per-network learning rates must have shape ({k}, 3), got {lr_np.shape}")
        for row in lr_np:
            check_learning_rates(tuple(row))
        lr_axis = 0
    else:
        lr_np = np.asarray(check_learning_rates(lr))
        lr_axis = None
    if seeds is None:
        seeds = list(range(k))
    seeds = [check_int("seed", int(s), minimum=0) for s in seeds]
    if max_loss_growth is not None:
        max_loss_growth = check_positive("max_loss_growth", max_loss_growth)
    if len(seeds) != k:
        raise ValueError(f"need one seed per network ({k}), got {len(seeds)}")
    dtype = check_dtype(dtype or first.dtype)
    nets = _as_dtype(nets, dtype)
    if chunk is None:
        chunk = trials if callback is None else max(1, min(trials, -(-trials // 100)))
    capacity = min(check_int("chunk", chunk), trials)
    cfg = (rule, bool(online), derivative, unroll)

    t0 = time.perf_counter()
    with precision(dtype):
        jnets = jax.tree_util.tree_map(jnp.asarray, nets)
        data, data_axis = ensemble_data(tasks, batch, dtype)
        lr_arr = jnp.asarray(lr_np, dtype)
        keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
        w = weights_of(jnets)
        opt_state = _ensemble_opt_init(optimizer, lr_arr, w, lr_axis)

        def run_chunk(state, done, n):
            return _ensemble_chunk(cfg, optimizer, jnets, state, lr_arr, keys, data,
                                   done, n, capacity, lr_axis, data_axis)

        guard = jax.vmap(lambda _: new_guard(max_loss_growth, dtype))(jnp.arange(k))
        state, _, losses, aligns, *accs = drive_chunks(
            run_chunk, SessionState(w, opt_state, guard), trials, capacity, callback)
        trained = to_numpy(with_weights(jnets, state.w))
    diverged_at = np.asarray(state.guard.frozen_at) + 1
    if np.any(diverged_at > 0):
        bad = [(int(i), int(diverged_at[i])) for i in np.flatnonzero(diverged_at)]
        warnings.warn(
            f"{len(bad)} of {k} networks diverged and were frozen with their last finite weights "
            f"(network, trial): {bad[:10]}{' ...' if len(bad) > 10 else ''}; the others trained on. "
            "See EnsembleResult.diverged_at; try smaller learning rates for those networks.",
            RuntimeWarning, stacklevel=2)
    return EnsembleResult(trained, losses, aligns, rule.name, time.perf_counter() - t0,
                          state.opt_state, accs[0] if tasks[0].metric is not None else None,
                          diverged_at)
