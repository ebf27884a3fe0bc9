"""Memory a run needs, estimated before anything is allocated or compiled.

A session that cannot fit is refused up front with the estimate and the memory
available, instead of aborting the process (``SIGABRT``) or dying in the
middle of a run with ``RESOURCE_EXHAUSTED``.  The estimate (bytes)::

    session = networks x (5 x parameters + batch x rule state)

    parameters: w, the update, the two networks the divergence guard keeps
    (the last within the loss limit and the best), the optimiser's state.  Rule state online: 3 x the state ``rule.init`` makes
    (``jax.eval_shape``; RTRL's influence tensors, traces) for the step's
    temporaries.  Offline: every value a traced trial makes (histories, final
    carries), plus twice the largest, and at least the online figure (a
    compiled kernel carries that state inside one call).

It is an estimate with headroom, not XLA's exact figure; the point is to say
"no" early, and with numbers, for runs that cannot fit.  The memory available
is ``MemAvailable`` of ``/proc/meminfo`` on CPU, or the accelerator's free
memory; the environment variable ``RFLO_MEMORY_LIMIT`` (bytes, or with a
suffix ``K``, ``M``, ``G``) sets it by hand.
"""

from __future__ import annotations

import os
import re
from typing import Optional

import jax
import numpy as np

#: copies of the parameters a session holds (see the module's docstring)
PARAM_COPIES = 5

__all__ = [
    "available_bytes",
    "require_memory",
    "require_network_memory",
    "network_bytes",
    "session_bytes",
    "struct_network",
    "human",
]

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def human(n: float) -> str:
    """``n`` bytes in words (``"3.2 GiB"``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def _limit_from_env() -> Optional[int]:
    text = os.environ.get("RFLO_MEMORY_LIMIT", "").strip()
    if not text:
        return None
    m = re.fullmatch(r"([0-9.eE+]+)\s*([KMGT]?)(i?B)?", text, flags=re.IGNORECASE)
    if not m:
        raise ValueError(f"RFLO_MEMORY_LIMIT must be a number of bytes (e.g. 8G), got {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def available_bytes() -> Optional[int]:
    """Memory a run may use now: ``RFLO_MEMORY_LIMIT``, the accelerator's free
    memory, or the host's ``MemAvailable``; None where it cannot be told."""
    limit = _limit_from_env()
    if limit is not None:
        return limit
    dev = jax.devices()[0]
    if dev.platform != "cpu":
        stats = dev.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def require_memory(need: float, what: str, hint: str = "") -> None:
    """Raise ``ValueError`` if ``need`` bytes exceed the memory available."""
    have = available_bytes()
    if have is not None and need > have:
        raise ValueError(
            f"{what} needs about {human(need)} but {human(have)} is available"
            f"{'; ' + hint if hint else ''} (RFLO_MEMORY_LIMIT overrides the "
            "available figure)"
        )


def require_network_memory(n_in, n_rec, n_out, dtype="float32", mask=False, cell=None) -> None:
    """Refuse a network whose drawing (its arrays about three times over) cannot fit."""
    require_memory(
        3 * network_bytes(n_in, n_rec, n_out, dtype, mask=mask, cell=cell),
        f"a network of {n_rec} units",
    )


def network_bytes(n_in, n_rec, n_out, dtype="float32", mask=False, cell=None) -> int:
    """Bytes of one network's arrays (``cell``: a cell that owns its synapses
    counts its own parameters; default a point-neuron network)."""
    if cell is not None and _owns_synapses(cell):
        return _nbytes(struct_network(n_in, n_rec, n_out, dtype, cell=cell))
    item = np.dtype(dtype).itemsize
    n = n_rec * (n_in + n_rec + 2 * n_out + 3) + (n_rec * n_rec if mask else 0)
    return int(n) * item


def _owns_synapses(cell) -> bool:
    from rflo.cells import get_cell
    from rflo.cells.base import owns_synapses

    return owns_synapses(get_cell(cell))


def struct_network(n_in, n_rec, n_out, dtype="float32", cell=None):
    """A :class:`~rflo.network.Network` of ``jax.ShapeDtypeStruct`` leaves: its
    shapes without its memory, for :func:`session_bytes`.  Default a leaky-tanh
    network; ``cell`` (a name or a cell) that owns its synapses gives that
    cell's parameters (traced from its ``init``, nothing allocated)."""
    from rflo.params import Network

    def s(*shape):
        return jax.ShapeDtypeStruct(shape, np.dtype(dtype))

    if cell is None or not _owns_synapses(cell):
        return Network(
            s(n_rec, n_in), s(n_rec, n_rec), s(n_out, n_rec), s(n_rec, n_out), s(n_rec), s()
        )
    from rflo._checks import precision
    from rflo.cells import get_cell

    cell = get_cell(cell).sized(n_in, n_rec)
    with precision(dtype):
        params = jax.eval_shape(lambda k: cell.init(k, n_in, n_rec, dtype), jax.random.PRNGKey(0))
        params = {k: s(*v.shape) for k, v in params.items()}
        n_z = jax.eval_shape(lambda p: cell.output(p, cell.initial_state(p)), params).shape[0]
    return Network(None, None, s(n_out, n_z), s(n_z, n_out), None, None, None, None, cell, params)


def _nbytes(tree) -> int:
    return int(
        sum(
            np.prod(a.shape, dtype=np.float64) * np.dtype(a.dtype).itemsize
            for a in jax.tree_util.tree_leaves(tree)
        )
    )


def _size(tree) -> int:
    """Numbers in a pytree of arrays (or shapes)."""
    return int(sum(np.prod(a.shape, dtype=np.float64) for a in jax.tree_util.tree_leaves(tree)))


def _outputs_bytes(jaxpr) -> int:
    """Bytes of every value the top level of ``jaxpr`` produces (scans' final
    carries and stacked histories included), plus twice the largest one (the
    temporaries of the step that makes it)."""
    sizes = [
        np.prod(v.aval.shape, dtype=np.float64) * v.aval.dtype.itemsize
        for eqn in jaxpr.eqns
        for v in eqn.outvars
        if hasattr(v.aval, "shape")
    ]
    return int(sum(sizes) + 2 * max(sizes, default=0))


def _struct(a):
    return jax.ShapeDtypeStruct(np.shape(a), getattr(a, "dtype", None) or np.result_type(a))


def session_bytes(
    net, rule, setup, *, online: bool, n_steps: int, batch: int = 1, networks: int = 1
) -> int:
    """Estimated bytes of a training session (see the module's docstring).

    ``net`` is one network (arrays or ``jax.ShapeDtypeStruct``); nothing is
    allocated or compiled: the rule's state is measured by tracing
    (``jax.eval_shape`` of ``rule.init`` online, the values a trial makes offline).
    """
    shapes = jax.tree_util.tree_map(_struct, net)
    if shapes.w_rec is None:  # a cell that owns its synapses: its state, all its parameters
        dtype = shapes.w_out.dtype
        n_in, n_out = shapes.n_in, shapes.w_out.shape[0]
        state = jax.eval_shape(lambda p: shapes.cell.initial_state(p), shapes.extra)
        n_rec = max(shapes.n_rec, shapes.w_out.shape[1], _size(state))
        params = _nbytes([shapes.extra, shapes.w_out])
    else:
        dtype = shapes.w_rec.dtype
        n_rec, n_in, n_out = shapes.w_rec.shape[-1], shapes.w_in.shape[-1], shapes.w_out.shape[0]
        params = _nbytes([shapes.w_in, shapes.w_rec, shapes.w_out])
    item = np.dtype(dtype).itemsize
    # the largest state any rule keeps is a full influence matrix (n_rec x params)
    # plus the trial's history: below a hundredth of the memory, no need to look closer
    worst = networks * batch * (3 * n_rec * params + 6 * n_steps * (n_rec + n_in + n_out) * item)
    have = available_bytes()
    if have is not None and worst + PARAM_COPIES * networks * params < have / 100:
        return int(worst + PARAM_COPIES * networks * params)
    key = jax.ShapeDtypeStruct((2,), np.uint32)
    if online:
        state = 3 * _nbytes(jax.eval_shape(lambda n, k: rule.init(n, k, setup), shapes, key))
    else:
        x = jax.ShapeDtypeStruct((n_steps, n_in), dtype)
        y = jax.ShapeDtypeStruct((n_steps, n_out), dtype)
        m = jax.ShapeDtypeStruct((n_steps,), dtype)
        jaxpr = jax.make_jaxpr(lambda n, x, y, m, k: rule.trial(n, x, y, m, k, setup))(
            shapes, x, y, m, key
        )
        state = _outputs_bytes(jaxpr.jaxpr)
        # a compiled kernel (rflo.kernels) keeps the rule's per-step state inside
        # one call, out of the jaxpr's sight: count that state as online does
        try:
            carried = 3 * _nbytes(jax.eval_shape(lambda n, k: rule.init(n, k, setup), shapes, key))
        except NotImplementedError:  # no per-step form (BPTT): the trial is all there is
            carried = 0
        state = max(state, carried)
    return int(networks * (PARAM_COPIES * params + batch * state))
