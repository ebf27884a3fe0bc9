"""A diverged run keeps its best network (the lowest loss seen, with its
trial) beside the last one within the loss limit: in train()'s and
train_ensemble()'s results, in checkpoints, and as RULE.best.npz on the
command line, whose message names both."""

import re
import warnings

import numpy as np
import pytest

import rflo

# a small version of `rflo train --units 300 --lr 0 5 5 --trials 100`: it
# learns for a few trials, then diverges (at trial 15)
UNITS, PERIOD, LR, TRIALS = 20, 30, 5.0, 60


def _diverged_run():
    task = rflo.periodic_task(period=PERIOD)
    net = rflo.init_network(1, UNITS, 1, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = rflo.train(net, task, "rflo", trials=TRIALS, lr=(0, LR, LR))
    return net, task, res


def test_train_returns_the_network_of_the_lowest_loss_seen():
    net, task, res = _diverged_run()
    assert res.diverged is not None and len(res.loss) < TRIALS
    # the best loss is the lowest seen, on the trial after the best network's
    assert res.best_loss == pytest.approx(float(np.nanmin(res.loss)), rel=1e-6)
    assert res.loss[res.best_trials] == pytest.approx(res.best_loss, rel=1e-6)
    assert 0 < res.best_trials < res.trials_done
    untrained = rflo.evaluate(net, task).loss
    best = rflo.evaluate(res.best_network, task).loss
    kept = rflo.evaluate(res.network, task).loss
    assert best == pytest.approx(res.best_loss, rel=1e-4)  # its evaluation is that loss
    assert best < untrained / 2 and best < kept
    assert f"on trial {res.best_trials + 1}" in res.diverged and "best_network" in res.diverged
    # the guard hands it on, and a guard without one is refused only when wrong
    assert res.guard.best_at == res.best_trials
    with pytest.raises(ValueError, match="best_at"):
        rflo.train(
            res.network,
            task,
            "rflo",
            trials=1,
            lr=(0, 0.01, 0.01),
            start_trial=res.trials_done,
            guard=res.guard._replace(best_at=res.trials_done),
        )


@pytest.mark.slow
def test_the_best_network_is_that_of_one_long_session_and_of_an_ensemble():
    """Continued sessions (train's guard, checkpoints) and ensembles keep the
    same best network as one session does."""
    from rflo.ensemble import init_ensemble, train_ensemble

    net, task, whole = _diverged_run()
    common = dict(lr=(0, LR, LR), chunk=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a = rflo.train(net, task, "rflo", trials=8, **common)
        b = rflo.train(
            a.network,
            task,
            "rflo",
            trials=TRIALS - 8,
            start_trial=8,
            opt_state=a.opt_state,
            guard=a.guard,
            **common,
        )
        nets = init_ensemble(1, UNITS, 1, seeds=[0, 1])
        ens = train_ensemble(
            nets, task, "rflo", trials=TRIALS, lr=np.array([[0, LR, LR], [0, 0.3, 0.3]])
        )
    assert b.best_trials == whole.best_trials and b.best_loss == whole.best_loss
    np.testing.assert_array_equal(b.best_network.w_rec, whole.best_network.w_rec)
    assert ens.diverged_at[0] > 0 and ens.diverged_at[1] == 0
    for k in range(2):
        member = ens.network(k)._replace(
            **{f: getattr(ens.best_networks, f)[k] for f in ("w_in", "w_rec", "w_out", "b", "h0")}
        )
        assert ens.best_loss[k] == pytest.approx(np.nanmin(ens.loss[k]), rel=1e-6)
        assert rflo.evaluate(member, task).loss == pytest.approx(ens.best_loss[k], rel=1e-4)
    assert ens.best_trials[0] == whole.best_trials


@pytest.mark.slow
def test_checkpoints_keep_the_best_network_and_read_older_ones(tmp_path):
    from rflo import checkpoint

    net, task, res = _diverged_run()
    g = res.guard
    prog = checkpoint.Progress(
        res.network,
        res.loss[:-1],
        res.alignment[:-1],
        1.0,
        g.best_loss,
        g.previous,
        best=g.best_network,
        best_network_loss=g.best_network_loss,
        best_at=g.best_at,
    )
    checkpoint.save_progress(tmp_path, "rflo", prog, "id")
    back = checkpoint.load_progress(tmp_path, "rflo", "id")
    assert back.best_at == g.best_at and back.best_network_loss == g.best_network_loss
    np.testing.assert_array_equal(back.best.w_rec, g.best_network.w_rec)
    # a checkpoint of an rflo before best networks: it loads, without one
    checkpoint.save_progress(tmp_path, "old", prog._replace(best=None), "id")
    assert checkpoint.load_progress(tmp_path, "old", "id").best is None


def test_a_diverged_command_line_run_saves_both_networks(tmp_path):
    from test_cli import run

    out = tmp_path / "run"
    proc = run(
        "train",
        "--units",
        UNITS,
        "--period",
        PERIOD,
        "--lr",
        0,
        LR,
        LR,
        "--trials",
        TRIALS,
        "--quiet",
        "--out",
        out,
    )
    assert proc.returncode == 3, proc.stderr
    last, best = out / "rflo.npz", out / "rflo.best.npz"
    assert f"to {last} " in proc.stderr and f"to {best}." in proc.stderr
    m = re.search(
        r"best \(after trial (\d+): the lowest loss seen, (\S+) on trial (\d+)\)", proc.stderr
    )
    assert m and int(m.group(3)) == int(m.group(1)) + 1, proc.stderr
    task = rflo.periodic_task(period=PERIOD)
    losses = {
        p.name: rflo.evaluate(rflo.load_network(p), task).loss
        for p in (out / "initial.npz", last, best)
    }
    assert losses["rflo.best.npz"] == pytest.approx(float(m.group(2)), rel=1e-3)
    assert losses["rflo.best.npz"] < losses["initial.npz"] / 2
    assert losses["rflo.best.npz"] < losses["rflo.npz"]
