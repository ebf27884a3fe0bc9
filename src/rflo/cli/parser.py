"""The ``rflo`` argument parser: one sub-parser per command of
:data:`rflo.cli.registry.COMMANDS`, with close-match suggestions for a
mistyped command, choice or option."""

from __future__ import annotations

import argparse

from rflo.cli.registry import COMMANDS, Unavailable, load

__all__ = ["Parser", "build_parser", "unknown_options", "given", "command_of"]

NO_CACHE_HELP = (
    "do not keep compiled programs in the persistent compilation cache "
    "(default: kept in ~/.cache/rflo/jax, or $XDG_CACHE_HOME/rflo/jax, so that a "
    "command run again starts faster; RFLO_NO_COMPILE_CACHE=1 does the same)"
)


class Parser(argparse.ArgumentParser):
    """argparse with close-match suggestions for a mistyped command or choice."""

    def error(self, message):
        import difflib
        import re

        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            choices = re.findall(r"'?([\w.-]+)'?", m.group(2))
            close = difflib.get_close_matches(m.group(1), choices, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        super().error(message)


def _version():
    from rflo import __version__

    return __version__


def build_parser(commands=None):
    """The parser of every command (``commands``: only those named get their
    options, and so have their module imported; the others are listed)."""
    parser = Parser(
        prog="rflo",
        description="Train recurrent networks with local online learning rules "
        "(RFLO, Murray 2019, eLife 8:e43299) and the exact methods (BPTT, RTRL).",
    )
    parser.add_argument("--version", action="version", version=f"rflo {_version()}")
    parser.add_argument("--no-compile-cache", action="store_true", help=NO_CACHE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        if commands is not None and name not in commands:
            sub.add_parser(name, help=command.help)
            continue
        try:
            module = load(name)
        except Unavailable as exc:  # the command says why when it is run
            p = sub.add_parser(name, help=command.help, add_help=False)
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            p.set_defaults(unavailable=str(exc))
            continue
        if not hasattr(module, "add_arguments"):  # it parses its own arguments (and --help)
            p = sub.add_parser(name, help=command.help, add_help=False)
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            p.set_defaults(passthrough=True)
            continue
        p = sub.add_parser(
            name, help=command.help, description=getattr(module, "DESCRIPTION", command.help)
        )
        module.add_arguments(p)
        if command.jax and command.module.startswith("rflo.cli."):
            p.add_argument(
                "--no-compile-cache",
                action="store_true",
                default=argparse.SUPPRESS,
                help=NO_CACHE_HELP,
            )
    return parser


def command_of(argv):
    """The command ``argv`` names (its first word that is no option), or None."""
    return next((a for a in argv if not a.startswith("-")), None)


def unknown_options(parser, args, extra):
    """Exit 2 for options the command does not take, naming the closest ones."""
    import difflib

    sub = parser._subparsers._group_actions[0].choices.get(args.command)
    options = [o for a in (sub or parser)._actions for o in a.option_strings]
    words = []
    for item in extra:
        word = item.split("=", 1)[0]
        close = difflib.get_close_matches(word, options, n=1) if word.startswith("-") else []
        words.append(f"{item}" + (f" (did you mean {close[0]}?)" if close else ""))
    (sub or parser).error(f"unrecognized arguments: {' '.join(words)}")


def given(argv, commands=None):
    """The destinations of the options the command line names explicitly
    (parsed again with every default suppressed, so abbreviations count)."""
    parser = build_parser(commands)
    for a in parser._actions:
        a.default = argparse.SUPPRESS
    for action in parser._subparsers._group_actions:
        for sub in action.choices.values():
            for a in sub._actions:
                a.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv))) - {"command"}
