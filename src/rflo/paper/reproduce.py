"""``rflo reproduce PAPER [--quick] ...``: the field's comparisons, re-run.

Each paper is a module of :mod:`rflo.paper` with ``main(argv) -> int``:

* ``marschall2020``: Marschall, Cho & Savin (2020), every online rule on
  their Add task (:mod:`rflo.paper.marschall2020`);
* ``bellec2020``: Bellec et al. (2020), e-prop against BPTT on evidence
  accumulation with LIF and ALIF neurons (:mod:`rflo.paper.bellec2020`).

``main(argv)`` takes the paper's name first and hands the rest of the
command line to that module; it returns the exit status (2 on bad input).
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

__all__ = ["PAPERS", "main"]

#: paper name -> module under rflo.paper
PAPERS = {"marschall2020": "rflo.paper.marschall2020", "bellec2020": "rflo.paper.bellec2020"}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = ", ".join(sorted(PAPERS))
    if not argv or argv[0] in ("-h", "--help"):
        print(
            f"usage: rflo reproduce PAPER [--quick] [--out FOLDER] ...\n"
            f"papers: {names}; 'rflo reproduce PAPER --help' for its options",
            file=sys.stdout if argv else sys.stderr,
        )
        return 0 if argv else 2
    if argv[0] not in PAPERS:
        print(
            f"rflo reproduce: error: unknown paper {argv[0]!r}; choose one of: {names}",
            file=sys.stderr,
        )
        return 2
    return importlib.import_module(PAPERS[argv[0]]).main(argv[1:])
