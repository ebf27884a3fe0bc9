"""Every ``rflo`` command: its name, the module that provides it, and its
one-line help.

A command is one module with ``DESCRIPTION`` and ``add_arguments(parser)``,
and either ``run(args) -> int`` (the command line's own commands, in
:mod:`rflo.cli`: they get the parsed arguments) or ``main(argv) -> int``
(commands of other parts of rflo: they parse their own arguments, after the
command line has checked them against ``add_arguments``; a module without
``add_arguments`` gets its arguments, ``--help`` included, as they are).  Adding a
command is that module plus one line in :data:`COMMANDS`.  A module is
imported only for the command that runs (and for ``rflo completion``); one
that cannot be imported makes its command say so in one line (exit status 2).
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

__all__ = ["Command", "COMMANDS", "EXTERNAL", "Unavailable", "load"]


class Command(NamedTuple):
    """Where a command lives and what ``rflo --help`` says of it; ``jax``: it
    computes, so the persistent compilation cache is turned on for it (and
    the command line's own commands take ``--no-compile-cache``)."""

    module: str
    help: str
    jax: bool = True


#: the commands, in the order ``rflo --help`` lists them
COMMANDS = {
    "compare": Command(
        "rflo.cli.compare", "train several rules from one initial network and compare"
    ),
    "train": Command("rflo.cli.train", "train one network with one rule"),
    "eval": Command("rflo.cli.eval", "run a saved network with learning off and plot it"),
    "plot": Command("rflo.cli.plot", "redraw the figures of a results folder"),
    "figure2": Command(
        "rflo.paper.figure2", "reproduce Murray (2019) Figure 2 and its Dale supplement"
    ),
    "figure2-supplements": Command(
        "rflo.paper.figure2_supplements",
        "reproduce Murray (2019) "
        "Figure 2's supplements 2 and 3 (which weights, network size, "
        "gain)",
    ),
    "figure2-paper-rates": Command(
        "rflo.paper.figure2_paper_rates",
        "Murray (2019) Figure 2 at the paper's own learning rates, trained until the loss settles",
    ),
    "figure3": Command(
        "rflo.paper.figure3", "reproduce Murray (2019) Figure 3 (interval matching)"
    ),
    "figure4": Command(
        "rflo.paper.figure4",
        "reproduce Murray (2019) Figure 4 (a loop chains short syllables into a long sequence)",
    ),
    "reproduce": Command(
        "rflo.paper.reproduce", "reproduce another paper's comparison (marschall2020, bellec2020)"
    ),
    "gradients": Command(
        "rflo.gradients_cli", "gradient quality of each rule against the exact gradient"
    ),
    "task": Command("rflo.tasks.cli", "show the built-in tasks"),
    "sweep": Command(
        "rflo.sweep.cli", "train many networks over a grid of settings into one table"
    ),
    "completion": Command("rflo.cli.completion", "print a shell completion script", jax=False),
}

#: the commands other parts of rflo provide (``main(argv) -> int``): name -> (module, help)
EXTERNAL = {
    name: (c.module, c.help) for name, c in COMMANDS.items() if not c.module.startswith("rflo.cli.")
}


class Unavailable(Exception):
    """A command whose module cannot be imported here."""


def load(name):
    """The module of command ``name`` (:class:`Unavailable` when it cannot be
    imported: a missing module, or a missing optional dependency of it)."""
    module = COMMANDS[name].module
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Unavailable(
            f"this installation cannot run it: importing {module} failed ({exc})"
        ) from None
