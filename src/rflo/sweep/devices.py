"""The JAX devices a sweep's chunks are split over: how many there are, and
asking for one host device per core before JAX starts (used by the chunk that
trains and by the backends that start it)."""

from __future__ import annotations

import os

__all__ = ["cpu_count", "configure_host_devices", "resolve_devices"]


def cpu_count() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def configure_host_devices(devices) -> bool:
    """Before JAX starts computing: ask for one host (CPU) device per core
    (``"auto"``) or ``devices`` of them, so that a chunk's networks can be
    split over every core.  Returns False where JAX has already started (its
    device count is then what it is)."""
    import jax

    n = cpu_count() if devices == "auto" else int(devices)
    if n <= 1:
        return True
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:
        return False
    return True


def resolve_devices(devices) -> int:
    """The number of devices to split chunks over: ``"auto"`` is every device
    of JAX's default backend (the GPUs, or the host devices)."""
    import jax

    if devices == "auto":
        return len(jax.devices())
    n = int(devices)
    if n > len(jax.devices()):
        raise ValueError(
            f"devices={n} but JAX sees {len(jax.devices())} device(s); on a CPU "
            f"start the process with XLA_FLAGS=--xla_force_host_platform_device_count={n} "
            "(rflo sweep run --devices N does this)"
        )
    return n
