"""Every cell's time per trial beside the leaky tanh's, for the same rule (issue
#25's targets (c) and (d)), and which path each one runs.

At n_rec 50, T 100, float32, one network: for each registered cell that
``rflo.init_network`` builds with defaults and each of RFLO (offline, online),
e-prop (offline) and BPTT (offline) that accepts it, the compiled session's
time per trial (``timing.time_library``).  Each row names its path:

* ``closed form + kernel``: the leaky tanh's closed-form rule run by rflo's
  compiled CPU kernel (rflo.kernels);
* ``closed form (XLA)``: the closed form without a kernel;
* ``generic (XLA)``: Jacobian-vector products through the cell's step, as XLA
  compiles them (every other cell).

The whole table is timed twice and each row keeps its faster pass (on a busy
machine a slow spell would otherwise flatter or shame a single row).  The profile
row ``leaky_tanh`` on ``route="generic"`` is the leaky tanh cell
forced onto the generic path: the gap between it and the closed form is what
the route costs, the gap between it and another cell what that cell's own
step costs.
"""

from __future__ import annotations

from timing import fmt_time, mode_name, time_library

from rflo.cells import cell_names
from rflo.rules import Setup
from rflo.rules.base import closed_form

#: (rule, online) timed for every cell
CELL_CASES = [("rflo", False), ("rflo", True), ("eprop", False), ("bptt", False)]
#: the cell every other is measured against
REFERENCE = "leaky_tanh"


def _applies(rule, cell, n_rec):
    """The network, or None when the rule does not train this cell."""
    import rflo
    from rflo.rules import get_rule

    try:
        net = rflo.init_network(1, n_rec, 1, seed=0, cell=cell)
        get_rule(rule).check(net, Setup())
    except (ValueError, TypeError, NotImplementedError):
        return None
    return net


def synapses(net):
    """Entries of the weight matrices a step multiplies (every 2-d array but
    the readout ``w_out`` and the feedback ``b``): the step's multiply-adds."""
    import jax
    import numpy as np

    arrays = [net.w_in, net.w_rec] + jax.tree_util.tree_leaves(net.extra or {})
    return int(sum(np.size(a) for a in arrays if a is not None and np.ndim(a) >= 2))


def path_of(net, cell, route="auto"):
    """Which path a session on ``net`` runs on this machine."""
    from machine import kernel_info

    if route == "generic" or not closed_form(net, Setup(route=route)):
        return "generic (XLA)"
    k = kernel_info()
    return (
        "closed form + kernel"
        if (k["enabled"] and k["built"] and cell == REFERENCE)
        else "closed form (XLA)"
    )


def cell_rows(n_rec=50, steps=100, budget_s=0.3, cells=None, cases=CELL_CASES, log=print, passes=2):
    """Rows of kind "cell": one per (cell, rule, mode), plus the leaky tanh on
    the generic route (``route: "generic"``) as the profile's yardstick.  The
    whole table is timed ``passes`` times, a minute or so apart, and each row
    keeps its fastest pass: a slow spell of a shared machine then moves no
    ratio (two runs of one table differed by up to 30 % in single rows)."""
    rows = {}
    cells = [c for c in cell_names() if cells is None or c in cells]
    if REFERENCE in cells:  # the reference first
        cells.remove(REFERENCE)
        cells.insert(0, REFERENCE)
    log(f"{'cell':<22}{'rule':<8}{'mode':<8}{'path':<22}{'per trial':>12}")
    plan = [(c, r) for c in cells for r in (["auto", "generic"] if c == REFERENCE else ["auto"])]
    for done in range(passes):
        for cell, route in plan:
            for rule, online in cases:
                key = (cell, route, rule, mode_name(online))
                if done and "seconds_per_trial" not in rows[key]["library"]:
                    continue  # skipped or failed in the first pass: once is enough
                row = {
                    "kind": "cell",
                    "cell": cell,
                    "rule": rule,
                    "mode": mode_name(online),
                    "n_rec": n_rec,
                    "steps": steps,
                    "route": route,
                    "dtype": "float32",
                }
                net = _applies(rule, cell, n_rec)
                if net is None:
                    row["library"] = {"skipped": f"{rule} does not train the {cell} cell"}
                    rows[key] = row
                    continue
                row["path"] = path_of(net, cell, route)
                row["synapses"] = synapses(net)
                try:
                    row["library"] = time_library(
                        rule, online, n_rec, steps, budget_s, cell=cell, route=route
                    )
                except Exception as exc:  # a cell the session cannot run: say so, go on
                    row["library"] = {"skipped": f"{type(exc).__name__}: {exc}"[:200]}
                    log(f"{cell:<22}{rule:<8}{row['mode']:<8}failed: {row['library']['skipped']}")
                    rows[key] = row
                    continue
                t = row["library"]["seconds_per_trial"]
                name = cell if route == "auto" else f"{cell} ({route})"
                log(
                    f"{name:<22}{rule:<8}{row['mode']:<8}{row['path']:<22}{fmt_time(t):>12}"
                    + (f"  (pass {done + 1})" if done else ""),
                    flush=True,
                )
                if key not in rows or t < rows[key]["library"]["seconds_per_trial"]:
                    row["passes"] = passes
                    rows[key] = row
    rows = list(rows.values())
    ref = {
        (r["rule"], r["mode"]): r["library"]["seconds_per_trial"]
        for r in rows
        if r["cell"] == REFERENCE and r["route"] == "auto" and "seconds_per_trial" in r["library"]
    }
    for r in rows:
        if (r["rule"], r["mode"]) in ref and "seconds_per_trial" in r["library"]:
            r["vs_reference"] = r["library"]["seconds_per_trial"] / ref[(r["rule"], r["mode"])]
    log(
        "against the leaky tanh, same rule (each the best of its passes): "
        + ", ".join(
            f"{r['cell']}{'' if r['route'] == 'auto' else ' (generic)'} {r['rule']} {r['mode']} "
            f"{r['vs_reference']:.2f}x"
            for r in rows
            if "vs_reference" in r and r["cell"] != REFERENCE
        )
    )
    return rows
