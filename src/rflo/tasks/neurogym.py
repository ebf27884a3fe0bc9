"""NeuroGym environments as rflo tasks (optional extra: ``pip install rflo[neurogym]``).

NeuroGym (https://neurogym.github.io) describes each trial of a cognitive task
with an observation sequence ``env.ob`` (T_i, n_obs) and a ground-truth
sequence ``env.gt`` (T_i,) of correct actions (or (T_i, d) for continuous
actions), made by ``env.new_trial()``.  NeuroGym runs in Python, so
:func:`neurogym_task` draws a bank of trials once and returns a stacked
:class:`~rflo.tasks.Task`; training then cycles through the bank inside the
compiled loop.

Layout of a banked trial: row 0 is the network's initial state (not scored),
rows ``1 .. T_i`` hold the trial, shorter trials are padded with ``mask = 0``.
Discrete actions become one-hot targets over the ``n`` actions (output ``k``
should be high when action ``k`` is correct; action 0 is fixation in NeuroGym),
so the loss is on the ground truth at every step, and the accuracy is the
fraction of decision steps (ground truth != fixation) where the largest output
is the correct action (:func:`rflo.tasks.argmax_accuracy`).
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from rflo._checks import check_int, check_positive
from rflo.tasks.base import Task
from rflo.tasks.generator import argmax_accuracy

__all__ = ["neurogym_task"]

INSTALL_HINT = "install the optional extra: pip install 'rflo[neurogym]'"


def _make_env(env, env_kwargs):
    if not isinstance(env, str):
        if env_kwargs:
            raise ValueError("env_kwargs apply only when env is given by name")
        return env
    try:
        import neurogym
    except ImportError as exc:
        raise ImportError(f"neurogym is not installed ({exc}); {INSTALL_HINT}") from None
    try:
        with warnings.catch_warnings():  # gymnasium's metadata warning about neurogym's envs
            warnings.filterwarnings("ignore", message=".*render_modes.*")
            return neurogym.make(env, **(env_kwargs or {}))
    except Exception as exc:  # unknown id, bad keyword
        raise ValueError(f"cannot make NeuroGym environment {env!r}: {exc}") from None


def neurogym_task(
    env,
    n_trials: int = 500,
    *,
    seed: int = 0,
    n_steps: Optional[int] = None,
    env_kwargs: Optional[dict] = None,
    response_weight: float = 1.0,
    name: Optional[str] = None,
) -> Task:
    """A stacked :class:`~rflo.tasks.Task` of ``n_trials`` NeuroGym trials.

    Parameters
    ----------
    env : a NeuroGym environment (or its id, e.g. ``"PerceptualDecisionMaking-v0"``,
        made with ``neurogym.make(env, **env_kwargs)``).
    n_trials : trials in the bank (training cycles through them).
    seed : seeds the environment's trial generator (``env.seed(seed)``).
    n_steps : ``T`` of the banked trials (default: longest trial + 1).
    env_kwargs : keyword arguments for ``neurogym.make`` (e.g. ``dt=20``).
    response_weight : loss weight (mask value) of the steps whose ground truth
        is not fixation (discrete actions only; fixation steps weigh 1).  Most
        NeuroGym trials are mostly fixation, so a network that always fixates
        has a small loss; weighting the few decision steps up (e.g. 10) makes
        the choice count.

    Returns a Task with ``x`` (n_trials, T, n_obs), ``y`` (n_trials, T, n_actions)
    one-hot (discrete actions, with ``metric=argmax_accuracy``) or the continuous
    ground truth (no metric), and the padding mask.
    """
    n_trials = check_int("n_trials", n_trials)
    response_weight = check_positive("response_weight", response_weight)
    seed = check_int("seed", seed, minimum=0)
    if n_steps is not None:
        n_steps = check_int("n_steps", n_steps, minimum=2)
    outer = _make_env(env, env_kwargs)
    base = getattr(outer, "unwrapped", outer)
    if not hasattr(base, "new_trial"):
        raise ValueError(
            f"{type(outer).__name__} is not a NeuroGym trial environment (it has no new_trial())"
        )
    n_actions = getattr(getattr(base, "action_space", None), "n", None)
    if hasattr(base, "seed"):
        base.seed(seed)

    obs, gts = [], []
    for _ in range(n_trials):
        base.new_trial()
        ob = np.asarray(base.ob, dtype=float)
        obs.append(ob.reshape(ob.shape[0], -1))
        gts.append(np.asarray(base.gt))
    longest = max(o.shape[0] for o in obs)
    if n_steps is None:
        n_steps = longest + 1
    elif n_steps < longest + 1:
        raise ValueError(
            f"n_steps={n_steps} is too short: the longest trial needs {longest + 1} "
            "(its steps plus the initial state)"
        )

    n_obs = obs[0].shape[1]
    if n_actions is not None:
        n_out = int(n_actions)
    else:
        n_out = int(np.prod(gts[0].shape[1:])) if gts[0].ndim > 1 else 1
    x = np.zeros((n_trials, n_steps, n_obs))
    y = np.zeros((n_trials, n_steps, n_out))
    mask = np.zeros((n_trials, n_steps))
    for i, (ob, gt) in enumerate(zip(obs, gts)):
        t = ob.shape[0]
        if ob.shape[1] != n_obs:
            raise ValueError("the environment's observations change size between trials")
        x[i, 1 : t + 1] = ob
        mask[i, 1 : t + 1] = 1.0
        if n_actions is not None:
            action = gt.astype(int).reshape(t)
            y[i, 1 + np.arange(t), action] = 1.0
            mask[i, 1 : t + 1] = np.where(action != 0, response_weight, 1.0)
        else:
            y[i, 1 : t + 1] = gt.reshape(t, n_out)
    label = name or (env if isinstance(env, str) else type(base).__name__)
    return Task(
        x=x,
        y=y,
        mask=mask,
        name=str(label),
        params=dict(
            source="neurogym",
            env=str(label),
            n_trials=n_trials,
            seed=seed,
            n_steps=n_steps,
            response_weight=response_weight,
        ),
        metric=argmax_accuracy if n_actions is not None else None,
    )
