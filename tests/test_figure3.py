"""Murray (2019) Figure 3 (interval matching): the measurement, the command
line, and (slow) the quick run end to end."""

import json

import numpy as np
import pytest

from rflo.paper import figure3


def test_produced_interval_is_the_output_peak_after_the_set_pulse():
    cfg = figure3.QUICK
    delays = [50, 100]
    t = np.arange(400)
    outputs = np.zeros((2, 2, 400))
    # network 0 peaks exactly at go; network 1 too late by 30 steps; both also
    # echo the set pulse, which the measurement must skip (it starts 2 SD later)
    for j, d in enumerate(delays):
        set_at = cfg.ready + d
        for k, late in enumerate((0, 30)):
            outputs[k, j] = np.exp(-0.5 * ((t - set_at - d - late) / 15) ** 2) + 2.0 * np.exp(
                -0.5 * ((t - set_at) / 5) ** 2
            )
    produced, peak = figure3.produced_intervals(outputs, cfg, delays)
    np.testing.assert_array_equal(produced, [[50, 100], [80, 130]])
    np.testing.assert_allclose(peak, 1.0, atol=1e-3)


def test_summary_checks_both_claims_with_their_ranges():
    cfg = figure3.Config(mode="t", n_networks=3, conditions=(("rflo", 15), ("bptt", 15)))
    d = [50, 100, 150]
    r = {
        "config": cfg,
        "seeds": [0, 1, 2],
        "seconds": 1.0,
        "delays": {("rflo", 15): d, ("bptt", 15): d},
        "produced": {
            ("rflo", 15): np.array([d]) + np.array([[10], [20], [30]]),
            ("bptt", 15): np.array([d]) + np.array([[1], [2], [3]]),
        },
        "curves": {k: np.ones((3, cfg.updates)) for k in (("rflo", 15), ("bptt", 15))},
    }
    s = figure3.summarize(r)
    claim = s["claims"]["similar_at_15tau"]
    assert claim["rflo_error_tau"]["median"] == 2.0 and claim["bptt_error_tau"]["median"] == 0.2
    assert claim["ranges_overlap"] is False and claim["verdict"].startswith("not reproduced")
    assert "bptt_better_at_15tau" in s["claims"]  # the longest is the shortest here


def test_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "x").write_text("mine")
    assert figure3.main(["--out", str(tmp_path), "--quick"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert figure3.main(["--seed", "-1", "--out", str(tmp_path / "new")]) == 2


@pytest.mark.slow
def test_quick_run_writes_the_figure_and_checks_the_claims(tmp_path):
    assert figure3.main(["--quick", "--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"figure3.png", "intervals.csv", "loss_curves.csv", "summary.json"} <= names
    s = json.loads((tmp_path / "summary.json").read_text())
    conds = s["conditions"]
    # BPTT learns the task (the paper's panel c): within half a tau on average
    assert conds["bptt_15tau"]["interval_error_tau"]["median"] < 0.5
    for c in conds.values():  # and every condition learns something
        assert c["final_loss"]["median"] < 0.03
    assert set(s["claims"]) == {"similar_at_15tau", "bptt_better_at_25tau"}
    for claim in s["claims"].values():
        assert isinstance(claim["ranges_overlap"], bool) and claim["verdict"]
