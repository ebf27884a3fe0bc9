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
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from rflo.segments import (  # noqa: F401  (the session's parts, importable from here)
    MAX_SEGMENT, SEGMENT_SECONDS, Diverged, Interrupted, Segments, StopRequest, check_run,
    same_shape, train_segments,
)
from rflo.spec import RunSpec

__all__ = ["Session", "Segments", "StopRequest", "Diverged", "Interrupted", "SEGMENT_SECONDS",
           "MAX_SEGMENT", "build", "draw_network", "prepare_folder", "open_saved", "load_for_task"]

#: rates of a rule whose run names none (the spec's default, the seed notebook's)
DEFAULT_LR = tuple(RunSpec.lr)


def build(spec: RunSpec):
    """``(task, cell, optimizer)`` of a spec (built, so checked; ValueError)."""
    from rflo import runconfig
    from rflo.losses import check_outputs, get_loss

    task = runconfig.make_run_task(spec.task, spec.set, spec.period)
    cell = runconfig.make_cell(spec.cell, spec.derivative)
    check_outputs(get_loss(spec.loss), task.n_out)
    return task, cell, runconfig.make_optimizer(spec.optimizer, spec.optimizer_rate)


# --------------------------------------------------------------------------
# the run folder: lock, clearing, saved settings


#: files a run writes into its folder besides ``<rule>.npz`` and ``checkpoint/``
RUN_FILES = ("metadata.json", "results.csv", "initial.npz", "loss.png", "outputs.png",
             "alignment.png", "run.log")


def _lock(out):
    """Hold ``out`` for this run (released when the process ends)."""
    from rflo.files import FolderBusy, RunLock

    try:
        return RunLock(out)
    except FolderBusy as exc:
        raise ValueError(f"{exc}; wait for it to finish or choose another --out") from None


def _leftovers(out):
    from rflo.files import TMP_MARK, RunLock

    return [p for p in out.iterdir()
            if p.name != RunLock.NAME and not (p.name.startswith(".") and TMP_MARK in p.name)]


def _clear_run(out):
    """Remove what an earlier run wrote into ``out`` (its files only)."""
    import json
    import shutil

    from rflo.files import remove_temporaries
    from rflo.rules import rule_names

    rules = set(rule_names())
    try:
        saved = json.loads((out / "checkpoint" / "run.json").read_text(encoding="utf-8"))
        named = saved.get("rules") or [saved.get("rule")]
        rules |= {r for r in named if isinstance(r, str) and "/" not in r and r}
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    for name in RUN_FILES + tuple(f"{r}{tail}.npz" for r in sorted(rules) for tail in ("", ".best")):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "checkpoint", ignore_errors=True)
    remove_temporaries(out)


def prepare_folder(out, overwrite=False):
    """``(folder, lock)``: a run folder that belongs to this run, locked and
    empty of earlier runs (``overwrite`` clears them, else ValueError)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    busy = (f"output folder {out} already exists and is not empty; choose another --out or "
            "pass --overwrite")
    if out.is_dir() and _leftovers(out) and not overwrite:
        raise ValueError(busy)
    lock = _lock(out)
    if _leftovers(out):  # checked again under the lock: another run may just have finished
        if not overwrite:
            lock.release()
            raise ValueError(busy)
        _clear_run(out)
    return out, lock


def open_saved(folder):
    """``(folder, lock, saved settings)`` of a run to resume: locked, its
    temporaries removed (ValueError when it is no resumable run)."""
    from rflo import checkpoint
    from rflo.files import remove_temporaries

    out = Path(folder)
    if not (out / checkpoint.CHECKPOINT_DIR / "run.json").is_file():
        raise ValueError(f"{out} has no {checkpoint.CHECKPOINT_DIR}/run.json: not a run that can "
                         "be resumed")
    lock = _lock(out)
    try:
        saved = checkpoint.load_settings(out)
        for where in (out, out / checkpoint.CHECKPOINT_DIR):
            remove_temporaries(where)  # what killed writes left; we hold the lock
    except BaseException:
        lock.release()
        raise
    return out, lock, saved


def spec_of(saved: dict) -> RunSpec:
    """The :class:`RunSpec` of a run's saved settings (older runs' too)."""
    from rflo.spec import config_keys

    data = {k: v for k, v in saved.items() if k in config_keys()}
    if saved.get("command") == "compare" or "rules" in saved:
        data.pop("rule", None)
    return RunSpec.from_dict(data, "saved settings")


def draw_network(spec: RunSpec, task, cell, seed=None):
    """A network drawn as ``spec`` says (units, tau, dtype, Dale's law,
    connectivity) for ``task``, from ``seed`` (default ``spec.seed``)."""
    import rflo

    return rflo.init_network(task.n_in, spec.units, task.n_out,
                             seed=spec.seed if seed is None else seed, tau=spec.tau,
                             dtype=spec.dtype, cell=cell, dale=spec.dale,
                             connectivity=spec.connectivity)


def load_for_task(path, task, dtype):
    """A saved network that fits ``task`` (ValueError naming the mismatch)."""
    import rflo

    net = rflo.load_network(path, dtype=dtype)
    if net.n_in != task.n_in or net.n_out != task.n_out:
        raise ValueError(f"{path}: the network has n_in={net.n_in}, n_out={net.n_out} but the "
                         f"{task.name} task needs n_in={task.n_in}, n_out={task.n_out}")
    return net


# --------------------------------------------------------------------------
# the session


class Session:
    """One run of ``spec`` in ``folder``: one network (or ensemble) per rule.

    Make one with :meth:`start` (a new run) or :meth:`resume` (a killed one);
    :meth:`run` trains, :meth:`close` (or leaving a ``with`` block) releases
    the folder's lock.  ``rules`` default to ``[spec.rule]``; ``rule_lr``
    gives each rule its own rates where ``spec.lr`` is None.
    """

    def __init__(self, spec, folder, *, rules, run_id, lock, network, command="train",
                 rule_lr=None):
        self.spec, self.folder, self.rules = spec, Path(folder), list(rules)
        self.run_id, self.lock, self.network, self.command = run_id, lock, network, command
        self.rule_lr = dict(rule_lr or {})
        self.task, self.cell, self.optimizer = build(spec)

    @property
    def ensemble(self) -> bool:
        return self.spec.seeds is not None

    def rates(self, rule):
        """The rates of ``rule``: three, or a dict by name."""
        lr = self.spec.lr if self.spec.lr is not None else self.rule_lr.get(rule, DEFAULT_LR)
        return dict(lr) if isinstance(lr, dict) else tuple(lr)

    # ---- making one

    @classmethod
    def start(cls, spec: RunSpec, folder, *, rules=None, command="train", rule_lr=None,
              network=None, overwrite=False) -> "Session":
        """A new run: the folder locked and cleared, the initial network drawn
        from the spec (or ``network``), and everything a resume needs written."""
        task, cell, _ = build(spec)  # checked before anything is made
        rules = list(rules or [spec.rule])
        if network is None and spec.init is None:  # memory, rates: refused before the folder
            lrs = dict(rule_lr or {})
            check_run(spec, task, cell, rules, lambda r: spec.lr if spec.lr is not None
                      else lrs.get(r, DEFAULT_LR))
        out, lock = prepare_folder(folder, overwrite)
        try:
            session = cls(spec, out, rules=rules, run_id=uuid.uuid4().hex, lock=lock,
                          network=None, command=command, rule_lr=rule_lr)
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
        session = cls(spec, folder, rules=rules, run_id=saved["run_id"], lock=lock,
                      network=None, command=saved.get("command", "train"),
                      rule_lr=saved.get("rule_lr"))
        session.network = session._read_initial()
        return session

    def close(self):
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _draw(self):
        from rflo.ensemble import stack_networks

        s, task = self.spec, self.task
        draw = lambda seed: draw_network(s, task, self.cell, seed)  # noqa: E731
        if s.init is not None:
            if s.seeds is not None:
                raise ValueError("init starts one network; with seeds each network is drawn "
                                 "from its seed (drop one of them)")
            net = load_for_task(s.init, task, s.dtype)
            return net._replace(cell=self.cell) if s.derivative is not None else net
        return draw(s.seed) if s.seeds is None else stack_networks([draw(x) for x in s.seeds])

    def _read_initial(self):
        from rflo.ensemble import stack_networks
        from rflo.io import network_run_id

        def back(path):
            net = load_for_task(path, self.task, self.spec.dtype)
            if network_run_id(path) != self.run_id:
                raise ValueError(f"{path} does not belong to the run in {self.folder} (run ids "
                                 "differ); start it again with --overwrite")
            return net

        if not self.ensemble:
            return back(self.folder / "initial.npz")
        return stack_networks([back(self.folder / f"initial.seed{s}.npz") for s in self.spec.seeds])

    def settings(self) -> dict:
        """The run's settings as saved (``run.json``, ``config.toml``)."""
        s = self.spec.as_dict()
        if self.command == "compare":
            s.pop("rule")
            s.pop("init")
            s["rules"] = list(self.rules)
            s["rule_lr"] = {r: (dict(v) if isinstance(v, dict) else list(v))
                            for r, v in self.rule_lr.items()}
        return s

    def _save_start(self):
        """The initial network and every rule's checkpoint at trial 0, then
        the settings that make the run resumable (last: a folder without them
        is not a run to resume)."""
        import rflo
        from rflo import checkpoint, runconfig
        from rflo.ensemble import unstack_networks

        net, out, run_id = self.network, self.folder, self.run_id
        if not self.ensemble:
            rflo.save_network(out / "initial.npz", net, run_id=run_id)
            empty = np.zeros(0, net.dtype)
            start = checkpoint.Progress(net, empty, empty, 0.0)
        else:
            seeds = self.spec.seeds
            for s, member in zip(seeds, unstack_networks(net)):
                rflo.save_network(out / f"initial.seed{s}.npz", member, run_id=run_id)
            empty = np.zeros((len(seeds), 0), net.dtype)
            start = checkpoint.Progress(net, empty, empty, 0.0, np.full(len(seeds), np.inf),
                                        frozen_at=np.full(len(seeds), -1))
        for name in self.rules:
            checkpoint.save_progress(out, name, start, run_id)
        settings = self.settings()
        runconfig.write_config(out / "config.toml", settings)
        checkpoint.save_settings(out, {"command": self.command, "run_id": run_id, **settings})

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
        if stop is None:
            with StopRequest() as request:
                return self.run(progress=progress, stop=request)
        done = {}
        for name in self.rules:
            done[name] = self.train_rule(name, stop, progress)
            self.save_networks(name, done[name])
        return done

    def info(self, rule, trials, seed=None) -> dict:
        """What a trained network's file records of its training (``rflo eval``
        reads its task back)."""
        from rflo import runconfig

        s, lr = self.spec, self.rates(rule)
        return {"task": runconfig.task_record(self.task), "rule": rule, "trials": trials,
                "lr": dict(lr) if isinstance(lr, dict) else list(lr), "online": s.online,
                "loss": s.loss, "optimizer": s.optimizer, "optimizer_rate": s.optimizer_rate,
                "batch": s.batch, "seed": s.seed if seed is None else seed, "dtype": s.dtype,
                "run_id": self.run_id}

    def save_networks(self, rule, prog) -> list:
        """Write rule ``rule``'s trained network (``RULE.npz``; an ensemble's
        ``RULE.seedS.npz``), each with its record (:meth:`info`) and the run's
        id; returns the networks (an ensemble's unstacked)."""
        import rflo
        from rflo.ensemble import unstack_networks

        if not self.ensemble:
            rflo.save_network(self.folder / f"{rule}.npz", prog.network, run_id=self.run_id,
                              info=self.info(rule, prog.done))
            return [prog.network]
        members = unstack_networks(prog.network)
        for s, member in zip(self.spec.seeds, members):
            rflo.save_network(self.folder / f"{rule}.seed{s}.npz", member, run_id=self.run_id,
                              info=self.info(rule, prog.done, seed=s))
        frozen = np.asarray(prog.frozen_at if prog.frozen_at is not None else [])
        if prog.best is not None and np.any(frozen >= 0):  # a diverged network's best too
            for i, (s, best) in enumerate(zip(self.spec.seeds, unstack_networks(prog.best))):
                if frozen[i] >= 0:
                    rflo.save_network(self.folder / f"{rule}.seed{s}.best.npz", best,
                                      run_id=self.run_id,
                                      info=self.info(rule, int(prog.best_at[i]), seed=s))
        return members

    def _checkpoint(self, name):
        from rflo import checkpoint
        path = self.folder / checkpoint.CHECKPOINT_DIR / f"{name}.npz"
        prog = checkpoint.load_progress(self.folder, name, self.run_id)
        if prog is None:
            raise ValueError(f"{path} is missing, so the run cannot resume; start it again "
                             "with --overwrite")
        net = self.network
        for which, other in (("network", prog.network), ("previous network", prog.previous)):
            if other is not None and not same_shape(other, net):
                raise ValueError(f"{path}: its {which} (n_rec={other.n_rec}) does not match the "
                                 f"run's initial network (n_rec={net.n_rec}, {net.cell.name})")
        if prog.done > self.spec.trials:
            raise ValueError(f"checkpoint of {name!r} has {prog.done} trials, more than "
                             f"--trials {self.spec.trials}")
        return prog

    def train_rule(self, name, stop, progress=None):
        """Train rule ``name`` from its checkpoint, checkpointing as it goes."""
        return train_segments(self, name, self._checkpoint(name), stop, progress)
