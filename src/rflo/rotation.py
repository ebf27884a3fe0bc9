"""Visuomotor rotation: rotate a 2-D readout mid-training and keep learning.

In visuomotor adaptation experiments the cursor shown to the subject is the
hand position rotated by a fixed angle; the subject adapts its movements so
that the cursor reaches the targets again.  Here the "cursor" is the network's
2-D readout ``y = w_out h``; :func:`rotate_readout` rotates it
(``w_out -> R(angle) w_out``), so that the same activity now points elsewhere,
and :func:`train_with_rotation` trains on a task (e.g. :func:`rflo.tasks.reach`),
rotates the readout at a given trial and continues training (same optimiser
state, same trial numbering), so the loss curve shows the error jump and the
re-adaptation.  Keep ``lr_out = 0`` after the rotation to model a fixed
arm-to-cursor mapping (only recurrent/input weights adapt), or let the
readout learn too.
"""

from __future__ import annotations

import numpy as np

from rflo._checks import check_finite_array, check_int
from rflo.train import TrainResult, train

__all__ = ["rotation_matrix", "rotate_readout", "train_with_rotation"]


def rotation_matrix(degrees: float) -> np.ndarray:
    """The 2x2 matrix of a counter-clockwise rotation by ``degrees``."""
    a = np.deg2rad(float(check_finite_array("degrees", [degrees], ndim=1, dtype="float64")[0]))
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def rotate_readout(net, degrees: float):
    """``net`` with its 2-D readout rotated: ``w_out -> R(degrees) w_out``.

    The feedback matrix ``b`` is left as it is (RFLO's feedback is fixed and
    random; ``rule="local"`` and BPTT follow the new ``w_out`` automatically).
    """
    if np.shape(net.w_out)[0] != 2:
        raise ValueError(
            f"rotate_readout needs a network with 2 outputs, got n_out={np.shape(net.w_out)[0]}"
        )
    rot = rotation_matrix(degrees)
    w_out = np.asarray(net.w_out)
    return net._replace(w_out=(rot @ w_out.astype(float)).astype(w_out.dtype))


def train_with_rotation(
    net,
    task,
    rule="rflo",
    trials: int = 1000,
    *,
    rotate_at: int,
    degrees: float = 45.0,
    lr=(0.0, 0.03, 0.03),
    lr_after=None,
    **train_kwargs,
):
    """Train ``trials`` trials, rotating the readout by ``degrees`` before
    trial ``rotate_at`` (``0 < rotate_at < trials``).

    ``lr_after`` (default ``lr``) are the learning rates after the rotation.
    Other keyword arguments go to :func:`rflo.train` (``seed``, ``batch``, ...).
    Returns a :class:`~rflo.train.TrainResult` over all trials (loss,
    alignment and accuracy concatenated) whose network is the final, rotated one.
    """
    trials = check_int("trials", trials, minimum=2)
    rotate_at = check_int("rotate_at", rotate_at)
    if rotate_at >= trials:
        raise ValueError(f"rotate_at ({rotate_at}) must be < trials ({trials})")
    for bad in ("opt_state", "start_trial"):
        if bad in train_kwargs:
            raise ValueError(f"train_with_rotation sets {bad} itself")
    if np.shape(net.w_out)[0] != 2:
        raise ValueError(
            f"visuomotor rotation needs a network with 2 outputs, got n_out={np.shape(net.w_out)[0]}"
        )
    rotation_matrix(degrees)  # validate before training
    before = train(net, task, rule, rotate_at, lr, **train_kwargs)
    after = train(
        rotate_readout(before.network, degrees),
        task,
        rule,
        trials - rotate_at,
        lr if lr_after is None else lr_after,
        opt_state=before.opt_state,
        start_trial=rotate_at,
        **train_kwargs,
    )
    acc = None if before.accuracy is None else np.concatenate([before.accuracy, after.accuracy])
    return TrainResult(
        network=after.network,
        loss=np.concatenate([before.loss, after.loss]),
        alignment=np.concatenate([before.alignment, after.alignment]),
        rule=after.rule,
        seconds=before.seconds + after.seconds,
        opt_state=after.opt_state,
        accuracy=acc,
    )
