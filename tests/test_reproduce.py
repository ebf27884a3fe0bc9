"""``rflo reproduce`` (issue #24): the dispatcher, Marschall et al.'s Add
comparison in its quick mode (slow step), checked from the table it writes,
and the shipped sweep specs of the reproductions (Marschall's, Bellec's)."""

import csv

import pytest

from rflo.paper import bellec2020, marschall2020
from rflo.paper.reproduce import main


def test_reproduce_refuses_an_unknown_paper(capsys):
    assert main(["nopaper"]) == 2
    assert "marschall2020" in capsys.readouterr().err
    assert main([]) == 2


def test_reference_levels_are_the_add_tasks_entropies():
    """H(0.625), the mean entropy knowing x[t-5], and knowing both lags."""
    lv = marschall2020.LEVELS
    assert abs(lv["no memory"] - 0.6616) < 1e-4
    assert abs(lv["lag 5"] - 0.5192) < 1e-4
    assert abs(lv["both lags"] - 0.4545) < 1e-4
    q = {"median": 0.47, "p25": 0.46, "p75": 0.48}
    assert marschall2020.level_reached(q) == "both lags"
    assert marschall2020.level_reached({**q, "p75": 0.55}) == "lag 5"
    assert marschall2020.level_reached({**q, "p75": 0.60}) == "no memory"


@pytest.mark.slow
def test_marschall2020_quick_exact_rules_learn_the_lags(tmp_path):
    """The quick mode (4 seeds, 800 trials of 100 steps; about 45 s on 2
    cores): RTRL and truncated BPTT fall well below the no-memory level (their
    median below the lag-5 level, their 75th percentile below the midpoint),
    as exact online gradients should; every rule has a row."""
    assert main(["marschall2020", "--quick", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "marschall2020.csv") as f:
        rows = {r["rule"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(marschall2020.RULES)
    for rule in ("rtrl", "tbptt"):
        assert rows[rule]["level"] != "no memory", rows[rule]
        assert float(rows[rule]["median"]) < marschall2020.LEVELS["lag 5"], rows[rule]
    assert (tmp_path / "marschall2020.png").stat().st_size > 10000
    assert (tmp_path / "marschall2020_curves.csv").exists()


def test_shipped_sweep_specs_are_the_reproduction():
    from pathlib import Path

    from rflo.sweep.spec import read_spec, spec_from_dict

    root = Path(__file__).resolve().parent.parent / "examples" / "sweeps"
    for cfg in (marschall2020.QUICK, marschall2020.FULL):
        shipped = read_spec(root / f"marschall2020_{cfg.mode}.toml")
        assert shipped.points() == spec_from_dict(marschall2020.sweep_spec(cfg)).points()
        assert shipped.trials == cfg.trials
        assert len(shipped.points()) == len(marschall2020.RULES) * cfg.n_networks


def test_shipped_bellec_sweep_specs_are_the_reproduction():
    """Bellec et al.'s run as a sweep: their named network, task, Adam rates
    by parameter, firing-rate regulariser and batch (trials = iterations)."""
    from pathlib import Path

    from rflo.sweep.spec import read_spec, spec_from_dict

    root = Path(__file__).resolve().parent.parent / "examples" / "sweeps"
    for cfg in (bellec2020.QUICK, bellec2020.FULL):
        shipped = read_spec(root / f"bellec2020_{cfg.mode}.toml")
        points = shipped.points()
        assert points == spec_from_dict(bellec2020.sweep_spec(cfg)).points()
        assert shipped.trials == cfg.iterations and shipped.record_every == 1
        assert len(points) == len(bellec2020.RULES) * cfg.n_networks
        assert [p["rule"] for p in points[:: cfg.n_networks]] == list(bellec2020.RULES)
        for p in points:
            assert p["network"] == "bellec2020" and p["task"] == "evidence_accumulation"
            assert p["set.delay"] == cfg.delay and p["batch"] == cfg.batch
            assert p["loss"] == "cross_entropy" and p["optimizer"] == "adam"
            assert p["optimizer_rate"] == bellec2020.optimizer_rates(cfg.lr)
            assert (p["rate_target"], p["rate_strength"]) == (cfg.reg_rate, cfg.reg_strength)
            assert p["dtype"] == "float64"
