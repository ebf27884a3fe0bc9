"""The log-log cost-scaling figure (benchmarks/scaling.png)."""

from __future__ import annotations

import numpy as np
from timing import cost_exponent


def plot_scaling(report, path, small_path=None):
    """Seconds per trial against n_rec, log-log, with the theory's slopes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        r for r in report["results"] if r["kind"] == "speed" and "seconds_per_trial" in r["library"]
    ]
    series = {}
    for r in rows:
        series.setdefault((r["rule"], r["mode"]), []).append(
            (r["n_rec"], r["library"]["seconds_per_trial"])
        )
    fig, ax = plt.subplots(figsize=(7, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, ((rule, mode), pts) in enumerate(sorted(series.items())):
        pts.sort()
        n = np.array([p[0] for p in pts], float)
        t = np.array([p[1] for p in pts], float)
        color = colors[i % len(colors)]
        label = f"{rule} {mode}"
        if len(n) >= 2:
            slope = np.polyfit(np.log(n[-2:]), np.log(t[-2:]), 1)[0]
            label += f" (measured slope {slope:.1f})"
        ax.loglog(n, t, "o-" if mode == "offline" else "s--", color=color, label=label)
        k = cost_exponent(rule)
        ax.loglog(n, t[-1] * (n / n[-1]) ** k, ":", color=color, alpha=0.6, linewidth=2)
    ax.plot(
        [], [], "k:", alpha=0.6, linewidth=2, label="theory: RTRL ~ N^4, RFLO/BPTT ~ N^2 (per step)"
    )
    m = report["machine"]
    ax.set_xlabel("n_rec (N)")
    ax.set_ylabel(f"seconds per trial (T = {report['settings']['steps']})")
    ax.set_title(
        f"rflo cost scaling on {m['jax_device']} ({m['cpu']}, {m['cores_usable']} cores)",
        fontsize=9,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    if small_path is not None:
        fig.savefig(small_path, dpi=60)
    plt.close(fig)
