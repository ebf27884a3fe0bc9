"""What every issue-25 target shares: the thresholds and the target record."""

from __future__ import annotations

from make_table import fmt_time

#: issue #25's thresholds
CLI_IMPORT_RATIO = 2.0  # (a) rflo train --trials 1 <= 2x python -c "import rflo"
COMPARE_S = 4.0  # (b) rflo compare (defaults) < 4 s
CELL_RATIO = 2.0  # (c) every cell <= 2x the leaky tanh (same rule)
LOCAL_VS_BPTT = 1.0  # (d) local rules <= BPTT's time on the same cell
PEAK_SHARE = 0.5  # (e) RFLO offline and BPTT >= 50 % of one core's matmul peak
ENSEMBLE_GAIN = 2.0  # (f) K = 64 >= 2x separate networks' throughput
SWEEP_RATIO = 1.8  # (g) sweep on 2 cores >= 1.8x one core
LOCAL_RULES = (("rflo", "offline"), ("rflo", "online"), ("eprop", "offline"))


def _t(s):
    return fmt_time(s, micro="us")


def target(letter, name, measured, want, value, met, profile=None):
    return {
        "issue": 25,
        "id": letter,
        "name": name,
        "measured": measured,
        "target": want,
        "value": value,
        "met": met,
        "profile": None if met else profile,
    }


def verdict(t):
    return "not measured" if t["met"] is None else "met" if t["met"] else "NOT MET"
