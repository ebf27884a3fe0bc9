"""A network with learning off: :func:`simulate` (inputs to outputs),
:func:`evaluate` (one trial of a task, scored) and :func:`score` (a set of
trials: loss and accuracy)."""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rflo._checks import check_dtype, check_finite_array, check_int, precision
from rflo.cells.base import forward as cell_forward
from rflo.cells.base import initial_state
from rflo.cells.base import output as cell_output
from rflo.losses import get_loss, trial_loss
from rflo.network import Network
from rflo.session_checks import as_dtype, check_fits, check_network
from rflo.tasks import Task, TaskGenerator
from rflo.transfer import device_array, device_tree

__all__ = ["simulate", "evaluate", "Evaluation", "score"]


class Evaluation(NamedTuple):
    """One trial with learning off: ``y`` (T, n_out), ``h`` and ``u`` (T, n_rec),
    the ``target`` (T, n_out) and the trial's ``loss``.

    ``h`` is what the units send (the rate ``h`` of the leaky tanh cell, the
    spikes of a spiking cell) and ``u`` the synaptic current.  Row 0 is the
    initial state: ``h[0] = output(h0)``, ``y[0] = w_out h[0]``, ``u[0] = 0``.
    For a cell that owns its synapses (GRU, LSTM, LRU, a stack) ``h`` is the
    cell's output ``z`` (T, n_z) (the LRU's ``(Re h, Im h)``, a stack's top
    layer) and ``u`` is zeros of that shape: such a cell has no separate
    synaptic current.
    """

    y: np.ndarray
    h: np.ndarray
    u: np.ndarray
    target: np.ndarray
    loss: float


def _simulate(net, x):
    act = cell_forward(net, x)
    z0 = cell_output(net, initial_state(net))
    z_all = jnp.concatenate([z0[None], act.z])
    u_all = jnp.concatenate([jnp.zeros_like(act.current[:1]), act.current])
    return z_all @ net.w_out.T, z_all, u_all


_simulate_jit = jax.jit(_simulate)


def simulate(net: Network, x, *, dtype: Optional[str] = None):
    """Run ``net`` on inputs ``x`` (T, n_in) with learning off.

    Returns ``y`` (T, n_out), ``h`` (T, n_rec; what the units send) and ``u``
    (T, n_rec; the synaptic current) as numpy arrays; row 0 is the initial
    state (``u[0] = 0``).  For a cell that owns its synapses ``h`` is its
    output (T, n_z) and ``u`` zeros of that shape (see :class:`Evaluation`).
    """
    net = check_network(net)
    dtype = check_dtype(dtype or net.dtype)
    x = _checks_x(x, net, dtype)
    net = as_dtype(net, dtype)
    with precision(dtype):
        y, h, u = _simulate_jit(device_tree(net), device_array(x))
        return np.asarray(y), np.asarray(h), np.asarray(u)


def _checks_x(x, net, dtype):
    x = check_finite_array("x", x, ndim=2, dtype=dtype)
    if x.shape[1] != net.n_in:
        raise ValueError(f"x must have shape (T, n_in={net.n_in}), got {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"x needs at least 2 timesteps, got {x.shape[0]}")
    return x


#: one program for a trial's loss (eagerly, each of its operations would compile its own)
_trial_loss_jit = jax.jit(trial_loss, static_argnums=0)


def evaluate(
    net: Network, task: Task, trial: int = 0, *, dtype: Optional[str] = None, loss="squared_error"
) -> Evaluation:
    """Run one trial of ``task`` with learning off and score it with ``loss``."""
    net = check_network(net)
    check_fits(net, task)
    loss = get_loss(loss)
    x, y_target, mask = task.trial(trial)
    y, h, u = simulate(net, x, dtype=dtype)
    with precision(y.dtype):
        value = float(
            _trial_loss_jit(
                loss,
                device_array(y[1:]),
                device_array(y_target, y.dtype),
                device_array(mask, y.dtype),
            )
        )
    return Evaluation(y, h, u, np.asarray(y_target), value)


def _score(net, x, y, m, metric, loss):
    def one(x, y, m):
        out = cell_forward(net, x).y
        value = trial_loss(loss, out, y, m)
        if metric is None:
            return value, jnp.zeros(()), jnp.zeros(())
        correct, counted = metric(out, y[1:], m[1:])
        return value, correct, counted

    value, correct, counted = jax.vmap(one)(x, y, m)
    return jnp.mean(value), jnp.sum(correct), jnp.sum(counted)


_score_jit = jax.jit(_score, static_argnums=(4, 5))


def score(net, task, n_trials: int = 256, *, seed: int = 0, loss="squared_error"):
    """Loss and accuracy of ``net`` on a set of trials, with learning off.

    A :class:`TaskGenerator` draws ``n_trials`` fresh trials from ``seed``;
    a :class:`Task` uses all its trials (``n_trials`` is ignored).  Returns
    ``(mean loss, accuracy)``; accuracy is the pooled fraction correct of the
    task's metric (None without a metric; NaN if no step was counted).
    """
    net = check_network(net)
    check_fits(net, task)
    loss = get_loss(loss)
    if isinstance(task, TaskGenerator):
        x, y, m = task.batch(check_int("seed", seed, minimum=0), check_int("n_trials", n_trials))
    else:
        x, y, m = task.stacked(net.dtype)
    with precision(net.dtype):
        jnet = device_tree(net)
        value, correct, counted = _score_jit(
            jnet, *(device_array(a, net.dtype) for a in (x, y, m)), task.metric, loss
        )
    if task.metric is None:
        return float(value), None
    counted = float(counted)
    return float(value), (float(correct) / counted if counted > 0 else float("nan"))
