"""Whether two versions of rflo compile the same programs (a refactor's check).

    python benchmarks/compare_programs.py OLD_SRC [NEW_SRC]

lowers every registered rule's offline trial and online step on the point-neuron
cells (n_rec 20, T 100, float32) with each version's ``src`` folder first on
``sys.path`` (one fresh process each; NEW_SRC defaults to this checkout's) and
prints, per (cell, rule), whether the StableHLO texts (without source
locations) are the same.  Same programs mean bit-identical results and the
same speed, which timing alone cannot show on a loaded machine.  Make OLD_SRC
with ``git worktree add /tmp/old <commit>`` and pass ``/tmp/old/src``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

CELLS = ("leaky_tanh", "leaky_tau", "lif", "alif", "readout_feedback")


def fingerprints() -> dict:
    """``{"cell rule": [trial hash, step hash]}`` for the rflo on sys.path."""
    import jax
    import jax.numpy as jnp

    import rflo
    from rflo.rules import Setup, get_rule, rule_names

    def digest(lowered):
        return hashlib.sha1(lowered.as_text(debug_info=False).encode()).hexdigest()[:12]

    x, y, m = (jnp.asarray(a) for a in rflo.periodic_task(period=100).trial(0))
    key, setup, out = jax.random.PRNGKey(0), Setup(), {}
    for cell in CELLS:
        net = jax.tree_util.tree_map(jnp.asarray, rflo.init_network(1, 20, 1, cell=cell))
        s0 = net.cell.initial_state(net)
        for name in rule_names():
            rule = get_rule(name)
            try:
                rule.check(net, setup)
            except ValueError:
                continue
            trial = digest(
                jax.jit(lambda n, *a, rule=rule: rule.trial(n, *a, setup)).lower(net, x, y, m, key)
            )
            try:
                state = rule.init(net, key, setup)
                step = digest(
                    jax.jit(
                        lambda n, st, s, *a, rule=rule: rule.advance(st, n, s, *a, setup)
                    ).lower(net, state, s0, x[1], y[1], m[1])
                )
            except NotImplementedError:  # no per-step form (BPTT)
                step = None
            out[f"{cell} {name}"] = [trial, step]
    return out


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if not args or len(args) > 2:
        raise SystemExit(__doc__)
    new = args[1] if len(args) > 1 else str(Path(__file__).resolve().parents[1] / "src")
    runs = []
    for src in (args[0], new):
        code = (
            f"import sys, json; sys.path.insert(0, {src!r}); sys.path.insert(1, {str(Path(__file__).parent)!r}); "
            "import compare_programs as c; print(json.dumps(c.fingerprints()))"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"{src}: {proc.stderr.strip().splitlines()[-1]}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    old, cur = runs
    same = 0
    for case in sorted(set(old) | set(cur)):
        verdict = "same" if old.get(case) == cur.get(case) else "DIFFERENT"
        same += verdict == "same"
        print(f"{case:36s} {verdict}")
    print(f"{same} of {len(set(old) | set(cur))} (cell, rule) programs the same")
    return 0 if same == len(set(old) | set(cur)) else 1


if __name__ == "__main__":
    sys.exit(main())
