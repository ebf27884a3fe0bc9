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
    current,
    initial_state,
    output,
    owns_synapses,
    readout,
    step,
    unit_axes,
)
from rflo.network import params_of, with_params
from rflo.rules.base import learning_signal

__all__ = [
    "recurrent_names",
    "influence_init",
    "influence_advance",
    "uoro_init",
    "uoro_advance",
    "kf_init",
    "kf_advance",
    "backward_trial",
    "truncated_trial",
    "window_init",
    "window_advance",
]

EPS = 1e-7


def recurrent_names(setup):
    """The trained parameters that act inside the recurrence (all but ``w_out``)."""
    return tuple(n for n in setup.params if n != "w_out")


def _ones_on(state, leaf):
    leaves, tree = jax.tree_util.tree_flatten(state)
    return jax.tree_util.tree_unflatten(
        tree, [jnp.ones_like(a) if i == leaf else jnp.zeros_like(a) for i, a in enumerate(leaves)]
    )


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
        raise ValueError(
            f"rule {rule_name!r} factors the influence of a point-neuron cell's "
            f"w_rec and w_in; cell {net.cell.name!r} owns its synapses: use "
            "'rtrl', 'snap1', 'uoro' or 'bptt'"
        )
    other = [n for n in recurrent_names(setup) if n not in ("w_rec", "w_in")]
    if other:
        raise ValueError(
            f"rule {rule_name!r} factors the influence of w_rec and w_in only, "
            f"not {other}; freeze them or use 'rtrl' or 'bptt'"
        )


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
    _, dn_di = jax.jvp(
        lambda i: ravel_pytree(cell.neuron(net, h, i))[0], (drive,), (jnp.ones_like(drive),)
    )
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


def _outputs(net, names, x, unroll, cut=None, advance=step):
    """``p -> z`` (T-1, n_rec) for a trial; ``cut`` (T-1,) 1 where no gradient
    flows into a step from the step before it (a window's start); ``advance``
    the step function (default the cell's own)."""

    def run(p):
        n = with_params(net, p)

        def body(s, inp):
            x_t, cut_t = inp
            if cut is not None:
                s = jax.tree_util.tree_map(
                    lambda a: jnp.where(cut_t > 0, jax.lax.stop_gradient(a), a), s
                )
            s = advance(n, s, x_t)
            return s, output(n, s)

        cuts = jnp.zeros(x.shape[0] - 1) if cut is None else cut
        return jax.lax.scan(body, initial_state(n), (x[1:], cuts), unroll=unroll)[1]

    return run


def backward_trial(net, x, y_target, mask, setup, feedback, cut=None, advance=step, extra=None):
    """One trial's direction by a backward pass (any cell) through the step
    function ``advance`` (default the cell's own); returns ``(direction, y)``.
    ``extra(z)``: a further learning signal on the units' outputs ``z``
    (T-1, n_z), added to the loss's (e.g. a firing-rate regulariser's), so that
    both take the one backward pass."""
    names = recurrent_names(setup)
    run = _outputs(net, names, x, setup.unroll, cut, advance)
    z, vjp = jax.vjp(run, params_of(net, names))
    y = z @ net.w_out.T
    err = jax.vmap(setup.loss.error)(y, y_target[1:], mask[1:])
    signal = jax.vmap(lambda e: learning_signal(net, feedback, e))(err)
    if extra is not None:
        signal = signal + extra(z)
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
    return Window(
        s0,
        jnp.zeros((window, net.n_in), net.dtype),
        jnp.zeros((window, net.n_out), net.dtype),
        jnp.zeros((), jnp.int32),
        jnp.ones((), bool),
    )


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
            s0 = jax.tree_util.tree_map(
                lambda a, b: jnp.where(state.first, a, b), initial_state(n), start
            )

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
    return (
        Window(start, xs, errs, (state.pos + 1) % window, state.first & ~last),
        h_new,
        y,
        direction,
    )
