"""The targets, met / not met, from one run's rows (no JAX needed: rows are dicts).

``earlier_targets``: the numpy loop, ensembles, jax_rtrl at n_rec 50, RTRL's
arithmetic and the sweep (issues before #25).  ``issue25_targets``: issue #25
("Speed where users wait"), each with a letter, the measured value, the target,
``met`` (True / False, or None where this run did not measure it) and, where
not met, a ``profile``: one or two lines saying where the time goes.
"""

from __future__ import annotations

from machine import peer_compiled
from targets_common import (  # noqa: F401  (the thresholds, importable from here)
    CELL_RATIO,
    CLI_IMPORT_RATIO,
    COMPARE_S,
    ENSEMBLE_GAIN,
    LOCAL_RULES,
    LOCAL_VS_BPTT,
    PEAK_SHARE,
    SWEEP_RATIO,
    _t,
    target,
    verdict,
)
from targets_earlier import earlier_targets
from targets_parallel import ensemble_targets, sweep_targets

# --------------------------------------------------------------------------
# issue 25


def cli_targets(results):
    cli = {r["name"]: r for r in results if r["kind"] == "cli"}
    out = []
    imp, train, comp, comp1 = (cli.get(n, {}) for n in ("import", "train", "compare", "compare_1"))
    if "wall_s" in imp and "wall_s" in train:
        ratio = train["wall_s"] / imp["wall_s"]
        out.append(
            target(
                "a",
                "rflo train --trials 1 against python -c 'import rflo' (warm)",
                f"{ratio:.2f}x ({train['wall_s']:.2f} s / {imp['wall_s']:.2f} s)",
                f"<= {CLI_IMPORT_RATIO:g}x",
                ratio,
                ratio <= CLI_IMPORT_RATIO,
                f"import {imp['wall_s']:.2f} s; the command {train['wall_s'] - imp['wall_s']:.2f} s "
                f"beyond it (building, compiling or loading from the cache, one trial, writing); "
                f"CPU {train['cpu_s']:.2f} s",
            )
        )
    else:
        out.append(
            target(
                "a",
                "rflo train --trials 1 against python -c 'import rflo' (warm)",
                (
                    f"failed: {train.get('failed') or imp.get('failed')}"
                    if train.get("failed") or imp.get("failed")
                    else "not measured"
                ),
                f"<= {CLI_IMPORT_RATIO:g}x",
                None,
                None,
            )
        )
    if "wall_s" in comp:
        prof = f"import {imp.get('wall_s', float('nan')):.2f} s"
        if "wall_s" in comp1 and "wall_s" in imp:
            prof += (
                f", the command's fixed cost beyond it {comp1['wall_s'] - imp['wall_s']:.2f} s "
                f"(compare --trials 1: {comp1['wall_s']:.2f} s), the training "
                f"{comp['wall_s'] - comp1['wall_s']:.2f} s"
            )
        out.append(
            target(
                "b",
                "rflo compare on the defaults, wall (warm)",
                f"{comp['wall_s']:.2f} s",
                f"< {COMPARE_S:g} s",
                comp["wall_s"],
                comp["wall_s"] < COMPARE_S,
                prof + f"; CPU {comp['cpu_s']:.2f} s",
            )
        )
    else:
        out.append(
            target(
                "b",
                "rflo compare on the defaults, wall (warm)",
                f"failed: {comp['failed']}" if comp.get("failed") else "not measured",
                f"< {COMPARE_S:g} s",
                None,
                None,
            )
        )
    return out


def _arithmetic(row, ref, ratio):
    """Where a cell's step multiplies more than ``CELL_RATIO`` times the leaky
    tanh's synapses, the sentence saying so (the target is then below the
    cell's own arithmetic at the leaky tanh's rate per synapse)."""
    mine, theirs = (row or {}).get("synapses"), (ref or {}).get("synapses")
    if not mine or not theirs or mine / theirs <= CELL_RATIO:
        return ""
    more = mine / theirs
    return (
        f"; its step multiplies {more:.1f}x the leaky tanh's synapses ({mine:,} against "
        f"{theirs:,}), so at the leaky tanh's rate per synapse it would take {more:.1f}x: "
        f"{CELL_RATIO:g}x is below its arithmetic, and it runs {ratio / more:.2f}x that"
    )


def cell_targets(results):
    rows = [
        r for r in results if r["kind"] == "cell" and "seconds_per_trial" in r.get("library", {})
    ]
    auto = {(r["cell"], r["rule"], r["mode"]): r for r in rows if r["route"] == "auto"}
    generic = {(r["rule"], r["mode"]): r for r in rows if r["route"] == "generic"}
    out_c, out_d = [], []
    for cell in sorted({c for c, _, _ in auto}):
        mine = {(ru, m): r for (c, ru, m), r in auto.items() if c == cell}
        # (c) against the leaky tanh, same rule
        ratios = {k: r["vs_reference"] for k, r in mine.items() if "vs_reference" in r}
        if cell != "leaky_tanh" and ratios:
            (rule, mode), worst = max(ratios.items(), key=lambda kv: kv[1])
            r = mine[(rule, mode)]
            ref = auto.get(("leaky_tanh", rule, mode))
            gen = generic.get((rule, mode))
            prof = f"{cell} runs {r['path']}: {rule} {mode} {_t(r['library']['seconds_per_trial'])}"
            if ref:
                prof += f" against the leaky tanh's {ref['path']} {_t(ref['library']['seconds_per_trial'])}"
            if gen:
                g = gen["library"]["seconds_per_trial"]
                prof += (
                    f"; the leaky tanh forced onto the generic path takes {_t(g)}, so the route "
                    f"accounts for {g / ref['library']['seconds_per_trial']:.1f}x and the cell's "
                    f"own step for {r['library']['seconds_per_trial'] / g:.1f}x"
                    if ref
                    else ""
                )
            prof += _arithmetic(r, ref, worst)
            out_c.append(
                target(
                    "c",
                    f"{cell} within 2x of leaky_tanh (worst rule: {rule} {mode})",
                    f"{worst:.2f}x",
                    f"<= {CELL_RATIO:g}x",
                    worst,
                    worst <= CELL_RATIO,
                    prof,
                )
            )
        # (d) local rules against BPTT on this cell
        bptt = mine.get(("bptt", "offline"))
        local = {k: mine[k] for k in LOCAL_RULES if k in mine}
        if bptt and local:
            b = bptt["library"]["seconds_per_trial"]
            (rule, mode), worst = max(
                ((k, r["library"]["seconds_per_trial"] / b) for k, r in local.items()),
                key=lambda kv: kv[1],
            )
            detail = ", ".join(
                f"{k[0]} {k[1]} {_t(r['library']['seconds_per_trial'])}" for k, r in local.items()
            )
            offline = [
                r["library"]["seconds_per_trial"] / b for k, r in local.items() if k[1] == "offline"
            ]
            where = ""
            if mode == "online" and offline and max(offline) <= LOCAL_VS_BPTT:
                # say where the gap is: the online mode, not the rules
                where = (
                    f"; offline the local rules take at most {max(offline):.2f}x BPTT's time: "
                    "only learning online, which writes every synapse's trace and weight "
                    "at each of the trial's steps, is slower"
                )
            out_d.append(
                target(
                    "d",
                    f"{cell}: local rules no slower than BPTT (worst: {rule} {mode})",
                    f"{worst:.2f}x",
                    f"<= {LOCAL_VS_BPTT:g}x",
                    worst,
                    worst <= LOCAL_VS_BPTT,
                    f"{detail} ({local[(rule, mode)]['path']}) against BPTT {_t(b)} ({bptt['path']})"
                    + where,
                )
            )
    if not auto:
        out_c.append(
            target(
                "c",
                "every cell within 2x of leaky_tanh",
                "not measured",
                f"<= {CELL_RATIO:g}x",
                None,
                None,
            )
        )
        out_d.append(
            target(
                "d",
                "local rules no slower than BPTT",
                "not measured",
                f"<= {LOCAL_VS_BPTT:g}x",
                None,
                None,
            )
        )
    return out_c + out_d


def _ceiling(row):
    """What the matrix-vector roof allows a trial of ``row``'s shape (if measured)."""
    if "ceiling_share" not in row:
        return ""
    return (
        f"; the best {row['n_rec']} x {row['n_rec']} matrix-vector rate measured on one core is "
        f"{row['matvec_roof_gflops']:.1f} GFLOP/s, so no implementation of one network's trial "
        f"can pass {row['ceiling_share']:.0%} of the peak (the dependent products at that rate, "
        f"the rest at the peak); measured {row['share_of_peak'] / row['ceiling_share']:.0%} of "
        "that ceiling"
    )


def size_targets(results):
    rows = [r for r in results if r["kind"] == "size" and "share_of_peak" in r]
    out = []
    for rule in sorted({r["rule"] for r in rows}):
        mine = [r for r in rows if r["rule"] == rule]
        worst = min(mine, key=lambda r: r["share_of_peak"])
        sizes = sorted({r["n_rec"] for r in mine})
        steps = sorted({r["steps"] for r in mine})
        fwd_gflops = 2.0 * worst["n_rec"] ** 2 * worst["steps"] / worst["forward_s"] / 1e9
        out.append(
            target(
                "e",
                f"{rule} offline at n_rec {min(sizes)}-{max(sizes)}, T {'/'.join(map(str, steps))}: "
                f"share of one core's matmul peak (worst: n_rec {worst['n_rec']}, T {worst['steps']})",
                f"{worst['share_of_peak']:.0%} ({worst['gflops']:.1f} of {worst['matmul_peak_gflops']:.0f} "
                f"GFLOP/s)",
                f">= {PEAK_SHARE:.0%}",
                worst["share_of_peak"],
                worst["share_of_peak"] >= PEAK_SHARE,
                f"at n_rec {worst['n_rec']}, T {worst['steps']} the forward pass alone (T dependent "
                f"n x n matrix-vector products) is {worst['forward_share']:.0%} of the trial at "
                f"{fwd_gflops:.1f} GFLOP/s: matrix-vector, not matrix-matrix, shaped"
                + _ceiling(worst),
            )
        )
    if not rows:
        out.append(
            target(
                "e",
                "RFLO offline and BPTT at n_rec 100-1000: share of matmul peak",
                "not measured",
                f">= {PEAK_SHARE:.0%}",
                None,
                None,
            )
        )
    peers = [r for r in results if r["kind"] == "peer"]
    timed = [r for r in peers if "speedup" in r]
    if timed:
        worst = min(timed, key=lambda r: r["speedup"])
        sizes = sorted({r["n_rec"] for r in timed})
        out.append(
            target(
                "e",
                f"ahead of jax_rtrl at every size (n_rec {', '.join(map(str, sizes))}; "
                f"worst: {worst['rule']} {worst['mode']} at {worst['n_rec']})",
                f"{worst['speedup']:.2f}x",
                "> 1x",
                worst["speedup"],
                worst["speedup"] > 1,
                f"rflo {_t(worst['library']['seconds_per_trial'])}, jax_rtrl "
                f"{_t(worst['jax_rtrl']['seconds_per_trial'])} per trial{peer_compiled()}",
            )
        )
    else:
        why = peers[0].get("skipped") if peers else "not asked for (--jax-rtrl PATH)"
        out.append(
            target(
                "e", "ahead of jax_rtrl at every size", f"not measured: {why}", "> 1x", None, None
            )
        )
    return out


def issue25_targets(results):
    return (
        cli_targets(results)
        + cell_targets(results)
        + size_targets(results)
        + ensemble_targets(results)
        + sweep_targets(results)
    )


def check_targets(results, args=None):
    """Every target this run's rows can decide: the earlier ones, then issue #25's."""
    return earlier_targets(results) + issue25_targets(results)


def target_lines(targets, processor):
    """The terminal's lines: earlier targets, then issue #25's with their profiles."""
    lines = []
    early = [t for t in targets if t.get("issue") != 25]
    if early:
        lines.append(
            "\n== targets of earlier issues (n_rec 50, T 100, float32, one process unless said)"
        )
        for t in early:
            cpu = t.get("cpu_time_based")
            lines.append(
                f"{t['name']:<46}{t['measured']:>8}  (target >= {t['target']}x)  "
                f"{'met' if t['met'] else 'NOT MET':<8}"
                + (f"  [from CPU time: {cpu:.1f}x]" if cpu else "")
            )
    new = [t for t in targets if t.get("issue") == 25]
    if new:
        lines.append(f"\n== issue #25 targets on {processor}")
        for t in new:
            if t["met"] is None:
                lines.append(f"({t['id']}) {t['name']} (target {t['target']}): {t['measured']}")
            else:
                lines.append(
                    f"({t['id']}) {t['name']}: {t['measured']} (target {t['target']}): {verdict(t)}"
                )
            if t.get("profile"):
                lines.append(f"      where the time goes: {t['profile']}")
    return lines
