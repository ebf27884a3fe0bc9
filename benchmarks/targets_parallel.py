"""Issue 25's targets for more than one network at a time: (f) an ensemble
against separate networks, (g) a sweep on every core against one."""

from __future__ import annotations

from make_table import fmt_bytes
from targets_common import ENSEMBLE_GAIN, SWEEP_RATIO, _t, target


def _cores(results):
    """The two-core probe's sentence (machine.core_scaling), or ''."""
    rows = [r for r in results if r["kind"] == "cores" and r.get("ratio")]
    if not rows:
        return ""
    r = rows[-1]
    return (
        f"; {r['cores']} processes pinned to a core each do {r['ratio']:.2f}x one's vector "
        "arithmetic here (the most the cores can add)"
    )


def _gain_target(row, cores):
    """(f) from the alternating measurement (ensemble_gain.py)."""
    t, k = row["seconds_per_trial"], row["K"]
    gain = row["gain"]
    return target(
        "f",
        f"rflo {row['mode']} ensemble K={k} against separate networks (n_rec {row['n_rec']})",
        f"{gain:.2f}x",
        f">= {ENSEMBLE_GAIN:g}x",
        gain,
        gain >= ENSEMBLE_GAIN,
        f"alternating calls of about {row['call_s'] * 1e3:.0f} ms: {_t(t['alone'])} per trial "
        f"alone, {_t(t['ensemble'])} per network-trial at K={k} on {row['threads']} kernel "
        f"threads, {_t(t['one_thread'])} on one: batching {row['batching']:.2f}x (each network's "
        f"kernel work is what it is alone: no weights are shared), the other threads "
        f"{row['threads_gain']:.2f}x{cores}; medians {row['gain_median']:.2f}x",
    )


def ensemble_targets(results, k=64, n_rec=50):
    """(f): the alternating rows where this run has them, else the ensemble
    table's rows against the single-network rows."""
    cores = _cores(results)
    gains = {
        r["mode"]: r
        for r in results
        if r["kind"] == "ensemble_gain"
        and r["rule"] == "rflo"
        and r["K"] == k
        and r["n_rec"] == n_rec
    }
    single = {
        (r["rule"], r["mode"]): r["library"]
        for r in results
        if r["kind"] == "speed" and r["n_rec"] == n_rec and "seconds_per_trial" in r["library"]
    }
    ens = {
        (r["rule"], r["mode"]): r["library"]
        for r in results
        if r["kind"] == "ensemble"
        and r["n_rec"] == n_rec
        and r["K"] == k
        and "seconds_per_trial" in r["library"]
    }
    out = []
    for mode in ("offline", "online"):
        if mode in gains:
            out.append(_gain_target(gains[mode], cores))
            continue
        key = ("rflo", mode)
        name = f"rflo {mode} ensemble K={k} against separate networks (n_rec {n_rec})"
        if key not in single or key not in ens:
            out.append(target("f", name, "not measured", f">= {ENSEMBLE_GAIN:g}x", None, None))
            continue
        one, many = single[key], ens[key]
        gain = one["seconds_per_trial"] / many["seconds_per_trial"]
        cpu_gain = one["cpu_seconds_per_trial"] / many["cpu_seconds_per_trial"]
        out.append(
            target(
                "f",
                name,
                f"{gain:.2f}x",
                f">= {ENSEMBLE_GAIN:g}x",
                gain,
                gain >= ENSEMBLE_GAIN,
                f"{_t(one['seconds_per_trial'])} per trial alone, {_t(many['seconds_per_trial'])} per "
                f"network-trial at K={k}; from CPU time {cpu_gain:.2f}x"
                + (
                    " (most of the wall-clock gain is the second core, not batching)"
                    if cpu_gain < 0.6 * gain
                    else " (overstated: the kernel's worker threads, kept between calls, "
                    "are counted only at clock ticks)"
                )
                + f"; the K={k} call holds {fmt_bytes(many.get('peak_bytes'))}",
            )
        )
    return out


def sweep_targets(results):
    rows = [r for r in results if r["kind"] == "sweep"]
    if not rows or "ratio" not in rows[-1]:
        why = f"failed: {rows[-1]['failed']}" if rows else "not measured"
        return [
            target(
                "g", "sweep on every core against one core", why, f">= {SWEEP_RATIO:g}x", None, None
            )
        ]
    r = rows[-1]
    best = r["best_network_trials_per_s"]
    return [
        target(
            "g",
            f"sweep on {r['devices']} cores against one core",
            f"{r['ratio']:.2f}x",
            f">= {SWEEP_RATIO:g}x",
            r["ratio"],
            r["ratio"] >= SWEEP_RATIO,
            ", ".join(f"{k}: {v:,.0f}" for k, v in best.items()) + " network-trials/s "
            f"({r['networks']} networks x {r['trials']} trials); against one unpinned "
            f"device {r['ratio_to_one_device']:.2f}x" + _cores(results),
        )
    ]
