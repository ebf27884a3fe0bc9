"""Figure 2 at the paper's own rates (issue 26): the rates are the Methods',
the settling trial is measured as documented, and (slow) the quick run
writes its table."""

import csv
import json

import numpy as np
import pytest

from rflo.paper import figure2_paper_rates as pr


def test_the_rates_are_the_methods():
    # "eta = (0.03, 0.01, 0.001, 0.0003) for RFLO and (0.03, 0.03, 0.01, 0.03) for BPTT"
    assert pr.PAPER_RATES == {
        "rflo": (0.03, 0.01, 0.001, 0.0003),
        "bptt": (0.03, 0.03, 0.01, 0.03),
    }
    assert pr.PERIODS_TAU == (20, 40, 80, 160)  # T = (200, 400, 800, 1600) steps


def test_settled_at_is_where_the_median_stays_near_its_final_level():
    n = 1000
    t = np.arange(n)
    # two networks decaying to 0.1 by trial 400, then flat: settled near 400
    curves = np.stack(
        [0.1 + np.clip(400 - t, 0, None) / 100.0, 0.1 + np.clip(400 - t, 0, None) / 50.0]
    )
    at = pr.settled_at(curves)
    assert 380 <= at <= 410, at
    # a loss still falling at the end has not settled early
    assert pr.settled_at(np.stack([1.0 / (1 + t), 1.0 / (1 + t)])) > 500
    # flat from the start
    assert pr.settled_at(np.ones((3, n))) == 0
    # a network that diverged (NaN from the trial it was frozen at) is left out
    frozen = np.where(t < 300, 1.0, np.nan)
    assert 380 <= pr.settled_at(np.vstack([curves, frozen])) <= 410
    assert pr.settled_at(np.stack([frozen, frozen])) == n  # nothing left: not settled


@pytest.mark.slow
def test_quick_run_writes_the_table(tmp_path):
    assert pr.main(["--quick", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "paper_rates.csv")))
    assert {(r["rule"], int(r["period_tau"])) for r in rows} == {
        (rule, p) for rule in ("rflo", "bptt") for p in pr.QUICK.periods_tau
    }
    s = json.loads((tmp_path / "paper_rates.json").read_text())
    for row in s["rows"].values():
        assert row["eta"] == pr.PAPER_RATES[row["rule"]][pr.PERIODS_TAU.index(row["period_tau"])]
        assert 0 < row["final"]["median"] < 1
    assert (tmp_path / "paper_rates.png").stat().st_size > 0
