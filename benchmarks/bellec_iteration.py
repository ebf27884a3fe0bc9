"""One iteration of Bellec et al.'s evidence-accumulation training at full
size (100 ALIF/LIF units, 2251 steps, float64), per rule, and the
firing-rate regulariser in the base rule's backward pass against a second
pass of its own (issue #24: the reproduction's cost).

    python benchmarks/bellec_iteration.py [--batch 8] [--repeats 3]

Prints the best time per batch and per step and trial, and the largest
relative difference between the one-pass and two-pass updates (they are the
same sum).  The full mode's iteration is a batch of 64.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    from machine import cpu_model

    from rflo.losses import CROSS_ENTROPY
    from rflo.losses_rate import RateRegularized, rate_direction
    from rflo.paper.bellec2020 import bellec_network
    from rflo.rules import Setup
    from rflo.tasks.evidence import evidence_accumulation

    print(f"processor: {cpu_model()}; load average {os.getloadavg()}")
    with jax.enable_x64(True):
        net = jax.tree_util.tree_map(jnp.asarray, bellec_network(0))
        x, y, m = (jnp.asarray(a) for a in evidence_accumulation().batch(seed=1, batch=args.batch))
        setup = Setup(loss=CROSS_ENTROPY, params=("w_in", "w_rec", "w_out"))
        key = jax.random.PRNGKey(0)

        def one_pass(base):
            reg = RateRegularized(base=base, target=0.01, strength=1.0)
            return jax.jit(jax.vmap(lambda x, y, m: reg.trial(net, x, y, m, key, setup)[0]))

        def two_passes(base):
            reg = RateRegularized(base=base, target=0.01, strength=1.0)

            def trial(x, y, m):
                d, _ = reg.base.trial(net, x, y, m, key, setup)
                r = rate_direction(net, x, m, tuple(d), 0.01, 1.0, reg.local)
                return {k: d[k] + r[k] for k in d}

            return jax.jit(jax.vmap(trial))

        cases = {
            "e-prop + rate, one pass": one_pass("eprop_random"),
            "e-prop + rate, two passes": two_passes("eprop_random"),
            "BPTT + rate, one pass": one_pass("bptt"),
            "BPTT + rate, two passes": two_passes("bptt"),
        }
        out = {}
        for name, f in cases.items():
            out[name] = jax.block_until_ready(f(x, y, m))
            best = float("inf")
            for _ in range(args.repeats):
                t = time.perf_counter()
                jax.block_until_ready(f(x, y, m))
                best = min(best, time.perf_counter() - t)
            per = best / args.batch / x.shape[1] * 1e6
            print(
                f"{name:<28} {best * 1e3:8.0f} ms per batch of {args.batch}  {per:6.2f} us/step-trial"
            )
        for base in ("e-prop", "BPTT"):
            a, b = out[f"{base} + rate, one pass"], out[f"{base} + rate, two passes"]
            diff = max(float(jnp.max(jnp.abs(a[k] - b[k])) / jnp.max(jnp.abs(b[k]))) for k in a)
            print(f"{base}: one pass against two, largest relative difference {diff:.1e}")


if __name__ == "__main__":
    main()
