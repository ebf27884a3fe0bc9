"""Planning a sweep: grid points grouped by compiled shape, split into chunks.

Points that differ only in their lane settings (:data:`~rflo.sweep.spec.LANE_KEYS`:
seed and learning rates) share one compiled call: they become the vmap lanes of
one :func:`rflo.train_ensemble` call.  A group larger than ``max_networks`` is
split into chunks of equal size (the last padded by repeating a lane, whose
results are dropped), so every chunk of a group shares one compilation.

A chunk's id is a hash of its points, the trial count, the recording interval
and the library's version: a chunk already written is never run again, and a
changed spec or library runs anew.
"""

from __future__ import annotations

import hashlib
import json
from typing import List, NamedTuple

from rflo.sweep.points import build_point, point_rates, point_spec
from rflo.sweep.spec import SweepSpec, is_lane

__all__ = ["Chunk", "make_plan", "check_plan"]


class Chunk(NamedTuple):
    """One compiled call of a sweep.

    id : 16 hex digits (hash of what the chunk computes).
    points : the grid points it trains (flat dicts), with their indices ``index``.
    lanes : networks in the call (``len(points)``, or one more when padded).
    """

    id: str
    index: tuple
    points: tuple
    lanes: int


def _version():
    from rflo import __version__

    return __version__


def chunk_id(points, trials, record_every, lanes) -> str:
    text = json.dumps(
        {
            "points": list(points),
            "trials": trials,
            "record_every": record_every,
            "lanes": lanes,
            "version": _version(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _group(point) -> str:
    """What a point shares with the other lanes of its compiled call: every
    setting but the lane settings (seed, rates)."""
    shared = {k: v for k, v in point.items() if not is_lane(k)}
    named = sorted(k for k, v in point.items() if k.startswith("lr.") and v is not None)
    if named:  # which parameters have rates by name is shared; their values are lanes
        shared["lr by name"] = named
    return json.dumps(shared, sort_keys=True)


def make_plan(spec: SweepSpec) -> List[Chunk]:
    """The chunks of ``spec``, in grid order of their first point."""
    groups = {}
    for i, p in enumerate(spec.points()):
        groups.setdefault(_group(p), []).append((i, p))
    chunks = []
    for members in groups.values():
        n_chunks = -(-len(members) // spec.max_networks)
        lanes = -(-len(members) // n_chunks)
        start = 0
        for c in range(n_chunks):  # sizes differ by at most one
            size = len(members) // n_chunks + (c < len(members) % n_chunks)
            part, start = members[start : start + size], start + size
            points = tuple(p for _, p in part)
            chunks.append(
                Chunk(
                    chunk_id(points, spec.trials, spec.record_every, lanes),
                    tuple(i for i, _ in part),
                    points,
                    lanes,
                )
            )
    return chunks


def check_plan(spec: SweepSpec, chunks: List[Chunk]):
    """Check every chunk's settings before anything runs (task, cell, loss,
    rule, optimiser, rates, memory for its networks); raise ValueError naming
    the chunk's settings and the problem."""
    from rflo.session import draw_network
    from rflo.spec_build import check_optimizer_rates, run_rule
    from rflo.train import check_fits, check_session_memory, prepare_session

    seen = set()
    for c in chunks:
        p = c.points[0]
        group = _group(p)
        if group in seen:
            continue
        seen.add(group)
        where = ", ".join(f"{k}={v}" for k, v in p.items() if not is_lane(k) and v is not None)
        try:
            task, cell, optimizer = build_point(p)
            run = point_spec(p)
            net = draw_network(run, task, cell, seed=0)
            check_fits(net, task)
            for q in c.points:
                lr = {name: float(v[0]) for name, v in point_rates([q], net).items()}
                _, cfg, names, _ = prepare_session(
                    net,
                    run_rule(run, p["rule"]),  # with the firing-rate regulariser where asked
                    lr,
                    online=p["online"],
                    optimizer=optimizer,
                    loss=p["loss"],
                    unroll=1,
                    route="auto",
                )
                check_optimizer_rates(run, net, names)
            check_session_memory(net, cfg, task, p["batch"], networks=c.lanes)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"sweep point ({where}): {exc}") from None
