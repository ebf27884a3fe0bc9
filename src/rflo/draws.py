"""A new network's random draws (:func:`rflo.init_network`): the weights of a
point-neuron network from one compiled call of ``jax.random`` per network,
scaled on the host in numpy as JAX's own arithmetic would (bit for bit), and
the readout and feedback of any network."""

from __future__ import annotations

import functools

import jax
import numpy as np

__all__ = ["draw_point", "draw_readout"]


def _over(a, divisor, f):
    """``a / divisor`` as XLA's CPU backend computes it: ``a * (1 / divisor)``
    (so that the host's scaling rounds as JAX's did)."""
    return a * (f(1) / f(divisor))


def _scale_readout(u, z):
    """``w_out`` (n_out, n_z) ``0.1 U(-1, 1) / sqrt(n_z)`` and ``b`` (n_z, n_out)
    ``N(0, 1) / sqrt(n_out)`` from the uniform draw ``u`` (n_out, n_z) and the
    normal draw ``z`` (n_z, n_out), host arrays in the network's dtype."""
    n_out, n_z = u.shape
    f = u.dtype.type
    return _over(f(0.1) * (f(2.0) * u - f(1.0)), np.sqrt(n_z), f), _over(z, np.sqrt(n_out), f)


def draw_readout(k_out, k_b, n_out, n_z, dtype):
    """:func:`_scale_readout` of the draws from the keys ``k_out`` and ``k_b``."""
    u = np.asarray(jax.random.uniform(k_out, (n_out, n_z), dtype))
    z = np.asarray(jax.random.normal(k_b, (n_z, n_out), dtype))
    return _scale_readout(u, z)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _raw_draws(seed, n_in, n_rec, n_out, dtype, masked):
    """The draws of :func:`draw_point` from ``PRNGKey(seed)`` in one compiled call
    (the same numbers as the calls one by one: the same programs, fused)."""
    k_in, k_rec, k_out, k_b, k_mask = jax.random.split(jax.random.PRNGKey(seed), 5)
    return (
        jax.random.uniform(k_in, (n_rec, n_in), dtype),
        jax.random.normal(k_rec, (n_rec, n_rec), dtype),
        jax.random.uniform(k_out, (n_out, n_rec), dtype),
        jax.random.normal(k_b, (n_rec, n_out), dtype),
        jax.random.uniform(k_mask, (n_rec, n_rec)) if masked else None,
    )


def draw_point(seed, n_in, n_rec, n_out, g, dtype, dale, connectivity, balanced):
    """``(w_in, w_rec, w_out, b, sign, mask)`` of a point-neuron network as
    :func:`rflo.init_network` documents them (numpy; sign, mask None where unused)."""
    # a uint32 argument: seeds up to 2**32 - 1 (a Python int would be traced as int32)
    raw = _raw_draws(np.uint32(seed), n_in, n_rec, n_out, dtype, connectivity is not None)
    u_in, z_rec, u_out, z_b, u_mask = (None if a is None else np.asarray(a) for a in raw)
    f = u_in.dtype.type
    w_in = f(0.1) * (u_in - f(1.0))
    w_rec = _over(f(g) * z_rec, np.sqrt(n_rec), f)
    w_out, b = _scale_readout(u_out, z_b)
    sign = mask = None
    if connectivity is not None:
        mask = (u_mask < u_mask.dtype.type(connectivity)).astype(f)
        w_rec = w_rec * mask
    if dale is not None:
        n_exc = int(round(float(dale) * n_rec))
        n_inh = n_rec - n_exc
        sign = np.where(np.arange(n_rec) < n_exc, f(1.0), f(-1.0)).astype(f)
        scale = np.ones(n_rec, f)
        if balanced and n_exc > 0 and n_inh > 0:
            a = n_exc / n_inh
            scale = np.where(sign > 0, f(1.0), f(a)) * f(np.sqrt(n_rec / (n_exc + a * a * n_inh)))
            scale = scale.astype(f)
        w_rec = np.abs(w_rec) * (sign * scale)
    return w_in, w_rec, w_out, b, sign, mask
