"""A training session's settings, checked before anything is computed: the
network, that the task fits it, the rule, rates, optimiser, loss and route,
and that the session fits in memory.  The one validation path of
:func:`rflo.train` and :func:`rflo.ensemble.train_ensemble`."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Optional

import jax
import numpy as np
import optax

from rflo._checks import check_dtype, check_int, check_positive, check_trials
from rflo.cells.leaky_tanh import LeakyTanh
from rflo.losses import check_outputs, get_loss
from rflo.memory import require_memory, session_bytes
from rflo.network import Network, network_from_arrays, param_names, trainable_names
from rflo.optim import check_learning_rates
from rflo.rules import get_rule
from rflo.rules.base import ROUTES, Setup, closed_form
from rflo.tasks import Task, TaskGenerator
from rflo.trainer import Config

__all__ = [
    "check_network",
    "check_fits",
    "as_dtype",
    "with_derivative",
    "check_session_memory",
    "prepare_session",
    "CheckedSession",
    "check_session",
]


def check_network(net) -> Network:
    """Validate a network (shapes, finiteness, constraints); returns a numpy copy."""
    if not isinstance(net, Network):
        raise ValueError(
            f"expected an rflo Network (see rflo.init_network / rflo.load_network), got {type(net).__name__}"
        )
    arrays = {
        k: (None if v is None else (v if k == "cell" else jax.tree_util.tree_map(np.asarray, v)))
        for k, v in net._asdict().items()
    }
    return network_from_arrays(**arrays)


def check_fits(net: Network, task):
    """Raise if the task's input/output sizes do not match the network."""
    if not isinstance(task, (Task, TaskGenerator)):
        raise ValueError(
            "expected an rflo Task or TaskGenerator (e.g. rflo.periodic_task(), "
            f"rflo.tasks.make_task('flip_flop')), got {type(task).__name__}"
        )
    if task.n_in != net.n_in:
        raise ValueError(
            f"the task has {task.n_in} inputs but the network has n_in={net.n_in}; "
            "build the network with the task's input size"
        )
    if task.n_out != net.n_out:
        raise ValueError(
            f"the task has {task.n_out} outputs but the network has n_out={net.n_out}; "
            "build the network with the task's output size"
        )


def as_dtype(net: Network, dtype) -> Network:
    return jax.tree_util.tree_map(lambda a: np.asarray(a, dtype), net)


def with_derivative(net: Network, derivative):
    """``net`` whose leaky tanh cell uses f' ``derivative`` (None: the cell's own)."""
    if derivative is None:
        return net
    if not isinstance(net.cell, LeakyTanh):
        raise ValueError(
            f"derivative={derivative!r} applies to the leaky_tanh cell only; the "
            f"network's cell is {net.cell.name!r} (its settings say its derivative)"
        )
    return net._replace(cell=dataclasses.replace(net.cell, derivative=derivative))


def check_session_memory(net, cfg, task, batch, networks=1):
    """Refuse a session whose estimated memory exceeds what is available."""
    need = session_bytes(
        net,
        cfg.rule,
        cfg.setup,
        online=cfg.online,
        n_steps=task.n_steps,
        batch=batch,
        networks=networks,
    )
    sizes = [f"n_rec={net.n_rec}", f"{task.n_steps} steps"]
    sizes += [f"batch {batch}"] if batch > 1 else []
    sizes += [f"{networks} networks"] if networks > 1 else []
    require_memory(
        need,
        f"training with rule {cfg.rule.name!r} ({', '.join(sizes)})",
        "use fewer units"
        + (" or networks" if networks > 1 else "")
        + ", a smaller batch, or a rule with a smaller state (e.g. rflo or bptt)",
    )


#: timesteps per iteration of the time loop where the session runs on a GPU
#: (``unroll=None``): XLA's loop there costs about 6 us per iteration whatever
#: the network's size, and 10 steps per iteration halved the time per trial of
#: RFLO and BPTT at n_rec 50, K = 1 and 64, on an H200 (docs/benchmarks.md)
GPU_UNROLL = 10


def default_unroll() -> int:
    """``unroll=None``'s value: 1 where the session runs on a CPU (XLA's CPU loops
    and rflo's kernels gain nothing from unrolling), :data:`GPU_UNROLL` elsewhere.
    The device is JAX's default (``jax.default_device`` where set)."""
    device = jax.config.jax_default_device
    platform = getattr(device, "platform", device) or jax.default_backend()
    return 1 if platform == "cpu" else GPU_UNROLL


def prepare_session(net, rule, lr, *, online, optimizer, loss, unroll, route, check_lr=True):
    """Check a session's settings (shared by :func:`train` and
    :func:`rflo.ensemble.train_ensemble`); returns ``(rule, cfg, names, lr)``
    with ``lr`` the checked rates as a dict (or None for a stacked table)."""
    rule = get_rule(rule)
    if online and not rule.online:
        raise ValueError(
            f"rule {rule.name!r} cannot learn online (it needs the whole trial); "
            "use online=False, or an online rule such as 'rflo' or 'rtrl'"
        )
    if optimizer is not None and not isinstance(optimizer, optax.GradientTransformation):
        raise ValueError("optimizer must be an optax.GradientTransformation, e.g. optax.adam(1e-3)")
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    loss = get_loss(loss)
    check_outputs(loss, net.n_out)
    lr = check_learning_rates(lr, param_names(net), trainable_names(net)) if check_lr else lr
    names = tuple(lr)
    setup = Setup(loss, names, unroll, route)
    rule.check(net, setup)
    closed_form(net, setup)  # route="closed_form" where it does not apply: say so now
    return rule, Config(rule, bool(online), setup), names, lr


class CheckedSession(NamedTuple):
    """A session's checked settings (:func:`check_session`)."""

    trials: int
    start_trial: int
    unroll: int
    batch: int
    max_loss_growth: Optional[float]
    rule: object
    cfg: Config
    names: tuple
    lr: object
    dtype: str


def check_session(
    net,
    tasks,
    rule,
    lr,
    *,
    trials,
    start_trial,
    unroll,
    batch,
    max_loss_growth,
    online,
    optimizer,
    loss,
    route,
    dtype,
    networks=1,
    check_lr=True,
):
    """Check everything a training session takes before anything is computed:
    the one validation path of :func:`train` and
    :func:`rflo.ensemble.train_ensemble` (``net``: one network, an ensemble's
    first; ``tasks``: its tasks; ``networks``: how many train together)."""
    trials, start_trial = check_trials(trials, start_trial)
    if max_loss_growth is not None:
        max_loss_growth = check_positive("max_loss_growth", max_loss_growth)
    unroll = default_unroll() if unroll is None else check_int("unroll", unroll)
    batch = check_int("batch", batch)
    for task in tasks:
        check_fits(net, task)
    rule, cfg, names, lr = prepare_session(
        net,
        rule,
        lr,
        online=online,
        optimizer=optimizer,
        loss=loss,
        unroll=unroll,
        route=route,
        check_lr=check_lr,
    )
    dtype = check_dtype(dtype or net.dtype)
    check_session_memory(as_dtype(net, dtype), cfg, tasks[0], batch, networks=networks)
    return CheckedSession(
        trials, start_trial, unroll, batch, max_loss_growth, rule, cfg, names, lr, dtype
    )
