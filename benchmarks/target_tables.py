"""docs/benchmarks.md's sections for issue #25 ("Speed where users wait"): the
targets met / not met with where the time goes, every cell beside the leaky
tanh, large networks against the matmul peak, the commands, and the GPU route
(benchmarks/gpu.py: its table where a GPU run stored one, else how to make it)."""

from __future__ import annotations

from pathlib import Path

from make_table import fmt_time, machine_line

HERE = Path(__file__).resolve().parent

LETTERS = {
    "a": '`rflo train --trials 1` at most 2x `python -c "import rflo"` (warm)',
    "b": "`rflo compare` on the defaults under 4 s wall (warm)",
    "c": "every cell within 2x of the leaky tanh's time per trial, same rule, n_rec 50",
    "d": "local rules no slower than BPTT on the same cell",
    "e": "RFLO offline and BPTT at n_rec 100-1000 >= 50 % of one core's matmul peak; "
    "ahead of jax_rtrl at every size",
    "f": "ensembles of K = 64 >= 2x separate networks' throughput (RFLO offline, online)",
    "g": "the sweep on 2 cores >= 1.8x one core",
}


def _verdict(t):
    return "not measured" if t["met"] is None else "met" if t["met"] else "**not met**"


def targets_table(report):
    ts = [t for t in report.get("targets", []) if t.get("issue") == 25]
    if not ts:
        return "Not measured in this run."
    out = [
        "| | target | measured | wanted | verdict | where the time goes (not met) |",
        "|---|---|---:|---:|---|---|",
    ]
    for t in ts:
        out.append(
            f"| ({t['id']}) | {t['name']} | {t['measured']} | {t['target']} | "
            f"{_verdict(t)} | {t.get('profile') or ''} |"
        )
    met = sum(t["met"] is True for t in ts)
    missed = sum(t["met"] is False for t in ts)
    unmeasured = sum(t["met"] is None for t in ts)
    legend = "\n".join(f"- ({k}) {v}" for k, v in LETTERS.items())
    return (
        f"{met} met, {missed} not met, {unmeasured} not measured.\n\n"
        + "\n".join(out)
        + "\n\nThe issue's targets:\n\n"
        + legend
    )


def cell_table(report):
    rows = [r for r in report["results"] if r["kind"] == "cell"]
    if not rows:
        return "Not measured in this run."
    cases = []
    for r in rows:
        if (r["rule"], r["mode"]) not in cases:
            cases.append((r["rule"], r["mode"]))
    groups = {}
    for r in rows:
        name = r["cell"] if r["route"] == "auto" else f"{r['cell']} (route generic)"
        groups.setdefault(name, {})[(r["rule"], r["mode"])] = r
    out = [
        "| cell | path | synapses | " + " | ".join(f"{a} {b}" for a, b in cases) + " |",
        "|---|---|---:|" + "---:|" * len(cases),
    ]
    for name, per in groups.items():
        path = next((r["path"] for r in per.values() if "path" in r), "-")
        synapses = next((f"{r['synapses']:,}" for r in per.values() if "synapses" in r), "-")
        cells = []
        for case in cases:
            r = per.get(case)
            if r is None or "seconds_per_trial" not in r.get("library", {}):
                cells.append("n/a" if r is not None else "-")
                continue
            ratio = f" ({r['vs_reference']:.1f}x)" if "vs_reference" in r else ""
            cells.append(fmt_time(r["library"]["seconds_per_trial"]) + ratio)
        out.append(f"| {name} | {path} | {synapses} | " + " | ".join(cells) + " |")
    n, t = rows[0]["n_rec"], rows[0]["steps"]
    return (
        f"n_rec {n}, T {t}, float32, one network; seconds per trial and, in brackets, "
        f"against the leaky tanh with the same rule (`benchmarks/cell_speed.py`; n/a: the "
        f"rule does not train the cell). Synapses: the entries of the weight matrices "
        f"one step multiplies (all but the readout and the feedback).\n\n" + "\n".join(out)
    )


def gain_table(report):
    """Target (f)'s alternating measurement (ensemble_gain.py) and the cores' own scaling."""
    rows = [r for r in report["results"] if r["kind"] == "ensemble_gain"]
    if not rows:
        return "Not measured in this run."
    k, threads = rows[0]["K"], rows[0]["threads"]
    out = [
        f"| rule | alone | K={k} ({threads} threads) | K={k} (1 thread) | gain | batching | "
        "threads | gain (medians) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        t = r["seconds_per_trial"]
        out.append(
            f"| {r['rule']} {r['mode']} | {fmt_time(t['alone'])} | {fmt_time(t['ensemble'])} | "
            f"{fmt_time(t['one_thread'])} | {r['gain']:.2f}x | {r['batching']:.2f}x | "
            f"{r['threads_gain']:.2f}x | {r['gain_median']:.2f}x |"
        )
    cores = [r for r in report["results"] if r["kind"] == "cores" and r.get("ratio")]
    tail = (
        f"\n\n{cores[-1]['cores']} processes, each pinned to a core of its own and doing "
        f"float32 64 x 64 matmuls, do {cores[-1]['ratio']:.2f}x one process's "
        "(`machine.core_scaling`): the most more cores can add here."
        if cores
        else ""
    )
    return (
        f"n_rec {rows[0]['n_rec']}, T {rows[0]['steps']}, float32; seconds per network-trial, "
        f"the three compiled runs' calls alternating, each about {rows[0]['call_s'] * 1e3:.0f} "
        "ms of work, the best call of each (`benchmarks/ensemble_gain.py`). Batching: one "
        f"network alone against K={k} on one kernel thread; threads: one kernel thread "
        f"against {threads}.\n\n" + "\n".join(out) + tail
    )


def size_table(report):
    rows = [r for r in report["results"] if r["kind"] == "size"]
    if not rows:
        return "Not measured in this run."
    peak = next((r["matmul_peak_gflops"] for r in rows if r.get("matmul_peak_gflops")), None)
    out = [
        "| rule | n_rec | T | per trial | GFLOP/s | share of peak | ceiling | forward pass alone | "
        "its share of the trial |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "seconds_per_trial" not in r["library"]:
            out.append(
                f"| {r['rule']} offline | {r['n_rec']} | {r['steps']} | "
                f"{r['library'].get('skipped', '-')} | | | | | |"
            )
            continue
        share = f"{r['share_of_peak']:.0%}" if "share_of_peak" in r else "-"
        ceiling = f"{r['ceiling_share']:.0%}" if "ceiling_share" in r else "-"
        out.append(
            f"| {r['rule']} offline | {r['n_rec']} | {r['steps']} | "
            f"{fmt_time(r['library']['seconds_per_trial'])} | {r['gflops']:.1f} | {share} | "
            f"{ceiling} | {fmt_time(r['forward_s'])} | {r['forward_share']:.0%} |"
        )
    head = (
        "FLOPs of the dominant products per trial: RFLO offline 4 n^2 T (forward pass and "
        "update), BPTT 6 n^2 T (forward, backward, gradient); "
        + (
            f"one core's 512 x 512 float32 matmul: {peak:.0f} GFLOP/s"
            if peak
            else "matmul peak not measured"
        )
        + ". *Ceiling*: the share no implementation of one network's trial can pass, its "
        "dependent matrix-vector products (the forward's, and BPTT's backward) at the best "
        "n x n matrix-vector rate measured on one core in the same run (numpy's BLAS, or the "
        "forward pass's own where faster) and the rest at the matmul peak "
        "(`benchmarks/size_speed.py`)."
    )
    return head + "\n\n" + "\n".join(out)


def cli_table(report):
    rows = [r for r in report["results"] if r["kind"] == "cli"]
    if not rows:
        return "Not measured in this run."
    out = [
        "| command | warm wall (best) | first run | CPU (warm) | load at the time |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        load = ", ".join(f"{x:.2f}" for x in r.get("load_average", []))
        if "wall_s" not in r:
            out.append(f"| `{r['command']}` | {r.get('failed', '-')} | | | {load} |")
            continue
        out.append(
            f"| `{r['command']}` | {r['wall_s']:.2f} s | {r['first_s']:.2f} s | "
            f"{r['cpu_s']:.2f} s | {load} |"
        )
    return (
        "Fresh processes in a temporary folder, one warm-up run first "
        "(`benchmarks/cli_speed.py`; TMP is that folder).\n\n" + "\n".join(out)
    )


GPU_HOWTO = """On a machine with an NVIDIA GPU, in rflo's environment:

```bash
pip install -U "jax[cuda12]"                      # or jax[cuda13], as the driver allows
python -c "import jax; print(jax.devices())"      # should name the GPU
python benchmarks/gpu.py --out benchmarks/gpu-h200.json   # under 8 minutes
python -m pytest tests/test_gpu.py                 # GPU equals CPU, an ensemble trains
python benchmarks/make_table.py                    # puts the table here
```

`benchmarks/gpu.py` times rflo's XLA paths (RFLO offline and online, BPTT;
float32 at full matmul precision, T 100) for ensembles K = 1, 8, 64, 512, 4096
and n_rec 50, 100, 200, 500, 1000, the most telling cases first, under its own
time guard (`--limit-s`, 420 s); it writes JSON and a Markdown table naming the
device (`jax.devices()[0].device_kind`) with the CPU kernels' figures beside it
(from `benchmarks/results-targets.json` or `results.json`). Without a GPU it says so and exits;
`--allow-cpu --smoke` runs a tiny grid on the CPU (the tests do). A second, shorter
run of the cases the time guard skipped (`--sizes`, `--ks`) is merged into the
first's table by `python benchmarks/gpu.py --render FIRST.json SECOND.json`."""

UNROLL_NOTE = """

The first table ran with the time loop unrolled 1 step per iteration, rflo's
default then; this one made `rflo.train` and `train_ensemble` unroll 10 steps per
iteration on a GPU by default (`unroll=None`; a CPU keeps 1), about 2.2x faster for
one network and for K = 64 at n_rec 50. The first table's small and middle columns
are therefore about twice today's default time; whether large ensembles, bound by
reading their weights, gain too was not measured (the GPU time ran out)."""

GPU_CHECKED = """On the H200 of the table (JAX 0.11.2 with its CUDA 13 plugin, Python 3.12,
2026-12-04), `python -m pytest tests/test_gpu.py` passed (7 tests: training on the GPU
equals the CPU within 2e-5 in float32 for RFLO offline and online, BPTT, the generic
route and e-prop on the leaky_tau cell; an ensemble of 4 learns), and so did
`python -m pytest tests/test_exactness.py` run there (11 tests: exact rules equal
autodiff in float64, on the GPU)."""


def gpu_section():
    found = sorted(HERE.glob("gpu-*.md"), key=lambda p: (len(p.name), p.name))
    if not found:
        return GPU_HOWTO + "\n\n**No GPU run has been made yet**: no GPU was available."
    tables = "\n\n".join(
        p.read_text().strip() + (UNROLL_NOTE if p.name.endswith("-unroll.md") else "")
        for p in found
    )
    return tables + "\n\n" + GPU_CHECKED + "\n\n" + GPU_HOWTO


def load_line(report):
    m = report.get("machine", {})
    start, end = m.get("load_average"), m.get("load_average_end")
    if not start:
        return ""
    fmt = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    return (
        f"Load average (1, 5, 15 min) at the start {fmt(start)}"
        + (f", at the end {fmt(end)}" if end else "")
        + f", on {m.get('cores_usable')} cores: times are best-of-repeats and hold under "
        "load; ratios that need every core free (the sweep's devices against one core, "
        "an ensemble's second thread) read low when other work holds a core."
    )


def issue25_page(report):
    """The issue #25 sections of docs/benchmarks.md, from ``report``."""
    return "\n".join(
        [
            "## Issue #25 targets: speed where users wait",
            "",
            machine_line(report),
            "",
            load_line(report),
            "",
            targets_table(report),
            "",
            "### Every cell beside the leaky tanh",
            "",
            cell_table(report),
            "",
            "### Ensembles against separate networks",
            "",
            gain_table(report),
            "",
            "### Large networks against one core's matmul peak",
            "",
            size_table(report),
            "",
            "### The command line",
            "",
            cli_table(report),
            "",
            "## On a GPU",
            "",
            gpu_section(),
            "",
        ]
    )
