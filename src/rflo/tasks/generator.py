"""Tasks as trial generators, compiled into the training loop.

A :class:`TaskGenerator` wraps a pure JAX function::

    sample_fn(key, batch, **params) -> (x, y, mask)

returning arrays of shapes (batch, T, n_in), (batch, T, n_out) and (batch, T)
with ``T``, ``n_in`` and ``n_out`` fixed by the parameters.  The generator is a
frozen, hashable object (its parameters are stored as a sorted tuple), so it is
a static argument of ``jax.jit``: training draws every trial inside the
compiled loop, with no Python per trial.

Accuracy metrics (for tasks with discrete answers) have the signature::

    metric(y, y_target, mask) -> (correct, counted)

for one trial's scored steps ``1 .. T-1`` (``y`` and ``y_target`` (S, n_out),
``mask`` (S,)); the trainer pools ``correct / counted`` over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from rflo._checks import check_int

__all__ = ["TaskGenerator", "sign_accuracy", "argmax_accuracy", "freeze_params"]


def _freeze(value):
    """Lists/arrays become (nested) tuples so that parameters are hashable."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def freeze_params(params) -> Tuple[Tuple[str, Any], ...]:
    """A dict of parameters as a sorted tuple of ``(name, value)`` with hashable values."""
    items = tuple(sorted((str(k), _freeze(v)) for k, v in dict(params).items()))
    try:
        hash(items)
    except TypeError as exc:
        raise ValueError(
            f"task parameters must be numbers, strings or lists of them: {exc}"
        ) from None
    return items


@dataclass(frozen=True)
class TaskGenerator:
    """A task whose every trial is drawn afresh from a PRNG key.

    Parameters
    ----------
    name : the task's name.
    n_in, n_out : input and output sizes.
    n_steps : timesteps per trial ``T`` (step 0 is the initial state, never scored).
    sample_fn : ``sample_fn(key, batch, **params) -> (x, y, mask)``, pure JAX.
    params : the parameters passed to ``sample_fn`` (a dict or a tuple of pairs).
    metric : optional accuracy metric (``sign_accuracy``, ``argmax_accuracy``).
    inputs, outputs : names of the input and output channels (default
        ``"in k"`` and ``"out k"``), used by figures.
    """

    name: str
    n_in: int
    n_out: int
    n_steps: int
    sample_fn: Callable
    params: Tuple[Tuple[str, Any], ...] = ()
    metric: Optional[Callable] = None
    inputs: Tuple[str, ...] = ()
    outputs: Tuple[str, ...] = ()

    def __post_init__(self):
        for attr in ("n_in", "n_out"):
            object.__setattr__(self, attr, check_int(attr, getattr(self, attr)))
        object.__setattr__(self, "n_steps", check_int("n_steps", self.n_steps, minimum=2))
        if not callable(self.sample_fn):
            raise ValueError("sample_fn must be a function sample_fn(key, batch, **params)")
        if self.metric is not None and not callable(self.metric):
            raise ValueError(f"metric must be a function, got {self.metric!r}")
        object.__setattr__(self, "params", freeze_params(self.params))
        for attr, n, prefix in (("inputs", self.n_in, "in"), ("outputs", self.n_out, "out")):
            names = tuple(str(v) for v in getattr(self, attr)) or tuple(
                f"{prefix} {k}" for k in range(n)
            )
            if len(names) != n:
                raise ValueError(f"{attr} must name all {n} channels, got {list(names)}")
            object.__setattr__(self, attr, names)

    @property
    def param_dict(self) -> dict:
        """The parameters as a dict."""
        return dict(self.params)

    def sample(self, key, batch: int = 1):
        """A batch of trials: ``x`` (batch, T, n_in), ``y`` (batch, T, n_out),
        ``mask`` (batch, T) as JAX arrays (usable inside jit; ``batch`` static)."""
        x, y, m = self.sample_fn(key, batch, **self.param_dict)
        return jnp.asarray(x), jnp.asarray(y), jnp.asarray(m)

    def batch(self, seed: int = 0, batch: int = 1):
        """:meth:`sample` with the key ``PRNGKey(seed)``, as numpy arrays."""
        batch = check_int("batch", batch)
        x, y, m = _sample_jit(self, jax.random.PRNGKey(check_int("seed", seed, minimum=0)), batch)
        return np.asarray(x), np.asarray(y), np.asarray(m)

    def trial(self, i: int = 0, seed: int = 0):
        """One trial ``(x, y, mask)`` as numpy arrays (T, n_in), (T, n_out), (T,):
        the first trial of the batch drawn with key ``fold_in(PRNGKey(seed), i)``."""
        key = jax.random.fold_in(
            jax.random.PRNGKey(check_int("seed", seed, minimum=0)), check_int("i", i, minimum=0)
        )
        x, y, m = _sample_jit(self, key, 1)
        return np.asarray(x[0]), np.asarray(y[0]), np.asarray(m[0])

    def to_task(self, n_trials: int, seed: int = 0):
        """A bank of ``n_trials`` trials as a stacked :class:`~rflo.tasks.Task`
        (e.g. for ensembles with one task per network, or a fixed test set)."""
        from rflo.tasks.base import Task

        x, y, m = self.batch(seed, check_int("n_trials", n_trials))
        return Task(x=x, y=y, mask=m, name=self.name, params=self.param_dict, metric=self.metric)


def _sample(gen, key, batch):
    return gen.sample(key, batch)


_sample_jit = jax.jit(_sample, static_argnums=(0, 2))


# --------------------------------------------------------------------------
# accuracy metrics


def sign_accuracy(y, y_target, mask):
    """Sign agreement on the response window: the steps and outputs where the
    target is nonzero and the mask is positive.  Returns ``(correct, counted)``."""
    window = (mask[:, None] > 0) & (y_target != 0)
    correct = window & (jnp.sign(y) == jnp.sign(y_target))
    return jnp.sum(correct), jnp.sum(window)


def argmax_accuracy(y, y_target, mask):
    """Choice agreement (``argmax`` of the outputs) on the response window: the
    steps where the mask is positive and the target's largest entry is not
    output 0 (output 0 is fixation, as in NeuroGym).  Returns ``(correct, counted)``."""
    want = jnp.argmax(y_target, axis=-1)
    window = (mask > 0) & (want != 0) & (jnp.max(y_target, axis=-1) > 0)
    correct = window & (jnp.argmax(y, axis=-1) == want)
    return jnp.sum(correct), jnp.sum(window)
