"""Learning rules: each one module, registered by name.

=================  ==================  ===================  =========================
name               feedback of errors  credit assignment    paper
=================  ==================  ===================  =========================
``rflo``           random ``b``        local traces         Murray 2019
``local``          ``w_out^T``         local traces         Murray 2019, Fig. 2d
``random_feedback`` random ``b``       full influence       Murray 2019, Fig. 2d
``rtrl``           ``w_out^T``         full influence       Williams & Zipser 1989
``bptt``           ``w_out^T``         backward pass        (exact gradient)
=================  ==================  ===================  =========================
"""

from rflo.rules.base import Rule, Step, Trajectory, get_rule, register, rule_names
from rflo.rules.bptt import BPTT
from rflo.rules.rflo import LOCAL, RFLO, LocalTraceRule
from rflo.rules.rtrl import RANDOM_FEEDBACK, RTRL, InfluenceRule

__all__ = [
    "Rule", "Step", "Trajectory", "get_rule", "register", "rule_names",
    "RFLO", "LOCAL", "RTRL", "RANDOM_FEEDBACK", "BPTT", "LocalTraceRule", "InfluenceRule",
]
