"""The rules for any cell, from the cell's Jacobian-vector products.

With the cell state ``s`` (flattened to a vector of ``S`` numbers), the
trained parameters other than the readout ``theta`` (flattened, ``P``
numbers) and one step ``s[t] = F(s[t-1], theta, x[t])``, the influence
``M[t] = ds[t]/dtheta`` (S, P) obeys::

    M[t] = J[t] M[t-1] + I[t],    J = dF/ds,  I = dF/dtheta

and the step's direction is ``dtheta = (dz/ds)^T L[t] . M[t]`` with the
learning signal ``L[t] = F_b e[t]`` on the units' outputs ``z`` (``F_b`` is
``w_out^T`` or the random ``b``; ``e = -dL/dy`` from the loss).  The readout
always gets its exact direction ``e[t] z[t]^T``.

* **influence** (RTRL; SnAp-n keeps the entries a parameter can reach in n
  steps): ``J M + I`` as one ``jax.linearize`` of the step, applied to the P
  columns of ``[M; 1]`` (``vmap``), O(P S n) per step.
* **eligibility** (RFLO, e-prop) and **diagonal** (SnAp-1): every parameter
  of unit ``i`` (axis 0 of ``w_in``, ``w_rec``, per-unit vectors) keeps a trace
  of unit ``i``'s own state only.  The per-unit Jacobian ``D`` (k x k for a
  state of k numbers per unit) is read off with ``jvp`` (the neuron acts on
  each unit alone, so a tangent of ones gives the diagonal), the immediate
  ``dF/dtheta`` with one ``vjp`` per state component.  *eligibility* takes
  ``D`` with the recurrent input held fixed (e-prop's internal dynamics; for
  the leaky tanh unit ``D = 1 - 1/tau``); *diagonal* adds the unit's
  self-connection ``w_rec[i, i]``.  O(k (n_rec + n_in) n_rec) per step.
* **rank_one** (UORO) and **kronecker** (KF-RTRL, ``w_rec`` and ``w_in``
  only): as in their papers, ``J h~`` by ``jvp``, ``nu^T I`` by ``vjp``.
* **backward** (BPTT) and **truncated** (TBPTT): ``jax.vjp`` of the trial's
  outputs ``z`` with the learning signals as cotangents (the true gradient
  with readout feedback; "random feedback without locality" with ``b``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from rflo.cells.base import (
    current, initial_state, output, owns_synapses, readout, step, unit_axes,
)
from rflo.network import params_of, with_params
from rflo.rules.base import learning_signal

__all__ = ["recurrent_names", "check_local", "influence_init", "influence_advance",
           "local_init", "local_advance", "uoro_init", "uoro_advance", "kf_init", "kf_advance",
           "backward_trial", "truncated_trial", "window_init", "window_advance"]

EPS = 1e-7


def recurrent_names(setup):
    """The trained parameters that act inside the recurrence (all but ``w_out``)."""
    return tuple(n for n in setup.params if n != "w_out")


def _ones_on(state, leaf):
    leaves, tree = jax.tree_util.tree_flatten(state)
    return jax.tree_util.tree_unflatten(
        tree, [jnp.ones_like(a) if i == leaf else jnp.zeros_like(a) for i, a in enumerate(leaves)])


def _leaves(tree):
    return jax.tree_util.tree_leaves(tree)


def _readout_part(net, setup, err, z):
    return {"w_out": jnp.outer(err, z)} if "w_out" in setup.params else {}


def _output_cotangent(net, state, signal):
    """``(dz/ds)^T signal``: the learning signal carried onto the cell state."""
    _, vjp = jax.vjp(lambda s: output(net, s), state)
    return vjp(signal)[0]


def _emit(net, setup, feedback, h_new, y_t, m_t):
    """Outputs of a step: ``y``, the loss error ``e`` and the learning signal."""
    y = readout(net, h_new)
    err = setup.loss.error(y, y_t, m_t)
    return y, err, learning_signal(net, feedback, err)


# --------------------------------------------------------------------------
# full (and sparse) influence: RTRL, SnAp-n


class InfluenceState(NamedTuple):
    m: jax.Array  # (S, P): ds / dtheta


def _flat_step(net, names, x_t, unravel_s, unravel_p):
    def f(s, theta):
        n = with_params(net, unravel_p(theta))
        return ravel_pytree(step(n, unravel_s(s), x_t))[0]
    return f


def influence_init(net, setup):
    names = recurrent_names(setup)
    theta, unravel_p = ravel_pytree(params_of(net, names))

    def s0(t):
        return ravel_pytree(initial_state(with_params(net, unravel_p(t))))[0]

    return InfluenceState(jax.jacfwd(s0)(theta))


def _unit_index(shape, axis, n):
    """(prod(shape),) the unit of each entry of an array: its index along ``axis`` mod ``n``."""
    along = jnp.arange(shape[axis]) % n
    index = along.reshape([-1 if i == axis else 1 for i in range(len(shape))])
    return jnp.broadcast_to(index, shape).reshape(-1)


def _unit_of_entries(net, tree, axes):
    """For each entry of the flattened ``tree``: the unit it belongs to, or -1.

    ``axes``: ``{name: axis}`` of a dict's per-unit entries; ``None``: every
    leaf is a state leaf of shape (n_rec,)."""
    n = net.n_rec
    parts = []
    items = sorted(tree.items()) if isinstance(tree, dict) else enumerate(_leaves(tree))
    for name, a in items:
        axis = 0 if axes is None else axes.get(name)
        if axis is not None and jnp.ndim(a) >= 1 and a.shape[axis] % n == 0:
            parts.append(_unit_index(a.shape, axis, n))
        else:
            parts.append(jnp.full((a.size,), -1))
    return jnp.concatenate(parts) if parts else jnp.zeros((0,), int)


def influence_pattern(net, setup, reach):
    """(S, P) 0/1: keep ``ds_k/dtheta_p`` where ``reach[unit(k), unit(p)]``
    (a parameter of no single unit is kept everywhere)."""
    names = recurrent_names(setup)
    pu = _unit_of_entries(net, params_of(net, names), unit_axes(net))
    su = _unit_of_entries(net, initial_state(net), None)
    kept = reach[su][:, jnp.maximum(pu, 0)]
    return jnp.where(pu[None, :] >= 0, kept, 1.0).astype(reach.dtype)


def influence_advance(state, net, h, x_t, y_t, m_t, setup, feedback, pattern=None):
    names = recurrent_names(setup)
    theta, unravel_p = ravel_pytree(params_of(net, names))
    s, unravel_s = ravel_pytree(h)
    f = _flat_step(net, names, x_t, unravel_s, unravel_p)
    s_new, lin = jax.linearize(lambda v: f(v, theta), s)
    # dF/dtheta (S, P) from one VJP per state entry: S << P, and no (P, P) identity
    _, vjp = jax.vjp(lambda t: f(s, t), theta)
    immediate = jax.vmap(vjp)(jnp.eye(s.size, dtype=s.dtype))[0]
    m = jax.vmap(lin, in_axes=1, out_axes=1)(state.m) + immediate
    if pattern is not None:
        m = pattern * m
    h_new = unravel_s(s_new)
    y, err, signal = _emit(net, setup, feedback, h_new, y_t, m_t)
    cot = ravel_pytree(_output_cotangent(net, h_new, signal))[0]
    direction = dict(unravel_p(cot @ m))
    direction.update(_readout_part(net, setup, err, output(net, h_new)))
    return InfluenceState(m), h_new, y, direction


# --------------------------------------------------------------------------
# per-unit traces: e-prop / RFLO (eligibility), SnAp-1 (diagonal)


def check_local(rule_name, net, setup):
    """Raise if a per-unit rule is asked to train a parameter shared by units."""
    cell = net.cell
    if owns_synapses(cell) and not cell.local:
        raise ValueError(f"rule {rule_name!r} keeps one trace per unit, but the units of cell "
                         f"{cell.name!r} are not one index shared by its state; use an exact or "
                         "global rule ('bptt', 'rtrl', 'uoro')")
    axes = unit_axes(net)
    shared = [n for n in recurrent_names(setup) if n not in axes]
    if shared:
        raise ValueError(
            f"rule {rule_name!r} keeps one trace per unit, but {shared} of cell "
            f"{cell.name!r} {'is' if len(shared) == 1 else 'are'} shared by all units; "
            "freeze it (leave it out of lr) or use an exact rule ('bptt', 'rtrl')")
    if owns_synapses(cell):
        n = net.n_rec
        bad = [k for k in _leaves(initial_state(net)) if jnp.shape(k) != (n,)]
        if bad:
            raise ValueError(f"rule {rule_name!r} keeps one trace per unit, which needs every "
                             f"state leaf of cell {cell.name!r} to have shape (n_rec,) = ({n},); "
                             "use an exact or global rule ('bptt', 'rtrl', 'uoro')")
        params = params_of(net, recurrent_names(setup))
        for name, p in params.items():
            axis = axes[name]
            if not (-jnp.ndim(p) <= axis < jnp.ndim(p)) or jnp.shape(p)[axis] % n:
                raise ValueError(f"cell {cell.name!r}: unit axis {axis} of {name!r} (shape "
                                 f"{jnp.shape(p)}) must have a multiple of n_rec = {n} entries")


def _bcast(v, a, axis=0):
    """Per-unit ``v`` (n,) shaped to multiply ``a`` along its unit ``axis``
    (entry ``r`` takes ``v[r % n]``)."""
    if axis == 0 and a.shape[0] == v.shape[0]:
        return v.reshape(v.shape + (1,) * (a.ndim - 1))
    axis = axis % a.ndim
    v = jnp.tile(v, a.shape[axis] // v.shape[0])
    return v.reshape([-1 if i == axis else 1 for i in range(a.ndim)])


def local_init(net, setup):
    names = recurrent_names(setup)
    state0 = initial_state(net)
    k = len(_leaves(state0))
    traces = {n: jnp.zeros((k,) + jnp.shape(p), jnp.result_type(p))
              for n, p in params_of(net, names).items()}
    if "h0" in traces and not owns_synapses(net.cell):  # ds_c[0] / dh0 on each unit's own state
        def s0(h0):
            n = net._replace(h0=h0)
            return n.cell.initial_state(n)

        _, tangent = jax.jvp(s0, (net.h0,), (jnp.ones_like(net.h0),))
        traces["h0"] = jnp.stack(_leaves(tangent))
    return traces


def _diagonal_blocks(lin, h):
    """``D[c2][c]`` (n,): ``d s_c2,i[t] / d s_c,i[t-1]`` of the linear map ``lin``
    (a state tangent to a state tangent), from ``n`` JVPs per state leaf."""
    leaves, tree = jax.tree_util.tree_flatten(h)
    k, n = len(leaves), leaves[0].shape[0]
    eye = jnp.eye(n, dtype=leaves[0].dtype)
    cols = []
    for c in range(k):
        def column(e, c=c):
            tangent = [e if i == c else jnp.zeros_like(a) for i, a in enumerate(leaves)]
            return _leaves(lin(jax.tree_util.tree_unflatten(tree, tangent)))

        cols.append([jnp.diagonal(m) for m in jax.vmap(column)(eye)])
    return [[cols[c][c2] for c in range(k)] for c2 in range(k)]


def _synaptic_dynamics(net, h, x_t, diagonal):
    """``h[t]`` and the per-unit Jacobian blocks of a cell that owns its synapses:
    with the recurrent input held fixed where the cell separates it
    (``step_with``, e-prop's), else (and for SnAp-1) the whole diagonal."""
    cell, params = net.cell, net.extra
    k = len(_leaves(h))
    if cell.step_with is not None and not diagonal:
        z_prev = cell.output(params, h)
        h_new, lin = jax.linearize(lambda s: cell.step_with(params, s, x_t, z_prev), h)
        cols = [_leaves(lin(_ones_on(h, c))) for c in range(k)]
        return h_new, [[cols[c][c2] for c in range(k)] for c2 in range(k)]
    h_new, lin = jax.linearize(lambda s: cell.step(params, s, x_t), h)
    return h_new, _diagonal_blocks(lin, h)


def _point_dynamics(net, h, x_t, diagonal):
    """The same for a point-neuron cell: the neuron with its current held fixed
    (plus the unit's own synapse ``w_rec[i, i]`` for SnAp-1)."""
    cell = net.cell
    k = len(_leaves(h))
    drive = current(net, cell.output(net, h), x_t)
    h_new, neuron_jvp = jax.linearize(lambda s: cell.neuron(net, s, drive), h)
    # D[c2][c]: d s_c2[t] / d s_c[t-1] of each unit, with the recurrent input held fixed
    cols = [_leaves(neuron_jvp(_ones_on(h, c))) for c in range(k)]
    D = [[cols[c][c2] for c in range(k)] for c2 in range(k)]
    if diagonal:  # add the unit's own synapse w_rec[i, i]
        _, dn_di = jax.jvp(lambda i: cell.neuron(net, h, i), (drive,), (jnp.ones_like(drive),))
        dn_di = _leaves(dn_di)
        _, out_jvp = jax.linearize(lambda s: cell.output(net, s), h)
        dz_ds = [out_jvp(_ones_on(h, c)) for c in range(k)]
        self_w = jnp.diagonal(net.w_rec)
        D = [[D[c2][c] + dn_di[c2] * self_w * dz_ds[c] for c in range(k)] for c2 in range(k)]
    return h_new, D


def local_advance(traces, net, h, x_t, y_t, m_t, setup, feedback, diagonal=False):
    names = recurrent_names(setup)
    k = len(_leaves(h))
    dynamics = _synaptic_dynamics if owns_synapses(net.cell) else _point_dynamics
    h_new, D = dynamics(net, h, x_t, diagonal)
    axes = unit_axes(net)
    # immediate term of each component, for every per-unit parameter at once
    _, vjp = jax.vjp(lambda p: step(with_params(net, p), h, x_t), params_of(net, names))
    imm = [vjp(_ones_on(h_new, c2))[0] for c2 in range(k)]
    new = {}
    for n, tr in traces.items():
        ax = axes.get(n, 0)
        rows = []
        for c2 in range(k):
            acc = imm[c2][n]
            for c in range(k):
                acc = acc + _bcast(D[c2][c], tr[c], ax) * tr[c]
            rows.append(acc)
        new[n] = jnp.stack(rows)
    y, err, signal = _emit(net, setup, feedback, h_new, y_t, m_t)
    cot = _leaves(_output_cotangent(net, h_new, signal))  # L * dz/ds_c, per component
    direction = {n: sum(_bcast(cot[c], tr[c], axes.get(n, 0)) * tr[c] for c in range(k))
                 for n, tr in new.items()}
    direction.update(_readout_part(net, setup, err, output(net, h_new)))
    return new, h_new, y, direction


# --------------------------------------------------------------------------
# UORO


class UOROState(NamedTuple):
    h_tilde: jax.Array  # (S,)
    theta: jax.Array  # (P,)
    key: jax.Array


def uoro_init(net, key, setup):
    names = recurrent_names(setup)
    theta, _ = ravel_pytree(params_of(net, names))
    s, _ = ravel_pytree(initial_state(net))
    return UOROState(jnp.zeros_like(s), jnp.zeros_like(theta), key)


def _norm(v):
    return jnp.sqrt(jnp.sum(v * v))


def uoro_advance(state, net, h, x_t, y_t, m_t, setup, feedback):
    names = recurrent_names(setup)
    theta, unravel_p = ravel_pytree(params_of(net, names))
    s, unravel_s = ravel_pytree(h)
    f = _flat_step(net, names, x_t, unravel_s, unravel_p)
    key, sub = jax.random.split(state.key)
    nu = jax.random.rademacher(sub, s.shape, dtype=s.dtype)
    s_new, jh = jax.jvp(lambda s_: f(s_, theta), (s,), (state.h_tilde,))
    _, vjp = jax.vjp(lambda t: f(s, t), theta)
    nu_f = vjp(nu)[0]
    rho0 = jnp.sqrt((_norm(state.theta) + EPS) / (_norm(jh) + EPS))
    rho1 = jnp.sqrt((_norm(nu_f) + EPS) / (_norm(nu) + EPS))
    new = UOROState(rho0 * jh + rho1 * nu, state.theta / rho0 + nu_f / rho1, key)
    h_new = unravel_s(s_new)
    y, err, signal = _emit(net, setup, feedback, h_new, y_t, m_t)
    cot = ravel_pytree(_output_cotangent(net, h_new, signal))[0]
    direction = dict(unravel_p((cot @ new.h_tilde) * new.theta))
    direction.update(_readout_part(net, setup, err, output(net, h_new)))
    return new, h_new, y, direction


# --------------------------------------------------------------------------
# KF-RTRL (w_rec and w_in)


class KFState(NamedTuple):
    u: jax.Array  # (n_rec + n_in,) presynaptic factor
    A: jax.Array  # (S, n_rec) postsynaptic factor
    key: jax.Array


def check_kronecker(rule_name, setup, net=None):
    if net is not None and owns_synapses(net.cell):
        raise ValueError(f"rule {rule_name!r} factors the influence of a point-neuron cell's "
                         f"w_rec and w_in; cell {net.cell.name!r} owns its synapses: use "
                         "'rtrl', 'snap1', 'uoro' or 'bptt'")
    other = [n for n in recurrent_names(setup) if n not in ("w_rec", "w_in")]
    if other:
        raise ValueError(f"rule {rule_name!r} factors the influence of w_rec and w_in only, "
                         f"not {other}; freeze them or use 'rtrl' or 'bptt'")


def kf_init(net, key, setup):
    n, m = net.w_in.shape
    s, _ = ravel_pytree(initial_state(net))
    return KFState(jnp.zeros((n + m,), s.dtype), jnp.zeros((s.size, n), s.dtype), key)


def kf_advance(state, net, h, x_t, y_t, m_t, setup, feedback):
    cell = net.cell
    n = net.n_rec
    s, unravel_s = ravel_pytree(h)
    key, sub = jax.random.split(state.key)
    s1, s2 = jax.random.rademacher(sub, (2,), dtype=s.dtype)
    z_prev = cell.output(net, h)
    drive = current(net, z_prev, x_t)
    s_new, lin = jax.linearize(lambda v: ravel_pytree(step(net, unravel_s(v), x_t))[0], s)
    ja = jax.vmap(lin, in_axes=1, out_axes=1)(state.A)
    _, dn_di = jax.jvp(lambda i: ravel_pytree(cell.neuron(net, h, i))[0], (drive,),
                       (jnp.ones_like(drive),))
    post = dn_di[:, None] * jnp.tile(jnp.eye(n, dtype=s.dtype), (s.size // n, 1))  # (S, n)
    pre = jnp.concatenate([z_prev, x_t])
    rho1 = jnp.sqrt((_norm(ja) + EPS) / (_norm(state.u) + EPS))
    rho2 = jnp.sqrt((_norm(dn_di) + EPS) / (_norm(pre) + EPS))
    new = KFState(s1 * rho1 * state.u + s2 * rho2 * pre, (s1 / rho1) * ja + (s2 / rho2) * post, key)
    h_new = unravel_s(s_new)
    y, err, signal = _emit(net, setup, feedback, h_new, y_t, m_t)
    cot = ravel_pytree(_output_cotangent(net, h_new, signal))[0]
    g = new.A.T @ cot  # (n,)
    full = {"w_rec": jnp.outer(g, new.u[:n]), "w_in": jnp.outer(g, new.u[n:])}
    direction = {k: full[k] for k in recurrent_names(setup)}
    direction.update(_readout_part(net, setup, err, cell.output(net, h_new)))
    return new, h_new, y, direction


# --------------------------------------------------------------------------
# backward passes: BPTT, truncated BPTT


def _outputs(net, names, x, unroll, cut=None):
    """``p -> z`` (T-1, n_rec) for a trial; ``cut`` (T-1,) 1 where no gradient
    flows into a step from the step before it (a window's start)."""

    def run(p):
        n = with_params(net, p)

        def body(s, inp):
            x_t, cut_t = inp
            if cut is not None:
                s = jax.tree_util.tree_map(
                    lambda a: jnp.where(cut_t > 0, jax.lax.stop_gradient(a), a), s)
            s = step(n, s, x_t)
            return s, output(n, s)

        cuts = jnp.zeros(x.shape[0] - 1) if cut is None else cut
        return jax.lax.scan(body, initial_state(n), (x[1:], cuts), unroll=unroll)[1]

    return run


def backward_trial(net, x, y_target, mask, setup, feedback, cut=None):
    """One trial's direction by a backward pass (any cell); returns ``(direction, y)``."""
    names = recurrent_names(setup)
    z, vjp = jax.vjp(_outputs(net, names, x, setup.unroll, cut), params_of(net, names))
    y = z @ net.w_out.T
    err = jax.vmap(setup.loss.error)(y, y_target[1:], mask[1:])
    signal = jax.vmap(lambda e: learning_signal(net, feedback, e))(err)
    direction = dict(vjp(signal)[0])
    if "w_out" in setup.params:
        direction["w_out"] = err.T @ z
    return direction, y


def truncated_trial(net, x, y_target, mask, setup, feedback, window):
    steps = x.shape[0] - 1
    t = jnp.arange(steps)
    cut = ((t % window == 0) & (t > 0)).astype(x.dtype)  # the trial's start is h0 itself
    return backward_trial(net, x, y_target, mask, setup, feedback, cut)


class Window(NamedTuple):
    start: object  # cell state at the window's start
    x: jax.Array  # (k, n_in)
    err: jax.Array  # (k, n_out)
    pos: jax.Array  # () int
    first: jax.Array  # () bool: the trial's first window (its start is h0)


def window_init(net, window):
    s0 = initial_state(net)
    return Window(s0, jnp.zeros((window, net.n_in), net.dtype),
                  jnp.zeros((window, net.n_out), net.dtype), jnp.zeros((), jnp.int32),
                  jnp.ones((), bool))


def window_advance(state, net, h, x_t, y_t, m_t, setup, feedback, window):
    names = recurrent_names(setup)
    start = jax.tree_util.tree_map(lambda a, b: jnp.where(state.pos == 0, a, b), h, state.start)
    h_new = step(net, h, x_t)
    y = readout(net, h_new)
    err = setup.loss.error(y, y_t, m_t)
    xs = state.x.at[state.pos].set(x_t)
    errs = state.err.at[state.pos].set(err)

    def flush(_):
        def run(p):
            n = with_params(net, p)
            s0 = jax.tree_util.tree_map(lambda a, b: jnp.where(state.first, a, b),
                                        initial_state(n), start)

            def body(s, x_):
                s = step(n, s, x_)
                return s, output(n, s)

            return jax.lax.scan(body, s0, xs)[1]

        z, vjp = jax.vjp(run, params_of(net, names))
        signal = jax.vmap(lambda e: learning_signal(net, feedback, e))(errs)
        d = dict(vjp(signal)[0])
        if "w_out" in setup.params:
            d["w_out"] = errs.T @ z
        return d

    def wait(_):
        return jax.tree_util.tree_map(jnp.zeros_like, params_of(net, setup.params))

    last = state.pos == window - 1
    direction = jax.lax.cond(last, flush, wait, None)
    return (Window(start, xs, errs, (state.pos + 1) % window, state.first & ~last),
            h_new, y, direction)
