"""A compiled kernel is checked against the sha256 written beside it at build
time before it is loaded: a truncated or garbage one is rebuilt, and where the
rebuild fails the XLA path runs with one warning (never a dlopen of a damaged
file, which can kill the process with SIGBUS).

The builds here copy the library the session already built instead of running
the compiler (seconds each); the last test, slow, runs a damaged cache in a
fresh process with a compiler that fails.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import rflo
from rflo import kernels
from rflo.kernels import leaky_tanh
from rflo.rules import get_rule
from rflo.rules.base import Setup


@pytest.fixture(scope="module")
def built():
    """The kernel library as the compiler makes it (the default cache's)."""
    try:
        return kernels._build("leaky_tanh").read_bytes()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"the kernels cannot be built here: {exc}")


@pytest.fixture
def cache(tmp_path, monkeypatch, built):
    """An empty kernel cache whose builds copy ``built`` (counted), and a
    ``ctypes.CDLL`` that refuses to open a library that is not intact."""
    monkeypatch.setenv(kernels.ENV_CACHE, str(tmp_path))
    monkeypatch.setattr(kernels, "_LOADED", {})
    monkeypatch.setattr(leaky_tanh, "_STATE", {})
    builds = []

    def compile_(compiler, source, out):
        builds.append(out)
        with open(out, "wb") as fh:
            fh.write(built)

    monkeypatch.setattr(kernels, "_compile", compile_)
    real_cdll = kernels.ctypes.CDLL

    def cdll(path, *args, **kw):
        from pathlib import Path

        assert Path(path).read_bytes() == built, "a damaged library reached dlopen"
        return real_cdll(path, *args, **kw)

    monkeypatch.setattr(kernels.ctypes, "CDLL", cdll)
    return tmp_path, builds


def _damage(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[:1000])
    else:
        path.write_bytes(np.random.default_rng(1).integers(0, 256, len(data), np.uint8).tobytes())


def test_a_build_writes_its_sha256_beside_it(cache, built):
    folder, builds = cache
    lib = kernels._build("leaky_tanh")
    assert lib.parent == folder and len(builds) == 1
    digest, name = kernels.checksum_path(lib).read_text().split()
    assert (digest, name) == (hashlib.sha256(built).hexdigest(), lib.name)
    assert kernels.intact(lib)
    assert kernels._build("leaky_tanh") == lib and len(builds) == 1  # cached, not rebuilt
    assert sorted(p.name for p in folder.iterdir()) == [lib.name, lib.name + ".sha256"]


@pytest.mark.parametrize("how", ["truncated", "garbage", "no checksum"])
def test_a_damaged_kernel_is_rebuilt_before_it_is_loaded(cache, built, how):
    folder, builds = cache
    lib = kernels._build("leaky_tanh")
    if how == "no checksum":  # a cache from before checksums: unverifiable, so rebuilt
        kernels.checksum_path(lib).unlink()
    else:
        _damage(lib, how)
    assert not kernels.intact(lib)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a successful rebuild says nothing
        assert kernels.load("leaky_tanh") is not None
    assert len(builds) == 2 and lib.read_bytes() == built and kernels.intact(lib)


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_when_the_rebuild_fails_the_xla_path_runs_with_one_warning(cache, monkeypatch, how):
    folder, builds = cache
    lib = kernels._build("leaky_tanh")
    _damage(lib, how)

    def fails(compiler, source, out):
        raise RuntimeError("g++: fatal error: disk full")

    monkeypatch.setattr(kernels, "_compile", fails)
    net = rflo.init_network(2, 6, 1, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not leaky_tanh.available("float32")
        # the rules take the XLA path (the slow test below trains through it)
        assert not leaky_tanh.online_route(net, Setup(), "random")
        assert not leaky_tanh.offline_route(net, Setup())
        assert get_rule("rflo").fused_online(net, Setup()) is None
        assert not leaky_tanh.available("float64")
    said = [str(w.message) for w in caught if "kernel" in str(w.message)]
    assert len(said) == 1, said
    assert "does not match its checksum (damaged) and rebuilding it failed" in said[0]
    assert "disk full" in said[0] and "XLA path" in said[0]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # nothing half-written


@pytest.mark.slow
def test_a_damaged_cache_does_not_kill_a_fresh_process(tmp_path, built):
    """What used to end in a bus error (exit 135): a process whose cached
    kernel is truncated, with a compiler that cannot rebuild it."""
    fake = tmp_path / "cxx"
    fake.write_text(
        "#!/bin/sh\n[ \"$1\" = --version ] && echo 'fake c++ 1.0' && exit 0\n"
        "echo 'error: cannot compile' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    lib = (
        tmp_path / "cache" / f"leaky_tanh-{kernels._key(kernels._code('leaky_tanh'), str(fake))}.so"
    )
    lib.parent.mkdir()
    lib.write_bytes(built[:1000])
    env = {**os.environ, kernels.ENV_CACHE: str(lib.parent), "CXX": str(fake)}
    code = (
        "import rflo; t = rflo.periodic_task(period=10); "
        "n = rflo.init_network(t.n_in, 6, t.n_out); "
        "print(rflo.train(n, t, 'rflo', trials=2, online=True).loss.shape)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("does not match its checksum") == 1
    assert shutil.which(str(fake))
