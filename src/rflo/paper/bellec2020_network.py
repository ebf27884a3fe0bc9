"""Bellec et al. (2020)'s network in the library's units (:mod:`rflo.paper.bellec2020`):
its neuron (:func:`bellec_cell`), its initial weights (:func:`bellec_network`,
the named network ``"bellec2020"``) and Adam's rates by parameter
(:func:`optimizer`, :func:`optimizer_rates`)."""

from __future__ import annotations

import numpy as np

__all__ = ["bellec_cell", "bellec_network", "optimizer", "optimizer_rates"]

TAU_V, TAU_A, THR, N_IN, N_LIF, N_ALIF = 20.0, 2000.0, 0.6, 40, 50, 50


def bellec_cell():
    """Their neuron: 50 LIF then 50 ALIF units (see :mod:`rflo.paper.bellec2020`)."""
    from rflo.cells import ALIF

    alpha, rho = np.exp(-1.0 / TAU_V), np.exp(-1.0 / TAU_A)
    return ALIF(
        thr=THR,
        gamma=0.3,
        beta=float(1.7 * (1 - rho) / (1 - alpha)),
        tau_a=TAU_A,
        n_refractory=5,
        n_regular=N_LIF,
    )


def bellec_network(seed: int, task=None):
    """Their initial network in the library's units (weights ``/ (1 - alpha)``),
    drawn from ``seed``; the builder of the named network ``"bellec2020"``
    (:mod:`rflo.networks`: ``RunSpec(network="bellec2020")``), whose ``task``
    it takes and does not need (it is drawn for evidence accumulation: 40
    inputs, 2 outputs)."""
    import rflo

    rng = np.random.default_rng(seed)
    n = N_LIF + N_ALIF
    gain = 1.0 / (1.0 - np.exp(-1.0 / TAU_V))
    w_rec = rng.normal(size=(n, n)) / np.sqrt(n) * gain
    np.fill_diagonal(w_rec, 0.0)
    limit = np.sqrt(6.0 / (n + 2))
    return rflo.network_from_arrays(
        w_in=rng.normal(size=(n, N_IN)) / np.sqrt(N_IN) * gain,
        w_rec=w_rec,
        w_out=rng.uniform(-limit, limit, (2, n)),
        b=rng.normal(size=(n, 2)),
        h0=np.zeros(n),
        tau=TAU_V,
        mask=1.0 - np.eye(n),
        cell=bellec_cell(),
    )


def optimizer(lr: float):
    """Adam at ``lr / (1 - alpha)`` on ``w_in``, ``w_rec`` and ``lr`` on ``w_out``."""
    import optax

    rec = lr / (1.0 - np.exp(-1.0 / TAU_V))
    return optax.multi_transform(
        {"rec": optax.adam(rec), "out": optax.adam(lr)},
        lambda p: {k: "out" if k == "w_out" else "rec" for k in p},
    )


def optimizer_rates(lr: float) -> dict:
    """Adam's rates by parameter (:func:`optimizer`'s): ``lr / (1 - alpha)`` on
    ``w_in``, ``w_rec``, ``lr`` on ``w_out``."""
    rec = float(lr / (1.0 - np.exp(-1.0 / TAU_V)))
    return {"w_in": rec, "w_rec": rec, "w_out": float(lr)}
