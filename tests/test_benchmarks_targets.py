"""Issue #25's targets are decided from a run's rows (benchmarks/targets.py):
met, not met with the profile that explains it, or not measured.  Pure Python
on made-up rows: no timing."""

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import targets  # noqa: E402


def by_id(ts, letter):
    return [t for t in ts if t.get("id") == letter]


def lib(t, cpu=None, peak=None):
    return {"seconds_per_trial": t, "cpu_seconds_per_trial": cpu or t, "peak_bytes": peak}


def test_nothing_measured_is_said_not_guessed():
    ts = targets.issue25_targets([])
    assert {t["id"] for t in ts} == set("abcdefg")
    assert all(t["met"] is None for t in ts)
    lines = targets.target_lines(ts, "a CPU (2 cores)")
    assert lines[0] == "\n== issue #25 targets on a CPU (2 cores)"
    assert not any("NOT MET" in line for line in lines)


def test_command_line_targets_and_profile():
    rows = [
        {"kind": "cli", "name": "import", "wall_s": 1.0, "cpu_s": 1.2},
        {"kind": "cli", "name": "train", "wall_s": 2.5, "cpu_s": 3.0},
        {"kind": "cli", "name": "compare", "wall_s": 3.5, "cpu_s": 5.0},
        {"kind": "cli", "name": "compare_1", "wall_s": 2.0, "cpu_s": 2.5},
    ]
    (a,) = by_id(targets.cli_targets(rows), "a")
    (b,) = by_id(targets.cli_targets(rows), "b")
    assert a["met"] is False and abs(a["value"] - 2.5) < 1e-12
    assert "import 1.00 s" in a["profile"] and "1.50 s beyond it" in a["profile"]
    assert b["met"] is True and b["profile"] is None
    rows[2]["wall_s"] = 4.5
    (b,) = by_id(targets.cli_targets(rows), "b")
    assert b["met"] is False and "the training 2.50 s" in b["profile"]
    failed = [{"kind": "cli", "name": "train", "failed": "exit 2: boom"}]
    (a,) = by_id(targets.cli_targets(failed), "a")
    assert a["met"] is None and "boom" in a["measured"]


def cell(cell, rule, mode, t, route="auto", ref=None, path="generic (XLA)"):
    row = {
        "kind": "cell",
        "cell": cell,
        "rule": rule,
        "mode": mode,
        "route": route,
        "path": path,
        "library": lib(t),
    }
    if ref:
        row["vs_reference"] = t / ref
    return row


def test_cells_against_leaky_tanh_and_bptt():
    k = "closed form + kernel"
    rows = [
        cell("leaky_tanh", "rflo", "offline", 50e-6, ref=50e-6, path=k),
        cell("leaky_tanh", "bptt", "offline", 60e-6, ref=60e-6, path=k),
        cell("leaky_tanh", "rflo", "offline", 150e-6, route="generic", ref=50e-6),
        cell("leaky_tanh", "bptt", "offline", 130e-6, route="generic", ref=60e-6),
        cell("leaky_tau", "rflo", "offline", 260e-6, ref=50e-6),
        cell("leaky_tau", "bptt", "offline", 100e-6, ref=60e-6),
        cell("lstm", "rflo", "offline", 90e-6, ref=50e-6),
        cell("lstm", "bptt", "offline", 110e-6, ref=60e-6),
    ]
    ts = targets.cell_targets(rows)
    c = {t["name"].split()[0]: t for t in by_id(ts, "c")}
    d = {t["name"].split()[0].rstrip(":"): t for t in by_id(ts, "d")}
    assert set(c) == {"leaky_tau", "lstm"}  # the reference is not measured against itself
    assert c["leaky_tau"]["met"] is False and abs(c["leaky_tau"]["value"] - 5.2) < 1e-9
    # the profile names the path and splits the gap into route and cell
    assert "generic (XLA)" in c["leaky_tau"]["profile"]
    assert "route accounts for 3.0x" in c["leaky_tau"]["profile"]
    assert c["lstm"]["met"] is True and c["lstm"]["profile"] is None
    assert d["leaky_tau"]["met"] is False and abs(d["leaky_tau"]["value"] - 2.6) < 1e-9
    assert d["lstm"]["met"] is True
    assert d["leaky_tanh"]["met"] is True
    assert "synapses" not in c["leaky_tau"]["profile"]  # no counts in these rows: not claimed
    assert "only learning online" not in d["leaky_tau"]["profile"]  # offline is the slow one


def test_a_slow_online_mode_is_told_apart_from_slow_rules():
    k = "closed form + kernel"
    rows = [
        cell("leaky_tanh", "rflo", "offline", 40e-6, ref=40e-6, path=k),
        cell("leaky_tanh", "rflo", "online", 55e-6, ref=55e-6, path=k),
        cell("leaky_tanh", "bptt", "offline", 50e-6, ref=50e-6, path=k),
    ]
    (d,) = by_id(targets.cell_targets(rows), "d")
    assert d["met"] is False and abs(d["value"] - 1.1) < 1e-9
    assert "offline the local rules take at most 0.80x BPTT's time" in d["profile"]
    assert d["profile"].endswith("is slower")


def test_a_cell_with_more_than_twice_the_synapses_says_so():
    """(c)'s profile sets a gated cell's ratio beside its arithmetic: a GRU
    multiplies three gates' matrices a step, 3x the leaky tanh's synapses."""
    k = "closed form + kernel"
    rows = [
        dict(cell("leaky_tanh", "bptt", "offline", 60e-6, ref=60e-6, path=k), synapses=2550),
        dict(cell("gru", "bptt", "offline", 240e-6, ref=60e-6), synapses=7650),
        dict(cell("leaky_tau", "bptt", "offline", 150e-6, ref=60e-6), synapses=2550),
    ]
    c = {t["name"].split()[0]: t for t in by_id(targets.cell_targets(rows), "c")}
    assert c["gru"]["met"] is False
    assert "multiplies 3.0x the leaky tanh's synapses (7,650 against 2,550)" in c["gru"]["profile"]
    assert "it runs 1.33x that" in c["gru"]["profile"]  # 4.0x measured / 3.0x arithmetic
    assert "synapses" not in c["leaky_tau"]["profile"]  # as many as the leaky tanh: no excuse


def test_sizes_peers_ensembles_sweep():
    size = {
        "kind": "size",
        "rule": "rflo",
        "mode": "offline",
        "steps": 100,
        "matmul_peak_gflops": 200.0,
    }
    rows = [
        dict(size, n_rec=100, gflops=120.0, share_of_peak=0.6, forward_s=1e-4, forward_share=0.3),
        dict(size, n_rec=1000, gflops=10.0, share_of_peak=0.05, forward_s=0.03, forward_share=0.7),
    ]
    e = by_id(targets.size_targets(rows), "e")
    assert e[0]["met"] is False and "n_rec 1000" in e[0]["name"]
    assert "forward pass alone" in e[0]["profile"]
    assert e[1]["met"] is None and "--jax-rtrl" in e[1]["measured"]
    assert "ceiling" not in e[0]["profile"]  # no matrix-vector roof measured: not claimed
    roofed = [dict(r, matvec_roof_gflops=20.0, ceiling_share=0.0909) for r in rows]
    e = by_id(targets.size_targets(roofed), "e")
    assert "no implementation of one network's trial can pass 9% of the peak" in e[0]["profile"]
    assert "measured 55% of that ceiling" in e[0]["profile"]  # 0.05 / 0.0909
    peers = [
        {
            "kind": "peer",
            "rule": "rflo",
            "mode": "offline",
            "n_rec": n,
            "speedup": s,
            "library": lib(1e-4),
            "jax_rtrl": {"seconds_per_trial": s * 1e-4},
        }
        for n, s in ((50, 5.0), (200, 0.9))
    ]
    e = by_id(targets.size_targets(peers), "e")
    assert e[-1]["met"] is False and "at 200" in e[-1]["name"]

    ens = [
        {"kind": "speed", "rule": "rflo", "mode": m, "n_rec": 50, "library": lib(100e-6)}
        for m in ("offline", "online")
    ]
    ens += [
        {
            "kind": "ensemble",
            "rule": "rflo",
            "mode": "offline",
            "n_rec": 50,
            "K": 64,
            "library": lib(40e-6, peak=1 << 20),
        },
        {
            "kind": "ensemble",
            "rule": "rflo",
            "mode": "online",
            "n_rec": 50,
            "K": 64,
            "library": lib(80e-6, cpu=160e-6),
        },
    ]
    f = {t["name"].split()[1]: t for t in by_id(targets.ensemble_targets(ens), "f")}
    assert f["offline"]["met"] is True and f["online"]["met"] is False
    assert "second core" in f["online"]["profile"]

    sweep = [
        {
            "kind": "sweep",
            "devices": 2,
            "ratio": 1.5,
            "ratio_to_one_device": 1.3,
            "networks": 64,
            "trials": 1000,
            "best_network_trials_per_s": {"1 core": 1000.0, "2 devices": 1500.0},
        }
    ]
    (g,) = targets.sweep_targets(sweep)
    assert g["met"] is False and "1 core: 1,000" in g["profile"]


def test_ensemble_target_prefers_the_alternating_rows():
    """(f) from ensemble_gain.py's rows where the run has them: the gain, its
    split into batching and threads, and the cores' own scaling beside it."""
    speed = lambda s: {"seconds_per_trial": s, "cpu_seconds_per_trial": s}  # noqa: E731
    rows = [
        {"kind": "speed", "rule": "rflo", "mode": "offline", "n_rec": 50, "library": speed(1e-4)},
        {
            "kind": "ensemble",
            "rule": "rflo",
            "mode": "offline",
            "n_rec": 50,
            "K": 64,
            "library": speed(1e-5),  # 10x from the table's rows: not what counts here
        },
        {
            "kind": "ensemble_gain",
            "rule": "rflo",
            "mode": "offline",
            "n_rec": 50,
            "steps": 100,
            "K": 64,
            "threads": 2,
            "call_s": 0.03,
            "seconds_per_trial": {"alone": 40e-6, "ensemble": 21e-6, "one_thread": 39e-6},
            "seconds_per_trial_median": {"alone": 44e-6, "ensemble": 23e-6, "one_thread": 42e-6},
            "gain": 40 / 21,
            "gain_median": 44 / 23,
            "batching": 40 / 39,
            "threads_gain": 39 / 21,
        },
        {"kind": "cores", "cores": 2, "one": 1.0, "together": 1.98, "ratio": 1.98},
    ]
    f = {t["name"].split()[1]: t for t in by_id(targets.ensemble_targets(rows), "f")}
    assert f["offline"]["met"] is False and f["offline"]["measured"] == "1.90x"
    assert "batching 1.03x" in f["offline"]["profile"]
    assert "the other threads 1.86x" in f["offline"]["profile"]
    assert "1.98x one's vector arithmetic" in f["offline"]["profile"]
    assert f["online"]["met"] is None  # no online row of either kind
    fast = [dict(rows[2], gain=2.1, seconds_per_trial=dict(rows[2]["seconds_per_trial"]))]
    (f,) = [t for t in targets.ensemble_targets(fast) if t["name"].split()[1] == "offline"]
    assert f["met"] is True and f["profile"] is None


def test_benchmark_modules_stay_small():
    """run.py was split along its jobs: no benchmark module over 400 lines."""
    big = {p.name: n for p in BENCH.glob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not big, big


def test_the_ceiling_is_the_roofline_of_one_trial():
    from size_speed import ceiling_share

    # RFLO: 2 n^2 T at the matrix-vector rate, 2 n^2 T at the peak
    assert ceiling_share("rflo", 20.0, 200.0) == pytest.approx(2 / (1 / 20 + 1 / 200) / 200)
    # BPTT: 4 n^2 T at the matrix-vector rate (forward and backward), 2 n^2 T at the peak
    assert ceiling_share("bptt", 20.0, 200.0) == pytest.approx(3 / (2 / 20 + 1 / 200) / 200)
    assert ceiling_share("rflo", 200.0, 200.0) == pytest.approx(1.0)  # no bound beyond the peak
