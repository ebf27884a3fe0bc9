"""Training, simulating and scoring a network: the public entry points.

:func:`train` runs a session of many trials through the compiled core
(:mod:`rflo.trainer`; ensembles: :mod:`rflo.ensemble`), in chunks of trials
(for progress reports); the chunking does not change the result, because
every chunk runs the same compiled code.

Per trial the seed's bookkeeping is kept::

    loss      = sum_t loss.step(y[t], y*[t], m[t]) / (T n_out)   (outputs during the trial;
                squared error: 0.5 * sum_t m[t] |y*[t] - y[t]|^2 / (T n_out))
    alignment = <vec(b^T), vec(w_out)> / (|b| |w_out|)          (after the trial's update)
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rflo._checks import (
    check_dtype, check_finite_array, check_int, check_positive, check_seed, check_trials, precision,
)
from rflo.cells.base import forward as cell_forward
from rflo.cells.base import initial_state
from rflo.cells.base import output as cell_output
from rflo.cells.leaky_tanh import LeakyTanh
from rflo.losses import check_outputs, get_loss, trial_loss
from rflo.memory import require_memory, session_bytes
from rflo.network import (
    Network, network_from_arrays, param_names, params_of, to_numpy, trainable_names, with_params,
)
from rflo.optim import check_learning_rates
from rflo.rules import get_rule
from rflo.rules.base import ROUTES, Setup, closed_form
from rflo.tasks import Task, TaskGenerator
from rflo.trainer import (
    Config, SessionState, buffer_size, drive_chunks, init_opt_state, new_guard, run_chunk,
    trial_data,
)

__all__ = ["train", "TrainResult", "GuardState", "simulate", "evaluate", "Evaluation", "score"]


class TrainResult(NamedTuple):
    """What :func:`train` returns (numpy arrays).

    network : the trained :class:`~rflo.network.Network`.
    loss : (trials,) per-trial loss, from the outputs produced during each trial.
    alignment : (trials,) cosine between vec(b^T) and vec(w_out) after each trial.
    rule : the rule's name.
    seconds : wall time of the session, compilation included.
    opt_state : the optimiser state at the end (to continue training).
    diverged : ``None``, or a message saying at which trial and why training
        stopped early; ``network`` is then the last one whose loss was within
        the limit, and ``loss`` ends at the trial that diverged.
    trials_done : trials whose updates ``network`` contains, counted from the
        start of the run (``start_trial`` included).
    accuracy : (trials,) fraction correct per trial for tasks with an accuracy
        metric (NaN for a trial without a response window), else None.
    guard : the divergence test's state at the end (:class:`GuardState`);
        pass it to the next :func:`train` call that continues this session.
    """

    network: Network
    loss: np.ndarray
    alignment: np.ndarray
    rule: str
    seconds: float
    opt_state: object
    diverged: Optional[str] = None
    trials_done: int = 0
    accuracy: Optional[np.ndarray] = None
    guard: Optional["GuardState"] = None


class GuardState(NamedTuple):
    """What the divergence test of a session needs to go on in the next one
    (numpy): the best positive loss so far, and the network (with its
    optimiser state) from before the session's last trial, which is the one
    kept if the next trial's loss is already past the limit.  ``frozen_at``
    (ensembles, (K,)): the trial index at which each network diverged and was
    frozen, or -1; a frozen network stays frozen in the next session."""

    best_loss: float
    previous: Network
    previous_opt_state: object = None
    frozen_at: object = None


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


# --------------------------------------------------------------------------
# checks


def check_network(net) -> Network:
    """Validate a network (shapes, finiteness, constraints); returns a numpy copy."""
    if not isinstance(net, Network):
        raise ValueError(
            f"expected an rflo Network (see rflo.init_network / rflo.load_network), got {type(net).__name__}"
        )
    arrays = {k: (None if v is None else (v if k == "cell" else
                                           jax.tree_util.tree_map(np.asarray, v)))
              for k, v in net._asdict().items()}
    return network_from_arrays(**arrays)


def check_fits(net: Network, task):
    """Raise if the task's input/output sizes do not match the network."""
    if not isinstance(task, (Task, TaskGenerator)):
        raise ValueError(
            "expected an rflo Task or TaskGenerator (e.g. rflo.periodic_task(), "
            f"rflo.tasks.make_task('flip_flop')), got {type(task).__name__}")
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


def _as_dtype(net: Network, dtype) -> Network:
    return jax.tree_util.tree_map(lambda a: np.asarray(a, dtype), net)


def _with_derivative(net: Network, derivative):
    """``net`` whose leaky tanh cell uses f' ``derivative`` (None: the cell's own)."""
    if derivative is None:
        return net
    if not isinstance(net.cell, LeakyTanh):
        raise ValueError(f"derivative={derivative!r} applies to the leaky_tanh cell only; the "
                         f"network's cell is {net.cell.name!r} (its settings say its derivative)")
    return net._replace(cell=dataclasses.replace(net.cell, derivative=derivative))


def check_session_memory(net, cfg, task, batch, networks=1):
    """Refuse a session whose estimated memory exceeds what is available."""
    need = session_bytes(net, cfg.rule, cfg.setup, online=cfg.online, n_steps=task.n_steps,
                         batch=batch, networks=networks)
    sizes = [f"n_rec={net.n_rec}", f"{task.n_steps} steps"]
    sizes += [f"batch {batch}"] if batch > 1 else []
    sizes += [f"{networks} networks"] if networks > 1 else []
    require_memory(need, f"training with rule {cfg.rule.name!r} ({', '.join(sizes)})",
                   "use fewer units" + (" or networks" if networks > 1 else "")
                   + ", a smaller batch, or a rule with a smaller state (e.g. rflo or bptt)")


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


def check_session(net, tasks, rule, lr, *, trials, start_trial, unroll, batch, max_loss_growth,
                  online, optimizer, loss, route, dtype, networks=1, check_lr=True):
    """Check everything a training session takes before anything is computed:
    the one validation path of :func:`train` and
    :func:`rflo.ensemble.train_ensemble` (``net``: one network, an ensemble's
    first; ``tasks``: its tasks; ``networks``: how many train together)."""
    trials, start_trial = check_trials(trials, start_trial)
    if max_loss_growth is not None:
        max_loss_growth = check_positive("max_loss_growth", max_loss_growth)
    unroll = check_int("unroll", unroll)
    batch = check_int("batch", batch)
    for task in tasks:
        check_fits(net, task)
    rule, cfg, names, lr = prepare_session(net, rule, lr, online=online, optimizer=optimizer,
                                           loss=loss, unroll=unroll, route=route,
                                           check_lr=check_lr)
    dtype = check_dtype(dtype or net.dtype)
    check_session_memory(_as_dtype(net, dtype), cfg, tasks[0], batch, networks=networks)
    return CheckedSession(trials, start_trial, unroll, batch, max_loss_growth, rule, cfg, names,
                          lr, dtype)


# --------------------------------------------------------------------------
# public entry points


def train(
    net: Network,
    task: Task,
    rule="rflo",
    trials: int = 1000,
    lr=(0.0, 0.03, 0.03),
    *,
    online: bool = False,
    optimizer: Optional[optax.GradientTransformation] = None,
    derivative: Optional[str] = None,
    dtype: Optional[str] = None,
    chunk: Optional[int] = None,
    callback: Optional[Callable[[int, int, float], None]] = None,
    unroll: int = 1,
    seed: int = 0,
    max_loss_growth: Optional[float] = 1e4,
    opt_state=None,
    start_trial: int = 0,
    batch: int = 1,
    loss="squared_error",
    route: str = "auto",
    guard: Optional[GuardState] = None,
) -> TrainResult:
    """Train ``net`` on ``task`` for ``trials`` trials with a learning rule.

    Parameters
    ----------
    net : the network (not modified; a trained copy is returned).
    task : a :class:`~rflo.tasks.Task` (fixed trials) or a
        :class:`~rflo.tasks.TaskGenerator` (trials drawn in the compiled loop).
    rule : rule name (``"rflo"``, ``"bptt"``, ``"rtrl"``, ``"local"``,
        ``"random_feedback"``, ...) or a :class:`~rflo.rules.Rule`.
    trials : number of trials.
    lr : learning rates of plain SGD (the seed's ``eta``): ``(lr_in, lr_rec,
        lr_out)`` (default ``(0, 0.03, 0.03)``), one number for the cell's
        default parameters, or a dict by parameter name (e.g. ``{"w_rec": 0.03,
        "w_out": 0.03, "tau": 0.01}``): the parameters it names are trained, the
        others frozen.  With an ``optimizer`` only the names matter.
    online : update the weights at every step instead of once per trial.
    optimizer : an optax gradient transformation to use instead of plain SGD
        (then ``lr`` only says which parameters are trained).
    derivative : f' of the leaky tanh cell: ``"seed"`` (the notebook's) or
        ``"exact"``; default: the cell's own setting (``"seed"``).
    dtype : ``"float32"`` or ``"float64"``; default the network's.
    chunk : trials per compiled chunk (default: all at once, or about 1 % of the
        session when a ``callback`` is given).  Does not change the result;
        sessions with the same ``chunk`` (up to 65536) share one compilation.
    callback : called after each chunk as ``callback(done, total, last_loss)``.
    unroll : timesteps per iteration of the compiled time loop (speed only; 1 is
        fastest on CPU, where XLA runs each op of the loop body separately).
    seed : seed of the session's PRNG key (trial ``i`` gets ``fold_in(key, i)``),
        or the key itself (a ``jax.random.PRNGKey``); only rules that draw
        random numbers use it.
    max_loss_growth : stop when a trial's loss exceeds this factor times its
        best so far (NaN/inf in the loss or parameters always stops); the network
        returned is the last one whose loss was within the limit (a trial's
        loss is measured on the network from before its update).  ``None``
        turns the growth test off.
    opt_state, start_trial, guard : continue an earlier session: its
        ``opt_state``, the number of trials it ran, and its ``guard`` (so that
        the divergence test holds across sessions as in one long one).
    batch : trials per update (default 1, the seed's): the rule's update
        directions are averaged over the batch (offline: per trial; online: at
        each step), and the loss is averaged over the batch.  A stacked Task's
        update ``i`` uses entries ``(i batch + b) % K``.
    loss : ``"squared_error"`` (default, the seed's), ``"cross_entropy"``
        (one-hot class targets) or a :class:`~rflo.losses.Loss`.
    route : ``"auto"`` (closed-form rule routes for the leaky tanh cell where
        they exist), ``"generic"`` (Jacobian-vector products, any cell) or
        ``"closed_form"``.

    Returns
    -------
    :class:`TrainResult`
    """
    # ---- validate everything before computing anything (as train_ensemble does)
    key = _session_key(seed)
    net = _with_derivative(check_network(net), derivative)
    checked = check_session(net, [task], rule, lr, trials=trials, start_trial=start_trial,
                            unroll=unroll, batch=batch, max_loss_growth=max_loss_growth,
                            online=online, optimizer=optimizer, loss=loss, route=route,
                            dtype=dtype)
    trials, start_trial, unroll, batch, max_loss_growth, rule, cfg, names, lr, dtype = checked
    if guard is not None:
        guard = _check_guard(guard, net, start_trial)
    net = _as_dtype(net, dtype)
    if chunk is None:
        chunk = trials if callback is None else max(1, min(trials, -(-trials // 100)))
    # the compiled chunk length: a given ``chunk`` (up to 65536) is kept even when
    # the session is shorter, so that sessions of any length up to it (the
    # command line's segments) share one compilation
    chunk = check_int("chunk", chunk)
    capacity = chunk if chunk <= 2**16 else min(chunk, trials)

    t0 = time.perf_counter()
    with precision(dtype):
        jnet = jax.tree_util.tree_map(jnp.asarray, net)
        source = trial_data(task, batch, dtype)
        lr_arr = {k: jnp.asarray(v, dtype) for k, v in lr.items()}
        w = params_of(jnet, names)
        if opt_state is None:
            opt_state = init_opt_state(optimizer, lr_arr, w)
        previous = None
        if guard is not None:
            prev_net = jax.tree_util.tree_map(jnp.asarray, _as_dtype(guard.previous, dtype))
            previous = (params_of(prev_net, names),
                        opt_state if guard.previous_opt_state is None else guard.previous_opt_state)

        def run(state, done, n):
            return run_chunk(cfg, optimizer, jnet, state, lr_arr, key, source,
                             start_trial + done, n, buffer_size(capacity))

        best = np.inf if guard is None else guard.best_loss
        state0 = SessionState(w, opt_state, new_guard(w, opt_state, max_loss_growth, dtype,
                                                      start=start_trial, best=best,
                                                      previous=previous))
        state, losses, aligns, accs = drive_chunks(run, state0, trials, capacity, callback,
                                                   stop_when_frozen=True)
        trained = to_numpy(with_params(jnet, state.w))
        good_w, good_opt = state.guard.good
        end_guard = GuardState(float(state.guard.best), to_numpy(with_params(jnet, good_w)),
                               jax.tree_util.tree_map(np.asarray, good_opt))
    diverged = None
    done = start_trial + len(losses)
    frozen_at = int(state.guard.frozen_at)
    if frozen_at >= 0:
        bad = frozen_at - start_trial  # index of the trial that diverged
        losses, aligns, accs = losses[:bad + 1], aligns[:bad + 1], accs[:bad + 1]
        done = int(state.guard.good_at)
        diverged = (f"rule {rule.name!r} diverged at trial {frozen_at + 1}: "
                    f"{_why(losses, state, max_loss_growth)} (learning rates {_rates(lr)}); "
                    f"the network kept is the one after trial {done}, the last whose loss "
                    f"was within the limit. {_advice(net, rule, frozen_at, optimizer)}")
        warnings.warn(diverged, RuntimeWarning, stacklevel=2)
    return TrainResult(
        network=trained,
        loss=losses,
        alignment=aligns,
        rule=rule.name,
        seconds=time.perf_counter() - t0,
        opt_state=state.opt_state,
        diverged=diverged,
        trials_done=done,
        accuracy=accs if task.metric is not None else None,
        guard=end_guard,
    )


def _session_key(seed):
    """The session's key: ``PRNGKey(seed)``, or ``seed`` if it is a key already."""
    if isinstance(seed, (jax.Array, np.ndarray)) and np.shape(seed) == (2,) \
            and np.asarray(seed).dtype == np.uint32:
        return jnp.asarray(seed)
    return jax.random.PRNGKey(check_seed(seed))


def check_guard_start(guard, start_trial, where="result.guard"):
    """A ``guard`` continues an earlier session: it must be a :class:`GuardState`
    (``where`` says where to find one) and come with that session's ``start_trial``."""
    if not isinstance(guard, GuardState):
        raise ValueError(f"guard must be the GuardState of an earlier session ({where}), "
                         f"got {type(guard).__name__}")
    if start_trial < 1:
        raise ValueError("guard continues an earlier session: give its start_trial (>= 1) too")


def _check_guard(guard, net, start_trial):
    check_guard_start(guard, start_trial)
    best = float(guard.best_loss)
    if not (best > 0 or best == np.inf) or np.isnan(best):
        raise ValueError(f"guard.best_loss must be > 0 (or inf), got {guard.best_loss!r}")
    prev = check_network(guard.previous)
    for k in ("w_in", "w_rec", "w_out"):
        if np.shape(getattr(prev, k)) != np.shape(getattr(net, k)):
            raise ValueError(f"guard.previous is not a network of this session's shape "
                             f"({k} {np.shape(getattr(prev, k))} vs {np.shape(getattr(net, k))})")
    mine, theirs = ({k: np.shape(v) for k, v in (n.extra or {}).items()} for n in (net, prev))
    if mine != theirs:  # the cell's own parameters (all of them, for a cell that owns its synapses)
        raise ValueError(f"guard.previous is not a network of this session's shape (the cell's "
                         f"parameters {theirs} vs {mine})")
    return guard._replace(previous=prev._replace(cell=net.cell))


def _advice(net, rule, frozen_at, optimizer):
    """The likely cause of a divergence, in one sentence."""
    if frozen_at == 0:
        return ("It failed on the first trial, before any update mattered: check the task's "
                "inputs and targets and the initial weights (their scale g, tau).")
    what = "the optimiser's rate" if optimizer is not None else "the learning rates"
    why = f"Likely cause: {what} too large for this network (n_rec={net.n_rec})"
    if getattr(rule, "feedback", None) == "random":
        why += (f"; rule {rule.name!r} sends errors through the random feedback b, often much "
                "larger than w_out, so its recurrent rate usually needs to be smaller than the "
                "readout's")
    return why + ". Try rates about 10 times smaller."


def _rates(lr):
    if tuple(lr) == ("w_in", "w_rec", "w_out"):
        return "lr_in, lr_rec, lr_out = " + str(tuple(lr.values()))
    return ", ".join(f"{k}={v:g}" for k, v in lr.items())


def _why(losses, state, growth):
    bad = float(losses[-1])
    if not np.isfinite(bad):
        return "the loss became NaN or inf"
    best = float(state.guard.best)
    if growth is not None and bad > growth * best:
        return f"the loss {bad:.3g} grew past {growth:g} times its best {best:.3g}"
    return "a parameter became NaN or inf"


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
    net = _as_dtype(net, dtype)
    with precision(dtype):
        y, h, u = _simulate_jit(jax.tree_util.tree_map(jnp.asarray, net), jnp.asarray(x))
        return np.asarray(y), np.asarray(h), np.asarray(u)


def _checks_x(x, net, dtype):
    x = check_finite_array("x", x, ndim=2, dtype=dtype)
    if x.shape[1] != net.n_in:
        raise ValueError(f"x must have shape (T, n_in={net.n_in}), got {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"x needs at least 2 timesteps, got {x.shape[0]}")
    return x


def evaluate(net: Network, task: Task, trial: int = 0, *, dtype: Optional[str] = None,
             loss="squared_error") -> Evaluation:
    """Run one trial of ``task`` with learning off and score it with ``loss``."""
    net = check_network(net)
    check_fits(net, task)
    loss = get_loss(loss)
    x, y_target, mask = task.trial(trial)
    y, h, u = simulate(net, x, dtype=dtype)
    with precision(y.dtype):
        value = float(trial_loss(loss, jnp.asarray(y[1:]), jnp.asarray(y_target, y.dtype),
                                 jnp.asarray(mask, y.dtype)))
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
        jnet = jax.tree_util.tree_map(jnp.asarray, net)
        value, correct, counted = _score_jit(jnet, *(jnp.asarray(a, net.dtype) for a in (x, y, m)),
                                             task.metric, loss)
    if task.metric is None:
        return float(value), None
    counted = float(counted)
    return float(value), (float(correct) / counted if counted > 0 else float("nan"))
