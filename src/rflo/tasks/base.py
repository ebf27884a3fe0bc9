"""Tasks as data: inputs, targets and a mask of the timesteps that count.

A :class:`Task` holds either one trial (the same every time, as in the seed
notebook) or a stack of ``K`` trials that training cycles through (trial ``i``
uses stack entry ``i % K``).

Shapes: ``x`` (T, n_in) or (K, T, n_in); ``y`` (T, n_out) or (K, T, n_out);
``mask`` (T,) or (K, T), 1 where the error counts and 0 where it does not.
Timestep 0 is the initial state ``h0`` and is never scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from rflo._checks import check_finite_array, check_int, check_positive

__all__ = ["Task", "periodic_task"]


@dataclass(frozen=True, eq=False)
class Task:
    """A supervised task for a recurrent network.

    Parameters
    ----------
    x : (T, n_in) or (K, T, n_in) inputs; ``x[t]`` drives the step into ``h[t]``.
    y : (T, n_out) or (K, T, n_out) targets for the readout.
    mask : optional (T,) or (K, T) weights of each timestep in the loss
        (default: every step counts).
    name : a label used in figures and files.
    params : the parameters the task was made with (for records).
    metric : optional accuracy metric for tasks with discrete answers, e.g.
        :func:`rflo.tasks.sign_accuracy`; when given, training reports the
        fraction correct per trial (``TrainResult.accuracy``).
    """

    x: np.ndarray
    y: np.ndarray
    mask: Optional[np.ndarray] = None
    name: str = "task"
    params: dict = field(default_factory=dict)
    metric: Optional[Callable] = None

    def __post_init__(self):
        x = check_finite_array("task x", self.x, ndim=(2, 3), dtype="float64")
        y = check_finite_array("task y", self.y, ndim=(2, 3), dtype="float64")
        x3 = x if x.ndim == 3 else x[None]
        y3 = y if y.ndim == 3 else y[None]
        if x3.shape[1] != y3.shape[1]:
            raise ValueError(
                f"task x and y must have the same number of timesteps, got {x3.shape[1]} and {y3.shape[1]}"
            )
        if x3.shape[1] < 2:
            raise ValueError(f"a trial needs at least 2 timesteps, got {x3.shape[1]}")
        k = _common_trials(("x", x3.shape[0]), ("y", y3.shape[0]))
        t = x3.shape[1]
        if self.mask is None:
            m2 = np.ones((1, t))
        else:
            m = check_finite_array("task mask", self.mask, ndim=(1, 2), dtype="float64")
            m2 = m if m.ndim == 2 else m[None]
            if m2.shape[1] != t:
                raise ValueError(f"task mask must have {t} timesteps, got shape {m.shape}")
            if np.any(m2 < 0):
                raise ValueError("task mask must be >= 0 (1 where the error counts, 0 elsewhere)")
            k = _common_trials(("x/y", k), ("mask", m2.shape[0]))
        if self.metric is not None and not callable(self.metric):
            raise ValueError(
                f"task metric must be a function (e.g. rflo.tasks.sign_accuracy), got {self.metric!r}"
            )
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "_x3", np.broadcast_to(x3, (k,) + x3.shape[1:]))
        object.__setattr__(self, "_y3", np.broadcast_to(y3, (k,) + y3.shape[1:]))
        object.__setattr__(self, "_m2", np.broadcast_to(m2, (k, t)))

    @property
    def n_steps(self) -> int:
        """Timesteps per trial, ``T``."""
        return self._x3.shape[1]

    @property
    def n_in(self) -> int:
        return self._x3.shape[2]

    @property
    def n_out(self) -> int:
        return self._y3.shape[2]

    @property
    def n_variants(self) -> int:
        """Number of distinct trials ``K`` that training cycles through."""
        return self._x3.shape[0]

    def stacked(self, dtype="float32"):
        """``(x, y, mask)`` as arrays of shapes (K, T, n_in), (K, T, n_out), (K, T)."""
        out = []
        for name, a in (("x", self._x3), ("y", self._y3), ("mask", self._m2)):
            with np.errstate(over="ignore"):
                a = np.ascontiguousarray(a, dtype)
            if not np.all(np.isfinite(a)):
                raise ValueError(
                    f"task {name} has values too large for {np.dtype(dtype).name}; "
                    "rescale the task or train in float64"
                )
            out.append(a)
        return tuple(out)

    def trial(self, i: int = 0):
        """``(x, y, mask)`` of trial ``i`` (cycled), shapes (T, n_in), (T, n_out), (T,)."""
        k = i % self.n_variants
        return self._x3[k], self._y3[k], self._m2[k]


def _common_trials(*named):
    ks = {n: k for n, k in named}
    sizes = {k for k in ks.values() if k != 1}
    if len(sizes) > 1:
        raise ValueError(f"task arrays disagree on the number of trials: {ks}")
    return sizes.pop() if sizes else 1


def periodic_task(
    period: int = 100,
    amplitudes: Sequence[float] = (1.0, 0.5, 0.25),
    harmonics: Sequence[int] = (1, 2, 4),
    *,
    n_in: int = 1,
    n_out: int = 1,
    duration: Optional[int] = None,
) -> Task:
    """The seed's periodic output task: a sum of sines with zero input.

    ``y[t] = sum_k amplitudes[k] * sin(2 pi harmonics[k] t / period)`` for
    ``t = 0 .. duration-1`` (default one period), the same on every output, with
    ``x = 0``.  The defaults are the notebook's: period 100 steps, amplitudes
    1, 0.5, 0.25 at harmonics 1, 2, 4.
    """
    period = check_positive("period", period)
    n_in = check_int("n_in", n_in)
    n_out = check_int("n_out", n_out)
    duration = check_int(
        "duration", int(round(period)) if duration is None else duration, minimum=2
    )
    amplitudes = np.asarray(amplitudes, dtype=float)
    harmonics = np.asarray(harmonics, dtype=float)
    if amplitudes.ndim != 1 or amplitudes.shape != harmonics.shape or amplitudes.size == 0:
        raise ValueError("amplitudes and harmonics must be equally long, non-empty lists")
    if not (np.all(np.isfinite(amplitudes)) and np.all(np.isfinite(harmonics))):
        raise ValueError("amplitudes and harmonics must be finite")
    t = np.arange(duration)
    wave = np.sin(2 * np.pi * np.outer(t, harmonics) / period) @ amplitudes
    return Task(
        x=np.zeros((duration, n_in)),
        y=np.repeat(wave[:, None], n_out, axis=1),
        name="periodic",
        params=dict(
            period=float(period),
            amplitudes=amplitudes.tolist(),
            harmonics=harmonics.tolist(),
            duration=duration,
        ),
    )
