"""The gradient-quality tool (rflo.gradients) and optax optimisers."""

import math

import numpy as np
import optax
import pytest
from conftest import random_network, random_task

import rflo
from rflo.gradients import gradient_quality, stepwise_quality
from rflo.gradients_cli import main


def test_exact_rules_score_one_and_approximations_less():
    net, task = random_network(n_rec=6), random_task(steps=25)
    q = gradient_quality(net, task, ["bptt", "rtrl", "snap2", "rflo", "eprop"])
    for name in ("bptt", "rtrl", "snap2"):
        for m in ("w_in", "w_rec", "w_out", "rec+in"):
            assert abs(q[name]["cos"][m] - 1) < 1e-10 and abs(q[name]["ratio"][m] - 1) < 1e-10
    assert q["rflo"]["cos"]["rec+in"] < 0.99 and q["eprop"]["cos"]["rec+in"] < 0.99
    assert abs(q["rflo"]["cos"]["w_out"] - 1) < 1e-10  # every rule's w_out update is exact


def test_stepwise_quality_along_the_trial():
    """RTRL and SnAp-2 (dense) are exact at every step; at step 1 only the
    immediate influence exists, so the local-trace rules are exact there too."""
    net = random_network(n_rec=6)
    task = random_task(steps=25, mask=(np.arange(25) != 5) * 1.0)
    s = stepwise_quality(net, task, ["rtrl", "snap2", "eprop", "snap1", "kf_rtrl", "bptt", "tbptt"])
    assert "bptt" not in s and "tbptt" not in s  # no comparable per-step form
    assert np.isnan(s["rtrl"]["cos"][4])  # step 5 does not count
    for name in ("rtrl", "snap2"):
        c = s[name]["cos"][np.isfinite(s[name]["cos"])]
        assert len(c) == 23 and np.allclose(c, 1, atol=1e-10)
    for name in ("eprop", "snap1", "kf_rtrl"):
        assert abs(s[name]["cos"][0] - 1) < 1e-10 and abs(s[name]["ratio"][0] - 1) < 1e-10
        assert np.nanmin(s[name]["cos"]) < 0.99  # and approximate later on


def test_main_rejects_bad_arguments(capsys):
    assert main(["--rules", "rflo,nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["--trials", "0"]) == 2
    assert main(["--lr", "1"]) == 2  # argparse: needs three numbers
    assert main(["--online", "--train-rule", "bptt", "--rules", "rflo"]) == 2


@pytest.mark.slow
def test_main_writes_table_csv_and_figure(tmp_path, capsys):
    fig, table = tmp_path / "q.png", tmp_path / "q.csv"
    rc = main(
        [
            "--rules",
            "rflo",
            "snap2",
            "--units",
            "5",
            "--period",
            "20",
            "--trials",
            "20",
            "--every",
            "10",
            "--figure",
            str(fig),
            "--csv",
            str(table),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "snap2" in out and "rflo" in out
    assert fig.stat().st_size > 1000 and fig.read_bytes()[:4] == b"\x89PNG"
    rows = table.read_text().splitlines()
    assert rows[0] == "trials,rule,cos_rec_in,norm_ratio_rec_in"
    assert len(rows) == 1 + 2 * 3  # checkpoints 0, 10, 20 for two rules
    snap2 = [r.split(",") for r in rows[1:] if r.split(",")[1] == "snap2"]
    assert all(math.isclose(float(r[2]), 1.0, abs_tol=1e-6) for r in snap2)


# ----------------------------------------------------------------- optimisers


def test_adam_trains_the_periodic_task():
    net = rflo.init_network(1, 12, 1, seed=3)
    task = rflo.periodic_task(period=40)
    loss = rflo.train(net, task, "rflo", trials=200, optimizer=optax.adam(1e-2)).loss
    assert loss[-10:].mean() < 0.2 * loss[:10].mean()


@pytest.mark.slow  # 3 s; optax optimisers stay in the default run (the test above, test_spec_networks' rates by name)
def test_freezing_a_matrix_with_optax():
    """optax.multi_transform (or optax.masked) with labels by parameter name
    freezes single matrices, as documented in docs/optimizers.md; so does
    leaving a matrix out of lr."""
    net, task = random_network(), random_task(steps=30)
    frozen_in = optax.multi_transform(
        {"adam": optax.adam(1e-2), "frozen": optax.set_to_zero()},
        {"w_in": "frozen", "w_rec": "adam", "w_out": "adam"},
    )
    res = rflo.train(net, task, "rtrl", trials=5, optimizer=frozen_in, online=True)
    np.testing.assert_array_equal(res.network.w_in, net.w_in)
    assert np.max(np.abs(res.network.w_rec - net.w_rec)) > 1e-3
    # by name: only the parameters lr names are trained (here with Adam)
    res = rflo.train(net, task, "bptt", trials=5, lr={"w_rec": 0.0}, optimizer=optax.adam(1e-2))
    np.testing.assert_array_equal(res.network.w_in, net.w_in)
    np.testing.assert_array_equal(res.network.w_out, net.w_out)
    assert np.max(np.abs(res.network.w_rec - net.w_rec)) > 1e-3
    # optax.masked: Adam on w_rec only; the unmasked matrices get the raw gradient,
    # so chain a zeroing mask for them
    only_rec = optax.chain(
        optax.masked(optax.adam(1e-2), {"w_in": False, "w_rec": True, "w_out": False}),
        optax.masked(optax.set_to_zero(), {"w_in": True, "w_rec": False, "w_out": True}),
    )
    res = rflo.train(net, task, "bptt", trials=5, optimizer=only_rec)
    np.testing.assert_array_equal(res.network.w_in, net.w_in)
    np.testing.assert_array_equal(res.network.w_out, net.w_out)
    assert np.max(np.abs(res.network.w_rec - net.w_rec)) > 1e-3
    # by name: only the parameters lr names are trained (here with Adam)
    res = rflo.train(net, task, "bptt", trials=5, lr={"w_rec": 0.0}, optimizer=optax.adam(1e-2))
    np.testing.assert_array_equal(res.network.w_in, net.w_in)
    np.testing.assert_array_equal(res.network.w_out, net.w_out)
    assert np.max(np.abs(res.network.w_rec - net.w_rec)) > 1e-3
