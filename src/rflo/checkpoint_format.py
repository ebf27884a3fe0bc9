"""The layout of a checkpoint's npz file (:mod:`rflo.checkpoint`): the key
prefixes of its previous and best networks and of its optimiser states, the
keys it may hold (:func:`is_checkpoint_key`), and the checks of their headers
(shapes, dtypes) before any array is read (:func:`check_heads`)."""

from __future__ import annotations

import re

from rflo.io import check_network_shapes, network_keys

__all__ = ["PREVIOUS", "BEST", "OPT", "PREVIOUS_OPT", "is_checkpoint_key", "check_heads"]

PREVIOUS = "previous."
BEST = "best."
OPT, PREVIOUS_OPT = "opt.", "previous_opt."

_CURVES = ("loss", "alignment", "seconds", "best_loss", "run_id")
_OPTIONAL = ("frozen_at", "best_network_loss", "best_at", "accuracy")


_OPT_KEY = re.compile(r"(previous_)?opt\.\d+")


def is_checkpoint_key(key):
    return (
        key in _CURVES
        or key in _OPTIONAL
        or network_keys(key)
        or network_keys(key, PREVIOUS)
        or network_keys(key, BEST)
        or bool(_OPT_KEY.fullmatch(key))
    )


def _networks_of(heads):
    """K for a checkpoint of K stacked networks (a 3-d ``w_rec``, or a 3-d
    ``w_out`` for a cell that owns its synapses), else None."""
    lead = heads.get("w_rec", heads.get("w_out", ((),)))[0]
    return lead[0] if len(lead) == 3 else None


_SHARED = ("format", "cell", "run_id", "info")


def _unstacked(heads, k, path):
    """The network arrays' headers without their leading K axis."""
    out = {}
    for key, (shape, dtype) in heads.items():
        if network_keys(key) or network_keys(key, PREVIOUS) or network_keys(key, BEST):
            if key in _SHARED or any(
                key.startswith(p) and key[len(p) :] in _SHARED for p in (PREVIOUS, BEST)
            ):
                out[key] = (shape, dtype)
                continue
            if not shape or shape[0] != k:
                raise ValueError(
                    f"{path}: {key} must hold {k} networks (shape ({k}, ...)), got {shape}"
                )
            out[key] = (shape[1:], dtype)
    return out


def check_heads(heads, path):
    k = _networks_of(heads)
    net_heads = heads if k is None else _unstacked(heads, k, path)
    check_network_shapes(net_heads, path)
    for prefix in (PREVIOUS, BEST):
        if any(key.startswith(prefix) for key in heads):
            check_network_shapes(net_heads, path, prefix=prefix)
    for key in _CURVES:
        if key not in heads:
            raise ValueError(f"{path}: checkpoint lacks {key!r}")
    lead = () if k is None else (k,)
    for key in ("loss", "alignment"):
        shape, dtype = heads[key]
        if len(shape) != 1 + len(lead) or shape[:-1] != lead or dtype.kind != "f":
            raise ValueError(
                f"{path}: {key!r} must be {'a curve' if k is None else f'{k} curves'}"
                f" of floats, got {dtype} {shape}"
            )
    if heads["loss"][0] != heads["alignment"][0]:
        raise ValueError(f"{path}: loss and alignment curves do not match")
    if "accuracy" in heads and (
        heads["accuracy"][0] != heads["loss"][0] or heads["accuracy"][1].kind != "f"
    ):
        raise ValueError(f"{path}: 'accuracy' must be shaped as the loss curve, in floats")
    for key, want in (("seconds", ()), ("best_loss", lead)):
        if heads[key][0] != want or heads[key][1].kind != "f":
            raise ValueError(
                f"{path}: {key!r} must be {'one number' if not want else f'{k} numbers'}"
            )
    if "frozen_at" in heads and (
        k is None or heads["frozen_at"][0] != lead or heads["frozen_at"][1].kind not in "iu"
    ):
        raise ValueError(f"{path}: 'frozen_at' must hold one trial index per network")
    has_best = any(key.startswith(BEST) for key in heads)
    for key in ("best_network_loss", "best_at"):
        if has_best != (key in heads):
            raise ValueError(
                f"{path}: a checkpoint's best network comes with 'best_network_loss' "
                "and 'best_at'; this one has only some of them"
            )
    if has_best and (
        heads["best_network_loss"][0] != lead
        or heads["best_network_loss"][1].kind != "f"
        or heads["best_at"][0] != lead
        or heads["best_at"][1].kind not in "iu"
    ):
        raise ValueError(
            f"{path}: 'best_network_loss' and 'best_at' must be "
            f"{'one number' if k is None else f'{k} numbers'} each"
        )
    if heads["run_id"][0] != () or heads["run_id"][1].kind != "U":
        raise ValueError(f"{path}: 'run_id' must be one string")
