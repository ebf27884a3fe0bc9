"""A run of a :class:`~rflo.spec.RunSpec` in a folder: :class:`Session`.

What a long run does, for ``rflo train``, ``rflo compare`` and Python alike::

    from rflo.session import Session
    from rflo.spec import RunSpec

    with Session.start(RunSpec(trials=20_000, units=64), "runs/A") as s:
        done = s.run()                  # {rule: checkpoint.Progress}
    # killed (Ctrl-C, a scheduler's SIGTERM, a power cut)?  Then, bit-identically:
    with Session.resume("runs/A") as s:
        done = s.run()

It trains one network (or an ensemble: ``seeds``) per rule in compiled
segments of about :data:`SEGMENT_SECONDS` each, writes a checkpoint every
``checkpoint_every`` trials (else every 30 s) and at the end, holds the
folder's lock, tags every file with the run's id, stops cleanly after the
current segment on SIGINT/SIGTERM (:class:`Interrupted`), and on divergence of
one network saves the last network within the loss limit as ``RULE.npz`` and
the one of the lowest loss seen as ``RULE.best.npz`` (:class:`Diverged`).  An
ensemble's diverged networks are frozen instead (their best networks:
``RULE.seedS.best.npz``).

The same loop trains networks a caller already has, as a sweep's chunk and
the paper's figures do (:meth:`Session.for_networks`): K networks, each with
its own seed (seeds may repeat) and rates, in memory (one compiled call, no
files, Ctrl-C as in any Python call) or with a work folder that keeps only
``checkpoint/<rule>.npz``, so that a killed run goes on from there::

    s = Session.for_networks(spec, nets, seeds=[0, 0, 1], lr=rates, work="w")
    res = s.result(s.run()[spec.rule])   # an rflo.ensemble.EnsembleResult
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from rflo import session_folder, session_networks
from rflo.checkpoint import open_saved, prepare_folder  # noqa: F401  (importable from here)
from rflo.segments import (  # noqa: F401  (the session's parts, importable from here)
    MAX_SEGMENT,
    SEGMENT_SECONDS,
    Diverged,
    Interrupted,
    NoStop,
    Segments,
    StopRequest,
    check_run,
    ensemble_result,
    same_shape,
    save_trained,
    train_segments,
)
from rflo.session_build import (  # noqa: F401  (importable from here, as they were)
    DEFAULT_LR,
    build,
    draw_network,
    load_for_task,
    spec_of,
)
from rflo.spec import RunSpec

__all__ = [
    "Session",
    "Segments",
    "StopRequest",
    "NoStop",
    "Diverged",
    "Interrupted",
    "SEGMENT_SECONDS",
    "MAX_SEGMENT",
    "build",
    "draw_network",
    "prepare_folder",
    "open_saved",
    "load_for_task",
]

# --------------------------------------------------------------------------
# the session


class Session:
    """One run of ``spec`` in ``folder``: one network (or ensemble) per rule.

    Make one with :meth:`start` (a new run), :meth:`resume` (a killed one) or
    :meth:`for_networks` (networks the caller has: no run folder);
    :meth:`run` trains, :meth:`close` (or leaving a ``with`` block) releases
    the folder's lock.  ``rules`` default to ``[spec.rule]``; ``rule_lr``
    gives each rule its own rates where ``spec.lr`` is None; ``seeds``
    (default ``spec.seeds``), ``lr`` (rates for every rule, e.g. one per
    network), ``built`` (``(task, cell, optimizer)``) and ``files`` (whether
    the run's networks and settings are written) serve :meth:`for_networks`.
    ``folder`` None: nothing is written, not even checkpoints.
    """

    def __init__(
        self,
        spec,
        folder,
        *,
        rules,
        run_id,
        lock,
        network,
        command="train",
        rule_lr=None,
        seeds=None,
        lr=None,
        built=None,
        files=True,
    ):
        self.spec, self.rules = spec, list(rules)
        self.folder = None if folder is None else Path(folder)
        self.run_id, self.lock, self.network, self.command = run_id, lock, network, command
        self.rule_lr, self.lr, self.files = dict(rule_lr or {}), lr, files
        chosen = spec.seeds if seeds is None else seeds
        self.seeds = None if chosen is None else [int(x) for x in chosen]
        self.task, self.cell, self.optimizer = build(spec) if built is None else built

    @property
    def ensemble(self) -> bool:
        return self.seeds is not None

    @property
    def resume_hint(self) -> str:
        """How the run goes on after a stop."""
        if self.files:
            return f"Resume with: rflo {self.command} --resume {self.folder}"
        return (
            "Run it again with the same work folder to go on."
            if self.folder is not None
            else "Nothing was saved (no work folder)."
        )

    def rates(self, rule):
        """The rates of ``rule``: three, or a dict by name (values may be
        arrays of one per network: :meth:`for_networks`)."""
        if self.lr is not None:
            return self.lr
        lr = self.spec.lr if self.spec.lr is not None else self.rule_lr.get(rule, DEFAULT_LR)
        return dict(lr) if isinstance(lr, dict) else tuple(lr)

    # ---- making one

    @classmethod
    def start(
        cls,
        spec: RunSpec,
        folder,
        *,
        rules=None,
        command="train",
        rule_lr=None,
        network=None,
        overwrite=False,
    ) -> "Session":
        """A new run: the folder locked and cleared, the initial network drawn
        from the spec (or ``network``), and everything a resume needs written."""
        task, cell, _ = build(spec)  # checked before anything is made
        rules = list(rules or [spec.rule])
        if network is None and spec.init is None:  # memory, rates: refused before the folder
            lrs = dict(rule_lr or {})
            check_run(
                spec,
                task,
                cell,
                rules,
                lambda r: spec.lr if spec.lr is not None else lrs.get(r, DEFAULT_LR),
            )
        out, lock = prepare_folder(folder, overwrite)
        try:
            session = cls(
                spec,
                out,
                rules=rules,
                run_id=uuid.uuid4().hex,
                lock=lock,
                network=None,
                command=command,
                rule_lr=rule_lr,
            )
            session.network = network if network is not None else session._draw()
            session._save_start()
        except BaseException:
            lock.release()
            raise
        return session

    @classmethod
    def resume(cls, folder) -> "Session":
        """The run in ``folder`` (killed, or stopped), to go on with its own settings."""
        out, lock, saved = open_saved(folder)
        try:
            return cls.reopen(spec_of(saved), out, lock, saved)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def reopen(cls, spec, folder, lock, saved) -> "Session":
        """A session for a run whose saved settings ``saved`` the caller has
        read under ``lock`` (and may have checked); its initial network read back."""
        rules = saved.get("rules") or [saved.get("rule", spec.rule)]
        session = cls(
            spec,
            folder,
            rules=rules,
            run_id=saved["run_id"],
            lock=lock,
            network=None,
            command=saved.get("command", "train"),
            rule_lr=saved.get("rule_lr"),
        )
        session.network = session._read_initial()
        return session

    @classmethod
    def for_networks(
        cls,
        spec: RunSpec,
        networks,
        *,
        seeds=None,
        lr=None,
        task=None,
        work=None,
        run_id=None,
        built=None,
    ) -> "Session":
        """A session that trains the K given ``networks`` (stacked, or a list)
        as ``spec`` says (its rule, trials, loss, optimiser, batch, guard, f'),
        without a run folder: no lock, no initial or trained network files.

        seeds : K session seeds; they may repeat (lanes that differ only in
            their rates).  Default ``spec.seeds``, else ``0 .. K-1``.
        lr : rates for this session instead of ``spec.lr``: three numbers, a
            (K, 3) table (a row per network) or a dict by name whose values are
            numbers or (K,) arrays.
        task : a task no task name describes (default: the spec's).
        work : a folder for checkpoints (only ``work/checkpoint/RULE.npz``):
            a session made again with the same ``work`` and ``run_id`` goes on
            from the last one, bit-identically; one that does not belong to
            ``run_id``, or does not read back, is ignored (the run starts
            over).  None: in memory, in one compiled call.
        built : ``(task, cell, optimizer)`` built from ``spec`` already
            (sessions run side by side in threads share one optimiser).
        """
        nets, seeds, lr, built = session_networks.given_networks(
            spec, networks, seeds=seeds, lr=lr, task=task, built=built
        )
        return cls(
            spec,
            work,
            rules=[spec.rule],
            run_id=run_id or uuid.uuid4().hex,
            lock=None,
            network=nets,
            command=None,
            seeds=seeds,
            lr=lr,
            built=built,
            files=False,
        )

    def close(self):
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _draw(self):
        return session_networks.initial_networks(self.spec, self.task, self.cell)

    def _read_initial(self):
        return session_folder.read_initial(self)

    def settings(self) -> dict:
        """The run's settings as saved (``run.json``, ``config.toml``)."""
        s = self.spec.as_dict()
        if self.command == "compare":
            s.pop("rule")
            s.pop("init")
            s["rules"] = list(self.rules)
            s["rule_lr"] = {
                r: (dict(v) if isinstance(v, dict) else list(v)) for r, v in self.rule_lr.items()
            }
        return s

    def fresh(self):
        """The progress of a rule at trial 0: the initial network(s)."""
        from rflo import checkpoint

        net = self.network
        if not self.ensemble:
            empty = np.zeros(0, net.dtype)
            return checkpoint.Progress(net, empty, empty, 0.0)
        k = len(self.seeds)
        empty = np.zeros((k, 0), net.dtype)
        return checkpoint.Progress(
            net, empty, empty, 0.0, np.full(k, np.inf), frozen_at=np.full(k, -1)
        )

    def _save_start(self):
        """The initial network and every rule's checkpoint at trial 0, then
        the settings that make the run resumable (last: a folder without them
        is not a run to resume)."""
        session_folder.save_start(self)

    # ---- training

    def run(self, *, progress=None, stop=None) -> dict:
        """Train every rule from its checkpoint to ``spec.trials``.

        progress : ``progress(rule, total, done)`` -> a callable ``(done,
            total, loss)`` fed after every segment (with an optional ``close()``).
        stop : an object whose ``signum`` turns non-None to stop after the
            current segment (default: a :class:`StopRequest` on SIGINT/SIGTERM).
        Each rule's trained network is written as ``RULE.npz`` (an ensemble's as
        ``RULE.seedS.npz``).  Returns ``{rule: checkpoint.Progress}``; raises :class:`Interrupted`
        (checkpoint saved) or :class:`Diverged` (``RULE.npz`` and ``RULE.best.npz`` saved).
        """
        if stop is None and self.folder is None:  # nothing to save: Ctrl-C stops at once
            stop = NoStop()
        if stop is None:
            with StopRequest() as request:
                return self.run(progress=progress, stop=request)
        done = {}
        for name in self.rules:
            done[name] = self.train_rule(name, stop, progress)
            if self.files:
                self.save_networks(name, done[name])
        return done

    def result(self, prog, rule=None):
        """A rule's :class:`~rflo.checkpoint.Progress` as the
        :class:`~rflo.ensemble.EnsembleResult` a :func:`~rflo.ensemble.train_ensemble`
        call of the whole run returns (an ensemble's session)."""
        return ensemble_result(self, prog, rule or self.rules[0])

    def info(self, rule, trials, seed=None) -> dict:
        """What a trained network's file records of its training (``rflo eval``
        reads its task back)."""
        from rflo import runconfig

        s, lr = self.spec, self.rates(rule)
        return {
            "task": runconfig.task_record(self.task),
            "rule": rule,
            "trials": trials,
            "lr": dict(lr) if isinstance(lr, dict) else list(lr),
            "online": s.online,
            "loss": s.loss,
            "optimizer": s.optimizer,
            "optimizer_rate": s.optimizer_rate,
            **{k: getattr(s, k) for k in ("network", "rate_target") if getattr(s, k) is not None},
            **({"rate_strength": s.rate_strength} if s.rate_target is not None else {}),
            "batch": s.batch,
            "seed": s.seed if seed is None else seed,
            "dtype": s.dtype,
            "run_id": self.run_id,
        }

    def save_networks(self, rule, prog) -> list:
        """Write rule ``rule``'s trained network (``RULE.npz``; an ensemble's
        ``RULE.seedS.npz``), each with its record (:meth:`info`) and the run's
        id; returns the networks (an ensemble's unstacked)."""
        return save_trained(self, rule, prog)

    def _checkpoint(self, name):
        return session_folder.rule_checkpoint(self, name)

    def train_rule(self, name, stop, progress=None):
        """Train rule ``name`` from its checkpoint, checkpointing as it goes."""
        return train_segments(self, name, self._checkpoint(name), stop, progress)
