"""Keep a long process's compiled programs within the operating system's limits.

XLA's CPU backend maps each compiled program's machine code into the process
(three memory mappings per program) and keeps it while JAX's caches hold the
program.  Linux caps the mappings of one process (``vm.max_map_count``, 65,530
by default); a process that compiles tens of thousands of programs (a local
sweep over many shapes, a long test session) reaches it, and the next
compilation fails inside LLVM ("Cannot allocate memory") and kills the process
with a segmentation fault.  :func:`release_if_crowded` frees JAX's compiled
programs (``jax.clear_caches()``) once the process holds more than a share of
its limit; what runs next recompiles, or loads from the compilation cache,
what it needs.
"""

from __future__ import annotations

import gc
from typing import Optional

__all__ = ["mappings", "mapping_limit", "release_if_crowded"]

#: share of the limit above which :func:`release_if_crowded` frees programs
SHARE = 0.5


def mappings() -> Optional[int]:
    """The memory mappings this process holds (``None`` where ``/proc`` has none)."""
    try:
        with open("/proc/self/maps", "rb") as fh:
            return sum(1 for _ in fh)
    except OSError:
        return None


def mapping_limit() -> Optional[int]:
    """The kernel's limit on one process's mappings (``None`` where unknown)."""
    try:
        with open("/proc/sys/vm/max_map_count", encoding="ascii") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def release_if_crowded(share: float = SHARE, limit: Optional[int] = None) -> bool:
    """Free JAX's compiled programs when this process holds more than ``share``
    of its mapping limit (``limit``, default :func:`mapping_limit`); returns
    whether it did.  Cheap (one read of ``/proc/self/maps``); a no-op where the
    counts are unknown."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    limit = mapping_limit() if limit is None else limit
    held = mappings()
    if limit is None or held is None or held <= share * limit:
        return False
    import jax

    jax.clear_caches()
    gc.collect()
    return True
