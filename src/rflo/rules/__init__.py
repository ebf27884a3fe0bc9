"""Learning rules: each one module, registered by name.

=================  ==================  ===================  =========================
name               feedback of errors  credit assignment    paper
=================  ==================  ===================  =========================
``rflo``           random ``b``        local traces         Murray 2019
``local``          ``w_out^T``         local traces         Murray 2019, Fig. 2d
``random_feedback`` random ``b``       full influence       Murray 2019, Fig. 2d
``rtrl``           ``w_out^T``         full influence       Williams & Zipser 1989
``bptt``           ``w_out^T``         backward pass        (exact gradient)
``eprop``          ``w_out^T``         eligibility traces   Bellec et al. 2020
``eprop_random``   random ``b``        eligibility traces   Bellec et al. 2020
``uoro``           ``w_out^T``         rank-one influence   Tallec & Ollivier 2017
``kf_rtrl``        ``w_out^T``         Kronecker influence  Mujika et al. 2018
``rkf_rtrl``       ``w_out^T``         reverse Kronecker    Marschall et al. 2020
``kernl``          ``w_out^T``         learned kernel       Roth et al. 2019
``dni``            ``w_out^T``         synthetic gradient   Jaderberg et al. 2017
``snap1``          ``w_out^T``         sparse influence     Menick et al. 2021
``snap2``          ``w_out^T``         sparse influence     Menick et al. 2021
``tbptt``          ``w_out^T``         windowed backward    Williams & Peng 1990
=================  ==================  ===================  =========================

Every rule has a page in ``docs/rules/<name>.md``.
"""

from rflo.rules.base import (
    LearningRule,
    Rule,
    Setup,
    Step,
    get_rule,
    register,
    rule_names,
)
from rflo.rules.bptt import BPTT
from rflo.rules.dni import DNI, SyntheticGradients
from rflo.rules.eprop import EPROP, EPROP_RANDOM, EProp
from rflo.rules.kernl import KERNL, KeRNL
from rflo.rules.kf_rtrl import KFRTRL, KroneckerFactoredRTRL
from rflo.rules.rflo import LOCAL, RFLO, LocalTraceRule
from rflo.rules.rkf_rtrl import RKFRTRL, ReverseKFRTRL
from rflo.rules.rtrl import RANDOM_FEEDBACK, RTRL, InfluenceRule
from rflo.rules.snap import SNAP1, SNAP2, SnAp
from rflo.rules.tbptt import TBPTT, TruncatedBPTT
from rflo.rules.uoro import UORO, UORORule

__all__ = [
    "LearningRule",
    "Rule",
    "Setup",
    "Step",
    "get_rule",
    "register",
    "rule_names",
    "RFLO",
    "LOCAL",
    "RTRL",
    "RANDOM_FEEDBACK",
    "BPTT",
    "LocalTraceRule",
    "InfluenceRule",
    "EProp",
    "EPROP",
    "EPROP_RANDOM",
    "UORORule",
    "UORO",
    "KroneckerFactoredRTRL",
    "KFRTRL",
    "SnAp",
    "SNAP1",
    "SNAP2",
    "TruncatedBPTT",
    "TBPTT",
    "ReverseKFRTRL",
    "RKFRTRL",
    "KeRNL",
    "KERNL",
    "SyntheticGradients",
    "DNI",
]
