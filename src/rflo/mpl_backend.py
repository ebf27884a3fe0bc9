"""matplotlib's backend where the library draws figures: Agg on a headless
server where nothing was chosen, and never over a backend the user, a
matplotlibrc, ``MPLBACKEND`` or Jupyter's inline backend chose (matplotlib is
imported only when a figure is drawn)."""

from __future__ import annotations

__all__ = ["backend_needed", "use_headless_backend"]


def backend_needed(chosen, environ, platform) -> str | None:
    """The backend matplotlib needs set here: ``"Agg"`` where no backend was
    chosen (``chosen`` None: not by ``matplotlib.use``, a matplotlibrc, pyplot
    already imported as Jupyter's inline backend does, nor ``MPLBACKEND``) and
    no display is possible (Linux without ``DISPLAY``/``WAYLAND_DISPLAY``);
    else None: whatever the user or matplotlib chooses stands."""
    if chosen is not None or environ.get("MPLBACKEND"):
        return None
    if platform.startswith("linux") and not (
        environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")
    ):
        return "Agg"
    return None


def use_headless_backend():
    """Choose Agg where :func:`backend_needed` says so (a headless server with no
    backend chosen); a backend the user, a matplotlibrc or Jupyter chose stands."""
    import os
    import sys

    import matplotlib

    if "matplotlib.pyplot" in sys.modules:
        chosen = "pyplot"
    else:  # read without resolving it (rcParams["backend"] would pick one)
        raw = dict.__getitem__(matplotlib.rcParams, "backend")
        chosen = None if raw is getattr(matplotlib.rcsetup, "_auto_backend_sentinel", None) else raw
    backend = backend_needed(chosen, os.environ, sys.platform)
    if backend is not None:
        matplotlib.use(backend)
