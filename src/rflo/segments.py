"""The parts of a :class:`rflo.session.Session`'s training loop: segments
sized by wall time, the stop request (SIGINT/SIGTERM; :mod:`rflo.session_stops`,
importable from here too), and one rule's loop from its checkpoint to the end
of the run (checkpoints, divergence)."""

from __future__ import annotations

import time

import numpy as np

from rflo.session_stops import (  # noqa: F401  (importable from here, as they were)
    Diverged,
    Interrupted,
    NoStop,
    StopRequest,
)

__all__ = [
    "Segments",
    "StopRequest",
    "NoStop",
    "Diverged",
    "Interrupted",
    "SEGMENT_SECONDS",
    "MAX_SEGMENT",
    "check_run",
    "same_shape",
    "opt_tree",
    "train_segments",
    "save_diverged",
    "ensemble_result",
    "save_trained",
]

#: target wall time of one compiled segment: Ctrl-C and time-based checkpoints
#: take effect within about this long
SEGMENT_SECONDS = 2.0
#: most trials in one segment, and the compiled buffer length of every segment
#: (one length for all runs: runs of any length share their compilations)
MAX_SEGMENT = 1 << 16
#: a segment may hold more than 1 % of the run where that takes less than this
#: long (progress still moves smoothly, and a short run pays the fixed cost of
#: a segment, a few milliseconds, a few times instead of a hundred)
MIN_SEGMENT_SECONDS = 0.25


class Segments:
    """Sizes of a run's compiled segments: at most 1 % of the run (or
    :data:`MIN_SEGMENT_SECONDS` of wall time, if more, but never more than half
    the run, so that a stop asked for early in a short run still comes before
    its end) and about
    :data:`SEGMENT_SECONDS` of wall time each (starting from one trial and
    growing at most 8x a segment), and ending exactly at every
    ``checkpoint_every`` trial.  The result does not depend on them: every
    segment runs the same compiled code from where the last one stopped."""

    def __init__(self, trials, every, whole=False):
        self.cap = max(1, min(-(-trials // 100), MAX_SEGMENT))
        self.half = max(1, trials // 2)
        self.every, self.whole = every, whole
        self.size = trials if whole else 1  # whole: one segment (nothing to save between)

    def next(self, done, trials):
        n = min(self.size, trials - done)  # observe() keeps the size within its cap
        if self.every:
            n = min(n, self.every - done % self.every)
        return n

    def observe(self, n, seconds):
        if self.whole:
            return
        per_trial = max(seconds, 1e-6) / n
        cap = min(max(self.cap, min(int(MIN_SEGMENT_SECONDS / per_trial), self.half)), MAX_SEGMENT)
        self.size = int(max(1, min(SEGMENT_SECONDS / per_trial, 8 * n, cap)))


def check_run(spec, task, cell, rules, rates):
    """Refuse, before any folder or array is made, a run of ``spec`` that
    cannot fit in memory (and, for a cell that owns its synapses or rates by
    name, rates or rules that do not fit the network); ``rates(rule)`` gives
    each rule's rates.  ValueError naming the fix."""
    from rflo import runconfig
    from rflo.cells.base import owns_synapses
    from rflo.memory import require_network_memory, struct_network
    from rflo.rules import get_rule
    from rflo.rules.base import Setup
    from rflo.spec_build import check_optimizer_rates, named_network, run_rule
    from rflo.train import check_session_memory, prepare_session
    from rflo.trainer import Config

    if spec.network is not None:  # a named network decides its size: the network itself
        net = named_network(spec, task, spec.seed)
    else:
        require_network_memory(task.n_in, spec.units, task.n_out, spec.dtype, cell=cell)
        net = struct_network(task.n_in, spec.units, task.n_out, spec.dtype, cell=cell)
    newer = (  # settings checked on the network itself
        spec.network is not None
        or spec.rate_target is not None
        or isinstance(spec.optimizer_rate, dict)
    )
    for name in rules:
        rule = run_rule(spec, name)  # with the firing-rate regulariser where asked
        if owns_synapses(net.cell) or isinstance(rates(name), dict) or newer:
            _, _, names, _ = prepare_session(
                net,
                rule,
                runconfig.cell_rates(net, rates(name)),
                online=spec.online,
                optimizer=None,
                loss=spec.loss,
                unroll=1,
                route="auto",
            )
            check_optimizer_rates(spec, net, names)
        check_session_memory(
            net,
            Config(get_rule(rule), spec.online, Setup()),
            task,
            spec.batch,
            networks=len(spec.seeds or [0]),
        )


def same_shape(a, b) -> bool:
    """Whether two networks have the same cell and array shapes."""

    def shapes(n):
        return {k: np.shape(v) for k, v in (n.extra or {}).items()}

    return (
        a.cell == b.cell
        and shapes(a) == shapes(b)
        and all(
            np.shape(getattr(a, k)) == np.shape(getattr(b, k))
            for k in ("w_in", "w_rec", "w_out", "tau")
        )
    )


def opt_tree(net, lr, optimizer):
    """The treedef of the optimiser's state for ``net`` (None for plain SGD)."""
    import jax

    from rflo.network import param_names, params_of, trainable_names
    from rflo.optim import check_learning_rates

    if optimizer is None:
        return None
    if isinstance(lr, dict):  # rates per network (arrays): the names are what counts
        lr = {k: 0.0 for k in lr}
    names = tuple(check_learning_rates(lr, param_names(net), trainable_names(net)))
    if np.ndim(net.w_out) == 3:  # an ensemble: the same tree, stacked leaves
        net = jax.tree_util.tree_map(lambda a: a[0], net)
    return jax.tree_util.tree_structure(optimizer.init(params_of(net, names)))


def train_segments(session, name, prog, stop, progress=None):
    """Train rule ``name`` of ``session`` (a :class:`rflo.session.Session`)
    from its checkpoint ``prog`` to the run's end, in segments, writing
    checkpoints as asked; the final :class:`rflo.checkpoint.Progress`."""
    import warnings

    import jax

    import rflo
    from rflo import checkpoint, runconfig
    from rflo.spec_build import run_rule

    spec, out, run_id = session.spec, session.folder, session.run_id
    task, optimizer, ensemble = session.task, session.optimizer, session.ensemble
    save = (
        (lambda p: checkpoint.save_progress(out, name, p, run_id))
        if out is not None
        else (lambda p: None)
    )
    lr = runconfig.cell_rates(prog.network, session.rates(name))  # by name: a cell's synapses
    rule = run_rule(spec, name)  # the rule, with the firing-rate regulariser where asked
    tree = opt_tree(prog.network, lr, optimizer)

    def opt_state(leaves):
        if tree is None or not leaves:
            return None
        return jax.tree_util.tree_unflatten(tree, [np.asarray(a) for a in leaves])

    def leaves(state):
        return (
            () if tree is None else tuple(np.asarray(a) for a in jax.tree_util.tree_leaves(state))
        )

    segments = Segments(spec.trials, spec.checkpoint_every, whole=out is None)
    last_save = time.monotonic()
    bar = None if progress is None else progress(name, spec.trials, prog.done)
    try:
        while prog.done < spec.trials:
            if stop.signum is not None:
                save(prog)
                raise Interrupted(
                    f"interrupted after {prog.done} of {spec.trials} trials of "
                    f"rule {name!r}; the checkpoint is saved. " + session.resume_hint
                )
            n = segments.next(prog.done, spec.trials)
            guard = (
                None
                if prog.previous is None
                else rflo.GuardState(
                    prog.best_loss,
                    prog.previous,
                    opt_state(prog.previous_opt_state),
                    prog.frozen_at,
                    prog.best,
                    prog.best_network_loss,
                    prog.best_at,
                )
            )
            common = dict(
                trials=n,
                lr=lr,
                online=spec.online,
                dtype=spec.dtype,
                start_trial=prog.done,
                chunk=MAX_SEGMENT,
                guard=guard,
                loss=spec.loss,
                optimizer=optimizer,
                batch=spec.batch,
                max_loss_growth=spec.max_loss_growth,
                opt_state=opt_state(prog.opt_state),
            )
            t0 = time.monotonic()
            with warnings.catch_warnings():  # a run's: the message is its error, said once
                if session.files:
                    warnings.simplefilter("ignore", RuntimeWarning)
                if ensemble:
                    from rflo.ensemble import train_ensemble

                    res = train_ensemble(prog.network, task, rule, seeds=session.seeds, **common)
                else:
                    res = rflo.train(prog.network, task, rule, seed=spec.seed, **common)
            segments.observe(n, time.monotonic() - t0)
            if not ensemble and res.diverged is not None:
                raise Diverged(save_diverged(session, name, res))
            acc = getattr(res, "accuracy", None)
            if acc is not None and (prog.accuracy is not None or prog.done == 0):
                acc = np.concatenate(
                    [
                        np.zeros(prog.loss.shape, acc.dtype)
                        if prog.accuracy is None
                        else prog.accuracy,
                        acc,
                    ],
                    axis=-1,
                )
            else:  # no metric, or a checkpoint from before accuracy was kept
                acc = None
            prog = checkpoint.Progress(
                res.networks if ensemble else res.network,
                np.concatenate([prog.loss, res.loss], axis=-1),
                np.concatenate([prog.alignment, res.alignment], axis=-1),
                prog.seconds + res.seconds,
                res.guard.best_loss,
                res.guard.previous,
                leaves(res.opt_state),
                leaves(res.guard.previous_opt_state),
                res.guard.frozen_at if ensemble else None,
                res.guard.best_network,
                res.guard.best_network_loss,
                res.guard.best_at,
                acc,
            )
            if bar is not None:
                last = res.loss[..., -1]
                bar(
                    prog.done,
                    spec.trials,
                    float(np.nanmedian(last)) if np.any(np.isfinite(last)) else float("nan"),
                )
            every = spec.checkpoint_every
            if (prog.done % every == 0) if every else (time.monotonic() - last_save > 30):
                save(prog)
                last_save = time.monotonic()
    finally:
        if bar is not None and hasattr(bar, "close"):
            bar.close()
    save(prog)
    return prog


def save_diverged(session, name, res) -> str:
    """Write a diverged run's two networks: ``RULE.npz`` (the last whose loss
    was within the limit) and ``RULE.best.npz`` (the one of the lowest loss
    seen); the message that names both, and their trials."""
    import rflo

    out, run_id = session.folder, session.run_id
    last, best = out / f"{name}.npz", out / f"{name}.best.npz"
    rflo.save_network(last, res.network, run_id=run_id, info=session.info(name, res.trials_done))
    rflo.save_network(
        best, res.best_network, run_id=run_id, info=session.info(name, res.best_trials)
    )
    which = "the initial network" if res.best_trials == 0 else f"after trial {res.best_trials}"
    return (
        f"{res.diverged} Saved the last network within the limit (after trial "
        f"{res.trials_done}) to {last} and the best ({which}: the lowest loss seen, "
        f"{res.best_loss:.4g} on trial {res.best_trials + 1}) to {best}."
    )


def ensemble_result(session, prog, rule):
    """An ensemble session's :class:`~rflo.checkpoint.Progress` of ``rule`` as
    the :class:`~rflo.ensemble.EnsembleResult` one call of the whole run returns."""
    import jax

    from rflo import runconfig
    from rflo.ensemble import EnsembleResult
    from rflo.train import GuardState

    tree = opt_tree(
        prog.network, runconfig.cell_rates(prog.network, session.rates(rule)), session.optimizer
    )

    def state(leaves):
        return (
            None if tree is None or not leaves else jax.tree_util.tree_unflatten(tree, list(leaves))
        )

    guard = GuardState(
        prog.best_loss,
        prog.previous,
        state(prog.previous_opt_state),
        prog.frozen_at,
        prog.best,
        prog.best_network_loss,
        prog.best_at,
    )
    return EnsembleResult(
        prog.network,
        prog.loss,
        prog.alignment,
        rule,
        prog.seconds,
        state(prog.opt_state),
        prog.accuracy,
        np.asarray(prog.frozen_at) + 1,
        guard,
        prog.best,
        prog.best_network_loss,
        prog.best_at,
    )


def save_trained(session, rule, prog) -> list:
    """Write rule ``rule``'s trained network into the session's folder
    (``RULE.npz``; an ensemble's ``RULE.seedS.npz``, and a diverged member's
    best ``RULE.seedS.best.npz``), each with its record and the run's id;
    returns the networks (an ensemble's unstacked)."""
    import rflo
    from rflo.ensemble import unstack_networks

    if not session.ensemble:
        rflo.save_network(
            session.folder / f"{rule}.npz",
            prog.network,
            run_id=session.run_id,
            info=session.info(rule, prog.done),
        )
        return [prog.network]
    members = unstack_networks(prog.network)
    for s, member in zip(session.seeds, members):
        rflo.save_network(
            session.folder / f"{rule}.seed{s}.npz",
            member,
            run_id=session.run_id,
            info=session.info(rule, prog.done, seed=s),
        )
    frozen = np.asarray(prog.frozen_at if prog.frozen_at is not None else [])
    if prog.best is not None and np.any(frozen >= 0):  # a diverged network's best too
        for i, (s, best) in enumerate(zip(session.seeds, unstack_networks(prog.best))):
            if frozen[i] >= 0:
                rflo.save_network(
                    session.folder / f"{rule}.seed{s}.best.npz",
                    best,
                    run_id=session.run_id,
                    info=session.info(rule, int(prog.best_at[i]), seed=s),
                )
    return members
