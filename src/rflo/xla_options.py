"""The XLA options rflo sets: compile small loops as one function on the CPU,
and elide the copies XLA would make of a loop's state (:func:`jit`).

XLA's CPU backend runs a program as a list of "thunks", one per fused
operation, and a loop as that list again at every iteration: a fixed cost of
the order of 0.1 us per operation per step.  A timestep of a network of tens
of units is a dozen such operations of a few hundred nanoseconds each, so
most of a trial went to dispatch.  XLA can instead compile a loop whose one
iteration touches fewer than a set number of bytes as a single function
(its "small while loop" hoisting); the option is off in practice by default
(a threshold of a few kilobytes).

rflo raises the threshold to :data:`DEFAULT_BYTES` (3 MB), so the timestep
loops of networks up to a few hundred units, and the trial loop around them,
run as one function: a session on the generic route (every cell but the
leaky tanh) is 1.5-3x faster at n_rec 50 (docs/benchmarks.md).  Above it the
thunks stay: a loop over n_rec 1000 matrices keeps the second core, which a
single function gives up (measured: BPTT on the LIF cell at n_rec 1000, 20 ms
per trial with the thunks, 30 ms as one function).

XLA reads its options once, when JAX starts its first backend, so this is done
when ``rflo`` is imported:

* ``RFLO_SMALL_LOOP_BYTES=N`` sets the threshold (``0``: leave XLA's default);
* an ``XLA_FLAGS`` that already sets ``--xla_backend_extra_options`` is the
  user's and is left alone;
* if JAX's backends are running already (a computation ran before ``import
  rflo``), nothing can change: :func:`status` says so.

The training loops are compiled with one more option, per compilation
(:func:`jit`, :func:`compiler_options`): XLA's copy insertion with
region-based live ranges (:data:`REGION_OPTION`).  Without it, a loop whose
step reads a carried array after the step's new value of it is formed
copies the array every step: the LSTM's online trace (200 x 50 at n_rec 50)
was copied at each step, and online RFLO on it took 445-450 us a trial
against 355 us without the copy.  It changes no arithmetic.
``RFLO_XLA_REGION_ANALYSIS=0`` turns it off; a JAX whose XLA does not know the
option compiles without it.
"""

from __future__ import annotations

import functools
import os

__all__ = [
    "DEFAULT_BYTES",
    "ENV_BYTES",
    "ENV_REGION",
    "OPTION",
    "REGION_OPTION",
    "apply",
    "compiler_options",
    "jit",
    "status",
]

#: one iteration of a loop touching fewer bytes than this is compiled as one function
DEFAULT_BYTES = 3_000_000
#: the environment variable that sets the threshold (0 turns the option off)
ENV_BYTES = "RFLO_SMALL_LOOP_BYTES"
#: XLA's name for it (one of its CPU backend's extra options)
OPTION = "xla_cpu_small_while_loop_byte_threshold"
#: XLA's compile option for region-based copy elision on the CPU
REGION_OPTION = "xla_cpu_copy_insertion_use_region_analysis"
#: the environment variable that turns it off (``0``)
ENV_REGION = "RFLO_XLA_REGION_ANALYSIS"

_status = {"small_loop_bytes": None, "why": "not applied yet"}


def _threshold(environ) -> int:
    text = environ.get(ENV_BYTES, "").strip()
    if not text:
        return DEFAULT_BYTES
    try:
        value = int(float(text))
    except ValueError:
        raise ValueError(
            f"{ENV_BYTES}={text!r} is not a number of bytes; set it to an integer "
            f"(0 leaves XLA's default, {DEFAULT_BYTES} is rflo's)"
        ) from None
    if value < 0:
        raise ValueError(f"{ENV_BYTES}={text!r} is negative; set it to 0 or more bytes")
    return value


def flags_with_option(flags: str, threshold: int):
    """``(XLA_FLAGS, why)``: ``flags`` with the option added, or unchanged (and why)."""
    if threshold == 0:
        return flags, f"{ENV_BYTES}=0"
    if "xla_backend_extra_options" in flags:
        return flags, "XLA_FLAGS sets xla_backend_extra_options already (left as it is)"
    option = f"--xla_backend_extra_options={OPTION}={threshold}"
    return (f"{flags} {option}".strip(), None)


def apply(environ=None) -> dict:
    """Set the option in ``environ`` (default ``os.environ``) if JAX has not
    started a backend yet; returns :func:`status`."""
    environ = os.environ if environ is None else environ
    threshold = _threshold(environ)
    flags, why = flags_with_option(environ.get("XLA_FLAGS", ""), threshold)
    if why is None:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            why = "JAX's backends were started before rflo was imported"
        else:
            environ["XLA_FLAGS"] = flags
    _status.update(small_loop_bytes=threshold if why is None else None, why=why)
    return status()


def status() -> dict:
    """``{"small_loop_bytes": int or None, "why": str or None}``: the threshold
    in force for this process, or why rflo left XLA's default."""
    return dict(_status)


@functools.lru_cache(maxsize=None)
def compiler_options() -> dict:
    """The compile options of rflo's training loops: ``{REGION_OPTION: True}``,
    or ``{}`` where ``RFLO_XLA_REGION_ANALYSIS=0`` or this JAX's XLA does not
    know the option (tried once, on a trivial function)."""
    if os.environ.get(ENV_REGION, "").strip() == "0":
        return {}
    import jax
    import numpy as np

    options = {REGION_OPTION: True}
    try:
        jax.jit(lambda x: x + 1, compiler_options=options).lower(np.float32(0)).compile()
    except Exception:  # noqa: BLE001 -- an XLA without the option: compile without it
        return {}
    return options


class _Jitted:
    """``jax.jit(fun, **kw)`` with :func:`compiler_options`, made at its first
    use (the options are tried on a running backend, not at import)."""

    def __init__(self, fun, **kw):
        self._fun, self._kw, self._jitted = fun, kw, None
        functools.update_wrapper(self, fun)

    def _get(self):
        if self._jitted is None:
            import jax

            self._jitted = jax.jit(self._fun, compiler_options=compiler_options(), **self._kw)
        return self._jitted

    def __call__(self, *args, **kwargs):
        return self._get()(*args, **kwargs)

    def lower(self, *args, **kwargs):
        return self._get().lower(*args, **kwargs)


def jit(fun, **kw):
    """``jax.jit(fun, **kw)`` for rflo's training loops, with
    :func:`compiler_options` (``functools.partial(jit, static_argnums=...)``
    as a decorator)."""
    return _Jitted(fun, **kw)


apply()  # on import (rflo imports this module first): XLA reads its options once
