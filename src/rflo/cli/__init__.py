"""The ``rflo`` command line.

    rflo compare              the seed notebook's experiment (BPTT vs RFLO on the periodic task)
    rflo train --rule NAME    one rule on one task, optionally from/to a saved network
    rflo eval NET.npz         run a saved network with learning off and plot it
    rflo plot RESULTS         redraw the figures of a results folder
    rflo sweep ...            many networks over a grid of settings (rflo.sweep.cli)

One module per command (:mod:`rflo.cli.registry` lists them; ``train`` and
``compare`` share :mod:`rflo.cli.run`), built on :class:`rflo.session.Session`;
the shared pieces: :mod:`rflo.cli.folders` (settings, checks, run folders and
their locks, ``--resume``), :mod:`rflo.cli.progress` (progress bar, run log,
summary), :mod:`rflo.cli.cache` (JAX's persistent compilation cache).

User errors (bad arguments, unreadable files) print one line and exit with
status 2, without a traceback.
"""

from __future__ import annotations

import sys

from rflo.cli.common import TUNED_LR, UserError
from rflo.cli.parser import Parser, build_parser, command_of, given, unknown_options
from rflo.cli.registry import COMMANDS, EXTERNAL
from rflo.segments import (  # noqa: F401  (the session's parts, where they were)
    MAX_SEGMENT,
    SEGMENT_SECONDS,
    Diverged,
    Interrupted,
    Segments,
    StopRequest,
)

__all__ = ["main", "build_parser", "Parser", "UserError", "COMMANDS", "EXTERNAL", "TUNED_LR"]


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = command_of(argv)
    selected = {command} if command in COMMANDS else set()
    parser = build_parser(selected)
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "unavailable", None) is not None:  # a command whose module is missing
        print(f"rflo {args.command}: error: {args.unavailable}", file=sys.stderr)
        return 2
    if extra and not getattr(args, "passthrough", False):
        unknown_options(parser, args, extra)
    if args.command is None:
        parser.print_help()
        return 2
    if COMMANDS[args.command].jax:
        from rflo.cli import cache

        cache.enable(off=args.no_compile_cache)
    from rflo.cli.registry import load

    module = load(args.command)
    if args.command in EXTERNAL:  # parsed above (checks, suggestions); the module runs it
        # (by its main: a figure's own ``run`` is its experiment, not a command)
        return module.main(argv[argv.index(args.command) + 1 :])
    args.given = given(argv, selected)
    try:
        return module.run(args)
    except (UserError, ValueError) as exc:  # ValueError: the library's own input checks
        print(f"rflo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
