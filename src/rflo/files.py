"""The file layer: atomic writes, careful reading of ``.npz`` files, run locks.

* :func:`atomic_write` writes to a temporary file beside the target, flushes it
  to disk, renames it into place and flushes the folder, so that a crash
  leaves either the old file or the new one, never a mix.
* :func:`read_npz` reads a plain-data ``.npz`` (no pickle) from untrusted
  hands: names, shapes and dtypes come from each array's header first, and
  no array is decompressed past the size its header declares (a deflate bomb
  is rejected after reading a few bytes more than declared).
* :class:`RunLock` holds a run folder for the life of a run, so that two
  processes never write into the same folder.
* :func:`remove_temporaries` deletes what killed writes left behind.
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np

__all__ = [
    "atomic_write",
    "read_npz",
    "npz_headers",
    "remove_temporaries",
    "RunLock",
    "FolderBusy",
    "TMP_MARK",
]

#: temporary files are named ``.<target>.<random>.tmp<suffix>``
TMP_MARK = ".tmp"
_KINDS = "biufU"  # booleans, integers, floats and text; never objects or raw bytes


def _fsync_dir(folder: Path):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse it
        pass
    finally:
        os.close(fd)


def atomic_write(path, write_fn: Callable[[str], None], suffix: str = "") -> Path:
    """Call ``write_fn(tmp_path)``, flush ``tmp_path`` to disk, rename it onto
    ``path`` and flush the folder.  On any error the temporary file is removed
    and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_MARK + suffix, dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def remove_temporaries(folder) -> list:
    """Delete the temporary files of killed :func:`atomic_write` calls in
    ``folder`` (not recursive); returns their names.  Only call it while no
    other process writes there (e.g. holding the folder's :class:`RunLock`)."""
    folder = Path(folder)
    gone = []
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(".") and TMP_MARK in p.name and p.is_file():
                p.unlink()
                gone.append(p.name)
    return gone


# --------------------------------------------------------------------------
# reading npz files


def _not_npz(source, why):
    return ValueError(f"{source}: not a readable .npz file ({why})")


def npz_headers(path, source=None) -> Dict[str, Tuple[tuple, np.dtype, bool, int]]:
    """``{name: (shape, dtype, fortran_order, data_bytes)}`` of every array in
    the ``.npz`` at ``path``, read from the headers alone."""
    path = Path(path)
    source = source or str(path)
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise _not_npz(source, "it does not start with a zip header; truncated, or another format?")
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise _not_npz(source, f"member {info.filename!r} is not an array")
                with zf.open(info) as fh:
                    out[info.filename[:-4]] = _header(fh, info.filename[:-4], source)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        OSError,
        NotImplementedError,
    ) as exc:
        raise _not_npz(source, exc) from None
    return out


def _header(fh, name, source):
    """Read one ``.npy`` header from ``fh``, leaving it at the data."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except ValueError as exc:
        raise ValueError(f"{source}: array {name!r} has an unreadable header ({exc})") from None
    if dtype.hasobject or dtype.kind not in _KINDS or dtype.fields is not None:
        raise ValueError(
            f"{source}: array {name!r} has dtype {dtype}, not plain data "
            "(numbers or text); rflo never unpickles objects"
        )
    shape = tuple(int(d) for d in shape)
    size = 1
    for d in shape:  # Python integers: a 4 TB declaration does not overflow
        size *= d
    return shape, dtype, bool(fortran), size * dtype.itemsize


def read_npz(
    path,
    *,
    names: Callable[[str], bool],
    check: Optional[Callable] = None,
    max_bytes: Optional[int] = None,
    source=None,
    select=None,
) -> Dict[str, np.ndarray]:
    """The arrays of a plain-data ``.npz``, read with care.

    names(key) -> bool : which array names are allowed; any other name is
        refused before anything is decompressed.
    check(headers) : called with ``{name: (shape, dtype)}`` before any data is
        read (to check shapes against each other); raises ValueError.
    max_bytes : refuse when the declared arrays need more (default: the memory
        available, :func:`rflo.memory.available_bytes`).
    select : read only these names (default all).

    Each array is decompressed up to the size its header declares and one byte
    more: an array holding more data than declared is refused there.
    """
    from rflo.memory import available_bytes, human

    path = Path(path)
    source = source or str(path)
    if not path.is_file():
        raise ValueError(f"no file at {str(path)!r}")
    heads = npz_headers(path, source)
    unknown = sorted(k for k in heads if not names(k))
    if unknown:
        raise ValueError(f"{source}: unexpected arrays {unknown}")
    if check is not None:
        check({k: (h[0], h[1]) for k, h in heads.items()})
    if select is not None:
        heads = {k: h for k, h in heads.items() if k in select}
    need = sum(h[3] for h in heads.values())
    limit = available_bytes() if max_bytes is None else max_bytes
    if limit is not None and need > limit:
        raise ValueError(
            f"{source}: its arrays declare {human(need)}, more than the {human(limit)} allowed"
        )
    arrays = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for key in heads:
                with zf.open(key + ".npy") as fh:
                    shape, dtype, fortran, nbytes = _header(fh, key, source)
                    data = fh.read(nbytes + 1)
                if len(data) != nbytes:
                    raise ValueError(
                        f"{source}: array {key!r} holds "
                        f"{'more' if len(data) > nbytes else 'less'} data than its "
                        f"header declares ({shape} {dtype})"
                    )
                arrays[key] = (
                    np.frombuffer(data, dtype=dtype)
                    .reshape(shape, order="F" if fortran else "C")
                    .copy()
                )
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as exc:
        raise _not_npz(source, exc) from None
    return arrays


# --------------------------------------------------------------------------
# run folders


class FolderBusy(Exception):
    """Another process holds the folder's lock."""


class RunLock:
    """An exclusive lock on a run folder, held until :meth:`release` (or the
    process ends: the operating system drops it even after ``SIGKILL``).

    The lock is ``fcntl.flock`` on ``FOLDER/.lock``, which also records the
    holder's process id for the error message."""

    NAME = ".lock"

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / self.NAME
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = ""
            try:
                holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip()
            except OSError:  # pragma: no cover
                pass
            os.close(self.fd)
            self.fd = None
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FolderBusy(
                    f"another rflo process{' (pid ' + holder + ')' if holder else ''} "
                    f"is writing to {self.folder}"
                ) from None
            raise
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __del__(self):  # pragma: no cover - the OS releases it anyway
        try:
            self.release()
        except Exception:  # noqa: BLE001
            pass
