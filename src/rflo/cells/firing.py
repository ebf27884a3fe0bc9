"""How much a spiking network (:mod:`rflo.cells.lif`) fires, and the warning
when it is silent or saturated: :func:`firing_rate`, :func:`check_firing`
(the band :data:`FIRING_BAND`, the fix :data:`FIRING_DRIVE`), and the pieces
of :func:`rflo.cells.lif.check_training_firing` (:func:`batch_inputs`,
:func:`rates_each`, :func:`advice`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "FIRING_DRIVE",
    "FIRING_BAND",
    "firing_rate",
    "check_firing",
    "batch_inputs",
    "rates_each",
    "advice",
]

#: a background current (in units of ``thr``) that makes the networks of
#: :func:`rflo.init_network` fire on every built-in task (see "Scale" in
#: :mod:`rflo.cells.lif`)
FIRING_DRIVE = 1.2


#: the band of spikes per unit and step outside which :func:`check_firing` warns
FIRING_BAND = (0.002, 0.5)


def _spikes_per_step(net, x):
    """Mean spikes per unit and step of ``net`` over ``x`` (B, T, n_in)."""
    from rflo.cells.base import initial_state, output, step

    def run(xs):
        def body(s, x_t):
            s = step(net, s, x_t)
            return s, output(net, s)

        return jax.lax.scan(body, initial_state(net), xs[1:])[1]

    return jnp.mean(jax.vmap(run)(x))


_rate_one = jax.jit(_spikes_per_step)
rates_each = jax.jit(jax.vmap(_spikes_per_step, in_axes=(0, None)))


def batch_inputs(net, x):
    x = jnp.asarray(x, jnp.asarray(net.w_rec).dtype)
    return x[None] if x.ndim == 2 else x


def firing_rate(net, x) -> float:
    """The mean number of spikes per unit and step of the spiking network
    ``net`` (LIF or ALIF) over the inputs ``x`` (T, n_in) or (B, T, n_in)."""
    return float(_rate_one(net, batch_inputs(net, x)))


def advice(rate, cell, where):
    """The warning for a rate outside :data:`FIRING_BAND`, or None."""
    lo, hi = FIRING_BAND
    drive = getattr(cell, "drive", 0.0)
    if rate < lo:
        return (
            f"{where} is silent: {rate:.4f} spikes per unit and step (a sensible band is {lo} "
            f"to {hi}); give its units a background current, e.g. cell=rflo.cells.get_cell("
            f"{cell.name!r}, drive={FIRING_DRIVE}) (now drive={drive}), or lower thr, or scale "
            "w_in up"
        )
    if rate > hi:
        return (
            f"{where} is saturated: {rate:.4f} spikes per unit and step (a sensible band is "
            f"{lo} to {hi}); lower the cell's drive (now {drive}), raise thr, or scale w_in "
            "and w_rec down"
        )
    return None


def check_firing(net, x, where: str = "the spiking network", stacklevel: int = 2) -> float:
    """Warn (``RuntimeWarning``) when the spiking network ``net`` is silent or
    saturated on the inputs ``x``, naming the fix; returns the rate.  Silent:
    below ``FIRING_BAND[0]`` spikes per unit and step (no error reaches the
    weights, the loss stays where it starts); saturated: above
    ``FIRING_BAND[1]`` (the units carry no signal)."""
    import warnings

    rate = firing_rate(net, x)
    said = advice(rate, net.cell, where)
    if said:
        warnings.warn(said, RuntimeWarning, stacklevel=stacklevel)
    return rate
