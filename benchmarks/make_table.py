"""Turn benchmarks/results.json into markdown tables.

    python benchmarks/make_table.py [results.json]

Writes docs/benchmarks.md (every table) and, if README.md exists and has the
markers ``<!-- bench:start -->`` and ``<!-- bench:end -->``, replaces what is
between them with the seed experiment's table (n_rec = 50), the targets and a
GPU line (``--no-readme``: leave README.md alone).  Issue #25's sections (targets
met / not met, every cell, large networks, the commands, the GPU route) come from
``--targets FILE``: by default the results file itself where it has them, else
benchmarks/results-targets.json (``run.py --quick --out`` that), each section naming
its own run."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from fmt import fmt_bytes, fmt_rate, fmt_time  # noqa: F401  (timing, target_tables)
from gpu_table import gpu_readme_lines

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def machine_line(report):
    m = report["machine"]
    threads = m.get("numpy_blas", {}).get("threadpools")
    blas = "-"
    if isinstance(threads, list) and threads:
        p = threads[0]
        blas = f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}, {p.get('num_threads')} threads)"
    return (
        f"Machine: {m['cpu']}, {m['cores_usable']} cores usable ({m['cores']} present); "
        f"JAX {m['jax']} on device `{m['jax_device']}`; numpy {m['numpy']} with {blas}; "
        f"Python {m['python']}{kernel_text(report)}. Run {report['date_utc']} UTC as "
        f"`python benchmarks/{report['command']}`."
    )


def kernel_text(report):
    k = report.get("settings", {}).get("kernels")
    if not k:
        return ""
    if not (k.get("enabled") and k.get("built")):
        return "; rflo's compiled kernels off (XLA paths)"
    return f"; rflo's compiled CPU kernels on ({k.get('threads')} threads per call)"


def cell(part, key="seconds_per_trial"):
    if part is None:
        return "-"
    if "skipped" in part:
        return "skipped"
    return fmt_time(part.get(key))


def speed_table(report, n_rec=None):
    rows = [
        r
        for r in report["results"]
        if r["kind"] == "speed" and (n_rec is None or r["n_rec"] == n_rec)
    ]
    out = [
        "| rule | mode | n_rec | library / trial | library trials/s | numpy loop / trial | "
        "speed-up | compile | library memory | numpy memory |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lib, nump = r["library"], r.get("numpy")
        speed = f"**{r['speedup']:.0f}x**" if "speedup" in r else "-"
        out.append(
            f"| {r['rule']} | {r['mode']} | {r['n_rec']} | {cell(lib)} | "
            f"{fmt_rate(lib.get('trials_per_s'))} | {cell(nump)} | {speed} | "
            f"{(format(lib['compile_s'], '.1f') + ' s') if 'compile_s' in lib else '-'} | "
            f"{fmt_bytes(lib.get('peak_bytes'))} | {fmt_bytes((nump or {}).get('peak_bytes'))} |"
        )
    return "\n".join(out)


def ensemble_table(report):
    rows = [r for r in report["results"] if r["kind"] == "ensemble"]
    ks = sorted({r["K"] for r in rows})
    groups = {}
    for r in rows:
        groups.setdefault((r["rule"], r["mode"], r["n_rec"]), {})[r["K"]] = r["library"]
    if not ks:
        return ""
    head = (
        "| rule | mode | n_rec | "
        + " | ".join(f"K = {k}" for k in ks)
        + f" | network-trials/s, K = {ks[-1]} vs K = {ks[0]} |"
    )
    out = [head, "|---|---|---:|" + "---:|" * (len(ks) + 1)]
    for (rule, mode, n), per in groups.items():
        lo, hi = per.get(ks[0], {}), per.get(ks[-1], {})
        gain = (
            lo["seconds_per_trial"] / hi["seconds_per_trial"]
            if "seconds_per_trial" in lo and "seconds_per_trial" in hi
            else None
        )
        out.append(
            f"| {rule} | {mode} | {n} | "
            + " | ".join(cell(per.get(k)) for k in ks)
            + f" | {('**' + format(gain, '.1f') + 'x**') if gain else '-'} |"
        )
    return "\n".join(out)


def memory_table(report):
    rows = [r for r in report["results"] if r["kind"] == "memory"]
    steps = sorted({r["steps"] for r in rows})
    groups = {}
    for r in rows:
        groups.setdefault((r["rule"], r["mode"], r["n_rec"]), {})[r["steps"]] = r
    if not steps:
        return ""
    head = (
        "| rule | mode | n_rec | "
        + " | ".join(f"work, T = {t:,}" for t in steps)
        + " | "
        + " | ".join(f"total, T = {t:,}" for t in steps)
        + f" | numpy loop, T = {steps[-1]:,} |"
    )
    out = [head, "|---|---|---:|" + "---:|" * (2 * len(steps) + 1)]
    for (rule, mode, n), per in groups.items():
        work = [fmt_bytes(per[t]["library"].get("temp_bytes")) if t in per else "-" for t in steps]
        total = [fmt_bytes(per[t]["library"].get("peak_bytes")) if t in per else "-" for t in steps]
        nump = per.get(steps[-1], {}).get("numpy", {}).get("peak_bytes")
        out.append(
            f"| {rule} | {mode} | {n} | " + " | ".join(work + total) + f" | {fmt_bytes(nump)} |"
        )
    return "\n".join(out)


def _peer_option(report):
    """How the peer compiled: with rflo's small-loop XLA option (runs since it exists) or not."""
    loops = ((report.get("machine") or {}).get("xla_small_loops") or {}).get("small_loop_bytes")
    with_option = ", so that the peer compiles with rflo's XLA option too (`rflo.xla_options`)"
    return (with_option + ", which about halves its times at n_rec 20-50.") if loops else "."


def peer_table(report):
    """rflo beside FranzKnut/jax_rtrl (rows of kind "peer"), or why there are none."""
    rows = [r for r in report["results"] if r["kind"] == "peer"]
    if not rows:
        return (
            "Not measured in this run (`--jax-rtrl PATH`, in the environment "
            "`benchmarks/peers/install_jax_rtrl.sh` makes)."
        )
    if "skipped" in rows[0]:
        return f"Skipped: {rows[0]['skipped']}"
    n_rec, steps = rows[0]["n_rec"], rows[0]["steps"]
    out = [
        f"n_rec = {n_rec}, T = {steps}, float32, plain SGD, the same trial; "
        + (
            "tanh' = 1 - tanh^2 on both sides (rflo's `derivative=\"exact\"`)"
            if rows[0].get("derivative") == "exact"
            else "rflo uses the notebook's f', the peer tanh' = 1 - tanh^2"
        )
        + "; the two timed alternately in one process (`benchmarks/peers/jax_rtrl_driver.py`)"
        + _peer_option(report),
        "",
        "| rule | mode | rflo / trial | jax_rtrl / trial | rflo faster by |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['rule']} | {r['mode']} | {fmt_time(r['library']['seconds_per_trial'])} | "
            f"{fmt_time(r['jax_rtrl']['seconds_per_trial'])} | **{r['speedup']:.2f}x** |"
        )
    return "\n".join(out)


def kernel_table(report):
    """The XLA paths against rflo's kernels (rows of kind "kernels"): before and after."""
    rows = [r for r in report["results"] if r["kind"] == "kernels"]
    if not rows:
        return "Not measured in this run."
    out = [
        f"n_rec = {rows[0]['n_rec']}, T = {rows[0]['steps']}, float32; both compiled in one "
        "process and timed alternately (the XLA paths with `RFLO_KERNELS=0`).",
        "",
        "| rule | mode | XLA paths / trial | kernels / trial | faster by |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['rule']} | {r['mode']} | {fmt_time(r['xla']['seconds_per_trial'])} | "
            f"{fmt_time(r['kernels']['seconds_per_trial'])} | **{r['speedup']:.2f}x** |"
        )
    return "\n".join(out)


def sweep_line(report):
    rows = [r for r in report["results"] if r["kind"] == "sweep"]
    if not rows:
        return "Not measured in this run."
    r = rows[-1]
    if "failed" in r:
        return f"Failed in this run: {r['failed']}"
    best = r["best_network_trials_per_s"]
    parts = ", ".join(f"{name}: {value:,.0f}" for name, value in best.items())
    return (
        f"one chunk of {r['networks']} networks (RFLO offline, n_rec 50) x {r['trials']:,} "
        f"trials, fresh processes (`benchmarks/sweep_devices.py`), network-trials/s: {parts}; "
        f"**{r['ratio']:.2f}x** one core."
    )


#: rules whose targets the README shows (docs/benchmarks.md shows every target)
HEADLINE_RULES = ("rflo", "bptt", "rtrl")


def targets_list(report, headline=False):
    lines = []
    for t in report.get("targets", []):
        if t.get("issue") == 25:  # their own section (target_tables.py)
            continue
        if headline and not (t["name"].split()[0] in HEADLINE_RULES or "sweep" in t["name"]):
            continue
        med = t.get("median_based")
        cpu = t.get("cpu_time_based")
        extra = (f" (from medians: {med:.1f}x)" if med else "") + (
            f" (from CPU time: {cpu:.1f}x)" if cpu else ""
        )
        lines.append(
            f"- {t['name']}: **{t['measured']}**{extra}, target >= {t['target']}x: "
            f"{'met' if t['met'] else '**not met**'}"
        )
    return "\n".join(lines)


NOTES = """Per-trial times are the minimum over many short repeated calls (compilation excluded,
reported apart), so that on a busy machine they show the code rather than the load;
the library and the numpy loop (tests/seed_notebook.py, the notebook's algorithm in
float64 as the notebook runs it) are timed alternately in the same process. Library
memory is XLA's account of the compiled session (`memory_analysis()`): *work* is its
temporaries, *total* adds the weights and the task's inputs and targets; the numpy
loop's is tracemalloc's peak over one trial. On a CPU the leaky tanh rules run
through rflo's compiled kernels (`rflo.kernels`, tested equal to the XLA paths);
`RFLO_KERNELS=0` turns them off."""


def readme_block(report):
    n_rec = (
        50 if any(r["kind"] == "speed" and r["n_rec"] == 50 for r in report["results"]) else None
    )
    parts = [
        f"Seed experiment (T = {report['settings']['steps']}, float32, one process), "
        f"from `python benchmarks/run.py`; all sizes, ensembles and memory in "
        f"[docs/benchmarks.md](docs/benchmarks.md).",
        "",
        speed_table(report, n_rec),
        "",
        "Beside the fastest peer, FranzKnut/jax_rtrl: " + peer_table(report),
        "",
        "A sweep over every core: " + sweep_line(report),
        "",
        "Targets of RFLO, BPTT and RTRL (every rule's in docs/benchmarks.md):",
        "",
        targets_list(report, headline=True),
        "",
        *gpu_readme_lines(),
        machine_line(report),
    ]
    return "\n".join(parts)


def full_page(report, targets_report=None):
    from target_tables import issue25_page

    parts = [
        "# Benchmarks",
        "",
        "Generated by `benchmarks/make_table.py` from `benchmarks/results.json` "
        "(written by `benchmarks/run.py`). Do not edit by hand.",
        "",
        machine_line(report),
        "",
        NOTES,
        "",
        issue25_page(targets_report or report),
        "## Targets of earlier issues (n_rec = 50, T = 100)",
        "",
        targets_list(report),
        "",
        f"## Seconds per trial (T = {report['settings']['steps']})",
        "",
        speed_table(report),
        "",
        "## Before and after: the XLA paths against the kernels",
        "",
        kernel_table(report),
        "",
        "## Beside FranzKnut/jax_rtrl",
        "",
        peer_table(report),
        "",
        "## A sweep over every core",
        "",
        sweep_line(report),
        "",
        "## Ensembles (`train_ensemble`): seconds per network-trial",
        "",
        ensemble_table(report),
        "",
        "## Memory against trial length",
        "",
        "BPTT keeps the trial's history (its working memory grows with T); the online "
        "rules carry only their traces (constant in T).",
        "",
        memory_table(report),
        "",
        "## Cost scaling",
        "",
        "![seconds per trial against n_rec](scaling.png)",
        "",
    ]
    return "\n".join(parts)


def atomic_write(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def update_readme(readme, block):
    text = readme.read_text()
    if START not in text or END not in text or text.index(START) > text.index(END):
        return False
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    atomic_write(readme, f"{head}{START}\n{block}\n{END}{tail}")
    return True


def main(argv=None):
    p = argparse.ArgumentParser(description="benchmarks/results.json -> markdown tables")
    p.add_argument("results", nargs="?", type=Path, default=ROOT / "benchmarks" / "results.json")
    p.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument("--readme", type=Path, default=ROOT / "README.md")
    p.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    p.add_argument(
        "--targets",
        type=Path,
        default=None,
        help="results with issue #25's rows (default: the results file where it has "
        "them, else benchmarks/results-targets.json)",
    )
    args = p.parse_args(argv)
    if not args.results.exists():
        print(
            f"error: {args.results} not found; run python benchmarks/run.py first", file=sys.stderr
        )
        return 2
    report = json.loads(args.results.read_text())
    targets_report = None
    path = args.targets
    if path is None and not any(t.get("issue") == 25 for t in report.get("targets", [])):
        path = ROOT / "benchmarks" / "results-targets.json"
        path = path if path.exists() else None
    if path is not None:
        targets_report = json.loads(path.read_text())
    args.docs.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.docs, full_page(report, targets_report))
    print(f"wrote {args.docs}" + (f" (issue #25's sections from {path})" if path else ""))
    if args.readme.exists() and not args.no_readme:
        if update_readme(args.readme, readme_block(report)):
            print(f"updated {args.readme} between {START} and {END}")
        else:
            print(f"{args.readme} has no {START} ... {END} markers; left unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
