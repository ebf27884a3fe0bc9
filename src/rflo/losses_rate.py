"""Firing-rate regularisation (Bellec et al. 2020), added to any rule's update.

Bellec et al. add to the task loss a penalty on each unit's mean firing rate
``f_j`` (spikes per step) away from a target ``f0``, their "simple" form
(``reg_f`` 1, ``reg_rate`` 10 Hz = 0.01 spikes per 1 ms step, in
``tutorial_evidence_accumulation_with_alif.py``)::

    E_reg = strength * sum_j (f_j - f0)^2,      f_j = mean_t z_j[t]

The library's losses score the readout ``y`` only, and a rule feeds back the
readout's error, so the regulariser, which scores the units' spikes, is added
here to a rule's per-trial update instead (:class:`RateRegularized`).  Its
gradient reaches each unit directly, as a learning signal of its own:
``dE_reg / dz_j[t] = 2 strength (f_j - f0) / T``, the same at every step of the
trial, so that

* for e-prop (rules with local traces: ``eprop``, ``eprop_random``, ``rflo``,
  ``local``) its e-prop form is ``dE_reg/dW_ji = sum_t dE_reg/dz_j[t]
  e_ji[t]`` with the rule's eligibility trace ``e_ji[t]`` (Bellec et al.'s
  Methods, "Firing rate regularization"; their ``learning_signal_regularization``
  added to the task's learning signal).  It is computed by differentiating the
  spikes with the recurrent input held fixed (the units' own dynamics only:
  exactly what ``e_ji[t]`` tracks; the authors' ``stop_z_gradients`` route);
* for every other rule (BPTT, RTRL, ...) it is the exact gradient of
  ``E_reg`` (a backward pass over the trial).

Scale: a rule's update is ``-d/dW`` of the task loss *summed* over steps and the
trainer divides by the trial's ``T``; Bellec et al. add ``E_reg`` to the task
loss *averaged* over its scored steps, so the regulariser's update is
``-d E_reg/dW`` times the trial's number of scored steps (``sum(mask)``; 150 on
the recall), which keeps their ratio between the two terms.  ``f_j`` is each
trial's own rate (the authors average over the batch before squaring; the two
agree in the mean and differ by the batch's spread of rates).

The wrapped rule is offline (one update per trial or batch, as Bellec et al.
train); the backward pass over the trial stores the trial's states.  Where
the base rule's offline form is itself a backward pass (e-prop's through
:func:`rflo.rules.traces.local_step`, BPTT's through the cell's step) the
regulariser's learning signal joins it, one pass for both (the update is the
same sum).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from rflo.cells.base import current, initial_state, output, owns_synapses, step
from rflo.network import params_of, with_params
from rflo.rules.base import DEFAULT_SETUP, Rule, closed_form, get_rule
from rflo.rules.bptt import BackpropThroughTime
from rflo.rules.generic import backward_trial
from rflo.rules.rflo import LocalTraceRule
from rflo.rules.traces import has_reverse_form, local_step

__all__ = ["RateRegularized", "rate_penalty", "rate_direction"]


def rate_penalty(z, target: float, strength: float):
    """``strength * sum_j (mean_t z[t, j] - target)^2`` of spikes ``z`` (T, n)."""
    return strength * jnp.sum((jnp.mean(z, axis=0) - target) ** 2)


def _spikes(net, x, local: bool):
    """The units' outputs ``z`` (T-1, n_rec) over the trial ``x``; with
    ``local`` the recurrent input carries no gradient (e-prop's traces)."""
    cell = net.cell

    def body(state, x_t):
        z_prev = output(net, state)
        if local:
            z_prev = jax.lax.stop_gradient(z_prev)
        state = cell.neuron(net, state, current(net, z_prev, x_t))
        return state, output(net, state)

    return jax.lax.scan(body, initial_state(net), x[1:])[1]


def rate_direction(net, x, mask, names, target: float, strength: float, local: bool):
    """The regulariser's update ``-sum(mask) dE_reg/dW`` for the parameters
    ``names`` (``w_out`` gets none), e-prop's form when ``local``."""
    rec = tuple(n for n in names if n != "w_out")

    def penalty(p):
        return rate_penalty(_spikes(with_params(net, p), x, local), target, strength)

    grad = jax.grad(penalty)(params_of(net, rec))
    scale = jnp.sum(mask[1:])
    out = {n: -scale * g for n, g in grad.items()}
    if "w_out" in names:
        out["w_out"] = jnp.zeros_like(net.w_out)
    return out


@dataclass(frozen=True)
class RateRegularized(Rule):
    """``base``'s update plus the firing-rate regulariser's (module docstring):
    ``target`` spikes per step (Bellec et al.: 0.01), ``strength`` (1.0).
    Offline only; a point-neuron (spiking) cell."""

    name: str = "rate_regularized"
    online: bool = False
    feedback: str = "readout"
    base: object = "eprop"
    target: float = 0.01
    strength: float = 1.0

    def __post_init__(self):
        base = get_rule(self.base)
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "feedback", base.feedback)
        if self.name == "rate_regularized":
            object.__setattr__(self, "name", f"{base.name}+rate")
        if not (isinstance(self.target, (int, float)) and 0 <= self.target <= 1):
            raise ValueError(f"target is spikes per step, in [0, 1], got {self.target!r}")
        if not (isinstance(self.strength, (int, float)) and self.strength >= 0):
            raise ValueError(f"strength must be a number >= 0, got {self.strength!r}")
        super().__post_init__()

    @property
    def local(self) -> bool:
        """Whether the regulariser takes e-prop's form (the base rule keeps local traces)."""
        return isinstance(self.base, LocalTraceRule)

    def check(self, net, setup):
        if owns_synapses(net.cell):
            raise ValueError(
                f"{self.name}: the firing-rate regulariser needs a point-neuron "
                f"cell (lif, alif), got {net.cell.name!r}"
            )
        self.base.check(net, setup)

    def trial(self, net, x, y_target, mask, key, setup=DEFAULT_SETUP):
        advance = self._one_pass(net, setup)
        if advance is not None:  # the base's backward pass carries the regulariser too
            scale = jnp.sum(mask[1:])

            def extra(z):  # -scale dE_reg/dz[t]: the penalty's own gradient
                return -scale * jax.grad(rate_penalty)(z, self.target, self.strength)

            return backward_trial(
                net, x, y_target, mask, setup, self.base.feedback, advance=advance, extra=extra
            )
        d, y = self.base.trial(net, x, y_target, mask, key, setup)
        reg = rate_direction(net, x, mask, tuple(d), self.target, self.strength, self.local)
        return {k: d[k] + reg[k] for k in d}, y

    def _one_pass(self, net, setup):
        """The step function of the base rule's backward pass where the
        regulariser can join it (e-prop's local step, BPTT's own), else None."""
        if closed_form(net, setup) or owns_synapses(net.cell):
            return None
        if type(self.base) is LocalTraceRule and has_reverse_form(net):
            return local_step
        if type(self.base) is BackpropThroughTime:
            return step
        return None
