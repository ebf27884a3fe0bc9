"""Spiking networks that fire (issue #24): a spiking cell built by name has the
background current ``drive = FIRING_DRIVE``, so the default networks of
rflo.init_network fire at a sensible rate on every built-in task; with Bellec
et al.'s cells (``LIF()``, ``drive=0``) they are silent, check_firing says so
and names the fix, and a file written without a drive reads back without one."""

import re
import warnings

import numpy as np
import pytest

import rflo
from rflo.cells import get_cell
from rflo.cells.lif import FIRING_DRIVE, LIF, check_firing, firing_rate
from rflo.tasks import TASKS, make_task


def inputs(name):
    task = make_task(name)
    x = task.batch(seed=0, batch=2)[0] if hasattr(task, "batch") else task.stacked("float32")[0]
    return np.asarray(x)[:, :200]  # 200 steps are enough for a rate


@pytest.mark.slow  # a compilation per task; the periodic task in the default run below
@pytest.mark.parametrize("cell", ["lif", "alif"])
def test_default_spiking_networks_fire_on_every_builtin_task(cell):
    """3.5-5 % of the steps measured (LIF), every unit firing; the band asserted
    is 1-20 %, and at least 90 % of the units fire."""
    for name in sorted(TASKS):
        x = inputs(name)
        net = rflo.init_network(x.shape[-1], 50, 1, seed=0, cell=cell)  # the default
        rate = firing_rate(net, x)
        assert 0.01 < rate < 0.2, (cell, name, rate)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_firing(net, x)  # no warning in the band
        silent = rflo.init_network(x.shape[-1], 50, 1, seed=0, cell=get_cell(cell, drive=0.0))
        assert firing_rate(silent, x) < 1e-3, (cell, name)


def test_alif_fires_on_the_periodic_task_which_has_no_input():
    x = inputs("periodic")
    assert np.all(x == 0)
    net = rflo.init_network(1, 50, 1, seed=0, cell="alif")
    assert net.cell.drive == FIRING_DRIVE  # a cell built by name fires by default
    rate = firing_rate(net, x)
    assert 0.01 < rate < 0.2, rate


def test_check_firing_warns_and_names_the_fix():
    x = inputs("periodic")
    with pytest.warns(RuntimeWarning, match=r"silent.*drive=1.2"):
        check_firing(rflo.init_network(1, 20, 1, seed=0, cell=LIF()), x)
    hot = rflo.init_network(1, 20, 1, seed=0, cell=get_cell("lif", drive=50.0))
    with pytest.warns(RuntimeWarning, match="saturated"):
        check_firing(hot, x)


def test_drive_zero_keeps_the_cells_settings_and_refuses_nonsense():
    assert LIF().settings() == {"thr": 1.0, "gamma": 0.3}
    assert LIF(drive=1.2).settings()["drive"] == 1.2
    with pytest.raises(ValueError, match="drive"):
        LIF(drive=float("nan"))


def test_a_file_keeps_its_cells_drive(tmp_path):
    """Bellec et al.'s cell (drive 0, not written to the file) reads back with
    drive 0, not the by-name default; a driven cell keeps its drive."""
    for drive in (0.0, FIRING_DRIVE):
        net = rflo.init_network(1, 6, 1, seed=0, cell=get_cell("lif", drive=drive))
        rflo.save_network(tmp_path / f"n{drive}.npz", net)
        assert rflo.load_network(tmp_path / f"n{drive}.npz").cell.drive == drive


@pytest.mark.slow  # 5 s; check_firing's warning and its fix stay in the default run (test_check_firing_warns_and_names_the_fix)
def test_training_warns_when_the_network_is_silent_and_names_the_fix():
    """``train`` and ``train_ensemble`` check a spiking network's firing before
    and after training (issue 24); a network that fires says nothing."""
    from rflo.ensemble import train_ensemble

    task = rflo.periodic_task(period=20)
    silent = rflo.init_network(1, 20, 1, seed=0, cell=LIF())
    with pytest.warns(RuntimeWarning) as said:
        rflo.train(silent, task, "eprop", trials=2)
    messages = [str(w.message) for w in said]
    assert any(re.search(r"before training is silent.*drive=1.2", m) for m in messages)
    assert any("after training is silent" in m for m in messages)
    assert all(w.filename == __file__ for w in said)  # points at the caller's line
    # two networks of one cell on a task with input: the second is driven, the first not
    driven = rflo.Task(x=np.ones((30, 1)), y=np.zeros((30, 1)))
    quiet = rflo.init_network(1, 20, 1, seed=0, cell=LIF())
    loud = quiet._replace(w_in=np.full_like(quiet.w_in, 3.0))
    with pytest.warns(RuntimeWarning) as said:
        train_ensemble([quiet._replace(w_in=0 * quiet.w_in), loud], driven, "eprop", trials=2)
    messages = [str(w.message) for w in said]
    assert any(re.search(r"network 0 of the ensemble before.*1 of 2", m) for m in messages)
    assert any("network 0 of the ensemble after" in m for m in messages)
    assert all(w.filename == __file__ for w in said)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rflo.train(rflo.init_network(1, 20, 1, seed=0, cell="alif"), task, "eprop", trials=2)
