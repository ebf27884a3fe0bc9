"""Perceptual decision making (NeuroGym) learned by RFLO and by BPTT.

    pip install 'rflo[neurogym]'
    python examples/neurogym_decision.py [--updates 1500] [--batch 16] [--loss squared_error]

Draws a bank of training trials and a separate bank of test trials from
NeuroGym's PerceptualDecisionMaking-v0, trains the same initial network with
each rule (offline, minibatches), and prints the loss and the decision
accuracy (fraction of decision steps where the largest output is the correct
choice; chance is 1/2) on the test trials before and after training.  The
outputs are the logits of a softmax over the actions, trained with
cross-entropy (``--loss squared_error`` regresses the one-hot targets instead);
RFLO feeds the loss's error ``target - softmax(y)`` back through its random
matrix as BPTT backpropagates it.

Measured (2 cores, 600 updates of 16 trials, 400 training / 200 test trials,
n_rec 40, lr 0.3, as ``tests/test_tasks.py`` does): test accuracy 0.51
untrained, 0.875 RFLO, 0.865 BPTT.
"""

import argparse
import time

import numpy as np

import rflo
from rflo.tasks import neurogym_task
from rflo.train import score


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--updates", type=int, default=1500)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--n-rec", type=int, default=50)
    p.add_argument("--lr", type=float, default=0.3)
    p.add_argument("--loss", default="cross_entropy", choices=("cross_entropy", "squared_error"))
    p.add_argument("--dt", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--response-weight", type=float, default=10.0)
    args = p.parse_args(argv)

    env = "PerceptualDecisionMaking-v0"
    train_bank = neurogym_task(
        env, 2000, seed=args.seed, env_kwargs=dict(dt=args.dt), response_weight=args.response_weight
    )
    test_bank = neurogym_task(
        env,
        1000,
        seed=args.seed + 1,
        n_steps=train_bank.n_steps,
        env_kwargs=dict(dt=args.dt),
        response_weight=args.response_weight,
    )
    print(
        f"{env}: dt={args.dt} ms, T={train_bank.n_steps} steps, n_in={train_bank.n_in}, "
        f"n_out={train_bank.n_out}; {train_bank.n_variants} training trials, "
        f"{test_bank.n_variants} test trials; decision steps weigh {args.response_weight:g}"
    )
    net = rflo.init_network(train_bank.n_in, args.n_rec, train_bank.n_out, seed=args.seed)
    loss0, acc0 = score(net, test_bank, loss=args.loss)
    print(f"{'untrained':10s} test loss {loss0:.4f}  test accuracy {acc0:.3f}")
    for rule in ("rflo", "bptt"):
        t0 = time.perf_counter()
        res = rflo.train(
            net,
            train_bank,
            rule,
            trials=args.updates,
            batch=args.batch,
            lr=(args.lr, args.lr, args.lr),
            seed=args.seed,
            loss=args.loss,
        )
        loss, acc = score(res.network, test_bank, loss=args.loss)
        print(
            f"{rule:10s} test loss {loss:.4f}  test accuracy {acc:.3f}  "
            f"(training accuracy, last 100 updates: {np.nanmean(res.accuracy[-100:]):.3f}; "
            f"{time.perf_counter() - t0:.1f} s)"
        )


if __name__ == "__main__":
    main()
