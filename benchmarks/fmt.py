"""How the benchmark tables write times, rates and sizes."""

from __future__ import annotations


def fmt_time(s, micro="µs"):
    """Seconds as a short human-readable string (``micro`` names microseconds)."""
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} {micro}"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_rate(r):
    if r is None:
        return "-"
    return f"{r:,.0f}" if r >= 10 else f"{r:.2f}"


def fmt_bytes(b):
    if b is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if b < 1024 or unit == "GiB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1024
