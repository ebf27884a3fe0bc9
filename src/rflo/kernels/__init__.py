"""Compiled CPU kernels for loops that XLA runs one small operation at a time.

A small network's online step is a dozen tiny XLA operations, each with its
own launch cost; a kernel runs the whole trial in one custom call
(``jax.ffi``).  Kernels are C++ files in this folder, compiled on first use
with the machine's C++ compiler (``$CXX`` or ``g++``) against the XLA FFI
headers that jaxlib ships, and cached in ``$RFLO_KERNEL_CACHE`` (default
``~/.cache/rflo/kernels``), keyed by the source, jaxlib's version, the
compiler and the processor, each with its sha256 beside it (``.so.sha256``),
checked before the library is loaded: a damaged one is rebuilt, and where
that fails the XLA path runs, with one warning.  Each kernel is tested equal to the XLA path it
replaces, and is used only on the CPU backend
(``jax.lax.platform_dependent``) and up to the network size where it is
faster than XLA (``leaky_tanh.MAX_UNITS``, ``$RFLO_KERNEL_MAX_UNITS``);
elsewhere, without a compiler, or with ``RFLO_KERNELS=0``, the XLA path runs
as before.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Optional

__all__ = [
    "enabled",
    "load",
    "cache_dir",
    "threads",
    "intact",
    "checksum_path",
    "ENV_DISABLE",
    "ENV_CACHE",
    "ENV_THREADS",
]

#: set to ``0`` to use the XLA path everywhere
ENV_DISABLE = "RFLO_KERNELS"
#: folder of the compiled kernels
ENV_CACHE = "RFLO_KERNEL_CACHE"
#: threads one kernel call may use for the networks of an ensemble
ENV_THREADS = "RFLO_KERNEL_THREADS"

_HERE = Path(__file__).resolve().parent
_LOCK = threading.Lock()
_LOADED: dict = {}


def enabled() -> bool:
    """Whether kernels may be used (``RFLO_KERNELS`` is not ``0``)."""
    return os.environ.get(ENV_DISABLE, "1").strip().lower() not in ("0", "false", "no", "off")


def threads() -> int:
    """Threads a kernel call may spread an ensemble's networks over:
    ``$RFLO_KERNEL_THREADS``, or this process's usable cores shared among
    JAX's CPU devices (a sweep over host devices already runs one device per
    core).  One network is always one thread's work, so results do not depend
    on it."""
    value = os.environ.get(ENV_THREADS, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{ENV_THREADS} must be a positive integer, got {value!r}")
        return int(value)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    import jax

    try:
        devices = len(jax.devices("cpu"))
    except RuntimeError:
        devices = 1
    return max(1, cores // max(1, devices))


def cache_dir() -> Path:
    """Where compiled kernels are kept."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rflo" / "kernels"


def _compiler() -> Optional[str]:
    return shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _code(name: str) -> bytes:
    """What the build of ``name`` compiles: ``name.cc`` and the headers beside
    it (``vectors.h``, ``online.h``, ``workers.h`` ...), so that a change to
    any of them rebuilds it."""
    parts = [_HERE / f"{name}.cc", *sorted(_HERE.glob("*.h"))]
    return b"".join(p.read_bytes() for p in parts)


def _key(source: bytes, compiler: str) -> str:
    import jaxlib

    try:
        version = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, timeout=30
        ).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        version = compiler
    parts = [
        source,
        jaxlib.__version__.encode(),
        version.encode(),
        platform.machine().encode(),
        _cpu_flags().encode(),
    ]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def _digest(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checksum_path(library: Path) -> Path:
    """The file beside a built library that holds its sha256 (``sha256sum``'s format)."""
    return library.with_name(library.name + ".sha256")


def intact(library: Path) -> bool:
    """Whether ``library`` is the file its build wrote: its sha256 equals the
    one written beside it (a library without one, truncated, or overwritten is
    not).  Checked before loading: ``dlopen`` of a damaged file can kill the
    process (SIGBUS) instead of raising."""
    try:
        recorded = checksum_path(library).read_text(encoding="ascii").split()
        return bool(recorded) and recorded[0] == _digest(library)
    except (OSError, UnicodeDecodeError):
        return False


def _compile(compiler: str, source: Path, out: str) -> None:
    """Compile ``source`` into the shared library ``out``; raises on failure."""
    import jax.ffi

    cmd = [
        compiler,
        "-O3",
        "-march=native",
        "-std=c++17",
        "-fopenmp-simd",
        "-pthread",
        "-shared",
        "-fPIC",
        f"-I{jax.ffi.include_dir()}",
        str(source),
        "-o",
        out,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "error" in line]
        raise RuntimeError(
            f"{' '.join(cmd)} failed: " + ("; ".join(errors[:3]) or done.stderr.strip()[-500:])
        )


def _build(name: str) -> Path:
    """The compiled library of ``name.cc``: the cached one when it is intact
    (:func:`intact`), else built now, its sha256 written beside it; raises on
    failure."""
    from rflo.files import atomic_write

    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX or install g++)")
    source = _HERE / f"{name}.cc"
    target = cache_dir() / f"{name}-{_key(_code(name), compiler)}.so"
    if target.exists() and intact(target):
        return target
    damaged = target.exists()  # truncated, overwritten, or from before checksums: rebuilt
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        try:
            _compile(compiler, source, tmp)
        except Exception as exc:
            if damaged:
                raise RuntimeError(
                    f"the cached {target} does not match its checksum (damaged) "
                    f"and rebuilding it failed: {exc}"
                ) from None
            raise
        digest = _digest(tmp)
        os.replace(tmp, target)  # atomic: another process sees the whole file or none
        atomic_write(
            checksum_path(target),
            lambda t: Path(t).write_text(f"{digest}  {target.name}\n", encoding="ascii"),
        )
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def load(name: str) -> Optional[ctypes.CDLL]:
    """The loaded kernel library ``name`` (``None`` when kernels are off or it
    cannot be built; the reason is warned once)."""
    if not enabled():
        return None
    with _LOCK:
        if name not in _LOADED:
            try:
                _LOADED[name] = ctypes.CDLL(str(_build(name)))
            except Exception as exc:  # noqa: BLE001 -- any failure means: use the XLA path
                warnings.warn(
                    f"rflo: the compiled kernel {name!r} is unavailable ({exc}); using "
                    f"the XLA path (slower). Set {ENV_DISABLE}=0 to silence this.",
                    RuntimeWarning,
                    stacklevel=3,
                )
                _LOADED[name] = None
        return _LOADED[name]
