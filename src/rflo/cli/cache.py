"""JAX's persistent compilation cache for the command line: a command run
again loads the programs it compiled the first time instead of compiling
them again (most of a short command's time).

On by default, in ``$XDG_CACHE_HOME/rflo/jax`` (``~/.cache/rflo/jax``);
``--no-compile-cache`` or ``RFLO_NO_COMPILE_CACHE=1`` turns it off.  A cache
folder JAX already has (``JAX_COMPILATION_CACHE_DIR``, or one set in this
process, e.g. by the tests) is left as it is.  It changes no result: a
program loaded from the cache is the one compiled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

__all__ = ["ENV_OFF", "cache_dir", "enable"]

#: set to ``1`` to compile every program afresh
ENV_OFF = "RFLO_NO_COMPILE_CACHE"


def cache_dir() -> Path:
    """Where the command line keeps JAX's compiled programs."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rflo" / "jax"


def _off() -> bool:
    return os.environ.get(ENV_OFF, "").strip().lower() not in ("", "0", "false", "no", "off")


def enable(off: bool = False) -> Optional[Path]:
    """Turn the cache on for this process (unless ``off``, the environment
    says so, or JAX has a cache folder already); the folder, or None.  It
    takes effect at the process's first compilation."""
    if off or _off():
        return None
    import jax

    if jax.config.jax_compilation_cache_dir:  # the user's (or the tests') own: leave it
        return None
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: compile as without a cache
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # every program: a short command's many small compilations are most of its time
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder
