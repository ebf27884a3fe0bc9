"""A :class:`rflo.session.Session`'s run folder: what a new run writes at its
start (initial networks, every rule's checkpoint at trial 0, the settings),
the initial networks read back on resume, and the checkpoint each rule goes
on from (checked against the run)."""

from __future__ import annotations

from rflo.segments import same_shape
from rflo.session_build import load_for_task

__all__ = ["save_start", "read_initial", "rule_checkpoint"]


def save_start(session):
    """The initial network and every rule's checkpoint at trial 0, then
    the settings that make the run resumable (last: a folder without them
    is not a run to resume)."""
    import rflo
    from rflo import checkpoint, runconfig
    from rflo.ensemble import unstack_networks

    net, out, run_id = session.network, session.folder, session.run_id
    if not session.ensemble:
        rflo.save_network(out / "initial.npz", net, run_id=run_id)
    else:
        for s, member in zip(session.seeds, unstack_networks(net)):
            rflo.save_network(out / f"initial.seed{s}.npz", member, run_id=run_id)
    start = session.fresh()
    for name in session.rules:
        checkpoint.save_progress(out, name, start, run_id)
    settings = session.settings()
    runconfig.write_config(out / "config.toml", settings)
    checkpoint.save_settings(out, {"command": session.command, "run_id": run_id, **settings})


def read_initial(session):
    """The initial network(s) of ``session``'s run, read back from its folder
    (each checked to fit the task and to belong to the run)."""
    from rflo.ensemble import stack_networks
    from rflo.io import network_run_id

    def back(path):
        net = load_for_task(path, session.task, session.spec.dtype)
        if network_run_id(path) != session.run_id:
            raise ValueError(
                f"{path} does not belong to the run in {session.folder} (run ids "
                "differ); start it again with --overwrite"
            )
        return net

    if not session.ensemble:
        return back(session.folder / "initial.npz")
    return stack_networks([back(session.folder / f"initial.seed{s}.npz") for s in session.seeds])


def rule_checkpoint(session, name):
    """The :class:`~rflo.checkpoint.Progress` rule ``name`` of ``session`` goes on
    from: its checkpoint, checked against the run (a session of given networks:
    a work folder's checkpoint where it fits, else :meth:`Session.fresh`)."""
    from rflo import checkpoint

    if not session.files:  # given networks: a work folder's checkpoint is a cache
        try:
            prog = (
                None
                if session.folder is None
                else checkpoint.load_progress(session.folder, name, session.run_id)
            )
        except ValueError:
            prog = None
        ok = (
            prog is not None
            and prog.done <= session.spec.trials
            and prog.frozen_at is not None
            and same_shape(prog.network, session.network)
        )
        return prog if ok else session.fresh()
    path = session.folder / checkpoint.CHECKPOINT_DIR / f"{name}.npz"
    prog = checkpoint.load_progress(session.folder, name, session.run_id)
    if prog is None:
        raise ValueError(
            f"{path} is missing, so the run cannot resume; start it again with --overwrite"
        )
    net = session.network
    for which, other in (("network", prog.network), ("previous network", prog.previous)):
        if other is not None and not same_shape(other, net):
            raise ValueError(
                f"{path}: its {which} (n_rec={other.n_rec}) does not match the "
                f"run's initial network (n_rec={net.n_rec}, {net.cell.name})"
            )
    if prog.done > session.spec.trials:
        raise ValueError(
            f"checkpoint of {name!r} has {prog.done} trials, more than "
            f"--trials {session.spec.trials}"
        )
    return prog
