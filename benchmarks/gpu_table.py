"""The GPU benchmark's tables (benchmarks/gpu.py): the CPU figures beside the
GPU's, the Markdown table, and the merge of a later run into an earlier one."""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASES = [("rflo", False), ("rflo", True), ("bptt", False)]


def cpu_figures(path):
    """{(rule, mode, n_rec, K, T): seconds per network-trial} and the processor,
    from a benchmarks/run.py results file (single networks count as K = 1)."""
    if path is None:
        for name in ("results-targets.json", "results.json", "results-quick.json"):
            if (HERE / name).exists():
                path = HERE / name
                break
    if path is None or not Path(path).exists():
        return {}, None, None
    report = json.loads(Path(path).read_text())
    out = {}
    for r in report.get("results", []):
        t = r.get("library", {}).get("seconds_per_trial")
        if t is None or r.get("kind") not in ("speed", "ensemble", "size"):
            continue
        k = r.get("K", 1)
        if r["kind"] == "ensemble" and k == 1:
            continue  # the single-network row is the K = 1 we show
        out[(r["rule"], r["mode"], r["n_rec"], k, r["steps"])] = t
    m = report.get("machine", {})
    path = Path(path).resolve()
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return out, f"{m.get('cpu')} ({m.get('cores_usable')} cores)", str(shown)


def fmt(s):
    if s is None:
        return "-"
    return f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def markdown(report):
    d, s = report["device"], report["settings"]
    rows = report["results"]
    mem = f", {d['memory_gib']} GiB" if d.get("memory_gib") else ""
    lines = [
        f"Device: **{d['device_kind']}** ({d['platform']}{mem}), JAX "
        f"{d['jax']}; XLA paths (RFLO_KERNELS=0), float32, matmul precision "
        f"{s['precision']}, T {s['steps']}, time-loop unroll {s.get('unroll', 1)}; "
        f"seconds per network-trial (best of repeated "
        f"calls, compilation excluded); run {report['date_utc']} UTC in "
        f"{report['wall_s']:.0f} s as `python benchmarks/{report['command']}`.",
        "",
    ]
    cpu_name = report.get("cpu_processor")
    ks = s["ks"]
    head = (
        "| rule | mode | n_rec | "
        + " | ".join(f"K = {k}" for k in ks)
        + " | best network-trials/s |"
    )
    if cpu_name:
        head += " CPU kernels K = 1 | CPU best network-trials/s |"
    lines += [head, "|---|---|---:|" + "---:|" * (len(ks) + 1 + (2 if cpu_name else 0))]
    for rule, online in CASES:
        mode = "online" if online else "offline"
        for n in s["sizes"]:
            got = {
                r["K"]: r
                for r in rows
                if r["rule"] == rule and r["mode"] == mode and r["n_rec"] == n
            }
            cells = []
            for k in ks:
                r = got.get(k)
                if r is None:
                    cells.append("-")
                elif "seconds_per_network_trial" in r:
                    cells.append(fmt(r["seconds_per_network_trial"]) + "*" * r.get("run", 0))
                else:
                    cells.append(r.get("skipped", "-").split(":")[0])
            rates = [r["network_trials_per_s"] for r in got.values() if "network_trials_per_s" in r]
            best = f"{max(rates):,.0f}" if rates else "-"
            line = f"| {rule} | {mode} | {n} | " + " | ".join(cells) + f" | {best} |"
            if cpu_name:
                cpu = {
                    key[3]: t
                    for key, t in report["cpu"].items()
                    if key[:3] == (rule, mode, n) and key[4] == s["steps"]
                }
                best = max((1 / t for t in cpu.values()), default=None)  # t: per network-trial
                line += f" {fmt(cpu.get(1))} | {f'{best:,.0f}' if best else '-'} |"
            lines.append(line)
    if cpu_name:
        lines += [
            "",
            f"CPU columns: {cpu_name}, rflo's compiled kernels where they apply, from "
            f"`{report['cpu_source']}` as it stood at the GPU run (kept in its JSON).",
        ]
    else:
        lines += [
            "",
            "No CPU results file was found (run `python benchmarks/run.py` first for "
            "the CPU columns).",
        ]
    for i, (command, date) in enumerate(report.get("later_runs", []), start=1):
        lines += [
            "",
            f"{'*' * i}: from a later run on the same device, {date} UTC, as "
            f"`python benchmarks/{command}`.",
        ]
    lines += reading(report)
    skipped = [r for r in rows if "skipped" in r]
    if skipped:
        lines += [
            "",
            "Skipped: "
            + "; ".join(
                f"{r['rule']} {r['mode']} n_rec {r['n_rec']} K {r['K']}: {r['skipped']}"
                for r in skipped
            ),
        ]
    return "\n".join(lines) + "\n"


#: HBM bandwidth by the vendor's datasheet, bytes/s, for the reading of the table
DATASHEET_BANDWIDTH = {"NVIDIA H200": 4.8e12, "NVIDIA H100 80GB HBM3": 3.35e12}
#: n x n float32 matrices a step reads, per network, in the ensemble paths whose
#: large-n time is the weights' reading: offline RFLO's forward pass reads w_rec
#: (its update is one n x T x n product per trial); BPTT's forward and backward
#: passes read it once each
MATRIX_READS = {("rflo", "offline"): 1, ("bptt", "offline"): 2}


def reading(report):
    """Bullet lines computed from the table: one network's time per step, where
    the GPU overtakes the CPU kernels, the best ensemble against the CPU's best,
    and the bandwidth the largest timed ensembles imply."""
    rows = [r for r in report["results"] if "seconds_per_network_trial" in r]
    s, cpu = report["settings"], report.get("cpu") or {}
    t = {(r["rule"], r["mode"], r["n_rec"], r["K"]): r["seconds_per_network_trial"] for r in rows}
    out = []
    for rule, mode in (("rflo", "offline"), ("bptt", "offline")):
        single = sorted((n, v) for (r, m, n, k), v in t.items() if (r, m, k) == (rule, mode, 1))
        if not single:
            continue
        per_step = [v / s["steps"] for _, v in single]
        text = (
            f"{rule} {mode}, one network (K = 1): {fmt(min(per_step))} to "
            f"{fmt(max(per_step))} per time step for n_rec {single[0][0]} to {single[-1][0]}"
        )
        cpu1 = {n: cpu.get((rule, mode, n, 1, s["steps"])) for n, _ in single}
        over = [n for n, v in single if cpu1[n] and v < cpu1[n]]
        if any(cpu1.values()):
            n0, v0 = single[0]
            text += (
                f" (nearly the same at every size: a fixed cost per step of the loop on the "
                f"GPU, not profiled further); the CPU "
                f"kernels are {v0 / cpu1[n0]:.0f}x faster at n_rec {n0}"
                + (f", the GPU faster from n_rec {over[0]} on" if over else "")
            )
        best = {}
        for (r, m, n, k), v in t.items():
            if (r, m) == (rule, mode) and 1 / v > best.get(n, (0, 0))[0]:
                best[n] = (1 / v, k)
        n0 = min(best)
        cpu_best = max(
            (1 / v for key, v in cpu.items() if key[:3] == (rule, mode, n0)), default=None
        )
        text += f"; the best ensemble at n_rec {n0} runs {best[n0][0]:,.0f} network-trials/s"
        text += f" (K = {best[n0][1]})" + (
            f", {best[n0][0] / cpu_best:.0f}x the CPU's best" if cpu_best else ""
        )
        reads, bandwidth = (
            MATRIX_READS[(rule, mode)],
            DATASHEET_BANDWIDTH.get(report["device"]["device_kind"]),
        )
        n1 = max(best)
        v1 = 1 / best[n1][0]
        rate = reads * 4 * n1 * n1 * s["steps"] / v1
        text += (
            f"; at n_rec {n1} (K = {best[n1][1]}) reading w_rec {reads}x per step takes "
            f"{rate / 1e12:.2f} TB/s"
            + (
                f", {rate / bandwidth:.0%} of the card's {bandwidth / 1e12:.1f} TB/s"
                if bandwidth
                else ""
            )
            + ": large ensembles are bound by reading their weights, not by arithmetic."
        )
        out.append("- " + text)
    return ["", "Read off the table:", ""] + out if out else []


def merged(paths):
    """The first stored report, its skipped cells filled from the later ones
    (same device, T and precision), as ``markdown`` takes it."""
    reports = [json.loads(Path(p).read_text()) for p in paths]
    base = reports[0]
    key = ("device_kind", "platform")
    for later in reports[1:]:
        same = [later["device"][k] == base["device"][k] for k in key] + [
            later["settings"].get(k, 1) == base["settings"].get(k, 1)
            for k in ("steps", "precision", "unroll")
        ]
        if not all(same):
            raise SystemExit(
                "--render: the runs differ in device, T, precision or unroll; render each alone"
            )
    cells = {(r["rule"], r["mode"], r["n_rec"], r["K"]): r for r in base["results"]}
    for i, later in enumerate(reports[1:], start=1):
        used = False
        for r in later["results"]:
            k = (r["rule"], r["mode"], r["n_rec"], r["K"])
            if "seconds_per_network_trial" in cells.get(k, {}):
                continue  # the first run's figure stands
            if "seconds_per_network_trial" in r:
                cells[k], used = dict(r, run=i), True
            else:  # skipped again: the later run's reason (it got further)
                cells[k] = r
        if used:
            base.setdefault("later_runs", []).append((later["command"], later["date_utc"]))
    base["results"] = list(cells.values())
    s = base["settings"]
    for name in ("ks", "sizes"):
        s[name] = sorted({v for rep in reports for v in rep["settings"][name]})
    src = Path(base.get("cpu_source") or "")
    if src.is_absolute() and src.parent.name == "benchmarks":  # a run before paths were relative
        base["cpu_source"] = f"benchmarks/{src.name}"
    base["cpu"] = {
        (c["rule"], c["mode"], c["n_rec"], c["K"], c["steps"]): c["seconds_per_network_trial"]
        for c in base["cpu"]
    }
    return base


def gpu_readme_lines():
    """``[line, ""]`` for the README where a GPU table is stored: the device,
    the best ensemble at the smallest size and one network's place against the
    CPU kernels, read off that table's notes; else ``[]``."""
    lines = []
    for path in sorted(HERE.glob("gpu-*.md")):
        text = path.read_text()
        device = re.search(r"Device: \*\*(.+?)\*\*", text)
        found = re.search(
            r"- rflo offline, one network .*?the CPU kernels are (\d+)x faster at n_rec (\d+)"
            r"(?:, the GPU faster from n_rec (\d+) on)?; the best ensemble at n_rec \d+ runs "
            r"([\d,]+) network-trials/s \(K = (\d+)\), (\d+)x the CPU's best",
            text,
        )
        if not (device and found):
            continue
        slower, n0, over, rate, k, gain = found.groups()
        lines.append(
            f"On a GPU ({device.group(1)}, XLA paths; table in [docs/benchmarks.md]"
            f"(docs/benchmarks.md#on-a-gpu)): RFLO offline at n_rec {n0} runs {rate} "
            f"network-trials/s as an ensemble of K = {k}, {gain}x the CPU kernels' best there; "
            f"one network is {slower}x slower than the CPU kernels at n_rec {n0}"
            + (f" and faster from n_rec {over} on" if over else "")
            + (
                " (time loop unrolled 1 step per iteration; the GPU default since, 10, is "
                "about 2.2x faster at n_rec 50)."
                if "unroll 1;" in text and sorted(HERE.glob("gpu-*-unroll.md"))
                else "."
            )
        )
    return lines + [""] if lines else []
