"""Figure 2's learning-rate search as sweeps (:mod:`rflo.sweep`): stored,
resumable, on every core or a Slurm cluster.

The search has three stages (:data:`rflo.paper.figure2_train.LR_SELECTION`),
each one sweep over every (rule, period) of the figure:

1. ``joint``: one rate for every matrix, as the paper searched ("a grid search
   over eta_{1,2,3} = eta in [1e-4, 3e-4, 1e-3, ..., 3e-1]", Methods,
   "Simulation details"); the shipped ``examples/sweeps/figure2_search_*.toml``;
2. ``rec``: ``lr_rec`` over the grid, ``lr_out`` at stage 1's rate;
3. ``out``: ``lr_out`` over the grid, ``lr_rec`` at stage 2's rate.

Every point trains ``cfg.grid_networks`` networks of seeds ``cfg.seed + 1000
+ j`` (not among the reported ones) for the figure's trials; it is scored as
:func:`rflo.paper.figure2_train.grid_search` scores it (the in-process
search), and :func:`search` returns the same records.  ``rflo figure2 --search
--sweep DIR`` runs it in ``DIR/search/{joint,rec,out}``::

    rflo sweep run examples/sweeps/figure2_search_full.toml --out DIR   # stage 1 alone
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rflo.paper.figure2_config import PAPER_GRID
from rflo.paper.figure2_sweep import grid_entry
from rflo.paper.figure2_train import (
    final_losses,
    grid_seeds,
    networks,
    score_points,
    search_record,
    stage_points,
    task_of,
)

__all__ = [
    "PAPER_GRID",
    "STAGES",
    "grid_seeds",
    "search_spec",
    "read_stage",
    "untrained_losses",
    "search",
]

STAGES = ("joint", "rec", "out")


def _points(cfg, stage, chosen):
    grid = [float(e) for e in cfg.lr_grid]
    out = {}
    for key in cfg.rate_keys():
        if stage != "joint" and key not in (chosen or {}):
            raise ValueError(
                f"stage {stage!r} needs the previous stage's rate of {key} (run the stages in order)"
            )
        out[key] = stage_points(stage, grid, None if stage == "joint" else chosen[key])
    return out


def search_spec(cfg, stage: str = "joint", chosen: dict = None) -> dict:
    """The sweep spec of one search stage: a ``[[grid]]`` per (rule, period)
    and grid point, each training :func:`grid_seeds`'s networks; ``chosen``
    ``{(rule, period_tau): rate}`` is the previous stage's choice (stages
    ``rec`` and ``out``).  Only the final trial is recorded."""
    if stage not in STAGES:
        raise ValueError(f"a search stage is one of {', '.join(STAGES)}; got {stage!r}")
    if cfg.seeds and set(cfg.seeds) & set(grid_seeds(cfg)):
        raise ValueError("the grid networks' seeds (seed + 1000 + j) overlap --seeds; change one")
    grids = [
        grid_entry(cfg, rule, p, rec, out, grid_seeds(cfg))
        for (rule, p), points in _points(cfg, stage, chosen).items()
        for rec, out in points
    ]
    return {
        "name": f"figure2-search-{stage}-{cfg.mode}",
        "trials": cfg.trials,
        "record_every": cfg.trials,
        "max_networks": 64,
        "grid": grids,
    }


def read_stage(
    cfg, folder, stage, chosen=None, backend=None, devices=None, log=None, untrained=None
) -> dict:
    """Run (or resume) one stage's sweep in ``folder``; returns ``{(rule,
    period_tau): (best index, the stage's record)}`` as the in-process search
    scores it (:func:`rflo.paper.figure2_train.score_points`).  ``untrained``:
    ``{(rule, period_tau): median untrained loss}`` when known (:func:`untrained_losses`)."""
    untrained = untrained_losses(cfg) if untrained is None else untrained
    from rflo.ensemble import stack_networks
    from rflo.sweep import Sweep, load_networks

    sweep = Sweep.from_dict(search_spec(cfg, stage, chosen))
    table = sweep.run(folder, backend=backend, devices=devices, compile_cache=True, log=log)
    point = np.asarray(table.column("point").to_numpy())
    diverged_at = np.asarray(table.column("diverged_at").to_numpy())
    diverged = np.zeros(int(point.max()) + 1, np.int64)
    np.maximum.at(diverged, point, diverged_at)
    nets = load_networks(folder)
    seeds = grid_seeds(cfg)
    out, start = {}, 0
    for key, points in _points(cfg, stage, chosen).items():
        rule, p = key
        k = len(points) * len(seeds)
        idx = list(range(start, start + k))
        start += k
        trained = stack_networks([nets[i] for i in idx])
        final = final_losses(trained, task_of(cfg, p)).reshape(len(points), len(seeds))
        out[key] = score_points(points, final, diverged[idx].reshape(final.shape), untrained[key])
    return out


def untrained_losses(cfg) -> dict:
    """``{(rule, period_tau): the grid networks' median untrained final loss}``."""
    seeds = grid_seeds(cfg)
    return {
        (rule, p): float(np.median(final_losses(networks(cfg, rule, seeds), task_of(cfg, p))))
        for rule, p in cfg.rate_keys()
    }


def search(cfg, folder, backend=None, devices=None, log=None) -> list:
    """The whole search as three sweeps in ``folder/{joint,rec,out}``: the
    records :func:`rflo.paper.figure2_train.search` returns (lr_search.json)."""
    folder = Path(folder)
    grid = [float(e) for e in cfg.lr_grid]
    stages, chosen, untrained = {}, None, untrained_losses(cfg)
    for stage, pick in (("joint", 0), ("rec", 0), ("out", 1)):
        stages[stage] = read_stage(
            cfg, folder / stage, stage, chosen, backend, devices, log, untrained
        )
        chosen = {k: rec["points"][best][pick] for k, (best, rec) in stages[stage].items()}
    return [
        search_record(
            rule,
            p,
            grid,
            untrained[rule, p],
            tuple(stages[s][rule, p] for s in STAGES),
            log=log,
        )
        for rule, p in cfg.rate_keys()
    ]
