"""``rflo completion SHELL``: print a shell completion script."""

from __future__ import annotations

from rflo.cli.common import UserError

__all__ = ["DESCRIPTION", "add_arguments", "run"]

DESCRIPTION = (
    "Print a completion script for bash, zsh or tcsh, e.g. 'rflo completion bash > "
    "~/.local/share/bash-completion/completions/rflo' (needs the 'completion' extra: "
    "pip install 'rflo[completion]')."
)


def add_arguments(p):
    p.add_argument("shell", choices=("bash", "zsh", "tcsh"))


def run(args):
    from rflo.cli.parser import build_parser

    try:
        import shtab
    except ImportError:
        raise UserError("shell completion needs shtab: pip install 'rflo[completion]'") from None
    print(shtab.complete(build_parser(), shell=args.shell))
    return 0
