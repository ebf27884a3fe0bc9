"""R-KF-RTRL: reverse Kronecker-factored RTRL (Marschall, Cho & Savin 2020).

Write the recurrent and input weights as one matrix ``W = [w_rec, w_in]``
(n_rec x m, ``m = n_rec + n_in``) acting on ``z[t] = [h[t-1]; x[t]]``.  Its
influence ``G[k, (i, j)] = dh_k[t] / dW[i, j]`` obeys
``G[t] = J[t] G[t-1] + I[t]`` with the immediate influence
``I[t][k, (i, j)] = delta_ki a d_k[t] z_j[t]``.  KF-RTRL (:mod:`rflo.rules.kf_rtrl`)
keeps ``G[k, (i, j)] ~ u_j A[k, i]``: a factor over the presynaptic index
``j`` and a square one over ``(k, i)``.  R-KF-RTRL puts the factors the other
way round, ``G[k, (i, j)] ~ A_i B[k, j]``: a vector ``A`` (n_rec,) over the
postsynaptic index ``i`` and a matrix ``B`` (n_rec, m) over ``(k, j)``.  With
fresh random signs ``nu`` (n_rec,, +-1) at every step::

    A[t] = rho0 A[t-1] + rho1 nu
    B[t] = (1 / rho0) J[t] B[t-1] + (1 / rho1) diag(nu * a d[t]) 1 z[t]^T
    rho0 = sqrt(|J[t] B[t-1]| / |A[t-1]|),   rho1 = sqrt(|nu * a d[t]| |z[t]| / |nu|)

(``nu^T I[t]``, the immediate influence projected on ``nu`` over ``i``, is
``B``'s second term).  ``E[nu_i nu_k] = delta_ik`` and the ``rho`` do not depend
on the signs, so ``E[A[t] (x) B[t]] = A[t-1] (x) J B[t-1] + I[t]``: unbiased,
as KF-RTRL.  The update is ``dW[i, j] += A_i[t] (q[t]^T B[t])_j`` with
``q[t] = w_out^T err[t]`` (``w_out`` gets the exact ``err[t] h[t]^T``).

On any point-neuron cell (state of ``S = k n_rec`` numbers) ``B`` is (S, m),
``J B`` comes from the cell's Jacobian-vector products and ``a d[t]`` is the
neuron's ``d s / d I`` (as KF-RTRL's generic route); cells that own their
synapses are refused, as by KF-RTRL.

Cost per step: O(n_rec^2 m) time (``J B``), O(n_rec m) memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

import rflo.rules.generic as generic
from rflo.cells.base import current, initial_state, step
from rflo.rules.base import ClosedFormStepRule, feedback_matrix, register

__all__ = ["RKFState", "ReverseKFRTRL", "RKFRTRL", "rkf_init", "rkf_advance"]

#: keeps the variance-balancing factors finite when a norm is zero (at t = 1)
EPS = 1e-7


class RKFState(NamedTuple):
    A: jax.Array  # (n_rec,) postsynaptic factor A_i
    B: jax.Array  # (S, n_rec + n_in) B[k, j]
    key: jax.Array  # PRNG key for the next step's signs


def _norm(v):
    return jnp.sqrt(jnp.sum(v * v))


def _signs(key, n, dtype):
    key, sub = jax.random.split(key)
    return key, jax.random.rademacher(sub, (n,), dtype=dtype)


def rkf_init(net, key, setup):
    """The generic route's state: ``A = 0``, ``B = 0`` (the influence at step 0)."""
    n, m = net.w_in.shape
    s, _ = ravel_pytree(initial_state(net))
    return RKFState(jnp.zeros((n,), s.dtype), jnp.zeros((s.size, n + m), s.dtype), key)


def rkf_advance(state, net, h, x_t, y_t, m_t, setup, feedback):
    """One step of R-KF-RTRL on any point-neuron cell (see the module docstring)."""
    cell = net.cell
    n = net.n_rec
    s, unravel_s = ravel_pytree(h)
    key, nu = _signs(state.key, n, s.dtype)
    z_prev = cell.output(net, h)
    drive = current(net, z_prev, x_t)
    s_new, lin = jax.linearize(lambda v: ravel_pytree(step(net, unravel_s(v), x_t))[0], s)
    jb = jax.vmap(lin, in_axes=1, out_axes=1)(state.B)  # (S, m)
    # d s / d I of each state entry (its own unit's current)
    _, dn_di = jax.jvp(
        lambda i: ravel_pytree(cell.neuron(net, h, i))[0], (drive,), (jnp.ones_like(drive),)
    )
    pre = jnp.concatenate([z_prev, x_t])
    nu_s = jnp.tile(nu, s.size // n) * dn_di  # nu of each entry's unit times d s / d I
    rho0 = jnp.sqrt((_norm(jb) + EPS) / (_norm(state.A) + EPS))
    rho1 = jnp.sqrt((_norm(dn_di) * _norm(pre) + EPS) / (_norm(nu) + EPS))
    new = RKFState(rho0 * state.A + rho1 * nu, jb / rho0 + jnp.outer(nu_s, pre) / rho1, key)
    h_new = unravel_s(s_new)
    y, err, signal = generic._emit(net, setup, feedback, h_new, y_t, m_t)
    cot = ravel_pytree(generic._output_cotangent(net, h_new, signal))[0]
    qb = cot @ new.B  # (m,)
    full = {"w_rec": jnp.outer(new.A, qb[:n]), "w_in": jnp.outer(new.A, qb[n:])}
    direction = {k: full[k] for k in generic.recurrent_names(setup)}
    direction.update(generic._readout_part(net, setup, err, cell.output(net, h_new)))
    return new, h_new, y, direction


@dataclass(frozen=True)
class ReverseKFRTRL(ClosedFormStepRule):
    """R-KF-RTRL (see the module docstring); ``feedback`` as every rule."""

    name: str = "rkf_rtrl"
    online: bool = True
    feedback: str = "readout"

    def check(self, net, setup):
        generic.check_kronecker(self.name, setup, net)

    def generic_init(self, net, key, setup):
        return rkf_init(net, key, setup)

    def generic_advance(self, state, net, h, x_t, y_t, m_t, setup):
        return rkf_advance(state, net, h, x_t, y_t, m_t, setup, self.feedback)

    def closed_init(self, net, key):
        n, m = net.w_in.shape
        dt = net.w_rec.dtype
        return RKFState(jnp.zeros((n,), dt), jnp.zeros((n, n + m), dt), key)

    def step(self, state, net, s):
        a = 1.0 / net.tau
        key, nu = _signs(state.key, s.d.shape[0], s.d.dtype)
        ad = a * s.d
        jb = (1.0 - a) * state.B + ad[:, None] * (net.w_rec @ state.B)
        z = jnp.concatenate([s.h_prev, s.x])
        rho0 = jnp.sqrt((_norm(jb) + EPS) / (_norm(state.A) + EPS))
        rho1 = jnp.sqrt((_norm(ad) * _norm(z) + EPS) / (_norm(nu) + EPS))
        return RKFState(rho0 * state.A + rho1 * nu, jb / rho0 + jnp.outer(nu * ad, z) / rho1, key)

    def direction(self, state, net, s, err):
        qb = (feedback_matrix(net, self.feedback) @ err) @ state.B  # (n_rec + n_in,)
        n = net.n_rec
        return {
            "w_in": jnp.outer(state.A, qb[n:]),
            "w_rec": jnp.outer(state.A, qb[:n]),
            "w_out": jnp.outer(err, s.h),
        }


RKFRTRL = register(ReverseKFRTRL())
