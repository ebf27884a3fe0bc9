"""Figure 4's settings (:mod:`rflo.paper.figure4`): :class:`Config` (everything
that sets the size of the reproduction), the two modes (:data:`FULL`,
:data:`QUICK`) and what a config sets: the syllables' rate
(:func:`syllable_rate`) and the whole sequence's target velocity
(:func:`target`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["Config", "FULL", "QUICK", "syllable_rate", "target"]


@dataclass(frozen=True)
class Config:
    """Everything that sets the size of the reproduction."""

    mode: str
    n_rec: int = 100
    tau: float = 10.0
    move: int = 200
    hold: int = 200
    sequence: tuple = (0, 1, 2, 3)
    n_networks: int = 5
    syllable_trials: int = 10_000
    selector_trials: int = 10_000
    baseline_trials: int = 20_000
    #: RFLO's rate for the syllables (None: 0.003 for ``syllable_training="one"``,
    #: 0.01 for "four"; each chosen on networks 100 and 101, see rflo.paper.figure4's docstring)
    lr_syllables: Optional[float] = None
    #: "one": a random syllable per trial, the state and the cursor carried from
    #: trial to trial (the Methods'); "four": four random syllables per trial,
    #: from h0 each trial (this library's earlier layout)
    syllable_training: str = "one"
    lr_baseline: tuple = (("rflo", 0.003), ("bptt", 0.003))
    eta_selector: float = 0.1
    explore: float = 0.1
    seed: int = 0
    #: the networks reported, by seed (None: seed, seed + 1, ...)
    seeds: Optional[tuple] = None
    #: f': "exact" (1 - tanh^2, the paper's phi = tanh) or "seed" (the notebook's)
    derivative: str = "exact"
    #: z in the selector's update: "drive" (the paper's z_i = sum_j W^s_ij h_j,
    #: before the winner-take-all) or "choice" (the one-hot after it, a variant)
    update: str = "drive"
    #: keep the selector's rows at unit length (an addition of this library)
    normalize: bool = True
    #: the selector never moves the cursor beyond this many reach lengths in x or y
    #: (the Methods' out-of-bounds constraint; the box's size is ours)
    bounds: float = 1.5


FULL = Config(mode="full")
QUICK = Config(
    mode="quick", n_networks=2, syllable_trials=3000, selector_trials=1000, baseline_trials=4000
)


def syllable_rate(cfg: Config) -> float:
    """RFLO's rate for the syllables: the config's, else the one chosen for its layout."""
    if cfg.lr_syllables is not None:
        return float(cfg.lr_syllables)
    return 0.003 if cfg.syllable_training == "one" else 0.01


def target(cfg: Config) -> np.ndarray:
    """(T, 2) the target velocity of the whole sequence."""
    from rflo.tasks.motor import syllable_velocity

    steps = cfg.move + cfg.hold
    t = np.arange(len(cfg.sequence) * steps)
    k = np.asarray(cfg.sequence)[t // steps]
    return np.asarray(syllable_velocity(k, t % steps, 4, cfg.move), float)
