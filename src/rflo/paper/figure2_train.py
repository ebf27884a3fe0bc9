"""Figure 2's training: its networks, its runs as :class:`rflo.spec.RunSpec`
descriptions trained through the library's shared ensemble trainer, the
final losses, and the learning-rate search (:func:`grid_search`)."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from rflo.paper.common import median_band, paper_network, spec_train
from rflo.rules.base import forward
from rflo.spec import RunSpec

__all__ = [
    "RULES",
    "RULE_LABELS",
    "COLORS",
    "DIVERGED",
    "LR_SELECTION",
    "networks",
    "run_spec",
    "train",
    "final_losses",
    "trained_outputs",
    "grid_search",
    "grid_seeds",
    "chosen_rates",
    "score_points",
    "stage_points",
    "search_record",
    "search",
    "rate_text",
]

LR_SELECTION = (
    "For every (rule, period) the figure shows, the recurrent and readout rates "
    "(lr_rec, lr_out; lr_in = 0) are searched on the log grid lr_grid in three "
    "stages: (1) one rate for both, as the paper's search; (2) lr_rec over the grid "
    "with lr_out at stage 1's rate; (3) lr_out over the grid with lr_rec at stage "
    "2's. Every point trains grid_networks networks whose seeds (seed + 1000, "
    "1001, ...) are not among the reported ones, for as many trials as the reported "
    "run, at that period. A point counts only if none of its networks diverged "
    "(the trainer's guard) and every final loss (learning off) is finite and below "
    "10x the untrained loss; among those, the lowest median final loss wins, so each "
    "stage can only improve on the one before. A rate chosen at the grid's edge is "
    "flagged (at_edge). Separate rates matter because a rule that sends errors "
    "through B takes recurrent steps |B|/|W_out| times larger than BPTT's at the same "
    "rate (about 10 with the Methods' weights, 100 with the notebook's, N = 30). The "
    "rates are searched with `python -m rflo.paper.figure2 --search` and stored in "
    "CHOSEN_LR; the reproduction itself reuses them."
)

#: the figure's rule names -> the library's rules
RULES = {
    "bptt": "bptt",
    "rflo": "rflo",
    "local": "local",
    "random_feedback": "random_feedback",
    "rflo_dale": "rflo",
}
RULE_LABELS = {
    "bptt": "BPTT",
    "rflo": "RFLO",
    "local": "locality without random feedback",
    "random_feedback": "random feedback without locality",
    "rflo_dale": "RFLO, Dale's law",
}
COLORS = {
    "bptt": "tab:blue",
    "rflo": "tab:red",
    "local": "tab:purple",
    "random_feedback": "tab:cyan",
    "rflo_dale": "tab:green",
    "untrained": "0.5",
}
DIVERGED = 1e6  # losses above this (or NaN) are stored as this value in summaries


class Log:
    """A log callable that prefixes the seconds since it was made."""

    def __init__(self, log, name="figure2"):
        self.log, self.name = log, name
        self.t0 = time.perf_counter()

    def __call__(self, msg):
        if self.log is not None:
            self.log(f"[{self.name} {time.perf_counter() - self.t0:6.1f}s] {msg}")


def networks(cfg, rule, seeds):
    """The stacked initial networks of ``rule`` (Dale's law for ``rflo_dale``),
    one per seed, drawn by :func:`rflo.paper.common.paper_network` with
    ``cfg.init`` (the Methods' weights by default)."""
    from rflo.ensemble import stack_networks

    dale = cfg.dale if rule == "rflo_dale" else None
    return stack_networks(
        [paper_network(1, cfg.n_rec, 1, int(s), cfg.tau, init=cfg.init, dale=dale) for s in seeds]
    )


def run_spec(cfg, rule, period_tau, seeds=None, trials=None, lr=(0.0, 0.03, 0.03)) -> RunSpec:
    """The run description of one (rule, period) of the figure."""
    return RunSpec(
        rule=RULES[rule],
        units=cfg.n_rec,
        tau=cfg.tau,
        derivative=cfg.derivative,
        dale=cfg.dale if rule == "rflo_dale" else None,
        lr=lr,
        period=int(round(period_tau * cfg.tau)),
        trials=int(cfg.trials if trials is None else trials),
        seeds=None if seeds is None else [int(s) for s in seeds],
    )


def train(cfg, nets, rule, period_tau, lr_rec, lr_out, seeds, trials=None):
    """Train stacked ``nets`` as :func:`run_spec` describes, each network at
    its own ``(lr_rec, lr_out)`` (scalars or one per network)."""
    k = np.shape(nets.w_rec)[0]
    rec = np.broadcast_to(np.asarray(lr_rec, float), (k,))
    out = np.broadcast_to(np.asarray(lr_out, float), (k,))
    lr = np.stack([np.zeros(k), rec, out], axis=1)
    distinct = len(set(int(s) for s in seeds)) == len(seeds)
    spec = run_spec(cfg, rule, period_tau, seeds if distinct else None, trials)
    return spec_train(spec, nets, lr=lr, seeds=[int(s) for s in seeds])


def task_of(cfg, period_tau):
    """The periodic task at ``period_tau`` (built from the run description)."""
    from rflo.session import build

    return build(run_spec(cfg, "rflo", period_tau))[0]


@jax.jit
def _outputs(nets, x):
    """Outputs (K, T-1) of stacked networks with learning off (one output)."""

    def one(net):
        _, h = forward(net, x, 4)
        return (h @ net.w_out.T)[:, 0]

    return jax.vmap(one)(nets)


@jax.jit
def _cell_outputs(nets, x):
    """As :func:`_outputs`, for networks of any cell."""
    from rflo.cells import forward as cell_forward

    return jax.vmap(lambda net: cell_forward(net, x).y[:, 0])(nets)


def final_losses(nets, task) -> np.ndarray:
    """(K,) loss of each stacked network over one trial with learning off,
    ``0.5 sum_{t>=1} (y*[t] - y[t])^2 / T`` (the trainer's per-trial loss)."""
    from rflo.cells import LeakyTanh

    x, y, _ = task.stacked("float32")
    jnets = jax.tree_util.tree_map(jnp.asarray, nets)
    outputs = _outputs if type(nets.cell) is LeakyTanh else _cell_outputs
    out = np.asarray(outputs(jnets, jnp.asarray(x[0])), float)
    target = y[0, 1:, 0].astype(float)
    with np.errstate(over="ignore", invalid="ignore"):
        loss = 0.5 * np.sum((target[None] - out) ** 2, axis=1) / y.shape[1]
    return clean(loss)


def trained_outputs(nets, task) -> np.ndarray:
    x, _, _ = task.stacked("float32")
    jnets = jax.tree_util.tree_map(jnp.asarray, nets)
    return np.asarray(_outputs(jnets, jnp.asarray(x[0])), float)


def clean(a):
    """Losses with the diverged ones (NaN, or above :data:`DIVERGED`) as :data:`DIVERGED`."""
    a = np.asarray(a, float)
    return np.where(np.isfinite(a) & (a < DIVERGED), a, DIVERGED)


def stats(a, axis=0):
    """``(median, p25, p75)`` with diverged values counted as :data:`DIVERGED`."""
    return median_band(clean(a), axis)


def grid_seeds(cfg) -> list:
    """The seeds of the networks every grid point trains: ``cfg.seed + 1000 +
    j`` for ``j < cfg.grid_networks``, apart from the reported ones."""
    return [cfg.seed + 1000 + j for j in range(cfg.grid_networks)]


def score_points(points, final, diverged, untrained):
    """One stage of the search: ``points`` (rec, out) pairs, ``final`` and
    ``diverged`` (points, networks) final losses and divergence trials.  A
    point counts only if every one of its networks stayed stable (no
    divergence, final loss finite and at most 10x the untrained one); the
    lowest median final loss wins.  Returns ``(best index, the stage's record)``."""
    final = np.where(np.asarray(final) > 10 * untrained, np.inf, final)
    n_diverged = np.sum(np.asarray(diverged) > 0, axis=1)
    ok = (n_diverged == 0) & np.all(np.isfinite(final), axis=1)
    scores = np.where(ok, np.median(final, axis=1), np.inf)
    best = int(np.argmin(scores)) if np.any(np.isfinite(scores)) else 0
    return best, {
        "points": [[float(v) for v in p] for p in points],
        "score": [float(v) for v in scores],
        "final_loss": [[float(v) for v in row] for row in final],
        "diverged": [int(v) for v in n_diverged],
    }


def stage_points(stage, grid, chosen=None):
    """The (lr_rec, lr_out) points of a search stage on ``grid``: ``joint``
    one rate for both (the paper's search); ``rec`` lr_rec over the grid at
    ``chosen`` (the joint rate); ``out`` lr_out over the grid at ``chosen``
    (stage 2's lr_rec)."""
    if stage == "joint":
        return [(e, e) for e in grid]
    if stage == "rec":
        return [(e, chosen) for e in grid]
    if stage == "out":
        return [(chosen, e) for e in grid]
    raise ValueError(f"a search stage is one of joint, rec, out; got {stage!r}")


def search_record(rule, period_tau, grid, untrained, stages, seconds=0.0, log=None) -> dict:
    """The search's record of one (rule, period) from its three stages'
    ``(best, record)`` pairs (:func:`score_points`), as lr_search.json holds it."""
    (_, joint), (b_rec, rec_stage), (b_out, out_stage) = stages
    eta = joint["points"][stages[0][0]][0]
    lr_rec, lr_out = rec_stage["points"][b_rec][0], out_stage["points"][b_out][1]
    at_edge = [
        name for name, v in (("lr_rec", lr_rec), ("lr_out", lr_out)) if v in (grid[0], grid[-1])
    ]
    best_score = out_stage["score"][b_out]
    learned = bool(np.isfinite(best_score) and best_score < 0.5 * untrained)
    if log:
        log(
            f"grid {rule} T={period_tau}tau: joint -> {eta:g}, lr_rec -> {lr_rec:g}, lr_out -> "
            f"{lr_out:g}: median final loss {best_score:.3g} (untrained "
            f"{untrained:.3g})"
            + (f"; at the grid's edge: {', '.join(at_edge)}" if at_edge else "")
            + f" ({seconds:.0f}s)"
        )
    return {
        "rule": rule,
        "period_tau": int(period_tau),
        "grid": [float(e) for e in grid],
        "untrained": float(untrained),
        "joint": joint,
        "rec": rec_stage,
        "out": out_stage,
        "chosen": {"lr_rec": lr_rec, "lr_out": lr_out},
        "at_edge": at_edge,
        "learned": learned,
        "seconds": float(seconds),
    }


def grid_search(cfg, rule: str, period_tau: int, log=None) -> dict:
    """Pick ``rule``'s recurrent and readout rates at one period on ``cfg.lr_grid``.

    Three stages (joint rate, then ``lr_rec``, then ``lr_out``), each one
    compiled call that trains ``grid_networks`` networks per point (seeds
    ``cfg.seed + 1000 + j``, not among the reported ones) for ``cfg.trials``
    trials; see :data:`LR_SELECTION`.
    """
    task = task_of(cfg, period_tau)
    seeds = grid_seeds(cfg)
    untrained = float(np.median(final_losses(networks(cfg, rule, seeds), task)))
    grid = [float(e) for e in cfg.lr_grid]
    seconds = 0.0

    def score(points):
        nonlocal seconds
        all_seeds = [s for _ in points for s in seeds]
        rec = np.repeat([p[0] for p in points], len(seeds))
        out = np.repeat([p[1] for p in points], len(seeds))
        res = train(cfg, networks(cfg, rule, all_seeds), rule, period_tau, rec, out, all_seeds)
        seconds += res.seconds
        final = final_losses(res.networks, task).reshape(len(points), len(seeds))
        diverged = np.asarray(res.diverged_at).reshape(final.shape)
        return score_points(points, final, diverged, untrained)

    joint = score(stage_points("joint", grid))
    rec = score(stage_points("rec", grid, grid[joint[0]]))
    out = score(stage_points("out", grid, grid[rec[0]]))
    return search_record(rule, period_tau, grid, untrained, (joint, rec, out), seconds, log)


def chosen_rates(records) -> tuple:
    """The search's choices as a :attr:`Config.lr` value: ``((rule,
    period_tau, lr_rec, lr_out), ...)`` from its records (lr_search.json)."""
    return tuple(
        (g["rule"], g["period_tau"], g["chosen"]["lr_rec"], g["chosen"]["lr_out"]) for g in records
    )


def search(cfg, log=None) -> list:
    """Run :func:`grid_search` for every (rule, period) of the figure."""
    log = Log(log)
    return [grid_search(cfg, rule, p, log) for rule, p in cfg.rate_keys()]


def rate_text(rates):
    """``lr_rec/lr_out`` as text (one number when they are equal)."""
    rec, out = rates
    return f"{rec:g}" if rec == out else f"{rec:g}/{out:g}"
