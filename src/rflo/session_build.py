"""What a :class:`rflo.session.Session` is made of, from its spec: the task,
cell and optimiser (:func:`build`), the spec read back from a run's saved
settings (:func:`spec_of`), and its networks, drawn (:func:`draw_network`) or
loaded to fit the task (:func:`load_for_task`)."""

from __future__ import annotations

from rflo.spec import RunSpec

__all__ = ["DEFAULT_LR", "build", "spec_of", "draw_network", "load_for_task"]

#: rates of a rule whose run names none (the spec's default, the seed notebook's)
DEFAULT_LR = tuple(RunSpec.lr)


def build(spec: RunSpec):
    """``(task, cell, optimizer)`` of a spec (built, so checked; ValueError).
    With ``spec.network`` the cell is the named network's (one is drawn)."""
    from rflo import runconfig, spec_build
    from rflo.losses import check_outputs, get_loss

    spec_build.check_spec(spec)
    task = runconfig.make_run_task(spec.task, spec.set, spec.period)
    cell = spec_build.spec_cell(spec, task)
    spec_build.check_rate_cell(spec, cell)
    check_outputs(get_loss(spec.loss), task.n_out)
    return task, cell, runconfig.make_optimizer(spec.optimizer, spec.optimizer_rate)


def spec_of(saved: dict) -> RunSpec:
    """The :class:`RunSpec` of a run's saved settings (older runs' too)."""
    from rflo.spec import config_keys

    data = {k: v for k, v in saved.items() if k in config_keys()}
    if saved.get("command") == "compare" or "rules" in saved:
        data.pop("rule", None)
    return RunSpec.from_dict(data, "saved settings")


def draw_network(spec: RunSpec, task, cell, seed=None):
    """A network drawn as ``spec`` says (units, tau, dtype, Dale's law,
    connectivity) for ``task``, from ``seed`` (default ``spec.seed``); with
    ``spec.network`` the named network's builder draws it (its own cell, in
    the spec's dtype; :mod:`rflo.networks`)."""
    import rflo

    if spec.network is not None:
        from rflo.spec_build import named_network

        return named_network(spec, task, spec.seed if seed is None else seed)

    return rflo.init_network(
        task.n_in,
        spec.units,
        task.n_out,
        seed=spec.seed if seed is None else seed,
        tau=spec.tau,
        dtype=spec.dtype,
        cell=cell,
        dale=spec.dale,
        connectivity=spec.connectivity,
    )


def load_for_task(path, task, dtype):
    """A saved network that fits ``task`` (ValueError naming the mismatch)."""
    import rflo

    net = rflo.load_network(path, dtype=dtype)
    if net.n_in != task.n_in or net.n_out != task.n_out:
        raise ValueError(
            f"{path}: the network has n_in={net.n_in}, n_out={net.n_out} but the "
            f"{task.name} task needs n_in={task.n_in}, n_out={task.n_out}"
        )
    return net
