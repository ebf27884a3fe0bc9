"""Compiled CPU kernels of the leaky tanh network (``leaky_tanh.cc``).

Loops that XLA runs as several small operations per step:

* :func:`forward`: the trial's activity with fixed weights (every offline
  closed-form rule's forward pass, :func:`rflo.rules.base.forward`);
* :func:`offline_trial`: a whole offline trial of the closed-form rules
  (local traces: RFLO, "local", e-prop; the adjoint: BPTT and random feedback
  without locality), direction and outputs, squared-error loss;
* :func:`rtrl_trial`: a whole offline trial of RTRL (the influence carried
  forward, its columns split over the cores);
* :func:`offline_step`: :func:`offline_trial` and what the trainer does with
  its direction under plain SGD (the update, the mask and Dale's law, the
  divergence guard's choice), one call per update with the parameters and the
  guard's kept networks updated in place (the rules' ``fused_offline``);
* :func:`online_step`: one online trial of the local-trace rules (RFLO, the
  "local" ablation, e-prop) with the squared-error loss and plain SGD, one
  update per step (:func:`rflo.trainer._online_update`), and the guard
  likewise (the rules' ``fused_online``).

:func:`forward`, :func:`offline_trial` and :func:`rtrl_trial` take the XLA path they replace
as ``reference``, run the kernel on the CPU backend only
(``jax.lax.platform_dependent``) and differentiate through the reference, so
autodiff sees the same function; :func:`offline_step` and :func:`online_step`
are offered by the rules where :func:`offline_route` and :func:`online_route`
say they apply, and the trainer runs them on the CPU only.  float32 and float64.
"""

from __future__ import annotations

import os
import threading

import jax
import jax.numpy as jnp
import numpy as np

from rflo import kernels

__all__ = [
    "available",
    "max_units",
    "small_enough",
    "rtrl_route",
    "forward",
    "offline_route",
    "offline_trial",
    "rtrl_trial",
    "online_route",
    "offline_step",
    "online_step",
]

_NAME = "leaky_tanh"
_HANDLERS = {
    "forward": "RfloForward",
    "offline": "RfloOffline",
    "rtrl": "RfloRtrl",
    "step": "RfloStep",
}
_SUFFIX = {"float32": "F32", "float64": "F64"}
_STATE = {}
_REGISTERED = set()  # targets registered with XLA in this process (never cleared)
_LOCK = threading.Lock()
_BITS = {"w_in": 1, "w_rec": 2, "w_out": 4}
#: the largest network each kernel takes by default (forward and offline
#: trials; online trials).  The kernels pad the units to whole 64-byte vectors
#: (16 float32) and keep up to 4 vectors in registers per column pass, or
#: stream the columns above 64 KiB a matrix.  Offline, measured against the
#: XLA path in fresh processes (benchmarks/timing.py's LibraryRun, best of 2
#: alternating processes, one network, float32), kernel against XLA: BPTT
#: 547 against 625 us at 224 units, 803 against 797 at 256 (T 1000: 6.69
#: against 6.22 ms), 982 against 1423 at 300 (T 1000: 9.46 against 12.11 ms),
#: 1375 against 1858 at 350, behind at 400 (1.74 against 1.67 ms) and 500
#: (3.53 against 3.27 ms); RFLO 566 against 645 at 256 (T 1000: 4.28 against
#: 4.03 ms), 648 against 842 at 300 (T 1000: 6.33 against 6.91 ms), 900
#: against 1116 at 350, behind at 400 (1.13 against 1.07 ms) and 500 (2.33
#: against 1.75 ms).  The XLA path is slow for its size at 300-350 units
#: (its loop compiled as one function, rflo.xla_options: with XLA's thunks
#: BPTT at 300 took 1.21 ms against 1.43-1.55).  float64 (its own tanh,
#: vectors.h): BPTT 2.52 against 2.97 ms at 300, 3.27 against 3.40 at 350.
#: An ensemble of 8 at 200 units: BPTT 285 against 800 us per network-trial
#: (the kernel spreads the networks over the cores).  Online RFLO (the column
#: passes streamed above 64 KiB a matrix): 421 -> 349 at 128, 950-980 -> 900
#: at 200, 1.73 -> 1.61 ms at 256, 5.8 -> 3.4 ms at 400, 22.0 -> 11.8 ms at
#: 600, 30.4 -> 34.6 ms at 1000.
MAX_UNITS = {"offline": 350, "online": 600}
#: environment variable that sets :data:`MAX_UNITS` (one number for every kernel)
ENV_MAX_UNITS = "RFLO_KERNEL_MAX_UNITS"


def _target(kind, dtype):
    return f"rflo_{kind}_{_SUFFIX[str(dtype)].lower()}"


def available(dtype) -> bool:
    """Whether the kernels are built and registered (and take ``dtype``)."""
    if str(dtype) not in _SUFFIX:
        return False
    with _LOCK:
        if "ok" not in _STATE:
            lib = kernels.load(_NAME)
            if lib is not None:
                for kind, handler in _HANDLERS.items():
                    for dt, suffix in _SUFFIX.items():
                        name = _target(kind, dt)
                        if name in _REGISTERED:  # XLA keeps a process's first registration
                            continue
                        jax.ffi.register_ffi_target(
                            name, jax.ffi.pycapsule(getattr(lib, handler + suffix)), platform="cpu"
                        )
                        _REGISTERED.add(name)
            _STATE["ok"] = lib is not None
        return _STATE["ok"]


def _on_cpu(kernel, reference, *args):
    """``kernel(*args)`` on the CPU backend, ``reference(*args)`` elsewhere;
    derivatives always through ``reference``."""

    @jax.custom_jvp
    def f(*args):
        return jax.lax.platform_dependent(*args, cpu=kernel, default=reference)

    @f.defjvp
    def f_jvp(primals, tangents):
        return jax.jvp(reference, primals, tangents)

    return f(*args)


def forward(w_rec, drive, h0, tau, reference):
    """``u, h`` (S, n_rec) of ``u[t] = w_rec h[t-1] + drive[t]``,
    ``h[t] = h[t-1] + (tanh(u[t]) - h[t-1]) / tau`` from ``h[-1] = h0``;
    ``reference(w_rec, drive, h0, tau)`` is the XLA path."""
    dtype = drive.dtype

    def kernel(w_rec, drive, h0, tau):
        out = jax.ShapeDtypeStruct(drive.shape, dtype)
        call = jax.ffi.ffi_call(_target("forward", dtype), (out, out), vmap_method="broadcast_all")
        return call(w_rec, drive, h0, jnp.asarray(tau, dtype), threads=np.int64(kernels.threads()))

    return _on_cpu(kernel, reference, w_rec, drive, h0, jnp.asarray(tau, dtype))


def max_units(kind: str = "offline") -> int:
    """The largest ``n_rec`` the ``kind`` kernels take (``"offline"``: forward
    and offline trials; ``"online"``): ``$RFLO_KERNEL_MAX_UNITS``, or
    :data:`MAX_UNITS`.  Larger networks run the XLA path, as fast or faster there."""
    value = os.environ.get(ENV_MAX_UNITS, "").strip()
    if not value:
        return MAX_UNITS[kind]
    if not value.isdigit():
        raise ValueError(f"{ENV_MAX_UNITS} must be a non-negative integer, got {value!r}")
    return int(value)


def small_enough(n_rec, kind: str = "offline") -> bool:
    """Whether a network of ``n_rec`` units is within :func:`max_units` of ``kind``."""
    return int(n_rec) <= max_units(kind)


def rtrl_route(net, setup) -> bool:
    """Whether :func:`rtrl_trial` can run ``net`` under ``setup``: as
    :func:`offline_route`, at any size (RTRL's kernel is ahead of XLA at every
    size measured)."""
    return _leaky_route(net, setup, size=None)


def offline_route(net, setup) -> bool:
    """Whether :func:`offline_trial` can run ``net`` under ``setup``: the leaky
    tanh cell with one ``tau``, the squared-error loss, only ``w_in``,
    ``w_rec``, ``w_out`` trained, at most :func:`max_units` units (and the
    kernels built)."""
    return _leaky_route(net, setup, size="offline")


def _leaky_route(net, setup, size) -> bool:
    """The conditions every leaky tanh kernel shares; ``size``: the kind whose
    :func:`max_units` applies (None: any size)."""
    from rflo.cells.leaky_tanh import LeakyTanh
    from rflo.losses import SQUARED_ERROR

    return (
        setup.route != "generic"
        and type(net.cell) is LeakyTanh
        and (size is None or small_enough(net.w_rec.shape[-1], size))
        and jnp.ndim(net.tau) == 0
        and setup.loss == SQUARED_ERROR
        and set(setup.params) <= set(_BITS)
        and available(net.w_rec.dtype)
    )


def rtrl_trial(net, x, y, m, *, feedback: str, reference):
    """RTRL's summed direction ``(d_in, d_rec, d_out)`` over one trial with fixed
    weights (the influence tensors carried forward, their columns split over
    the threads) and the outputs ``y`` (T-1, n_out); ``reference`` as for
    :func:`offline_trial`.  Check :func:`rtrl_route` first."""
    return _trial_call(
        "rtrl", net, x, y, m, {"readout": np.int64(feedback == "readout")}, reference
    )


def _trial_call(kind, net, x, y, m, attrs, reference):
    dtype = net.w_rec.dtype
    n_steps, n_out = y.shape

    def kernel(w_in, w_rec, w_out, b, h0, tau, x, y, m):
        shapes = (
            jax.ShapeDtypeStruct(w_in.shape, dtype),
            jax.ShapeDtypeStruct(w_rec.shape, dtype),
            jax.ShapeDtypeStruct(w_out.shape, dtype),
            jax.ShapeDtypeStruct((n_steps - 1, n_out), dtype),
        )
        call = jax.ffi.ffi_call(_target(kind, dtype), shapes, vmap_method="broadcast_all")
        return call(
            w_in,
            w_rec,
            w_out,
            b,
            h0,
            tau,
            x,
            y,
            m,
            exact=np.int64(net.cell.derivative == "exact"),
            threads=np.int64(kernels.threads()),
            **attrs,
        )

    def on_arrays(w_in, w_rec, w_out, b, h0, tau, x, y, m):  # the reference on ``net``
        return reference(
            net._replace(w_in=w_in, w_rec=w_rec, w_out=w_out, b=b, h0=h0, tau=tau), x, y, m
        )

    return _on_cpu(
        kernel,
        on_arrays,
        net.w_in,
        net.w_rec,
        net.w_out,
        net.b,
        net.h0,
        jnp.asarray(net.tau, dtype),
        jnp.asarray(x, dtype),
        jnp.asarray(y, dtype),
        jnp.asarray(m, dtype),
    )


def offline_trial(net, x, y, m, *, backprop: bool, feedback: str, reference):
    """The summed direction ``(d_in, d_rec, d_out)`` of one trial with fixed
    weights and its outputs ``y`` (T-1, n_out): local traces (RFLO, "local",
    e-prop; ``backprop=False``) or the exact adjoint (BPTT, random feedback
    without locality; ``backprop=True``), the error fed back through ``b``
    (``feedback="random"``) or ``w_out^T``.  ``reference(net, x, y, m) ->
    (d_in, d_rec, d_out, y)`` is the XLA path.  Check :func:`offline_route` first."""
    return _trial_call(
        "offline",
        net,
        x,
        y,
        m,
        {"backprop": np.int64(backprop), "readout": np.int64(feedback == "readout")},
        reference,
    )


def online_route(net, setup, feedback: str) -> bool:
    """Whether :func:`online_step` can run ``net`` under ``setup``: the leaky
    tanh cell with one ``tau``, the squared-error loss, only ``w_in``,
    ``w_rec``, ``w_out`` trained, at most :func:`max_units` units (and the
    kernels built)."""
    return feedback in ("random", "readout") and _leaky_route(net, setup, size="online")


def _attributes(net, w, feedback):
    """The attributes every per-trial kernel with an update takes."""
    return dict(
        readout=np.int64(feedback == "readout"),
        exact=np.int64(net.cell.derivative == "exact"),
        dale=np.int64(net.sign is not None),
        has_mask=np.int64(net.mask is not None),
        trained=np.int64(sum(_BITS[k] for k in w)),
        threads=np.int64(kernels.threads()),
    )


def offline_step(net, w, guard, lr, trial, x, y, m, *, setup, backprop: bool, feedback: str):
    """One offline update with plain SGD and the divergence guard in one call
    (:func:`offline_trial`'s trial, then what :func:`rflo.trainer.run_trials`
    does with it: ``w + lr * direction / T``, the network's mask and Dale's
    law, :func:`rflo.guard.guard_step`).  ``w``: the trained parameters (dict),
    ``guard``: the session's :class:`~rflo.guard.Guard` (its optimiser state
    is plain SGD's, empty), ``trial``: the update's index.  Returns ``(w,
    guard, loss, outputs (T-1, n_out))``, the loss NaN once the network is
    frozen.  Check :func:`offline_route` first; float32 and float64."""
    attrs = {"online": np.int64(0), "backprop": np.int64(backprop), "keep_outputs": np.int64(1)}
    return _step_call(net, w, guard, lr, trial, x, y, m, setup, feedback, attrs)


def online_step(net, w, guard, lr, trial, x, y, m, keep_outputs=True, *, setup, feedback: str):
    """One online trial (an SGD update of rate ``lr[name] / T`` after every
    step) and the divergence guard in one call: ``(w, guard, loss, outputs
    (T-1, n_out) or None)``, as :func:`offline_step`; the outputs only with
    ``keep_outputs`` (otherwise nothing T-long is kept).  Check
    :func:`online_route` first."""
    attrs = {"online": np.int64(1), "backprop": np.int64(0)}
    attrs["keep_outputs"] = np.int64(bool(keep_outputs))
    w, guard, loss, outs = _step_call(net, w, guard, lr, trial, x, y, m, setup, feedback, attrs)
    return w, guard, loss, (outs if keep_outputs else None)


def _step_call(net, w, guard, lr, trial, x, y, m, setup, feedback, attrs):
    """The step kernel's operands (:func:`offline_step`, :func:`online_step`)
    and its results as ``(w, guard, loss, outputs)``."""
    from rflo.guard import Guard

    dtype = net.w_rec.dtype
    n_steps, n_out = y.shape
    f = np.dtype(dtype).type
    norm = n_steps * n_out if setup.loss.per_output else n_steps
    good_w, opt_state = guard.good
    params = [w.get(k, getattr(net, k)) for k in _BITS]
    good = [good_w.get(k, getattr(net, k)) for k in _BITS]
    best = [guard.best_w.get(k, getattr(net, k)) for k in _BITS]
    rates = [jnp.asarray(lr.get(k, 0.0) if k in w else 0.0, dtype) for k in _BITS]
    scalars = jnp.stack(
        [jnp.asarray(net.tau, dtype)]
        + rates
        + [guard.best, guard.growth, guard.best_w_loss]
        + [jnp.asarray(f(1) / f(norm)), jnp.asarray(f(1) / f(n_steps))]
    ).astype(dtype)
    ints = jnp.stack(
        [jnp.asarray(trial, jnp.int32), guard.frozen_at, guard.good_at, guard.best_at]
    ).astype(jnp.int32)
    none = jnp.zeros((1,), dtype)  # stands for an absent mask or sign (not read)
    mask = none if net.mask is None else jnp.asarray(net.mask, dtype)
    sign = none if net.sign is None else jnp.asarray(net.sign, dtype)
    rows = n_steps - 1 if attrs["keep_outputs"] else 1
    like = [jax.ShapeDtypeStruct(a.shape, dtype) for a in params]
    shapes = tuple(like * 3) + (
        jax.ShapeDtypeStruct((3,), dtype),
        jax.ShapeDtypeStruct((3,), jnp.int32),
        jax.ShapeDtypeStruct((rows, n_out), dtype),
    )
    call = jax.ffi.ffi_call(
        _target("step", dtype),
        shapes,
        vmap_method="broadcast_all",
        input_output_aliases={i: i for i in range(9)},  # kept, good, best in place
    )
    *mats, scal_out, ints_out, outs = call(
        *params,
        *good,
        *best,
        net.b,
        net.h0,
        mask,
        sign,
        scalars,
        ints,
        jnp.asarray(x, dtype),
        jnp.asarray(y, dtype),
        jnp.asarray(m, dtype),
        **_attributes(net, w, feedback),
        **attrs,
    )
    names = list(_BITS)
    kept, good_new, best_new = (
        {k: mats[3 * part + names.index(k)] for k in w} for part in range(3)
    )
    guard = Guard(
        scal_out[0],
        guard.growth,
        ints_out[0],
        (good_new, opt_state),
        ints_out[1],
        best_new,
        scal_out[1],
        ints_out[2],
    )
    return kept, guard, scal_out[2], outs
