"""Figure 2 as a sweep (:mod:`rflo.sweep`): on every core, or on a Slurm cluster."""

from __future__ import annotations

import numpy as np

from rflo.paper.figure2_train import RULES

__all__ = ["network_fields", "grid_entry", "sweep_spec", "read_sweep"]


def network_fields(cfg, rule) -> dict:
    """The grid fields that draw ``rule``'s networks as the figure does: the
    named network ``murray2019`` (``murray2019_dale`` for Dale's law) for the
    Methods' weights, the size and ``dale`` for the notebook's
    (:func:`rflo.init_network`, the sweep's default draw)."""
    if cfg.init == "methods":
        from rflo.paper.common import MURRAY_N, MURRAY_TAU

        if (cfg.n_rec, float(cfg.tau)) != (MURRAY_N, MURRAY_TAU) or cfg.derivative != "seed":
            raise ValueError(
                f"a sweep draws the Methods' networks by name (murray2019: N = {MURRAY_N}, "
                f"tau = {MURRAY_TAU:g}, the notebook's f'); this run has N = {cfg.n_rec}, "
                f"tau = {cfg.tau:g}, derivative {cfg.derivative!r}: use --init notebook"
            )
        return {"network": "murray2019_dale" if rule == "rflo_dale" else "murray2019"}
    fields = {"units": cfg.n_rec, "tau": float(cfg.tau)}
    if rule == "rflo_dale":
        fields["dale"] = cfg.dale
    if cfg.derivative != "seed":  # the cell's default is the notebook's f'
        fields["derivative"] = cfg.derivative
    return fields


def grid_entry(cfg, rule, period_tau, lr_rec, lr_out, seeds) -> dict:
    """One ``[[grid]]`` of the figure's sweeps: ``rule``'s networks of ``seeds``
    (:func:`network_fields`) trained at ``(lr_rec, lr_out)`` (``lr_in = 0``) on
    the period ``period_tau``."""
    return {
        "rule": RULES[rule],
        **network_fields(cfg, rule),
        "lr_in": 0.0,
        "lr_rec": lr_rec,
        "lr_out": lr_out,
        "seed": list(seeds),
        "set": {"period": int(round(period_tau * cfg.tau))},
    }


def sweep_spec(cfg) -> dict:
    """The figure's training runs as a sweep spec (:mod:`rflo.sweep`): one
    ``[[grid]]`` per (rule, period) at its chosen rate, every trial recorded.
    ``rflo figure2 --sweep DIR`` runs it (on any backend) and draws the figure
    from the sweep's table and networks, which equal :func:`run`'s."""
    cfg.check()
    if cfg.seeds:
        raise ValueError("the figure's sweep reports seed, seed + 1, ...; give --seed, not --seeds")
    if cfg.lr is None:
        raise ValueError(
            "the figure's sweep needs its learning rates (cfg.lr); search them "
            "first (rflo figure2 --search) or use the stored ones"
        )
    lrs = cfg.rates()
    grids = []
    for rule, p in cfg.rate_keys():
        n = cfg.ablation_networks if rule in ("local", "random_feedback") else cfg.n_networks
        grids.append(grid_entry(cfg, rule, p, *lrs[rule, p], [cfg.seed + k for k in range(n)]))
    return {
        "name": f"figure2-{cfg.mode}",
        "trials": cfg.trials,
        "record_every": 1,
        "max_networks": max(64, cfg.n_networks, cfg.ablation_networks),
        "grid": grids,
    }


def read_sweep(cfg, folder, trained_type, backend=None, devices=None, log=None) -> dict:
    """Run (or resume) the figure's sweep in ``folder`` and return its trained
    networks ``{(rule, period): trained_type(networks, losses, alignments, 0.0)}``,
    read from the sweep's table and networks (``figure2.run_sweep`` turns them
    into :func:`~rflo.paper.figure2.run`'s numbers)."""
    from rflo.ensemble import stack_networks
    from rflo.sweep import Sweep, load_networks

    sweep = Sweep.from_dict(sweep_spec(cfg))
    table = sweep.run(folder, backend=backend, devices=devices, compile_cache=True, log=log)
    points = np.asarray(table.column("point").to_numpy())
    loss = np.asarray(table.column("loss").to_numpy(zero_copy_only=False), float)
    align = np.asarray(table.column("alignment").to_numpy(zero_copy_only=False), float)
    if points.size != len(sweep.spec.points()) * cfg.trials:
        raise ValueError(f"{folder}: the sweep's table does not hold every trial of the figure")
    loss = loss.reshape(-1, cfg.trials)
    align = align.reshape(-1, cfg.trials)
    nets = load_networks(folder)
    trained, start = {}, 0
    for (rule, p), grid in zip(cfg.rate_keys(), sweep.spec.grids):
        n = len(grid.values["seed"])
        idx = list(range(start, start + n))
        trained[rule, p] = trained_type(
            stack_networks([nets[i] for i in idx]), loss[idx], align[idx], 0.0
        )
        start += n
    return trained
