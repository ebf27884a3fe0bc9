"""Your own model: an Equinox and a Flax GRU cell learn flip-flop by RTRL, e-prop and BPTT.

    python examples/own_model.py [--quick] [--updates 300] [--batch 16] [--n-rec 16]
                                 [--rules rtrl eprop bptt] [--seed 0]

Needs the extras: ``pip install 'rflo[equinox,flax]'``.  Each module becomes a
cell (:func:`rflo.cells.from_equinox`, :func:`rflo.cells.from_flax`; given as a
function ``key -> module``, so the network's seed draws its weights); the
network adds the linear readout ``y = w_out @ h``.  Every rule trains every
parameter of the module and ``w_out``:

* ``rtrl``: real-time recurrent learning, the exact gradient computed forward
  (the influence of every parameter on every unit);
* ``eprop``: e-prop (Bellec et al. 2020), one eligibility trace per unit and
  the readout weights as feedback.  The adapters know the gate layout of the
  built-in GRU cells (``unit_axes``: rows of Equinox's ``weight_ih`` (3 n_rec,
  n_in), columns of Flax's ``dense_i.kernel`` (n_in, 3 n_rec)); a module
  cannot separate its recurrent input, so the trace keeps each unit's whole
  diagonal Jacobian (SnAp-1's);
* ``bptt``: backpropagation through time, for reference (the same gradient
  as RTRL, backward).

The task is the built-in ``flip_flop`` at its default size (2 bits, 100
steps, ±1 pulses at rate 0.04): each output must hold the sign of its bit's
last pulse.  Adam from 0.01, cosine decay to 10 %, batches of ``--batch``
trials.  Loss (squared error) and sign accuracy are measured on 512 fresh
trials (``rflo.train.score``, a key no training batch uses) before and after
training (untrained: about chance, 0.5, or below).

Results (2 CPU cores; n_rec 16: 928 parameters in each cell; 300 updates of
16 trials; seed 0; wall time 3 min 4 s, of which RTRL 165 s: it costs
O(n_rec^2 P) per step)::

    module            rule   loss before  loss after acc before  acc after  seconds
    equinox GRUCell   rtrl        0.3800      0.0228     0.5420     0.9848    111.3
    equinox GRUCell   eprop       0.3800      0.0212     0.5420     0.9949      3.6
    equinox GRUCell   bptt        0.3800      0.0230     0.5420     0.9849      3.2
    flax nnx.GRUCell  rtrl        0.3884      0.0186     0.2391     0.9945     53.5
    flax nnx.GRUCell  eprop       0.3884      0.0186     0.2391     0.9965      4.0
    flax nnx.GRUCell  bptt        0.3884      0.0198     0.2391     0.9938      3.1

RTRL and BPTT compute the same gradient (``tests/test_adapters.py`` checks
it to 1e-8 in float64); in float32 their runs part in the last digits over
300 Adam steps.  Flax's kernels are (in, out), Equinox's weights (out, in):
the same GRU, but XLA runs RTRL's batched products of the Flax layout about
twice as fast on CPU.

``--quick`` (40 updates of 8 trials, 320 trials per rule; 35 s) reached loss
0.21-0.23 (Equinox) and 0.14-0.16 (Flax), accuracy 0.80-0.93; it is what
``tests/test_adapters.py`` runs (slow test): BPTT and RTRL lower the loss.
"""

import argparse
import time

import optax

import rflo
from rflo.train import score

RULES = ("rtrl", "eprop", "bptt")
N_TEST = 512
TEST_SEED = 10_000  # the fresh trials of the score (no training batch uses this key)


def modules(n_in, n_rec):
    """The cells: ``{label: cell}``, each made of a function ``key -> module``."""
    import equinox as eqx
    from flax import nnx

    return {
        "equinox GRUCell": rflo.cells.from_equinox(
            lambda key: eqx.nn.GRUCell(n_in, n_rec, key=key)
        ),
        "flax nnx.GRUCell": rflo.cells.from_flax(
            lambda key: nnx.GRUCell(n_in, n_rec, rngs=nnx.Rngs(key))
        ),
    }


def run(quick=False, updates=None, batch=None, n_rec=16, rules=RULES, seed=0, say=print):
    """Train every (module, rule) from the module's initial network; one row
    (a dict) per pair: ``loss_start``, ``loss_end``, ``acc_start``,
    ``acc_end`` (on the same fresh trials) and ``seconds`` (training)."""
    updates = updates or (40 if quick else 300)
    batch = batch or (8 if quick else 16)
    task = rflo.make_task("flip_flop")
    rows = []
    for label, cell in modules(task.n_in, n_rec).items():
        net = rflo.init_network(task.n_in, n_rec, task.n_out, cell=cell, seed=seed)
        loss0, acc0 = score(net, task, N_TEST, seed=TEST_SEED)
        for rule in rules:
            optimizer = optax.adam(optax.cosine_decay_schedule(0.01, updates, alpha=0.1))
            t0 = time.perf_counter()
            # with an optimizer, lr only names what trains: every parameter
            res = rflo.train(
                net,
                task,
                rule,
                trials=updates,
                batch=batch,
                lr=1.0,
                optimizer=optimizer,
                seed=seed + 1,
            )
            seconds = time.perf_counter() - t0
            loss, acc = score(res.network, task, N_TEST, seed=TEST_SEED)
            rows.append(
                dict(
                    module=label,
                    rule=rule,
                    loss_start=float(loss0),
                    loss_end=float(loss),
                    acc_start=float(acc0),
                    acc_end=float(acc),
                    seconds=seconds,
                )
            )
            say(_row(rows[-1]), flush=True)
    return rows


HEADER = (
    f"{'module':<17} {'rule':<6} {'loss before':>11} {'loss after':>11} "
    f"{'acc before':>10} {'acc after':>10} {'seconds':>8}"
)


def _row(r):
    return (
        f"{r['module']:<17} {r['rule']:<6} {r['loss_start']:>11.4f} {r['loss_end']:>11.4f} "
        f"{r['acc_start']:>10.4f} {r['acc_end']:>10.4f} {r['seconds']:>8.1f}"
    )


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="40 updates of 8 trials (unless --updates, --batch say otherwise)",
    )
    p.add_argument("--updates", type=int, default=None, help="updates per rule (default 300)")
    p.add_argument("--batch", type=int, default=None, help="trials per update (default 16)")
    p.add_argument("--n-rec", type=int, default=16, help="units of each GRU")
    p.add_argument("--rules", nargs="+", default=list(RULES), help="rules to train")
    p.add_argument("--seed", type=int, default=0, help="initial networks and trials")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    print(
        "flip_flop (2 bits, 100 steps); adam 0.01 with cosine decay; scored on "
        f"{N_TEST} fresh trials"
    )
    print(HEADER)
    run(
        quick=args.quick,
        updates=args.updates,
        batch=args.batch,
        n_rec=args.n_rec,
        rules=args.rules,
        seed=args.seed,
    )
    print(f"wall time {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
