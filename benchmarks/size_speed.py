"""Large networks against the machine's arithmetic limit (issue #25's target (e)).

RFLO offline and BPTT at n_rec 100 ... 1000 and T 100, 1000 (float32, one
network, the leaky tanh cell): time per trial, and the floating-point rate of
the products that dominate them, as a share of one core's float32 matmul peak
(``machine.matmul_peak``).  Counted per trial (multiply-adds x 2):

* RFLO offline: the forward pass's ``W_rec r`` and the update's sum over the
  trial of the error times the eligibility trace, each n^2 per step: 4 n^2 T;
* BPTT: the forward pass, the backward pass's ``W_rec^T delta`` and the
  gradient's outer products, each n^2 per step: 6 n^2 T.

Each row's ceiling: the share a trial of this form could reach at most,
with its dependent matrix-vector products at the best matrix-vector rate
measured (one core's BLAS, ``machine.matvec_roof``, or the forward pass's own
where faster) and the rest at the matmul peak.

The profile beside each row is the forward pass alone (``rules.base.forward``,
jitted, the same T sequential matrix-vector products): its share of the trial
and its own rate show whether the time goes to the T dependent ``n x n``
matrix-vector products (memory bound, not matmul shaped) or elsewhere.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
from timing import fmt_time, repeat_timing, time_library

import rflo
from rflo.rules.base import forward

#: (rule, multiply-adds per n^2 per step)
SIZE_CASES = [("rflo", 2), ("bptt", 3)]
#: of those, the ones in dependent matrix-vector products (each step needs the
#: last: the forward's ``W_rec r``; BPTT's backward ``W_rec^T delta``)
SEQUENTIAL = {"rflo": 1, "bptt": 2}


def dominant_flops(rule, n_rec, steps):
    per = dict(SIZE_CASES)[rule]
    return 2.0 * per * n_rec * n_rec * steps


def ceiling_share(rule, matvec_gflops, peak_gflops):
    """The largest share of the matmul peak a trial of ``rule`` can reach: its
    dependent matrix-vector products at one core's best matrix-vector rate,
    everything else at the matmul peak (a roofline for one network's trial)."""
    per, seq = dict(SIZE_CASES)[rule], SEQUENTIAL[rule]
    seconds = seq / matvec_gflops + (per - seq) / peak_gflops  # per 2 n^2 T GFLOP
    return per / seconds / peak_gflops


def forward_time(n_rec, steps, budget_s):
    """Seconds of the forward pass alone (best of repeated calls)."""
    net = jax.tree_util.tree_map(jnp.asarray, rflo.init_network(1, n_rec, 1, seed=0))
    x, _, _ = rflo.periodic_task(duration=steps).trial()
    x = jnp.asarray(x, jnp.float32)
    f = jax.jit(lambda n, x: forward(n, x))
    jax.block_until_ready(f(net, x))
    t0 = time.perf_counter()
    jax.block_until_ready(f(net, x))
    reps = max(1, int(0.004 / max(time.perf_counter() - t0, 1e-9)))

    def call():
        for _ in range(reps):
            out = f(net, x)
        jax.block_until_ready(out)

    return repeat_timing(call, reps, budget_s, min_repeats=3)["best"]


def size_rows(
    sizes, steps_list, budget_s, peak_gflops, max_trial_s=2.0, log=print, matvec_gflops=None
):
    """Rows of kind "size", smallest first; a case predicted over ``max_trial_s``
    per trial (from its last size, n^2 T) is skipped and says so.
    ``matvec_gflops`` ({n: GFLOP/s}, ``machine.matvec_roof``) adds each row's
    ceiling (:func:`ceiling_share`)."""
    rows, seen = [], {}
    log(
        f"{'rule':<8}{'n_rec':>6}{'T':>6}{'per trial':>12}{'GFLOP/s':>9}{'of peak':>9}"
        f"{'forward':>12}{'fwd share':>10}"
    )
    fwd = {}
    for steps in steps_list:
        for n_rec in sizes:
            for rule, _ in SIZE_CASES:
                row = {
                    "kind": "size",
                    "rule": rule,
                    "mode": "offline",
                    "n_rec": n_rec,
                    "steps": steps,
                    "dtype": "float32",
                    "flops": dominant_flops(rule, n_rec, steps),
                    "matmul_peak_gflops": peak_gflops,
                }
                pred = None
                if rule in seen:
                    n0, t0, s0 = seen[rule]
                    pred = t0 * (n_rec / n0) ** 2 * (steps / s0)
                if pred is not None and pred > max_trial_s:
                    row["library"] = {
                        "skipped": f"predicted {pred:.1f} s per trial > {max_trial_s} s"
                    }
                    rows.append(row)
                    log(f"{rule:<8}{n_rec:>6}{steps:>6}  skipped: {row['library']['skipped']}")
                    continue
                row["library"] = time_library(
                    rule, False, n_rec, steps, budget_s, min_repeats=3, capacity=64
                )
                t = row["library"]["seconds_per_trial"]
                seen[rule] = (n_rec, t, steps)
                row["gflops"] = row["flops"] / t / 1e9
                if peak_gflops:
                    row["share_of_peak"] = row["gflops"] / peak_gflops
                if (n_rec, steps) not in fwd:
                    fwd[(n_rec, steps)] = forward_time(n_rec, steps, budget_s / 2)
                row["forward_s"] = fwd[(n_rec, steps)]
                row["forward_share"] = row["forward_s"] / t
                if matvec_gflops and n_rec in matvec_gflops and peak_gflops:
                    # the best dependent matrix-vector rate seen: BLAS's, or the
                    # forward pass's own where it does better (BLAS called from
                    # Python pays a call's overhead on small matrices)
                    fwd_rate = 2.0 * n_rec * n_rec * steps / row["forward_s"] / 1e9
                    roof = max(matvec_gflops[n_rec], fwd_rate)
                    row["matvec_roof_gflops"] = roof
                    row["ceiling_share"] = ceiling_share(rule, roof, peak_gflops)
                rows.append(row)
                share = f"{row['share_of_peak']:.0%}" if "share_of_peak" in row else "-"
                log(
                    f"{rule:<8}{n_rec:>6}{steps:>6}{fmt_time(t):>12}{row['gflops']:>9.1f}{share:>9}"
                    f"{fmt_time(row['forward_s']):>12}{row['forward_share']:>10.0%}",
                    flush=True,
                )
    return rows
