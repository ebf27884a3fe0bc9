"""The targets of the issues before #25 (the numpy loop, ensembles against K = 1,
jax_rtrl at n_rec 50, RTRL's arithmetic, the sweep), met / not met, from one
run's rows (:mod:`targets` puts them beside issue #25's)."""

from __future__ import annotations


def earlier_targets(results):
    """The numpy loop, ensembles against K = 1, jax_rtrl at n_rec 50, RTRL's arithmetic."""
    out = []
    want = {"rflo": 60, "bptt": 30, "rtrl": 3}
    for row in results:
        if (
            row["kind"] == "speed"
            and row["n_rec"] == 50
            and row["mode"] == "offline"
            and row["steps"] == 100
            and row["rule"] in want
            and "speedup" in row
        ):
            out.append(
                {
                    "name": f"{row['rule']} offline vs numpy loop",
                    "target": want[row["rule"]],
                    "measured": f"{row['speedup']:.1f}x",
                    "value": row["speedup"],
                    "median_based": row.get("speedup_median"),
                    "cpu_time_based": row.get("speedup_cpu"),
                    "met": row["speedup"] >= want[row["rule"]],
                }
            )
    ens = {}
    for row in results:
        if (
            row["kind"] == "ensemble"
            and row["n_rec"] == 50
            and "seconds_per_trial" in row["library"]
        ):
            ens[(row["rule"], row["mode"], row["K"])] = (
                row["library"]["seconds_per_trial"],
                row["library"]["cpu_seconds_per_trial"],
            )
    for (rule, mode, k), t in sorted(ens.items()):
        if k == 64 and (rule, mode, 1) in ens and mode == "offline":
            gain = ens[(rule, mode, 1)][0] / t[0]
            out.append(
                {
                    "name": f"{rule} ensemble K=64 vs K=1 (network-trials/s)",
                    "target": 4,
                    "measured": f"{gain:.1f}x",
                    "value": gain,
                    "cpu_time_based": ens[(rule, mode, 1)][1] / t[1],
                    "met": gain >= 4,
                }
            )
    # issue 16: against the peer at n_rec 50
    peer_want = {
        ("rflo", "online"): 2.5,
        ("rflo", "offline"): 5,
        ("bptt", "offline"): 3,
        ("rtrl", "offline"): 1.5,
    }
    for row in results:
        key = (row.get("rule"), row.get("mode"))
        if (
            row["kind"] == "peer"
            and "speedup" in row
            and key in peer_want
            and row.get("n_rec", 50) == 50
        ):
            out.append(
                {
                    "name": f"{key[0]} {key[1]} vs jax_rtrl",
                    "target": peer_want[key],
                    "measured": f"{row['speedup']:.2f}x",
                    "value": row["speedup"],
                    "met": row["speedup"] >= peer_want[key],
                }
            )
    single = {
        (r["rule"], r["mode"]): r["library"]["seconds_per_trial"]
        for r in results
        if r["kind"] == "speed" and r["n_rec"] == 50 and "seconds_per_trial" in r["library"]
    }
    for (rule, mode, k), t in sorted(ens.items()):
        if k == 64 and (rule, mode) in single:
            gain = single[(rule, mode)] / t[0]
            out.append(
                {
                    "name": f"{rule} {mode} ensemble K={k} vs one network (train)",
                    "target": 1.5,
                    "measured": f"{gain:.2f}x",
                    "value": gain,
                    "met": gain >= 1.5,
                }
            )
    for row in results:
        if row["kind"] == "speed" and "gflops" in row:
            share = row["gflops"] / row["matmul_peak_gflops"]
            out.append(
                {
                    "name": "rtrl offline / one-core matmul peak",
                    "target": 0.6,
                    "measured": f"{share:.2f}x",
                    "value": share,
                    "met": share >= 0.6,
                }
            )
    return out
