"""Where a training session's trials come from (:mod:`rflo.trainer` draws
them in its compiled loop): a :class:`TrialSource`, a fixed task's bank of
trials or a generator's, for one network (:func:`trial_data`) or an ensemble
(:func:`ensemble_data`)."""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from rflo.tasks import TaskGenerator
from rflo.transfer import device_array

__all__ = ["TrialSource", "trial_data", "ensemble_data"]


@jax.tree_util.register_pytree_node_class
class TrialSource:
    """Where a session's trials come from (a pytree: the bank arrays are its
    leaves; the generator, batch size, metric and dtype are static)."""

    def __init__(
        self,
        arrays,
        generator: Optional[TaskGenerator],
        batch: int,
        metric: Optional[Callable],
        dtype: str,
    ):
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
        if self.batch == 1:
            j = trial % xs.shape[0]
            return xs[j][None], ys[j][None], ms[j][None]
        idx = (trial * self.batch + jnp.arange(self.batch)) % xs.shape[0]
        return xs[idx], ys[idx], ms[idx]


def trial_data(task, batch: int, dtype: str) -> TrialSource:
    """The :class:`TrialSource` of ``task`` (a Task's bank or a TaskGenerator)."""
    if isinstance(task, TaskGenerator):
        return TrialSource(None, task, batch, task.metric, dtype)
    arrays = tuple(device_array(a) for a in task.stacked(dtype))
    return TrialSource(arrays, None, batch, task.metric, dtype)


def ensemble_data(tasks, batch: int, dtype: str):
    """``(source, axis)`` for an ensemble: one task for all networks (axis None)
    or one per network (stacked banks, axis 0)."""
    if any(isinstance(t, TaskGenerator) for t in tasks):
        if len(set(tasks)) != 1:
            raise ValueError(
                "an ensemble takes one TaskGenerator for all networks (each network draws its "
                "own trials from its seed); for different tasks per network give stacked Tasks, "
                "e.g. generator.to_task(n_trials)"
            )
        return trial_data(tasks[0], batch, dtype), None
    if len({t.metric for t in tasks}) != 1:
        raise ValueError("the tasks of an ensemble must all have the same accuracy metric")
    if len(tasks) == 1:
        return trial_data(tasks[0], batch, dtype), None
    stacked = tuple(jnp.stack(parts) for parts in zip(*(t.stacked(dtype) for t in tasks)))
    return TrialSource(stacked, None, batch, tasks[0].metric, dtype), 0
