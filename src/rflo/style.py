"""One look for every figure: a colour and a line style per rule.

Families share a hue so that a figure reads at a glance: the exact methods in
blues (BPTT solid, RTRL dashed), RFLO and its Fig. 2d ablations in reds and
purples, e-prop in greens, the other online approximations in browns and
greys.  Every registered rule has its own (colour, line style) pair; an
unknown rule gets a distinct fallback.
"""

from __future__ import annotations

__all__ = ["RULE_STYLES", "rule_style", "rule_label", "mode_title"]

#: rule -> (colour, line style)
RULE_STYLES = {
    "bptt": ("#1f4e9c", "-"),
    "rtrl": ("#4a90d9", "--"),
    "tbptt": ("#7fb3e6", "-."),
    "rflo": ("#d62728", "-"),
    "local": ("#9467bd", "--"),
    "random_feedback": ("#ff7f0e", ":"),
    "eprop": ("#2ca02c", "-"),
    "eprop_random": ("#98df8a", "--"),
    "uoro": ("#8c564b", "-."),
    "kf_rtrl": ("#c49c94", ":"),
    "snap1": ("#555555", "-"),
    "snap2": ("#999999", "--"),
}
_FALLBACK = [("#17becf", "-"), ("#bcbd22", "--"), ("#e377c2", "-."), ("#7f7f7f", ":")]
_LABELS = {
    "bptt": "BPTT",
    "rtrl": "RTRL",
    "rflo": "RFLO",
    "tbptt": "TBPTT",
    "uoro": "UORO",
    "kf_rtrl": "KF-RTRL",
    "snap1": "SnAp-1",
    "snap2": "SnAp-2",
    "eprop": "e-prop",
    "eprop_random": "e-prop (random B)",
    "local": "local (Fig. 2d)",
    "random_feedback": "random feedback (Fig. 2d)",
}


def rule_style(rule: str, i: int = 0) -> dict:
    """``dict(color=..., linestyle=...)`` of ``rule`` (``i``: fallback index)."""
    color, ls = RULE_STYLES.get(rule, _FALLBACK[i % len(_FALLBACK)])
    return {"color": color, "linestyle": ls}


def rule_label(rule: str) -> str:
    """How a rule is named in figures."""
    return _LABELS.get(rule, rule)


def mode_title(online: bool, lr) -> str:
    """``"offline, lr in/rec/out = 0/0.03/0.03"``: what a figure's runs did."""
    if isinstance(lr, dict):  # rates by parameter name
        rates = ", ".join(f"{k} {float(v):g}" for k, v in lr.items())
        return f"{'online' if online else 'offline'}, lr {rates}"
    rates = "/".join(f"{float(v):g}" for v in lr)
    return f"{'online' if online else 'offline'}, lr in/rec/out = {rates}"
