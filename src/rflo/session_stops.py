"""How a :class:`rflo.session.Session`'s run stops: the stop request that
SIGINT/SIGTERM make (:class:`StopRequest`), one that never comes
(:class:`NoStop`), and the exceptions of a run that stopped
(:class:`Interrupted`, :class:`Diverged`)."""

from __future__ import annotations

import os
import sys

__all__ = ["StopRequest", "NoStop", "Diverged", "Interrupted"]


class Diverged(Exception):
    """Training stopped because a rule diverged (exit status 3)."""


class Interrupted(Exception):
    """SIGINT or SIGTERM: the run stopped after saving a checkpoint."""


class StopRequest:
    """SIGINT/SIGTERM handler: the first signal asks the run to stop after the
    current segment (it saves a checkpoint and exits 130 or 143); a second one
    exits at once (the last checkpoint stays valid: writes are atomic)."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self):
        self.signum = None
        self.previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None:
            print("\nstopping now", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.signum = signum
        print(
            "\nstopping after the current segment (press again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                sig = getattr(signal, name)
                if signal.getsignal(sig) is not signal.SIG_IGN:  # e.g. nohup: stay deaf
                    self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        import signal

        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    @property
    def status(self):
        return 128 + self.signum


class NoStop:
    """A stop request that never comes (a session with nothing to save
    stops as any Python call does: KeyboardInterrupt at once)."""

    signum = None
