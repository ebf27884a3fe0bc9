"""``rflo compare``: one network per rule, all from the same initial network,
on one task (default: BPTT and RFLO on the paper's periodic task)."""

from __future__ import annotations

from rflo.cli.common import plain_rates, rule_lr
from rflo.cli.folders import (
    apply_config,
    check_memory,
    check_rules,
    check_seeds,
    open_session,
    plan,
)
from rflo.cli.run import add_run_arguments, finish

__all__ = ["DESCRIPTION", "add_arguments", "run"]

DESCRIPTION = (
    "Train one network per rule, all from the same initial network, on one task, "
    "and compare their learning curves and outputs (default: BPTT and RFLO on the "
    "paper's periodic task)."
)


def add_arguments(p):
    from rflo.rules import rule_names

    p.add_argument(
        "--rules",
        nargs="+",
        default=["bptt", "rflo"],
        metavar="RULE",
        help=f"rules to compare (default bptt rflo; any of {', '.join(rule_names())})",
    )
    add_run_arguments(
        p, out_help="results folder (default: a new folder under ./runs)", command="compare"
    )
    p.set_defaults(lr=None)  # each rule its own tuned rates (TUNED_LR) unless --lr says


def run(args):
    apply_config(args)
    check_seeds(args)
    rules = check_rules(args.rules, args.online)
    planned = plan(args)
    if args.resume is None:
        check_memory(args, rules, planned.task, planned.cell)
        args.rule_lr = {r: plain_rates(rule_lr(args, r)) for r in rules}
    session = open_session(args, "compare", rules)  # on --resume, args hold the saved settings
    with session:
        check_rules(session.rules, args.online)
        return finish(args, "compare", session)
