"""Reproductions of figures of Murray (2019), eLife 8:e43299.

Each module exposes ``main(argv=None) -> int`` (a command line) and a ``run``
function that returns the numbers behind the figure.

- :mod:`rflo.paper.figure2`: Figure 2 (periodic output task, panels a-d) and
  its Dale's-law supplement (Figure 2, figure supplement 1).
"""

__all__ = ["figure2"]
