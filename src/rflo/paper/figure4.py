"""Murray (2019) Figure 4: long sequences from short syllables, through a loop.

An RNN is first trained with RFLO to make one short movement "syllable" for
each of its four tonic inputs (:func:`rflo.tasks.motor.syllables`: the two
outputs are a cursor's velocity).  Then, with the RNN fixed, a selector loop
(:mod:`rflo.selector`) learns which input to switch on at the end of each
syllable, with a reward-modulated Hebbian rule, so that the syllables follow
a target sequence.  The paper compares the result with RNNs without the loop
trained with RFLO or BPTT to produce the whole sequence, for as many trials.

Taken from the paper (Figure 4 caption, Results "Learning a sequence of
actions", Methods): N = 100, tau = 10 steps; four tonic inputs, one direction
each, a 2-D velocity readout; the whole sequence is four movements and four
holds, 160 tau; 10,000 RFLO trials for the syllables, then 10,000 trials of
selector learning with the RNN fixed, exploration probability 0.1, reward 1
for a transition that matches the target and 0 otherwise; the baselines get
20,000 trials; the syllables are trained "with a random input chosen in each
trial, subject to the constraint that the trajectory could not move the
cursor out of bounds" (one syllable per trial, the state and the cursor
carried over: :mod:`rflo.paper.figure4_syllables`); the selector's update
uses ``z`` before the winner-take-all.  The paper's Methods initial weights
(:func:`rflo.paper.common.paper_network`).

Chosen here (the paper does not say): each syllable is a 20 tau reach with
speed ``sin(pi t / 20 tau)`` followed by a 20 tau hold (so four syllables make
the 160 tau sequence); the directions are right, up, left, down and the target
sequence plays them in that order (a square back to the start); the bounds
(a box of +-1.5 reach lengths); the learning rates (below); the selector's
rows are kept at unit length (an addition, ``--no-normalize`` drops it); 5
networks (full) and 2 (quick).  ``--syllable-training four`` trains the
syllables as this library did before (four random syllables per trial, from
``h0``, no bounds); ``--update choice`` reinforces only the unit chosen.

Command line: ``rflo figure4 [--quick] [--out FOLDER] [--seed N] [--seeds S,S,...]
[--derivative exact|seed] [--syllable-training one|four] [--update drive|choice]
[--no-normalize] [--overwrite]``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
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
    spec_train,
    write_file,
    write_text,
)
from rflo.paper.figure4_config import FULL, QUICK, Config, syllable_rate
from rflo.paper.figure4_config import target as _target

__all__ = ["Config", "FULL", "QUICK", "run", "summarize", "write_outputs", "main"]

DESCRIPTION = (
    "Reproduce Murray (2019) Figure 4 (a loop that chains RFLO-trained syllables "
    "into a long sequence, against RNNs trained on the whole sequence with RFLO "
    "and BPTT): PNG, CSVs and summary.json in an output folder."
)


def _path(y, cfg):
    from rflo.tasks.motor import cursor_path

    return cursor_path(y, cfg.move)


def _errors(ys, cfg):
    """(K,) mean distance between the cursor and the target's, over the
    sequence (in reach lengths), and (K,) velocity mean squared error."""
    target = _target(cfg)
    tp = _path(target, cfg)
    pos = np.array([np.mean(np.linalg.norm(_path(y, cfg) - tp, axis=1)) for y in ys])
    mse = np.array([0.5 * np.mean((np.asarray(y) - target) ** 2) for y in ys])
    return pos, mse


def _carried(nets, cfg: Config, lr: float):
    """The Methods' syllable training (:mod:`rflo.paper.figure4_syllables`) on
    every stacked network at once: ``(trained networks, loss (K, trials))``."""
    import jax
    import jax.numpy as jnp

    from rflo.cells import get_cell
    from rflo.network import to_numpy
    from rflo.paper.figure4_syllables import train_carried

    nets = nets._replace(cell=get_cell("leaky_tanh", derivative=cfg.derivative))
    keys = jax.random.split(jax.random.PRNGKey(cfg.seed + 7), nets.w_rec.shape[0])

    @jax.jit
    def train(nets, keys):
        return jax.vmap(
            lambda n, k: train_carried(
                n, cfg.syllable_trials, lr, cfg.move, cfg.hold, cfg.bounds, k
            )
        )(nets, keys)

    trained, loss, _ = train(jax.tree_util.tree_map(jnp.asarray, nets), keys)
    return to_numpy(trained), np.asarray(loss, float)


def run(cfg: Config = QUICK, log: Optional[Callable[[str], None]] = None) -> dict:
    """Train the syllables, the selector and the two baselines; returns the numbers."""
    import jax
    import jax.numpy as jnp

    import rflo
    from rflo import selector
    from rflo.ensemble import stack_networks
    from rflo.spec import RunSpec

    t0 = time.perf_counter()
    say = log or (lambda m: None)
    seeds = network_seeds(cfg)
    steps = cfg.move + cfg.hold
    nets = stack_networks([paper_network(4, cfg.n_rec, 2, s, cfg.tau) for s in seeds])
    lr = syllable_rate(cfg)
    t1 = time.perf_counter()
    if cfg.syllable_training == "one":
        trained, syl_loss = _carried(nets, cfg, lr)
    else:
        syl = spec_train(
            RunSpec(
                rule="rflo",
                task="syllables",
                units=cfg.n_rec,
                tau=cfg.tau,
                set=dict(slots=len(cfg.sequence), move=cfg.move, hold=cfg.hold),
                derivative=cfg.derivative,
                lr=(lr, lr, lr),
                trials=cfg.syllable_trials,
                seeds=seeds,
            ),
            nets,
        )
        trained, syl_loss = syl.networks, np.asarray(syl.loss, float)
    say(
        f"syllables (RFLO, {cfg.syllable_training} per trial, lr {lr:g}, "
        f"{cfg.syllable_trials} trials): final loss median "
        f"{np.median(syl_loss[:, -50:]):.3g}, {time.perf_counter() - t1:.0f}s"
    )

    jnets = jax.tree_util.tree_map(jnp.asarray, trained)
    seq = jnp.asarray(cfg.sequence)
    keys = jax.random.split(jax.random.PRNGKey(cfg.seed), cfg.n_networks)
    w0 = jax.vmap(lambda k: selector.normalize_rows(jax.random.normal(k, (4, cfg.n_rec))))(keys)

    @jax.jit
    def learn(nets, w0, keys):
        return jax.vmap(
            lambda n, w, k: selector.train_selector(
                n,
                w,
                seq,
                steps,
                cfg.selector_trials,
                cfg.eta_selector,
                cfg.explore,
                k,
                cfg.normalize,
                cfg.update,
                cfg.bounds,
            )
        )(nets, w0, keys)

    @jax.jit
    def play(nets, w_s):
        return jax.vmap(lambda n, w: selector.run_loop(n, w, seq, steps)[1])(nets, w_s)

    @jax.jit
    def each_syllable(nets):  # every syllable from the initial state, for panel a
        def one(net, k):
            return selector.run_syllable(net, net.cell.initial_state(net), k, steps)[1]

        return jax.vmap(lambda n: jax.vmap(lambda k: one(n, k))(jnp.arange(4)))(nets)

    t1 = time.perf_counter()
    w_s, rewards = learn(jnets, w0, keys)
    loop = play(jnets, w_s)
    loop_y = np.asarray(loop.y, float)
    rewards = np.asarray(rewards, float)
    say(
        f"selector ({cfg.selector_trials} trials): last 10 % of trials rewarded "
        f"{rewards[:, -max(1, cfg.selector_trials // 10) :].mean():.2f} of transitions; played "
        f"{np.asarray(loop.choices).tolist()}, {time.perf_counter() - t1:.0f}s"
    )

    target = _target(cfg)
    whole = rflo.Task(x=np.zeros((target.shape[0], 1)), y=target)
    base_nets = stack_networks([paper_network(1, cfg.n_rec, 2, s, cfg.tau) for s in seeds])
    baselines, base_curves = {}, {}
    for rule, eta in cfg.lr_baseline:
        spec = RunSpec(
            rule=rule,
            units=cfg.n_rec,
            tau=cfg.tau,
            derivative=cfg.derivative,
            lr=(eta, eta, eta),
            trials=cfg.baseline_trials,
            seeds=seeds,
        )
        res = spec_train(spec, base_nets, task=whole)  # the whole sequence: no task name
        baselines[rule] = np.stack(
            [rflo.evaluate(res.network(k), whole).y for k in range(cfg.n_networks)]
        )
        base_curves[rule] = np.asarray(res.loss, float)
        say(
            f"no loop, {rule} (lr {eta:g}, {cfg.baseline_trials} trials): final loss median "
            f"{np.median(res.loss[:, -50:]):.3g}, {res.seconds:.0f}s"
        )
    return {
        "config": cfg,
        "seeds": seeds,
        "syllable_loss": syl_loss,
        "rewards": rewards,
        "loop_y": loop_y,
        "choices": np.asarray(loop.choices),
        "syllables": np.asarray(each_syllable(jnets), float),
        "baselines": baselines,
        "baseline_loss": base_curves,
        "target": target,
        "seconds": time.perf_counter() - t0,
    }


def summarize(r: dict) -> dict:
    """The numbers behind every panel and the paper's claim, checked."""
    cfg = r["config"]
    outputs = {
        "loop (RFLO syllables + selector)": r["loop_y"],
        **{f"no loop, {rule}": y for rule, y in r["baselines"].items()},
    }
    rows = {}
    for name, ys in outputs.items():
        pos, mse = _errors(ys, cfg)
        rows[name] = {
            "position_error": quartiles(pos),
            "velocity_mse": quartiles(mse),
            "per_network_position_error": [float(v) for v in pos],
        }
    loop = rows["loop (RFLO syllables + selector)"]["position_error"]
    claims = {}
    for rule in r["baselines"]:
        other = rows[f"no loop, {rule}"]["position_error"]
        claims[f"loop_beats_{rule}_without_loop"] = {
            "paper": "with as many training trials, RFLO with the loop does better than an "
            f"RNN trained on the whole sequence with {rule.upper()}",
            "loop_position_error": loop,
            "baseline_position_error": other,
            **lower_verdict(loop, other, "the loop", "cursor error"),
        }
    tail = max(1, cfg.selector_trials // 10)
    return {
        "mode": cfg.mode,
        "config": asdict(cfg),
        "seeds": r["seeds"],
        "outputs": rows,
        "selector_reward_last_10pct": quartiles(r["rewards"][:, -tail:].mean(axis=(1, 2))),
        "played_sequences": np.asarray(r["choices"]).tolist(),
        "syllable_final_loss": quartiles(r["syllable_loss"][:, -50:].mean(axis=1)),
        "claims": claims,
        "seconds": r["seconds"],
    }


def write_outputs(r: dict, out: Path) -> dict:
    """figure4.png, paths.csv, loss_curves.csv and summary.json in ``out``."""
    cfg = r["config"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(r)
    write_text(out / "summary.json", json.dumps(json_safe(summary), indent=2) + "\n")
    rows = []
    n = r["loop_y"].shape[1]
    series = {
        "target": r["target"][None],
        "loop": r["loop_y"],
        **{f"no_loop_{k}": v[:, -n:] for k, v in r["baselines"].items()},
    }
    for name, ys in series.items():
        for k, y in enumerate(ys):
            p = _path(y, cfg)
            for t in range(0, n, 10):
                rows.append(
                    [
                        name,
                        r["seeds"][k] if name != "target" else "",
                        t,
                        f"{p[t, 0]:.5g}",
                        f"{p[t, 1]:.5g}",
                    ]
                )
    write_text(out / "paths.csv", csv_text(["output", "network_seed", "step", "x", "y"], rows))
    curves = {
        "syllables_rflo": r["syllable_loss"],
        **{f"no_loop_{k}": v for k, v in r["baseline_loss"].items()},
    }
    rows = [[name, *row] for name, c in curves.items() for row in band_rows(c, 200)]
    write_text(out / "loss_curves.csv", csv_text(["curve", "trial", "median", "p25", "p75"], rows))
    from rflo.mpl_backend import use_headless_backend
    from rflo.paper.figure4_plots import plot_figure4

    use_headless_backend()
    fig = plot_figure4(r, summary)
    write_file(
        out / "figure4.png", lambda tmp: fig.savefig(tmp, dpi=110, format="png"), suffix=".png"
    )
    return summary


def add_arguments(p):
    """The options of ``rflo figure4`` (shared with the main command line)."""
    p.add_argument(
        "--syllable-training",
        choices=("one", "four"),
        default=None,
        help="'one' (default, the Methods'): one random syllable per training trial, the "
        "network's state and the cursor carried from trial to trial, no reach out of "
        "bounds; 'four': four random syllables per trial from h0 (the earlier layout)",
    )
    p.add_argument(
        "--update",
        choices=("drive", "choice"),
        default=None,
        help="z in the selector's update: 'drive', the paper's sum_j W^s_ij h_j "
        "before the winner-take-all (default), or 'choice', its one-hot",
    )
    p.add_argument(
        "--no-normalize",
        dest="normalize",
        action="store_false",
        default=None,
        help="do not keep the selector's rows at unit length (an addition of "
        "this library, on by default)",
    )
    return add_figure_arguments(
        p,
        "figure4",
        f"small run ({QUICK.n_networks} networks, {QUICK.syllable_trials} + "
        f"{QUICK.selector_trials} loop trials against {QUICK.baseline_trials}); "
        f"the full run uses {FULL.n_networks} networks and the paper's "
        f"{FULL.syllable_trials} + {FULL.selector_trials} against "
        f"{FULL.baseline_trials}",
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    return figure_main(argv, "figure4", DESCRIPTION, add_arguments, QUICK, FULL, run, write_outputs)


if __name__ == "__main__":
    sys.exit(main())
