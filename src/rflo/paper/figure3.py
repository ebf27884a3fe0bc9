"""Murray (2019) Figure 3: interval matching ("ready set go"), RFLO against BPTT.

The task (:func:`rflo.tasks.builtin.interval_matching`): one input carries two
Gaussian pulses (SD 15 steps) a random delay ``d`` apart; the output must
produce the same pulse ``d`` after the second.  The paper's settings (Methods,
"Simulation details"): N = 100 units, tau = 10 steps, 5000 training trials
with the updates accumulated over batches of 10 trials, learning rates 0.001
(RFLO) and 0.003 (BPTT) for every matrix; RFLO trained with delays up to 15
tau and 20 tau (panel b), BPTT up to 25 tau (panel c); panels b and c plot the
time of the output's peak after the second pulse against the test delay.

Settings this module had to choose (the paper does not give them):

* one input channel, pulses of height 1, "ready" at step 50, delays drawn
  uniformly from 5 tau (50 steps, the shortest at which two pulses are still
  distinct) to the longest; the trial ends 4 SD after the latest go pulse;
* the rates as a batch average: the paper sums 10 trials' updates, this
  library's ``batch=10`` averages them, so its rates are 10x the paper's
  (0.01 RFLO, 0.03 BPTT) and the updates are the same;
* initial networks as the paper's Methods say (``rflo.paper.common.paper_network``),
  h0 = 0.1; 9 networks per condition (as in Figure 2), seeds 0..8;
* besides the paper's three conditions, RFLO at 25 tau and BPTT at 15 tau, so
  that both claims are tested on equal terms;
* the produced interval: the step of the output's maximum from 2 SD after the
  second pulse to the end of the trial the condition was trained on (the test
  window equals the trained trial length), minus the second pulse's step;
  tests at every tau from 5 tau to the condition's longest delay;
* f' is the exact ``1 - tanh^2`` (the paper's phi = tanh; ``--derivative seed``
  for the notebook's approximation);
* ``--channels 2``: "ready" and "set" on separate input channels (a variant;
  the paper's caption says only "two input pulses").

Every condition is a :class:`rflo.spec.RunSpec` trained through the shared
ensemble trainer (:func:`rflo.paper.common.spec_train`).

Command line: ``rflo figure3 [--quick] [--out FOLDER] [--seed N] [--seeds S,S,...]
[--derivative exact|seed] [--channels 1|2] [--overwrite]``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from rflo.paper.common import (
    add_figure_arguments,
    band_rows,
    csv_text,
    figure_main,
    json_safe,
    lower_verdict,
    network_seeds,
    paper_network,
    quartiles,
    ranges_overlap,
    spec_train,
    write_file,
    write_text,
)

__all__ = [
    "Config",
    "FULL",
    "QUICK",
    "run",
    "summarize",
    "write_outputs",
    "main",
    "produced_intervals",
]

DESCRIPTION = (
    "Reproduce Murray (2019) Figure 3 (interval matching, RFLO against BPTT): "
    "PNG, CSVs and summary.json in an output folder."
)


@dataclass(frozen=True)
class Config:
    """Everything that sets the size of the reproduction."""

    mode: str
    n_rec: int = 100
    tau: float = 10.0
    n_networks: int = 9
    updates: int = 500  # x batch = 5000 trials
    batch: int = 10
    ready: int = 50
    min_delay_tau: int = 5
    pulse_sd: float = 15.0
    #: (rule, longest training delay in tau)
    conditions: tuple = (("rflo", 15), ("rflo", 20), ("rflo", 25), ("bptt", 15), ("bptt", 25))
    #: batch-averaged rates (10x the paper's summed 0.001 and 0.003)
    lr: tuple = (("rflo", 0.01), ("bptt", 0.03))
    seed: int = 0
    #: the networks reported, by seed (None: seed, seed + 1, ...)
    seeds: Optional[tuple] = None
    #: f': "exact" (1 - tanh^2) or "seed" (the notebook's approximation)
    derivative: str = "exact"
    #: 1: ready and set pulses on one input; 2: on two (a variant)
    channels: int = 1


FULL = Config(mode="full")
QUICK = Config(
    mode="quick", n_networks=3, conditions=(("rflo", 15), ("rflo", 25), ("bptt", 15), ("bptt", 25))
)


def _task_params(cfg: Config, max_tau: int, delay: Optional[int] = None, n_steps=None):
    lo = cfg.min_delay_tau * int(cfg.tau) if delay is None else delay
    hi = max_tau * int(cfg.tau) if delay is None else delay
    params = dict(min_delay=lo, max_delay=hi, ready=cfg.ready, pulse_sd=cfg.pulse_sd)
    return params if n_steps is None else {**params, "n_steps": int(n_steps)}


def _task(cfg: Config, max_tau: int, delay: Optional[int] = None, n_steps=None):
    from rflo.tasks import make_task

    task = make_task("interval_matching", **_task_params(cfg, max_tau, delay, n_steps))
    return task if cfg.channels == 1 else two_channels(task)


def _two_channel_sample(key, batch, *, n_steps, ready, min_delay, max_delay, pulse_sd):
    import jax
    import jax.numpy as jnp

    delay = jax.random.randint(key, (batch,), min_delay, max_delay + 1)  # as the one-channel task
    t = jnp.arange(n_steps)[None, :]

    def pulse(at):
        return jnp.exp(-0.5 * ((t - at[:, None]) / pulse_sd) ** 2)

    x = jnp.stack([pulse(jnp.full((batch,), ready)), pulse(ready + delay)], axis=-1)
    return x, pulse(ready + 2 * delay)[..., None], jnp.ones((batch, n_steps))


def two_channels(task):
    """The interval-matching ``task`` with "ready" and "set" on two input
    channels (the same delays, target and trial length)."""
    from rflo.tasks.generator import TaskGenerator

    return TaskGenerator(
        "interval_matching_2ch",
        2,
        1,
        task.n_steps,
        _two_channel_sample,
        dict(task.params),
        inputs=("ready pulse", "set pulse"),
        outputs=("go pulse",),
    )


def run_spec(cfg: Config, rule: str, max_tau: int):
    """The run description of one condition (the paper's rates for every matrix,
    updates averaged over batches of ``cfg.batch`` trials)."""
    from rflo.spec import RunSpec

    eta = dict(cfg.lr)[rule]
    return RunSpec(
        rule=rule,
        task="interval_matching",
        set=_task_params(cfg, max_tau),
        units=cfg.n_rec,
        tau=cfg.tau,
        derivative=cfg.derivative,
        lr=(eta, eta, eta),
        batch=cfg.batch,
        trials=cfg.updates,
        seeds=network_seeds(cfg),
    )


def produced_intervals(outputs, cfg: Config, delays):
    """(K, D) produced intervals (steps) and peak heights from (K, D, T) outputs
    of test trials with ``delays``: the output's maximum from 2 SD after the
    second pulse on, minus the second pulse's step."""
    outputs = np.asarray(outputs, float)
    produced, peak = np.zeros(outputs.shape[:2]), np.zeros(outputs.shape[:2])
    for j, d in enumerate(delays):
        set_at = cfg.ready + d
        start = set_at + int(round(2 * cfg.pulse_sd))
        window = np.nan_to_num(outputs[:, j, start:], nan=-np.inf)
        produced[:, j] = start + np.argmax(window, axis=1) - set_at
        peak[:, j] = np.max(window, axis=1)
    return produced, peak


def _test_outputs(nets, cfg, delays, n_steps):
    """(K, D, T) outputs with learning off, for one test trial per delay."""
    import jax
    import jax.numpy as jnp

    from rflo.cells.base import forward

    xs = np.stack([_task(cfg, 0, d, n_steps).trial(0, 0)[0] for d in delays])  # (D, T, n_in)

    @jax.jit
    def run_all(nets, xs):
        def one(net, x):
            return forward(net, x).y[:, 0]

        return jax.vmap(lambda net: jax.vmap(lambda x: one(net, x))(xs))(nets)

    jnets = jax.tree_util.tree_map(jnp.asarray, nets)
    out = np.asarray(run_all(jnets, jnp.asarray(xs, jnp.float32)), float)
    # forward gives steps 1 .. T-1: step 0's output is not used (pad it)
    return np.concatenate([np.zeros(out.shape[:2] + (xs.shape[1] - out.shape[2],)), out], axis=2)


def run(cfg: Config = QUICK, log: Optional[Callable[[str], None]] = None) -> dict:
    """Train every condition and test it; returns the numbers (numpy arrays)."""
    from rflo.ensemble import stack_networks

    t0 = time.perf_counter()
    say = log or (lambda m: None)
    seeds = network_seeds(cfg)
    rates = dict(cfg.lr)
    nets = stack_networks([paper_network(cfg.channels, cfg.n_rec, 1, s, cfg.tau) for s in seeds])
    curves, produced, peaks, delays, examples, n_steps = {}, {}, {}, {}, {}, {}
    for rule, max_tau in cfg.conditions:
        task = _task(cfg, max_tau)
        eta = rates[rule]
        res = spec_train(run_spec(cfg, rule, max_tau), nets, task=task)  # divergence: summary
        d = [int(t * cfg.tau) for t in range(cfg.min_delay_tau, max_tau + 1)]
        # tested on trials as long as the ones it trained on
        n_steps[rule, max_tau] = task.n_steps
        out = _test_outputs(res.networks, cfg, d, task.n_steps)
        produced[rule, max_tau], peaks[rule, max_tau] = produced_intervals(out, cfg, d)
        curves[rule, max_tau], delays[rule, max_tau] = np.asarray(res.loss, float), d
        example = int(np.argmin(np.abs(np.asarray(d) - 10 * cfg.tau)))
        examples[rule, max_tau] = (d[example], out[0, example])
        err = np.mean(np.abs(produced[rule, max_tau] - np.asarray(d)[None]), axis=1) / cfg.tau
        say(
            f"{rule} up to {max_tau} tau (eta {eta:g}): interval error median "
            f"{np.median(err):.2f} tau, final loss {np.median(curves[rule, max_tau][:, -25:]):.3g}"
            f", {res.seconds:.1f}s"
        )
    return {
        "config": cfg,
        "seeds": seeds,
        "curves": curves,
        "produced": produced,
        "peaks": peaks,
        "delays": delays,
        "examples": examples,
        "n_steps": n_steps,
        "seconds": time.perf_counter() - t0,
    }


def _errors(r, key):
    """(K,) mean |produced - delay| over the test delays, in tau."""
    cfg = r["config"]
    return (
        np.mean(np.abs(r["produced"][key] - np.asarray(r["delays"][key])[None]), axis=1) / cfg.tau
    )


def summarize(r: dict) -> dict:
    """The numbers behind every panel and the paper's two claims, checked."""
    cfg = r["config"]
    conds = {
        f"{rule}_{m}tau": {
            "interval_error_tau": quartiles(_errors(r, (rule, m))),
            "final_loss": quartiles(
                r["curves"][rule, m][:, -max(1, cfg.updates // 20) :].mean(axis=1)
            ),
            "learning_rate": dict(cfg.lr)[rule],
            "median_produced_tau": [
                float(v) / cfg.tau for v in np.median(r["produced"][rule, m], axis=0)
            ],
            "test_delays_tau": [d / cfg.tau for d in r["delays"][rule, m]],
        }
        for rule, m in cfg.conditions
    }
    claims = {}
    short = min(m for _, m in cfg.conditions)
    if f"rflo_{short}tau" in conds and f"bptt_{short}tau" in conds:
        a, b = (conds[f"{x}_{short}tau"]["interval_error_tau"] for x in ("rflo", "bptt"))
        claims[f"similar_at_{short}tau"] = {
            "paper": f"trained and tested with delays up to {short} tau, RFLO and BPTT do "
            "similarly well",
            "rflo_error_tau": a,
            "bptt_error_tau": b,
            "ranges_overlap": ranges_overlap(a, b),
            "verdict": (
                "consistent: the 25-75 % ranges of the interval error overlap"
                if ranges_overlap(a, b)
                else "not reproduced: the 25-75 % ranges do not overlap "
                f"({'BPTT' if b['median'] < a['median'] else 'RFLO'} is better)"
            ),
        }
    long_ = max(m for _, m in cfg.conditions)
    if f"rflo_{long_}tau" in conds and f"bptt_{long_}tau" in conds:
        a, b = (conds[f"{x}_{long_}tau"]["interval_error_tau"] for x in ("rflo", "bptt"))
        claims[f"bptt_better_at_{long_}tau"] = {
            "paper": f"with delays up to {long_} tau BPTT performs better than RFLO",
            "rflo_error_tau": a,
            "bptt_error_tau": b,
            **lower_verdict(b, a, "BPTT", "interval error"),
        }
    return {
        "mode": cfg.mode,
        "config": asdict(cfg),
        "seeds": r["seeds"],
        "conditions": conds,
        "claims": claims,
        "seconds": r["seconds"],
    }


def write_outputs(r: dict, out: Path) -> dict:
    """figure3.png, intervals.csv, loss_curves.csv and summary.json in ``out``."""
    cfg = r["config"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(r)
    write_text(out / "summary.json", json.dumps(json_safe(summary), indent=2) + "\n")
    rows = []
    for (rule, m), prod in sorted(r["produced"].items()):
        for k, s in enumerate(r["seeds"]):
            for j, d in enumerate(r["delays"][rule, m]):
                rows.append(
                    [
                        rule,
                        m,
                        s,
                        d / cfg.tau,
                        prod[k, j] / cfg.tau,
                        f"{r['peaks'][rule, m][k, j]:.4g}",
                    ]
                )
    write_text(
        out / "intervals.csv",
        csv_text(
            ["rule", "max_delay_tau", "network_seed", "delay_tau", "produced_tau", "peak"], rows
        ),
    )
    rows = [
        [rule, m, *row]
        for (rule, m), c in sorted(r["curves"].items())
        for row in band_rows(c, 200, cfg.batch)
    ]
    write_text(
        out / "loss_curves.csv",
        csv_text(["rule", "max_delay_tau", "trial", "median", "p25", "p75"], rows),
    )
    from rflo.mpl_backend import use_headless_backend
    from rflo.paper.figure3_plots import plot_figure3

    use_headless_backend()
    fig = plot_figure3(r, summary, lambda d, n: _task(cfg, 0, d, n).trial(0, 0))
    write_file(
        out / "figure3.png", lambda tmp: fig.savefig(tmp, dpi=110, format="png"), suffix=".png"
    )
    return summary


def add_arguments(p):
    """The options of ``rflo figure3`` (shared with the main command line)."""
    p.add_argument(
        "--channels",
        type=int,
        choices=(1, 2),
        default=1,
        help="1 (default): ready and set pulses on one input; 2: on two inputs",
    )
    return add_figure_arguments(
        p,
        "figure3",
        f"small run ({QUICK.n_networks} networks, conditions "
        f"{', '.join(f'{r} {m} tau' for r, m in QUICK.conditions)}); the full "
        f"run uses {FULL.n_networks} networks and "
        f"{len(FULL.conditions)} conditions",
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    return figure_main(argv, "figure3", DESCRIPTION, add_arguments, QUICK, FULL, run, write_outputs)


if __name__ == "__main__":
    sys.exit(main())
