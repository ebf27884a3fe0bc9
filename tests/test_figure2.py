"""The Figure 2 reproduction: its fast random-feedback rule, its command line,
and (slow) the quick run end to end against the paper's qualitative claims."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import random_network, random_task, rel_err

import rflo
from rflo.paper import figure2
from rflo.paper.common import network_seeds, paper_network
from rflo.rules.rtrl import InfluenceRule


@pytest.mark.parametrize("derivative", ["exact"])
def test_backward_random_feedback_equals_rtrl_with_random_feedback(derivative):
    """Offline, the O(T N^2) backward pass gives the registered O(T N^4) rule's update."""
    net = random_network(n_in=2, n_rec=7, n_out=2)
    task = random_task(steps=25, n_in=2, n_out=2)
    kw = dict(trials=3, lr=(0.2, 0.5, 0.3), dtype="float64", derivative=derivative)
    fast = rflo.train(net, task, "random_feedback", **kw)
    slow = rflo.train(net, task, InfluenceRule(name="rf_forward", feedback="random"), **kw)
    for k in ("w_in", "w_rec", "w_out"):
        assert rel_err(getattr(fast.network, k), getattr(slow.network, k)) < 1e-10
    np.testing.assert_allclose(fast.loss, slow.loss, rtol=1e-10)
    # and it is not BPTT: the feedback is b, not w_out^T
    bptt = rflo.train(net, task, "bptt", **kw)
    assert rel_err(fast.network.w_rec, bptt.network.w_rec) > 1e-3


def test_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert figure2.main(["--out", str(tmp_path), "--quick"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert figure2.main(["--out", str(tmp_path / "x"), "--seed", "-1"]) == 2
    assert figure2.main(["--no-such-option"]) == 2
    assert not (tmp_path / "x").exists()
    file = tmp_path / "file"
    file.write_text("")
    assert figure2.main(["--out", str(file), "--quick"]) == 2


def test_config_checks():
    with pytest.raises(ValueError, match="panels a and d"):
        figure2.Config(mode="x", periods_tau=(20, 160)).check()
    with pytest.raises(ValueError, match=r"no rate for .*'rflo_dale', 160"):
        figure2.Config(
            mode="x", lr=tuple(r for r in figure2.FULL.lr if r[0] != "rflo_dale")
        ).check()


def test_paper_network_draws_the_methods_distributions():
    """The Methods ("Simulation details"): w_in ~ U[-1, 1], w_out ~ U[-1/sqrt(N),
    1/sqrt(N)], W ~ N(0, 1.5^2/N), B ~ N(0, 1); Dale's law as w_ij <- xi_j |w_ij|."""
    n = 400
    net = paper_network(50, n, 20, seed=7)
    w_in, w_rec, w_out, b = (
        np.asarray(getattr(net, k), float) for k in ("w_in", "w_rec", "w_out", "b")
    )
    # uniform on [-a, a]: mean 0, variance a^2 / 3, the bounds reached but not passed
    for w, a in ((w_in, 1.0), (w_out, 1 / np.sqrt(n))):
        assert abs(w.mean()) < 0.02 * a and np.var(w) == pytest.approx(a * a / 3, rel=0.03)
        assert a * 0.99 < np.abs(w).max() <= a
    assert abs(w_rec.mean()) < 0.003 and np.std(w_rec) == pytest.approx(1.5 / np.sqrt(n), rel=0.01)
    assert abs(b.mean()) < 0.03 and np.std(b) == pytest.approx(1.0, rel=0.02)
    dale = paper_network(50, n, 20, seed=7, dale=0.5)
    sign = np.asarray(dale.sign)
    assert np.sum(sign > 0) == n // 2
    np.testing.assert_allclose(np.asarray(dale.w_rec), np.abs(w_rec) * sign[None, :], rtol=1e-6)
    # the notebook's draw stays available: 10x smaller readout, inputs on [-0.1, 0)
    note = paper_network(1, n, 1, seed=7, init="notebook")
    assert np.abs(np.asarray(note.w_out)).max() <= 0.1 / np.sqrt(n)
    with pytest.raises(ValueError, match="init"):
        paper_network(1, 4, 1, seed=0, init="other")


def test_figure2_draws_the_methods_networks_by_default():
    for cfg in (figure2.FULL, figure2.QUICK):
        assert cfg.init == "methods" and cfg.derivative == "seed"
    nets = figure2.networks(figure2.FULL, "rflo", [3, 4])
    for k, seed in enumerate((3, 4)):
        ref = paper_network(1, 30, 1, seed, 10.0)
        for name in ("w_in", "w_rec", "w_out", "b", "h0"):
            np.testing.assert_array_equal(
                np.asarray(getattr(nets, name))[k], np.asarray(getattr(ref, name))
            )
    dale = figure2.networks(figure2.FULL, "rflo_dale", [3])
    assert np.sum(np.asarray(dale.sign) > 0) == 15
    spec = figure2.run_spec(figure2.FULL, "rflo_dale", 80, seeds=[0, 1])
    assert (spec.rule, spec.units, spec.period, spec.dale, spec.derivative) == (
        "rflo",
        30,
        800,
        0.5,
        "seed",
    )
    assert figure2.config("full", "notebook").init == "notebook"


def test_seeds_option_names_the_reported_networks():
    import argparse

    from rflo.paper.common import apply_arguments

    p = figure2.add_arguments(argparse.ArgumentParser())
    cfg = apply_arguments(
        figure2.QUICK, p.parse_args(["--seeds", "10,12,15", "--init", "notebook"])
    )
    assert cfg.seeds == (10, 12, 15) and cfg.n_networks == 3 and cfg.init == "notebook"
    assert network_seeds(cfg) == [10, 12, 15]
    assert network_seeds(figure2.QUICK) == list(range(6))
    assert figure2.main(["--seeds", "1,1", "--out", "unused"]) == 2


def test_stored_rates_cover_every_panel():
    """Both modes run from stored rates (no search): a recurrent and a readout rate
    per (rule, period) shown, each a point of the searched grid."""
    for cfg in (figure2.FULL, figure2.QUICK):
        assert cfg.lr is not None
        cfg.check()
        assert set(cfg.rates()) == set(cfg.rate_keys())
        assert all(len(e) == 4 for e in cfg.lr)
        assert all(rec in cfg.lr_grid and out in cfg.lr_grid for rec, out in cfg.rates().values())
    with pytest.raises(ValueError, match="lr entry"):
        figure2.Config(mode="x", lr=(("bptt", 10),)).check()


def test_grid_search_stages_each_improve_and_flag_the_edge(monkeypatch):
    """The three stages (joint, lr_rec, lr_out) on a tiny problem: each stage's best
    is no worse than the one before, and a choice on the grid's edge is flagged."""
    cfg = figure2.Config(
        mode="tiny", n_rec=6, trials=20, grid_networks=2, lr_grid=(1e-3, 1e-2, 1e-1)
    )
    g = figure2.grid_search(cfg, "rflo", 2)
    best = [min(stage["score"]) for stage in (g["joint"], g["rec"], g["out"])]
    assert best[1] <= best[0] and best[2] <= best[1]
    assert [p[1] for p in g["rec"]["points"]] == [
        g["joint"]["points"][int(np.argmin(g["joint"]["score"]))][1]
    ] * 3
    chosen = (g["chosen"]["lr_rec"], g["chosen"]["lr_out"])
    assert g["at_edge"] == [n for n, v in zip(("lr_rec", "lr_out"), chosen) if v in (1e-3, 1e-1)]


@pytest.mark.slow
def test_quick_reproduction_shows_the_papers_claims(tmp_path):
    out = tmp_path / "fig2"
    assert figure2.main(["--out", str(out), "--quick"]) == 0
    for name in ("figure2.png", "figure2_supplement1.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("loss_curves.csv", "alignment.csv", "final_loss.csv", "outputs.csv", "curves.npz"):
        assert (out / name).stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "quick"

    # final losses, recomputed from the per-network CSV
    final = {}
    with open(out / "final_loss.csv") as fh:
        for row in csv.DictReader(fh):
            final.setdefault((row["rule"], int(row["period_tau"])), []).append(
                float(row["final_loss"])
            )
    med = {k: float(np.median(v)) for k, v in final.items()}
    assert len(final["rflo", 20]) == figure2.QUICK.n_networks

    # RFLO and BPTT both learn the short period: at least 10x below the untrained network
    assert med["rflo", 20] * 10 <= med["untrained", 20]
    assert med["bptt", 20] * 10 <= med["untrained", 20]
    # BPTT beats RFLO at the long period (quick mode: 40 tau), by a wide margin
    long_ = max(figure2.QUICK.panel_a_periods_tau)
    assert med["bptt", long_] * 3 < med["rflo", long_]
    # RFLO's alignment between W_out and B rises during training (short period)
    align = summary["alignment"]["20"]
    assert align["end"]["median"] > align["initial"]["median"] + 0.2
    # Dale's law held in every trained network, and the Dale networks learn the
    # short period too (quick run: 0.017, 19x below the untrained 0.328)
    assert all(v["wrong_sign_weights"] == 0 for v in summary["dale"].values())
    assert med["rflo_dale", 20] * 5 <= med["untrained_dale", 20]
    assert summary["claims"]["rflo_learns_short_period_10x"]
    # every comparison says whether the 25-75 % ranges overlap, from final_loss.csv's numbers
    bl = summary["ranges"]["bptt_vs_rflo_T40tau"]
    for rule in ("bptt", "rflo"):
        assert np.isclose(bl[rule]["p75"], np.percentile(final[rule, 40], 75), rtol=1e-5)
    assert bl["ranges_overlap"] == (
        not (bl["bptt"]["p75"] < bl["rflo"]["p25"] or bl["rflo"]["p75"] < bl["bptt"]["p25"])
    )
    assert set(summary["ranges"]) >= {"rflo_dale_vs_rflo_T20tau", "local_vs_rflo_T40tau"}


def test_shipped_sweep_specs_are_the_figures():
    pytest.importorskip("pyarrow")
    from rflo.sweep.spec import read_spec, spec_from_dict

    root = Path(__file__).resolve().parent.parent / "examples" / "sweeps"
    # the shipped specs are the default figure: the Methods' networks, by name
    for cfg, name in (
        (figure2.config("full"), "figure2_full.toml"),
        (figure2.config("quick"), "figure2_quick.toml"),
    ):
        shipped = read_spec(root / name)
        assert shipped.points() == spec_from_dict(figure2.sweep_spec(cfg)).points()
        assert shipped.trials == cfg.trials and shipped.record_every == 1
    full = read_spec(root / "figure2_full.toml").points()
    assert {p["network"] for p in full} == {"murray2019", "murray2019_dale"}
    assert len(full) == 5 * 2 * 9 + 2 * 9 + 5 * 9  # bptt/rflo x periods, panel d, Dale
    assert {p["set.period"] for p in full} == {100, 200, 400, 800, 1600}


@pytest.mark.slow
def test_the_figure_through_a_sweep_equals_the_direct_run(tmp_path):
    pytest.importorskip("pyarrow")
    cfg = figure2.Config(
        mode="tiny",
        init="notebook",
        n_rec=8,
        n_networks=2,
        trials=30,
        periods_tau=(2, 4),
        panel_a_periods_tau=(2, 4),
        panel_d_period_tau=4,
        dale_periods_tau=(2,),
        ablation_networks=2,
        lr=(
            ("bptt", 2, 0.1, 0.1),
            ("rflo", 2, 0.003, 0.03),
            ("bptt", 4, 0.1),
            ("rflo", 4, 0.03),
            ("local", 4, 0.03),
            ("random_feedback", 4, 0.001, 0.01),
            ("rflo_dale", 2, 0.03),
        ),
    )
    direct = figure2.run(cfg)
    swept = figure2.run_sweep(cfg, tmp_path / "sweep", devices=1)
    for key in ("curves", "final", "outputs", "alignment", "untrained"):
        assert direct[key].keys() == swept[key].keys()
        for k in direct[key]:
            np.testing.assert_array_equal(direct[key][k], swept[key][k], err_msg=f"{key} {k}")
    assert direct["dale_check"] == swept["dale_check"]
