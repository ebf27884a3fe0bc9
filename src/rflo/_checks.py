"""Input checks shared by the public functions.

Every check raises ``ValueError`` naming the argument, what was wrong and what
would be right, before any computation starts.
"""

from __future__ import annotations

import contextlib
import math
import numbers

import jax
import numpy as np

DTYPES = ("float32", "float64")


def check_dtype(dtype) -> str:
    """Normalise a dtype spec to ``"float32"`` or ``"float64"``."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return name


def precision(dtype):
    """Context in which JAX computes in ``dtype`` (turns on x64 for float64)."""
    if check_dtype(dtype) == "float64":
        return jax.enable_x64(True)
    return contextlib.nullcontext()


def check_finite_array(name, value, *, ndim=None, dtype="float32") -> np.ndarray:
    """``value`` as a numpy array of ``dtype``; rejects wrong rank, NaN and inf."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be an array of numbers: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{name} must be an array of numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real, got complex values")
    if ndim is not None and arr.ndim not in np.atleast_1d(ndim):
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    for values, problem in ((arr, "NaN or inf"), (None, f"values too large for {dtype}")):
        if values is None:
            with np.errstate(over="ignore"):
                values = arr = arr.astype(dtype)
        if not np.all(np.isfinite(values)):
            bad = np.argwhere(~np.isfinite(values))[0]
            raise ValueError(
                f"{name} contains {problem} (first at index {tuple(int(i) for i in bad)}); "
                "clean the data before training"
            )
    return arr


def check_positive(name, value, *, allow_zero=False) -> float:
    """A finite positive (or non-negative) real number."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray, np.generic)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    ok = math.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    if not ok:
        need = "finite and >= 0" if allow_zero else "finite and > 0"
        raise ValueError(f"{name} must be {need}, got {value!r}")
    return v


def check_int(name, value, *, minimum=1, maximum=None, why="") -> int:
    """An integer ``>= minimum`` (and ``<= maximum``; ``why`` says why)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}{why}, got {value}")
    return int(value)


#: seeds become ``jax.random.PRNGKey(seed)``, which keeps 32 bits (2**32 is seed 0 again)
MAX_SEED = 2**32 - 1
#: trials are counted with 32-bit integers inside the compiled loop
MAX_TRIALS = 2**31 - 1


def check_seed(value, name="seed") -> int:
    """A seed in ``0 .. 2**32 - 1`` (larger ones would repeat smaller ones)."""
    return check_int(name, value, minimum=0, maximum=MAX_SEED, why=" (random keys keep 32 bits)")


def check_trials(trials, start_trial=0):
    """``(trials, start_trial)`` checked: the session's last trial must fit the
    compiled loop's 32-bit trial counter."""
    trials = check_int(
        "trials",
        trials,
        maximum=MAX_TRIALS,
        why=" (trials are counted with 32-bit integers; split the run into sessions)",
    )
    start_trial = check_int("start_trial", start_trial, minimum=0)
    if trials + start_trial > MAX_TRIALS:
        raise ValueError(
            f"start_trial + trials must be <= {MAX_TRIALS} (trials are counted with "
            f"32-bit integers), got {start_trial} + {trials}"
        )
    return trials, start_trial
