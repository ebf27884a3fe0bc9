"""The selector loop of Murray (2019) Figure 4 (rflo.selector): its
reward-modulated Hebbian rule against its equation, the winner-take-all, and a
loop that learns a sequence of syllables from a fixed network."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rflo
from rflo import selector


def test_hebbian_update_is_its_equation():
    rng = np.random.default_rng(0)
    w, h = rng.normal(size=(4, 7)), rng.normal(size=7)
    z = np.eye(4)[2]
    for reward in (0.0, 1.0):
        got = np.asarray(
            selector.hebbian_update(jnp.asarray(w), jnp.asarray(z), jnp.asarray(h), reward, 0.3)
        )
        want = w.copy()
        for i in range(4):  # w_ij + eta R z_i h_j, written out
            for j in range(7):
                want[i, j] += 0.3 * reward * z[i] * h[j]
        np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(selector.hebbian_update(w, z, h, 0.0, 0.3), w, rtol=1e-6)


@pytest.mark.slow  # 4 s; the selector's update stays in the default run (the paper's z test)
def test_winner_take_all_and_exploration():
    w = jnp.asarray(np.eye(3, 5))
    h = jnp.asarray([0.1, 0.9, 0.3, 0.0, 0.0])
    choice, z, drive = selector.select(w, h, jax.random.PRNGKey(0), 0.0)
    assert int(choice) == 1 and np.array_equal(np.asarray(z), [0, 1, 0])
    np.testing.assert_allclose(drive, [0.1, 0.9, 0.3])
    picks = [int(selector.select(w, h, jax.random.PRNGKey(k), 1.0)[0]) for k in range(300)]
    assert set(picks) == {0, 1, 2} and 60 < picks.count(0) < 140  # uniform when exploring
    rows = np.linalg.norm(
        np.asarray(selector.normalize_rows(jnp.asarray([[3.0, 4.0], [0, 0]]))), axis=1
    )
    np.testing.assert_allclose(rows, [1, 0])


@pytest.mark.slow  # moved to the slow step to keep the default run under its CPU budget
def test_a_loop_learns_the_order_of_syllables_from_a_fixed_network():
    """Syllables whose end states differ (strong tonic inputs): the selector
    learns 2 -> 0 -> 1 from rewards alone, then plays it greedily."""
    rng = np.random.default_rng(1)
    n = 20
    net = rflo.network_from_arrays(
        w_in=3 * rng.normal(size=(n, 3)),
        w_rec=0.5 * rng.normal(size=(n, n)) / np.sqrt(n),
        w_out=rng.normal(size=(2, n)) / np.sqrt(n),
        b=rng.normal(size=(n, 2)),
        h0=np.zeros(n),
        tau=2.0,
        dtype="float32",
    )
    jnet = jax.tree_util.tree_map(jnp.asarray, net)
    seq = jnp.asarray([2, 0, 1])
    w0 = selector.normalize_rows(jax.random.normal(jax.random.PRNGKey(3), (3, n)))
    before = selector.run_loop(jnet, w0, seq, 10)[1]
    # the one-hot variant of the rule (update="choice") with unit rows learns this order
    w, rewards = selector.train_selector(
        jnet, w0, seq, 10, 300, 0.1, 0.2, jax.random.PRNGKey(4), update="choice"
    )
    after = selector.run_loop(jnet, w, seq, 10)[1]
    assert after.choices.tolist() == [2, 0, 1] and before.choices.tolist() != [2, 0, 1]
    assert np.asarray(after.rewards).tolist() == [1.0, 1.0]
    # with 0.2 exploration the best is 0.8 + 0.2 / 3 of the transitions rewarded
    assert np.asarray(rewards)[-100:].mean() > 0.75
    assert after.y.shape == (30, 2)


def test_the_papers_update_uses_z_before_the_winner_take_all():
    """Delta W^s_ij = eta R z_i h_j with z_i = sum_j W^s_ij h_j (the paper's),
    not the one-hot of the choice; and bounds keep the cursor in its box."""
    rng = np.random.default_rng(2)
    n = 6
    net = rflo.network_from_arrays(
        w_in=rng.normal(size=(n, 4)),
        w_rec=0.5 * rng.normal(size=(n, n)) / np.sqrt(n),
        w_out=rng.normal(size=(2, n)),
        b=rng.normal(size=(n, 2)),
        h0=np.zeros(n),
        tau=2.0,
        dtype="float32",
    )
    jnet = jax.tree_util.tree_map(jnp.asarray, net)
    w0 = jnp.asarray(rng.normal(size=(4, n)), jnp.float32)
    state, _ = selector.run_syllable(jnet, jnet.cell.initial_state(jnet), 1, 5)
    h = np.asarray(jnet.cell.output(jnet, state))
    drive = np.asarray(w0) @ h
    first = int(np.argmax(drive))
    for update, z in (("drive", drive), ("choice", np.eye(4)[first])):
        w, res = selector.run_loop(
            jnet, w0, jnp.asarray([1, first]), 5, eta=0.5, normalize=False, update=update
        )
        assert np.asarray(res.rewards).tolist() == [1.0]
        np.testing.assert_allclose(w, np.asarray(w0) + 0.5 * np.outer(z, h), rtol=1e-5, atol=1e-6)
    # from (1, 0) after reach 0, a box of 1.5 forbids another step right (choice 0)
    bias = jnp.zeros((4, n)).at[0].set(jnp.asarray(h) * 10)
    _, res = selector.run_loop(jnet, bias, jnp.asarray([0, 0]), 5, bounds=1.5)
    assert int(res.choices[1]) != 0
