"""A spiking (ALIF) network learns delayed match-to-sample by e-prop, RFLO and BPTT.

    python examples/spiking_eprop.py [--updates 1500] [--seeds 0 1 2 3 4] [--cell lif] [--short]

For each seed, one initial network of adaptive leaky integrate-and-fire units
(``rflo.cells.ALIF``) is trained from the same start by three rules that share
the same surrogate gradient (``rflo/cells/lif.py``):

* ``eprop``: e-prop (Bellec et al. 2020), eligibility traces with the
  readout weights ``w_out^T`` as feedback;
* ``rflo``: the same traces with the fixed random feedback matrix ``b``
  (= ``eprop_random``; Murray 2019);
* ``bptt``: the exact gradient of the surrogate model.

The task is the built-in ``delayed_match`` at its default size (fixation 5,
sample 10, delay 10-30, test 10, response 10 steps; T = 65): a sample
stimulus, a delay, a test stimulus, then for 10 steps *without input* the
output must be +1 (same stimulus) or -1 (different), and 0 before.  Each
network is scored by ``rflo.train.score`` on 512 fresh trials (drawn with a
key no training batch uses; the task has only 2 x 2 x 21 distinct trials, so
this measures the task, not generalisation): sign accuracy over the response
window, and the squared-error loss.  Chance is 0.5 (a random, or a constant
nonzero, sign).  An untrained network scores near 0, below chance, because
it is silent after the stimuli and an output of exactly 0 counts as wrong.
The readout is instantaneous (``y = w_out @ spikes``), so every response step
needs spikes from the right units.  Also printed: the mean firing rate
(spikes per unit and step) over a trial and in the response window.

Settings, and why
-----------------
* ``thr = 0.5``, ``w_in ~ N(0, 3^2)`` (``--w-in-scale``), ``tau = 5``,
  ``n_rec = 60``: with ``init_network``'s input weights (uniform on
  [-0.1, 0)) and ``thr = 1`` the network is silent.  With these about 70 % of
  the units fire at some point and the mean rate is ~0.06, but the response
  window is silent (rate <= 0.002).  ``w_rec`` (gain 1.5), ``w_out``, ``b``
  and ``h0 = 0.1`` are ``init_network``'s; ``h0`` and ``tau`` are not trained.
* ALIF adaptation ``beta = 0.2``, ``tau_a = 50``: adaptation is the memory of
  the sample (a unit that fired for it has a raised threshold at the test).
  With the library's default ``tau_a = 20`` BPTT still learns but e-prop falls
  behind on some seeds (table below); ``tau_a = 50``, about the longest
  delay, fixed that.  ``beta = 1`` (with ``tau_a = 50``) made the network
  nearly silent (rate ~0.015) and e-prop learned nothing (accuracy <= 0.09).
  LIF units (``--cell lif``) keep only ``tau = 5`` steps of membrane memory.
  On these delays they do much worse (table below).
* ``optax.adam`` with a cosine decay from ``--lr 0.01`` to 2 % of it over the
  session, on ``w_in``, ``w_rec``, ``w_out``; batches of 16 trials; 1500
  updates.  Plain SGD (``lr`` without an optimizer; seed 0, 1500 updates)
  never learned.  Uniform rates 0.03, 0.1 and 0.3, and 0.1/0.1/1 and
  0.03/0.03/1 on in/rec/out (BPTT and e-prop), and uniform 1 (BPTT), left the
  loss at the silent network's 0.077 and accuracy <= 0.03.  With uniform 3
  and 10 (BPTT) the mean loss of the first 20 updates was 3.8 and 11, and
  then the network fell silent.  10 on ``w_out`` alone diverged.  At the
  start the units are silent and far below threshold in the response window,
  where the error is, so that part of the gradient (through ``w_out`` and the
  surrogate ``psi``) is tiny.
  Stimulus-period firing against the target 0 gives large gradients, and
  rates big enough to move the response blow the stimulus period up.  Adam
  scales each weight's step.  The decay matters: with a constant
  ``adam(1e-2)`` the network jumps between good and bad from one update to
  the next late in training.  In one exploratory run (LIF, delay 5-20,
  e-prop) test accuracy was 0.994 after update 999 and 0.68 after update 1000,
  so the final network was a lottery.  With the decay the final score matches
  the end of the training curve.

Measured
--------
``python examples/spiking_eprop.py`` (all defaults: ALIF, seeds 0-4) on 2 CPU
cores, JAX 0.10.2, float32: 47-54 s wall (82-90 s CPU) in all, in two runs
with identical accuracies and losses.  Test sign accuracy
per seed and the mean test loss:

=========  ===============================  =========  ===============
rule       accuracy, seeds 0 1 2 3 4         mean loss  seconds per run
=========  ===============================  =========  ===============
untrained  0.018 0.009 0.010 0.025 0.002     0.0771     -
bptt       1.000 1.000 1.000 1.000 1.000     0.0013     2.2 / 0.9
eprop      1.000 1.000 0.999 1.000 1.000     0.0042     4.5-7.4 / 3.2-4.6
rflo       1.000 1.000 1.000 0.998 1.000     0.0024     4.4-7.3 / 3.1-6.6
=========  ===============================  =========  ===============

(chance 0.5.)  Seconds per training run: the first seed (with compilation) /
the later seeds, which reuse the compiled session.  So with these settings
e-prop and RFLO learn this task as well as BPTT, but each run takes 3.5-7x
BPTT's time.  Here the per-unit eligibility traces of a two-variable
cell cost more than one backward pass over 65 steps.  e-prop learns most
slowly and is the most sensitive to the settings.  On average over seeds,
random feedback (``rflo``) matched or beat e-prop's symmetric feedback in
every comparison, though not on every seed (``--tau-a 20`` seed 0: e-prop
0.986, RFLO 0.948):

* ``--updates 500``: BPTT 1.000 0.991 0.972 0.889 1.000; e-prop 0.502 0.905
  0.272 0.517 0.205; RFLO 0.978 1.000 0.999 0.998 0.977.
* ``--tau-a 20``: BPTT 0.991 1.000 1.000 1.000 1.000; e-prop 0.986 0.952
  0.930 0.704 0.994; RFLO 0.948 1.000 0.969 0.999 0.999.
* ``--cell lif``: untrained 0.144 0.142 0.205 0.183 0.129; BPTT 0.779 0.115
  1.000 0.286 0.975; e-prop 0.125 0.111 0.346 0.109 0.139 (it drove the
  network nearly silent: rate 0.03-0.05); RFLO 0.769 0.514 0.531 0.842
  0.527.  Without adaptation only BPTT reached >= 0.97 (on 2 of 5 seeds),
  and RFLO reached 0.84 at best.
* e-prop networks fire less than BPTT's and RFLO's (mean rate 0.11-0.13
  against 0.15-0.29).

``--short`` (delayed_match with fixation 2, sample 5, delay 2-6, test 5,
response 5; T = 23) is much easier.  With ``--updates 600`` over seeds 0-9:
BPTT 1.000 on every seed, e-prop 0.804-1.000 (mean 0.965), RFLO 0.973-1.000
(mean 0.996), untrained 0.000-0.103.  ``tests/test_spiking_example.py``
runs that setting on seed 0.
"""

import argparse
import sys
import time

import numpy as np
import optax

import rflo
from rflo.cells import ALIF, LIF
from rflo.train import score

RULES = ("bptt", "eprop", "rflo")
SHORT = dict(fixation=2, sample=5, min_delay=2, max_delay=6, test=5, response=5)


def make_task(args):
    if args.short:
        return rflo.make_task("delayed_match", **SHORT)
    return rflo.make_task(
        "delayed_match",
        fixation=args.fixation,
        sample=args.sample,
        min_delay=args.min_delay,
        max_delay=args.max_delay,
        test=args.test,
        response=args.response,
    )


def make_network(args, task, seed):
    """``init_network``'s weights with a spiking cell and larger input weights."""
    if args.cell == "alif":
        cell = ALIF(thr=args.thr, gamma=args.gamma, beta=args.beta, tau_a=args.tau_a)
    else:
        cell = LIF(thr=args.thr, gamma=args.gamma)
    net = rflo.init_network(
        task.n_in, args.n_rec, task.n_out, cell=cell, tau=args.tau, g=args.g, seed=seed
    )
    rng = np.random.default_rng(seed)
    w_in = args.w_in_scale * rng.normal(size=(args.n_rec, task.n_in))
    return rflo.network_from_arrays(**net._replace(w_in=w_in)._asdict())


def make_optimizer(args):
    schedule = optax.cosine_decay_schedule(args.lr, args.updates, alpha=args.lr_final)
    return optax.adam(schedule)


def firing_rate(net, task, seed, n=32):
    """Mean spikes per unit and step over ``n`` trials, and in the response
    window (the steps whose target is nonzero)."""
    x, y, m = task.batch(seed, n)
    h = np.stack([rflo.simulate(net, xi)[1] for xi in x])  # (n, T, n_rec)
    window = (y[..., 0] != 0) & (m > 0)
    return float(h[:, 1:].mean()), float(h[window].mean()) if window.any() else float("nan")


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--updates", type=int, default=1500, help="updates per rule")
    p.add_argument("--batch", type=int, default=16, help="trials per update")
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2, 3, 4],
        help="one initial network (and training session) per seed",
    )
    p.add_argument("--rules", nargs="+", default=list(RULES), help="rules to train")
    p.add_argument("--lr", type=float, default=0.01, help="initial Adam learning rate")
    p.add_argument(
        "--lr-final",
        type=float,
        default=0.02,
        help="final learning rate of the cosine decay, as a fraction of --lr",
    )
    p.add_argument("--cell", default="alif", choices=("alif", "lif"), help="spiking unit")
    p.add_argument("--n-rec", type=int, default=60, help="recurrent units")
    p.add_argument("--thr", type=float, default=0.5, help="firing threshold")
    p.add_argument("--tau", type=float, default=5.0, help="membrane time constant (steps)")
    p.add_argument("--beta", type=float, default=0.2, help="ALIF threshold adaptation")
    p.add_argument("--tau-a", type=float, default=50.0, help="ALIF adaptation time constant")
    p.add_argument("--gamma", type=float, default=0.3, help="pseudo-derivative dampening")
    p.add_argument("--g", type=float, default=1.5, help="gain of the initial w_rec")
    p.add_argument("--w-in-scale", type=float, default=3.0, help="w_in ~ N(0, scale^2)")
    p.add_argument(
        "--short",
        action="store_true",
        help="the short task: " + ", ".join(f"{k}={v}" for k, v in SHORT.items()),
    )
    p.add_argument("--fixation", type=int, default=5, help="delayed_match: steps")
    p.add_argument("--sample", type=int, default=10, help="steps")
    p.add_argument("--min-delay", type=int, default=10, help="steps")
    p.add_argument("--max-delay", type=int, default=30, help="steps")
    p.add_argument("--test", type=int, default=10, help="steps")
    p.add_argument("--response", type=int, default=10, help="steps")
    p.add_argument("--n-test", type=int, default=512, help="fresh trials to score on")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    args = p.parse_args(argv)
    say = (lambda *a, **k: None) if args.quiet else print

    t_start = time.perf_counter()
    task = make_task(args)
    lr = {"w_in": 1.0, "w_rec": 1.0, "w_out": 1.0}  # with an optimizer: which parameters train
    say(
        f"delayed_match, T = {task.n_steps} steps ({task.param_dict}); cell {args.cell}, "
        f"n_rec {args.n_rec}, thr {args.thr}, tau {args.tau}"
        + (f", beta {args.beta}, tau_a {args.tau_a}" if args.cell == "alif" else "")
        + f"; adam {args.lr} (cosine decay), {args.updates} updates of {args.batch}; "
        f"chance accuracy 0.5"
    )

    optimizer = make_optimizer(args)  # one object: later seeds reuse the compiled sessions
    names = ("untrained",) + tuple(args.rules)
    results = {
        name: {
            "accuracy": [],
            "loss": [],
            "seconds": [],
            "diverged": [],
            "rate": [],
            "response_rate": [],
        }
        for name in names
    }
    for seed in args.seeds:
        net = make_network(args, task, seed)
        test_seed = 100_000 + seed  # PRNGKey(test_seed): trials not drawn in training
        for name in names:
            if name == "untrained":
                trained, seconds, diverged = net, 0.0, None
            else:
                res = rflo.train(
                    net,
                    task,
                    name,
                    trials=args.updates,
                    batch=args.batch,
                    lr=lr,
                    optimizer=optimizer,
                    seed=seed,
                )
                trained, seconds, diverged = res.network, res.seconds, res.diverged
            loss, acc = score(trained, task, args.n_test, seed=test_seed)
            rate, response_rate = firing_rate(trained, task, test_seed)
            for key, value in (
                ("accuracy", acc),
                ("loss", loss),
                ("seconds", seconds),
                ("diverged", diverged),
                ("rate", rate),
                ("response_rate", response_rate),
            ):
                results[name][key].append(value)
            say(
                f"seed {seed}  {name:9s}  test accuracy {acc:.3f}  test loss {loss:.4f}  "
                f"rate {rate:.3f} (response {response_rate:.3f})"
                + (f"  {seconds:5.1f} s" if name != "untrained" else "")
                + (f"  DIVERGED: {diverged}" if diverged else "")
            )
    if len(args.seeds) > 1:
        say("mean over seeds " + " ".join(map(str, args.seeds)) + ":")
        for name in names:
            r = results[name]
            say(
                f"  {name:9s}  test accuracy {np.mean(r['accuracy']):.3f} "
                f"(min {np.min(r['accuracy']):.3f})  test loss {np.mean(r['loss']):.4f}"
                + (f"  {np.mean(r['seconds']):5.1f} s" if name != "untrained" else "")
            )
    total = time.perf_counter() - t_start
    say(f"total {total:.1f} s")
    results["chance"] = 0.5
    results["total_seconds"] = total
    results["settings"] = vars(args)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
