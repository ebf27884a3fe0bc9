"""Spiking units: leaky integrate-and-fire (LIF) and adaptive LIF (ALIF), as in
e-prop (Bellec et al. 2020, Nat. Commun. 11:3625).

LIF, with membrane potential ``v`` (the state) and spike ``z`` (the output)::

    z[t-1] = H(v[t-1] - thr)                                    the unit's spike
    v[t]   = alpha v[t-1] + (1 - alpha) I[t] - sg(z[t-1]) thr   alpha = exp(-1 / tau)

ALIF adds an adaptive threshold ``A = thr + beta a``, with ``a`` the state's
second component (a trace of the unit's own spikes)::

    z[t-1] = H(v[t-1] - A[t-1]),    A = thr + beta a
    v[t]   = alpha v[t-1] + (1 - alpha) I[t] - sg(z[t-1]) thr
    a[t]   = rho a[t-1] + z[t-1]                                rho = exp(-1 / tau_a)

``I[t] = w_rec @ z[t-1] + w_in @ x[t]`` is the synaptic current (the
``(1 - alpha)`` factor makes ``v`` settle at ``I`` under a constant current,
so ``thr`` is in units of current), ``tau`` (``net.tau``, one number) and
``tau_a`` are time constants in timesteps, and ``v[0] = h0``, ``a[0] = 0``.

**Surrogate derivative.**  ``H`` is the Heaviside step (``H(0) = 0``) in the
forward pass; its derivative, for every rule *and* for autodiff (a
``jax.custom_jvp``), is e-prop's pseudo-derivative::

    psi = dz/dv = gamma * max(0, 1 - |v - A| / thr) / thr      (A = thr for LIF)

with the dampening factor ``gamma`` (0.3, as Bellec et al.).  Exact rules
(BPTT, RTRL) therefore give the exact gradient *of the surrogate model*.

**Reset.**  As in e-prop the reset term ``z thr`` goes through
``jax.lax.stop_gradient`` (``sg`` above): no gradient flows through the reset,
in any rule.  The internal dynamics that e-prop's eligibility vector follows
are then ``dv[t]/dv[t-1] = alpha`` (LIF), and for ALIF::

    eps_v[t] = alpha eps_v[t-1] + dv[t]/dW
    eps_a[t] = psi[t-1] eps_v[t-1] + (rho - psi[t-1] beta) eps_a[t-1]
    e[t]     = psi[t] (eps_v[t] - beta eps_a[t])

(Bellec et al. 2020, eq. 25-27), which the generic local rules
(:func:`rflo.rules.traces.local_advance`) derive from the cell on their own.

**Refractory period.**  ``n_refractory = n > 0`` (Bellec et al.'s
``n_ref``, 5 steps in their evidence-accumulation code) keeps a unit silent for
the ``n - 1`` steps after each of its spikes (a spike at most every ``n``
steps).  The state gains a counter ``r`` (``r[0] = 0``), the authors' ``r``
one step late so that the spike is a function of the state::

    z[t]   = H(v[t] - A[t]) if r[t] == 0 else 0
    r[t+1] = clip(r[t] + n z[t] - 1, 0, n)                      (no gradient)

The membrane keeps integrating while the unit is refractory, and ``dz/dv``
is 0 then (their ``psi = 0`` during refractoriness), in every rule.

**Mixed populations.**  ALIF's ``n_regular = m`` makes units ``0 .. m-1``
plain LIF units (``beta = 0``), the rest adaptive, as Bellec et al.'s 50 LIF +
50 ALIF network (``beta = concat(zeros(n_regular), beta_a ones(n_adaptive))``
in their code).

**Scale.**  :func:`rflo.init_network` draws small input weights (uniform on
``[-0.1, 0)``), ``w_rec ~ N(0, 1.5^2 / n_rec)`` and ``h0 = 0.1``: with the
default settings such a network never reaches ``thr`` and is silent on every
built-in task (no error reaches the weights through the pseudo-derivative, and
the loss stays where it starts); the periodic task has no input at all, so no
input scaling helps there, and a stronger ``w_rec`` with ``h0`` above
threshold only gives a burst that dies out.  The ``drive`` setting adds a
constant background current ``drive * thr`` to every unit (in units of
``thr``, so that lowering ``thr`` keeps the rates)::

    v[t] = alpha v[t-1] + (1 - alpha) (I[t] + drive thr) - sg(z[t-1]) thr

Alone it makes a unit fire every ``tau ln(drive / (drive - 1))`` steps (about
18 at ``tau = 10``, ``drive = 1.2``); the recurrent current of the first
spikes makes the rates differ from unit to unit.  At ``drive =``
:data:`FIRING_DRIVE` (1.2) every unit of ``rflo.init_network(n_in, 50, 1,
seed=0, cell="lif")`` fires on every built-in task, at 3.5-5 % of the steps
(ALIF 3.5-4 %; ``tests/test_spiking_defaults.py``).  A cell built by name
(``cell="lif"``, ``--cell alif``, ``get_cell("alif")``) has this drive by
default (the classes' ``name_defaults``); the classes themselves, ``LIF()``
and ``ALIF()``, and ``drive=0`` are Bellec et al.'s cells without it, and
files written without a drive read back without one.  :func:`check_firing`
warns when a network is silent or saturated and names the fix; ``rflo.train``
and ``train_ensemble`` run it on the task's first trial before training (a
fresh session) and after (:func:`check_training_firing`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rflo.cells.base import Cell, register_cell
from rflo.cells.firing import (
    FIRING_BAND,
    FIRING_DRIVE,
    advice,
    batch_inputs,
    check_firing,
    firing_rate,
    rates_each,
)

__all__ = [
    "LIF",
    "ALIF",
    "ALIFState",
    "ALIFRefState",
    "LIFState",
    "spike",
    "pseudo_derivative",
    "FIRING_DRIVE",
    "FIRING_BAND",
    "firing_rate",
    "check_firing",
    "check_training_firing",
]


def pseudo_derivative(v_scaled, gamma):
    """e-prop's ``gamma * max(0, 1 - |v_scaled|)`` with ``v_scaled = (v - A) / thr``
    (``dz/dv`` is this divided by ``thr``)."""
    return gamma * jnp.maximum(0.0, 1.0 - jnp.abs(v_scaled))


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def spike(v_scaled, gamma):
    """Heaviside ``H(v_scaled)`` (1 where ``v_scaled > 0``) whose derivative is the
    pseudo-derivative ``gamma * max(0, 1 - |v_scaled|)``."""
    return (v_scaled > 0).astype(v_scaled.dtype)


@spike.defjvp
def _spike_jvp(gamma, primals, tangents):
    (v_scaled,), (dv,) = primals, tangents
    return spike(v_scaled, gamma), pseudo_derivative(v_scaled, gamma) * dv


def _check(cell):
    for name in ("thr", "gamma", "tau_a"):
        value = getattr(cell, name, 1.0)
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
            raise ValueError(f"{cell.name} setting {name} must be a positive number, got {value!r}")
    drive = getattr(cell, "drive", 0.0)
    if not (isinstance(drive, (int, float)) and not isinstance(drive, bool) and np.isfinite(drive)):
        raise ValueError(f"{cell.name} setting drive must be a finite number, got {drive!r}")
    beta = getattr(cell, "beta", 0.0)
    if not (isinstance(beta, (int, float)) and not isinstance(beta, bool) and beta >= 0):
        raise ValueError(f"{cell.name} setting beta must be a number >= 0, got {beta!r}")
    for name in ("n_refractory", "n_regular"):
        value = getattr(cell, name, 0)
        if not (
            isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0
        ):
            raise ValueError(f"{cell.name} setting {name} must be an integer >= 0, got {value!r}")


def _settings(cell):
    """The cell's settings, without ``drive``, ``n_refractory`` and
    ``n_regular`` where they are 0 (files written before they existed read
    the same)."""
    out = dataclasses.asdict(cell)
    for name in ("drive", "n_refractory", "n_regular"):
        if out.get(name) == 0:
            del out[name]
    return out


def _refractory(cell, r, z):
    """The counter after the spike ``z``: ``clip(r + n z - 1, 0, n)``, no gradient."""
    n = float(cell.n_refractory)
    return jax.lax.stop_gradient(jnp.clip(r + n * z - 1.0, 0.0, n))


def _silence(r, z):
    """``z`` where the counter ``r`` is 0, else 0 (and no gradient)."""
    return jnp.where(r > 0, jnp.zeros_like(z), z)


class LIFState(NamedTuple):
    """State of a LIF unit with a refractory period: ``v`` and the counter ``r`` (n_rec,)."""

    v: jax.Array
    r: jax.Array


@register_cell
@dataclass(frozen=True)
class LIF(Cell):
    """Leaky integrate-and-fire unit (state ``v``, output the spike ``H(v - thr)``).

    Settings: ``thr`` (firing threshold, in units of current), ``gamma``
    (dampening factor of the pseudo-derivative), ``drive`` (background
    current in units of ``thr``), ``n_refractory`` (steps of the refractory
    period, 0: none; with it the state is :class:`LIFState`).
    """

    name = "lif"
    #: the settings of a cell built by name (:func:`rflo.cells.get_cell`): a
    #: background current that makes a default network fire
    name_defaults = {"drive": FIRING_DRIVE}
    thr: float = 1.0
    gamma: float = 0.3
    drive: float = 0.0
    n_refractory: int = 0

    def __post_init__(self):
        _check(self)

    def settings(self):
        return _settings(self)

    def initial_state(self, net):
        if self.n_refractory:
            return LIFState(net.h0, jnp.zeros_like(net.h0))
        return net.h0

    def threshold(self, net, state):
        """The firing threshold ``A`` of each unit."""
        return self.thr

    def output(self, net, state):
        v = state.v if self.n_refractory else state
        z = spike((v - self.threshold(net, state)) / self.thr, self.gamma)
        return _silence(state.r, z) if self.n_refractory else z

    def presynaptic_leaves(self, net):
        """The state leaves whose traces of ``w_rec``/``w_in`` are one row
        (:func:`rflo.rules.traces.row_leaves`): ``v`` (``dv/dv = alpha``, ``dv/dI
        = 1 - alpha``, the same for every unit; the reset carries no gradient)
        and the refractory counter (no gradient at all)."""
        return (0, 1) if self.n_refractory else (0,)

    def neuron(self, net, state, current):
        z = jax.lax.stop_gradient(self.output(net, state))
        alpha = jnp.exp(-1.0 / net.tau)
        v = state.v if self.n_refractory else state
        v = alpha * v + (1.0 - alpha) * (current + self.drive * self.thr) - z * self.thr
        return LIFState(v, _refractory(self, state.r, z)) if self.n_refractory else v


class ALIFState(NamedTuple):
    """State of an ALIF unit: membrane potential ``v`` and adaptation ``a`` (n_rec,)."""

    v: jax.Array
    a: jax.Array


class ALIFRefState(NamedTuple):
    """State of an ALIF unit with a refractory period: ``v``, ``a`` and the counter ``r``."""

    v: jax.Array
    a: jax.Array
    r: jax.Array


@register_cell
@dataclass(frozen=True)
class ALIF(Cell):
    """Adaptive LIF unit (state ``(v, a)``, output the spike ``H(v - thr - beta a)``).

    Settings: ``thr``, ``gamma`` as :class:`LIF`; ``beta`` (threshold increase
    per unit of ``a``, i.e. per recent spike; 0.2 here, smaller than Bellec et
    al.'s 1.8, so that a unit driven just above threshold keeps firing at a
    lower rate instead of falling silent after one spike), ``tau_a`` (time
    constant of the adaptation in timesteps; 20), ``drive`` as :class:`LIF`,
    ``n_refractory`` as :class:`LIF` (with it the state is
    :class:`ALIFRefState`), ``n_regular`` (units ``0 .. n_regular-1`` have
    ``beta = 0``: plain LIF units in the same population).
    """

    name = "alif"
    name_defaults = {"drive": FIRING_DRIVE}
    thr: float = 1.0
    gamma: float = 0.3
    beta: float = 0.2
    tau_a: float = 20.0
    drive: float = 0.0
    n_refractory: int = 0
    n_regular: int = 0

    def __post_init__(self):
        _check(self)

    def settings(self):
        return _settings(self)

    def initial_state(self, net):
        zeros = jnp.zeros_like(net.h0)
        if self.n_refractory:
            return ALIFRefState(net.h0, zeros, zeros)
        return ALIFState(net.h0, zeros)

    def betas(self, n_rec: int, dtype=None):
        """Each unit's ``beta`` (n_rec,): 0 for the first ``n_regular``."""
        return jnp.where(jnp.arange(n_rec) < self.n_regular, 0.0, self.beta).astype(
            dtype or jnp.float32
        )

    def threshold(self, net, state):
        """The adaptive threshold ``A = thr + beta a`` of each unit."""
        if self.n_regular:
            return self.thr + self.betas(state.a.shape[-1], state.a.dtype) * state.a
        return self.thr + self.beta * state.a

    def output(self, net, state):
        z = spike((state.v - self.threshold(net, state)) / self.thr, self.gamma)
        return _silence(state.r, z) if self.n_refractory else z

    def presynaptic_leaves(self, net):
        """As :meth:`LIF.presynaptic_leaves`: ``v`` and the refractory counter
        (the adaptation ``a`` follows each unit's own pseudo-derivative: a full trace)."""
        return (0, 2) if self.n_refractory else (0,)

    def neuron(self, net, state, current):
        z = self.output(net, state)
        alpha = jnp.exp(-1.0 / net.tau)
        rho = jnp.exp(-1.0 / jnp.asarray(self.tau_a, state.v.dtype))
        v = (
            alpha * state.v
            + (1.0 - alpha) * (current + self.drive * self.thr)
            - jax.lax.stop_gradient(z) * self.thr
        )
        if self.n_refractory:
            return ALIFRefState(v, rho * state.a + z, _refractory(self, state.r, z))
        return ALIFState(v, rho * state.a + z)


def check_training_firing(net, task, when: str, ensemble: bool = False, stacklevel: int = 3):
    """The trainer's check (``train``, ``train_ensemble``): warn when the
    spiking network (each network of a stacked ensemble) is silent or
    saturated on the task's first trial ``when`` ("before training", "after
    training"); nothing for other cells.  Returns the rate(s) or None."""
    import warnings

    if not isinstance(net.cell, (LIF, ALIF)):
        return None
    x = batch_inputs(net, np.asarray(task.trial(0)[0]))
    if not ensemble:
        return check_firing(net, x, f"the spiking network {when}", stacklevel + 1)
    rates = np.asarray(rates_each(net, x))
    said = [
        advice(float(r), net.cell, f"network {k} of the ensemble {when}")
        for k, r in enumerate(rates)
    ]
    bad = [m for m in said if m]
    if bad:
        more = f" ({len(bad)} of {len(rates)} networks are outside the band)"
        warnings.warn(bad[0] + more, RuntimeWarning, stacklevel=stacklevel)
    return rates
