"""Which state leaves a cell's step can move: the structural zeros of a
Jacobian, read from the step's JVP program (its jaxpr) before anything runs.

The per-unit traces (:mod:`rflo.rules.traces`) multiply ``D[c2][c] eps_c`` for
every pair of state leaves; where ``s_c2[t]`` does not depend on ``s_c[t-1]``
at all (an LSTM's ``h`` under e-prop's fixed recurrent input, a refractory
counter), the product is zero for every input and is skipped, and a trace no
step reads is not carried.

The walk is conservative: an equation whose inputs touch a tangent is taken to
move every one of its outputs (a nested ``pjit`` or custom-JVP body is walked
into), so a leaf is only reported independent when no path of the program
links them.
"""

from __future__ import annotations

import jax
from jax.extend import core as jcore

__all__ = ["dependence"]

#: equation parameters that hold a nested program with the equation's own
#: inputs and outputs (pjit, closed_call, custom_jvp_call)
_NESTED = ("jaxpr", "call_jaxpr")


def _nested(eqn):
    for key in _NESTED:
        inner = eqn.params.get(key)
        if inner is not None:
            inner = getattr(inner, "jaxpr", inner)  # a ClosedJaxpr's program
            if len(inner.invars) == len(eqn.invars) and len(inner.outvars) == len(eqn.outvars):
                return inner
            return None
    return None


def _walk(jaxpr, in_sets):
    """Bit sets of the inputs each output of ``jaxpr`` may depend on."""
    env = dict(zip(jaxpr.invars, in_sets))

    def get(a):
        return 0 if isinstance(a, jcore.Literal) else env.get(a, 0)

    for eqn in jaxpr.eqns:
        ins = [get(a) for a in eqn.invars]
        inner = _nested(eqn)
        if inner is not None:
            outs = _walk(inner, ins)
        else:
            union = 0
            for s in ins:
                union |= s
            outs = [union] * len(eqn.outvars)
        env.update(zip(eqn.outvars, outs))
    return [get(a) for a in jaxpr.outvars]


def dependence(fn, state) -> list[list[bool]]:
    """``dep[o][c]``: whether leaf ``o`` of ``fn(state)`` may have a nonzero
    derivative along leaf ``c`` of ``state`` (a pytree of arrays or of
    ``jax.ShapeDtypeStruct``).  Traced, never run; may be called inside a jit."""
    leaves, tree = jax.tree_util.tree_flatten(state)
    k = len(leaves)

    def tangents_out(primals, tangents):
        p = jax.tree_util.tree_unflatten(tree, primals)
        t = jax.tree_util.tree_unflatten(tree, tangents)
        return jax.tree_util.tree_leaves(jax.jvp(fn, (p,), (t,))[1])

    program = jax.make_jaxpr(tangents_out)(leaves, leaves).jaxpr
    outs = _walk(program, [0] * k + [1 << c for c in range(k)])
    return [[bool(o >> c & 1) for c in range(k)] for o in outs]
