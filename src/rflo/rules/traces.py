"""Per-unit eligibility traces for any cell: e-prop / RFLO / local (the unit's
own dynamics with its recurrent input held fixed) and SnAp-1 (the unit's whole
diagonal Jacobian).

Each trained parameter of unit ``i`` (along its unit axis, see
:func:`rflo.cells.base.unit_axes`) keeps one trace per state leaf of its unit::

    eps_c2[t] = sum_c D[c2][c] eps_c[t-1] + dF_c2 / dtheta      (immediate term)
    direction += sum_c (L[t] dz/ds_c) eps_c[t]

with ``D[c2][c] = d s_c2,i[t] / d s_c,i[t-1]`` of the unit's own state.  The
rules that call it are :mod:`rflo.rules.rflo` (RFLO, local, e-prop) and
:mod:`rflo.rules.snap` (SnAp-1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rflo.cells.base import current, initial_state, output, owns_synapses, step, unit_axes
from rflo.network import params_of, with_params
from rflo.rules.dependence import dependence
from rflo.rules.generic import (
    _emit,
    _leaves,
    _ones_on,
    _output_cotangent,
    _readout_part,
    backward_trial,
    recurrent_names,
)

__all__ = [
    "check_local",
    "local_init",
    "local_advance",
    "local_step",
    "has_reverse_form",
    "eligibility_trial",
]


def check_local(rule_name, net, setup):
    """Raise if a per-unit rule is asked to train a parameter shared by units."""
    cell = net.cell
    if owns_synapses(cell) and not cell.local:
        raise ValueError(
            f"rule {rule_name!r} keeps one trace per unit, but the units of cell "
            f"{cell.name!r} are not one index shared by its state; use an exact or "
            "global rule ('bptt', 'rtrl', 'uoro')"
        )
    axes = unit_axes(net)
    shared = [n for n in recurrent_names(setup) if n not in axes]
    if shared:
        raise ValueError(
            f"rule {rule_name!r} keeps one trace per unit, but {shared} of cell "
            f"{cell.name!r} {'is' if len(shared) == 1 else 'are'} shared by all units; "
            "freeze it (leave it out of lr) or use an exact rule ('bptt', 'rtrl')"
        )
    if owns_synapses(cell):
        n = net.n_rec
        bad = [k for k in _leaves(initial_state(net)) if jnp.shape(k) != (n,)]
        if bad:
            raise ValueError(
                f"rule {rule_name!r} keeps one trace per unit, which needs every "
                f"state leaf of cell {cell.name!r} to have shape (n_rec,) = ({n},); "
                "use an exact or global rule ('bptt', 'rtrl', 'uoro')"
            )
        params = params_of(net, recurrent_names(setup))
        for name, p in params.items():
            axis = axes[name]
            if not (-jnp.ndim(p) <= axis < jnp.ndim(p)) or jnp.shape(p)[axis] % n:
                raise ValueError(
                    f"cell {cell.name!r}: unit axis {axis} of {name!r} (shape "
                    f"{jnp.shape(p)}) must have a multiple of n_rec = {n} entries"
                )


def _bcast(v, a, axis=0):
    """Per-unit ``v`` (n,) shaped to multiply ``a`` along its unit ``axis``
    (entry ``r`` takes ``v[r % n]``)."""
    if axis == 0 and a.shape[0] == v.shape[0]:
        return v.reshape(v.shape + (1,) * (a.ndim - 1))
    axis = axis % a.ndim
    v = jnp.tile(v, a.shape[axis] // v.shape[0])
    return v.reshape([-1 if i == axis else 1 for i in range(a.ndim)])


def _scaled(v, tr, axis, one_row):
    """Per-unit ``v`` (n,) times the trace ``tr``; a trace kept as one row
    (``one_row``) becomes the full ``(n, n_pre)`` outer product."""
    return v[:, None] * tr if one_row else _bcast(v, tr, axis) * tr


#: the parameters whose traces may be kept as one row (:func:`row_leaves`)
ROW_PARAMS = ("w_rec", "w_in")


def row_leaves(net, diagonal=False) -> frozenset:
    """The state leaves ``c`` whose traces of ``w_rec`` and ``w_in`` are the same
    in every row, kept as one row ``(1, n_pre)``: the point-neuron cell's
    ``presynaptic_leaves`` (a LIF unit's ``v``, whose trace is e-prop's
    filtered presynaptic spikes), whose dynamics are the same number for every
    unit and driven by the current alone.  None for SnAp-1 (``diagonal``: a
    unit's own synapse makes its row differ) or cells that own their synapses."""
    cell = net.cell
    if diagonal or owns_synapses(cell) or not hasattr(cell, "presynaptic_leaves"):
        return frozenset()
    return frozenset(cell.presynaptic_leaves(net))


def _one_row(net, names, diagonal) -> dict:
    """``{parameter name: the state leaves whose trace of it is one row}``."""
    rows = row_leaves(net, diagonal)
    return {n: rows if n in ROW_PARAMS else frozenset() for n in names}


def _held(net, h, x_t, diagonal):
    """The map ``s[t-1] -> s[t]`` whose per-unit Jacobian the traces follow:
    the step with the recurrent input held fixed (e-prop's), or the whole
    step (SnAp-1, and synaptic cells without ``step_with``)."""
    cell = net.cell
    if owns_synapses(cell):
        params = net.extra
        if cell.step_with is not None and not diagonal:
            z_prev = cell.output(params, h)
            return lambda s: cell.step_with(params, s, x_t, z_prev)
        return lambda s: cell.step(params, s, x_t)
    if diagonal:
        return lambda s: step(net, s, x_t)
    drive = _drive(net, h, x_t)
    return lambda s: cell.neuron(net, s, drive)


def _drive(net, h, x_t):
    """A point-neuron cell's synaptic current from the state ``h`` (n_rec,)."""
    return current(net, net.cell.output(net, h), x_t)


def carried(net, diagonal=False) -> tuple:
    """Which state leaves' traces a step reads again (``D[c2][c]`` not zero by
    construction for some ``c2``); the others are formed for the step's
    direction and not kept (an LSTM's ``h`` under e-prop)."""
    h = initial_state(net)
    cell = net.cell
    n_in = cell.sizes(net.extra)[0] if owns_synapses(cell) else net.w_in.shape[-1]
    x = jnp.zeros((n_in,), _leaves(h)[0].dtype)
    dep = dependence(_held(net, h, x, diagonal), h)
    return tuple(any(row[c] for row in dep) for c in range(len(dep)))


def _dropped(dtype):
    """What stands for the trace of a state leaf no step reads again (:func:`carried`)."""
    return jnp.zeros((0,), dtype)


def local_init(net, setup, diagonal=False):
    names = recurrent_names(setup)
    state0 = initial_state(net)
    k = len(_leaves(state0))
    one = _one_row(net, names, diagonal)
    kept = carried(net, diagonal)

    def zeros(p, c, one):
        if not kept[c]:
            return _dropped(jnp.result_type(p))
        return jnp.zeros((1,) + jnp.shape(p)[1:] if c in one else jnp.shape(p), jnp.result_type(p))

    traces = {  # one array per state leaf: rows XLA updates apart, with no concatenation
        n: tuple(zeros(p, c, one[n]) for c in range(k)) for n, p in params_of(net, names).items()
    }
    if "h0" in traces and not owns_synapses(net.cell):  # ds_c[0] / dh0 on each unit's own state

        def s0(h0):
            n = net._replace(h0=h0)
            return n.cell.initial_state(n)

        _, tangent = jax.jvp(s0, (net.h0,), (jnp.ones_like(net.h0),))
        traces["h0"] = tuple(
            t if kept[c] else _dropped(t.dtype) for c, t in enumerate(_leaves(tangent))
        )
    return traces


def _columns(lin, h, dep):
    """``D[c2][c]`` from one JVP of the linear map ``lin`` per state leaf ``c``
    that moves anything; ``None`` where ``dep[c2][c]`` says it is zero."""
    k = len(dep)
    cols = [_leaves(lin(_ones_on(h, c))) if any(r[c] for r in dep) else None for c in range(k)]
    return [[cols[c][c2] if dep[c2][c] else None for c in range(k)] for c2 in range(k)]


def _diagonal_blocks(lin, h, dep):
    """``D[c2][c]`` (n,): ``d s_c2,i[t] / d s_c,i[t-1]`` of the linear map ``lin``
    (a state tangent to a state tangent), from ``n`` JVPs per state leaf that
    moves anything; ``None`` where ``dep[c2][c]`` says it is zero."""
    leaves, tree = jax.tree_util.tree_flatten(h)
    k, n = len(leaves), leaves[0].shape[0]
    eye = jnp.eye(n, dtype=leaves[0].dtype)
    cols = []
    for c in range(k):
        if not any(r[c] for r in dep):
            cols.append(None)
            continue

        def column(e, c=c):
            tangent = [e if i == c else jnp.zeros_like(a) for i, a in enumerate(leaves)]
            return _leaves(lin(jax.tree_util.tree_unflatten(tree, tangent)))

        cols.append([jnp.diagonal(m) for m in jax.vmap(column)(eye)])
    return [[cols[c][c2] if dep[c2][c] else None for c in range(k)] for c2 in range(k)]


def _synaptic_dynamics(net, h, x_t, diagonal):
    """``h[t]`` and the per-unit Jacobian blocks of a cell that owns its synapses:
    with the recurrent input held fixed where the cell separates it
    (``step_with``, e-prop's), else (and for SnAp-1) the whole diagonal."""
    held = _held(net, h, x_t, diagonal)
    h_new, lin = jax.linearize(held, h)
    dep = dependence(held, h)
    if net.cell.step_with is not None and not diagonal:
        return h_new, _columns(lin, h, dep)
    return h_new, _diagonal_blocks(lin, h, dep)


def _point_dynamics(net, h, x_t, diagonal):
    """The same for a point-neuron cell: the neuron with its current held fixed
    (plus the unit's own synapse ``w_rec[i, i]`` for SnAp-1)."""
    cell = net.cell
    held = _held(net, h, x_t, False)
    h_new, neuron_jvp = jax.linearize(held, h)
    # D[c2][c]: d s_c2[t] / d s_c[t-1] of each unit, with the recurrent input held fixed
    D = _columns(neuron_jvp, h, dependence(held, h))
    if diagonal:  # add the unit's own synapse w_rec[i, i]
        dep = dependence(_held(net, h, x_t, True), h)
        drive = _drive(net, h, x_t)
        _, dn_di = jax.jvp(lambda i: cell.neuron(net, h, i), (drive,), (jnp.ones_like(drive),))
        dn_di = _leaves(dn_di)
        _, out_jvp = jax.linearize(lambda s: cell.output(net, s), h)
        k = len(D)
        dz_ds = [out_jvp(_ones_on(h, c)) for c in range(k)]
        self_w = jnp.diagonal(net.w_rec)
        D = [
            [
                (0.0 if D[c2][c] is None else D[c2][c]) + dn_di[c2] * self_w * dz_ds[c]
                if dep[c2][c]
                else None
                for c in range(k)
            ]
            for c2 in range(k)
        ]
    return h_new, D


def local_advance(traces, net, h, x_t, y_t, m_t, setup, feedback, diagonal=False):
    """One step of the per-unit traces and their direction; products with a
    Jacobian block that is zero by construction (``None``) are skipped."""
    names = recurrent_names(setup)
    k = len(_leaves(h))
    dynamics = _synaptic_dynamics if owns_synapses(net.cell) else _point_dynamics
    h_new, D = dynamics(net, h, x_t, diagonal)
    axes = unit_axes(net)
    # immediate term of each component, for every per-unit parameter at once
    _, vjp = jax.vjp(lambda p: step(with_params(net, p), h, x_t), params_of(net, names))
    imm = [vjp(_ones_on(h_new, c2))[0] for c2 in range(k)]
    one = _one_row(net, traces, diagonal)
    new = {}
    for n, tr in traces.items():
        ax = axes.get(n, 0)
        rows = []
        for c2 in range(k):
            if c2 in one[n]:  # D[c2][c] = 0 for c != c2; D[c2][c2] and the drive: every unit's
                own = D[c2][c2]
                rows.append(imm[c2][n][:1] + (0.0 if own is None else own[0] * tr[c2]))
                continue
            acc = imm[c2][n]
            for c in range(k):
                if D[c2][c] is not None:
                    acc = acc + _scaled(D[c2][c], tr[c], ax, c in one[n])
            rows.append(acc)
        new[n] = tuple(rows)
    kept = [any(D[c2][c] is not None for c2 in range(k)) for c in range(k)]
    y, err, signal = _emit(net, setup, feedback, h_new, y_t, m_t)
    cot = _leaves(_output_cotangent(net, h_new, signal))  # L * dz/ds_c, per component
    seen = [any(r) for r in zip(*dependence(lambda s: output(net, s), h_new))]
    seen = seen if any(seen) else [True] * k
    direction = {
        n: sum(_scaled(cot[c], tr[c], axes.get(n, 0), c in one[n]) for c in range(k) if seen[c])
        for n, tr in new.items()
    }
    direction.update(_readout_part(net, setup, err, output(net, h_new)))
    new = {
        n: tuple(r if kept[c] else _dropped(r.dtype) for c, r in enumerate(rows))
        for n, rows in new.items()
    }
    return new, h_new, y, direction


def has_reverse_form(net) -> bool:
    """Whether the cell's recurrent input can be held fixed in a step
    (:func:`local_step`): point-neuron cells, and synaptic cells with ``step_with``."""
    cell = net.cell
    return not owns_synapses(cell) or cell.step_with is not None


def local_step(net, state, x_t):
    """``step(net, state, x_t)`` with the units' previous outputs entering the
    current as constants (no derivative along ``z[t-1]``, the parameters'
    own paths kept): e-prop's internal dynamics, the trace's ``D``."""
    cell = net.cell
    fixed = jax.lax.stop_gradient(state)
    if owns_synapses(cell):
        return cell.step_with(net.extra, state, x_t, cell.output(net.extra, fixed))
    return cell.neuron(net, state, current(net, cell.output(net, fixed), x_t))


def eligibility_trial(net, x, y_target, mask, setup, feedback):
    """One trial's summed local-trace direction (RFLO, local, e-prop) by a
    backward pass through :func:`local_step`; returns ``(direction, y)``.
    Equal to summing :func:`local_advance`'s directions over the trial."""
    return backward_trial(net, x, y_target, mask, setup, feedback, advance=local_step)
