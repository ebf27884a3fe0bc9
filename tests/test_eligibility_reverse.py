"""The offline local-trace rules (RFLO, local, e-prop) by a backward pass
(:func:`rflo.rules.traces.eligibility_trial`) equal the sum over the trial of
the forward traces the online rules keep (:func:`local_advance`), on every
cell that has the reverse form, with every per-unit parameter trained; a cell
without ``step_with`` keeps the forward route."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rflo
from rflo.cells import ALIF, LIF
from rflo.losses import CROSS_ENTROPY, SQUARED_ERROR
from rflo.network import trainable_names
from rflo.rules import Rule, Setup, get_rule, traces

N_IN, N_REC, N_OUT, T = 3, 6, 2, 16


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _network(cell, seed=0):
    """A float64 network with weights that make spiking units fire and cross
    their surrogate's support, and every trainable parameter moved."""
    rng = np.random.default_rng(seed)
    net = rflo.init_network(N_IN, N_REC, N_OUT, cell=cell, dtype="float64", tau=4.0, seed=1)
    if net.extra and "w_in" not in net.extra:  # a cell that owns its synapses
        extra = {k: v + 0.2 * rng.normal(size=v.shape) for k, v in net.extra.items()}
        return net._replace(extra=extra, w_out=rng.normal(size=net.w_out.shape))
    net = net._replace(
        w_in=rng.normal(size=(N_REC, N_IN)) * 1.5,
        w_rec=rng.normal(size=(N_REC, N_REC)),
        w_out=rng.normal(size=(N_OUT, N_REC)),
        h0=rng.uniform(0.0, 1.5, N_REC),
    )
    if net.cell.name == "leaky_tau":
        net = net._replace(
            tau=rng.uniform(1.5, 6.0, N_REC), extra={"bias": rng.normal(size=N_REC) * 0.3}
        )
    return net


CELLS = {
    "leaky_tanh": "leaky_tanh",
    "leaky_tau": "leaky_tau",
    "lif": LIF(),
    "alif_bellec": ALIF(beta=0.5, tau_a=10.0, n_refractory=2, n_regular=2),
    "gru": "gru",
    "lstm": "lstm",
    "lru": "lru",
}


def _both(cell, loss=SQUARED_ERROR, rule="eprop_random"):
    net = _network(CELLS[cell])
    rng = np.random.default_rng(7)
    x = rng.normal(size=(T, N_IN)) + 1.0
    if loss is CROSS_ENTROPY:
        y = np.eye(N_OUT)[rng.integers(0, N_OUT, T)]
    else:
        y = rng.normal(size=(T, N_OUT))
    m = (np.arange(T) % 4 != 1).astype(float)
    rule = get_rule(rule)
    with jax.enable_x64(True):
        net = jax.tree_util.tree_map(jnp.asarray, net)
        names = tuple(n for n in trainable_names(net) if n in traces.unit_axes(net) or n == "w_out")
        setup = Setup(loss=loss, params=names, route="generic")
        rule.check(net, setup)
        args = (jnp.asarray(x), jnp.asarray(y), jnp.asarray(m), jax.random.PRNGKey(0), setup)

        @jax.jit
        def run(net):
            reverse = traces.eligibility_trial(net, *args[:3], setup, rule.feedback)
            forward = Rule.trial(rule, net, *args)
            offline = rule.trial(net, *args)
            return reverse, forward, offline

        (rev, y_rev), (fwd, y_fwd), (off, _) = run(net)
    return net, names, rev, fwd, off, (y_rev, y_fwd)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_the_backward_pass_is_the_forward_traces_summed(cell):
    net, names, rev, fwd, off, (y_rev, y_fwd) = _both(cell)
    assert traces.has_reverse_form(net)
    assert set(rev) == set(fwd) == set(names)
    assert len(names) >= 3, names  # more than the weights: per-unit vectors too
    for k in names:
        assert float(np.max(np.abs(np.asarray(fwd[k])))) > 1e-8, k  # not a trivial zero
        assert rel_err(rev[k], fwd[k]) < 1e-10, (cell, k)
        assert rel_err(off[k], rev[k]) < 1e-12, (cell, k)  # the offline rule takes it
    np.testing.assert_allclose(np.asarray(y_rev), np.asarray(y_fwd), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rule", ["rflo", "local", "eprop"])
def test_every_local_trace_rule_and_cross_entropy(rule):
    _, names, rev, fwd, _, _ = _both("alif_bellec", CROSS_ENTROPY, rule)
    for k in names:
        assert rel_err(rev[k], fwd[k]) < 1e-10, (rule, k)


def test_a_spiking_network_where_the_recurrent_path_matters_is_not_bptt():
    """The backward pass holds the recurrent input fixed: on the same trial the
    exact gradient differs (so the test above is not comparing BPTT with BPTT)."""
    net, names, rev, _, _, _ = _both("lif", rule="eprop")
    with jax.enable_x64(True):
        rng = np.random.default_rng(7)
        x = rng.normal(size=(T, N_IN)) + 1.0
        y = rng.normal(size=(T, N_OUT))
        m = (np.arange(T) % 4 != 1).astype(float)
        setup = Setup(params=names, route="generic")
        exact, _ = get_rule("bptt").trial(
            net, jnp.asarray(x), jnp.asarray(y), jnp.asarray(m), jax.random.PRNGKey(0), setup
        )
    assert rel_err(rev["w_rec"], exact["w_rec"]) > 1e-3


def test_a_cell_without_step_with_keeps_the_forward_route():
    def init(key, n_in, n_rec):
        k1, k2 = jax.random.split(key)
        return {
            "w_in": jax.random.normal(k1, (n_rec, n_in)),
            "w_rec": jax.random.normal(k2, (n_rec, n_rec)) / np.sqrt(n_rec),
        }

    def step(p, h, x):
        return 0.7 * h + 0.3 * jnp.tanh(p["w_rec"] @ h + p["w_in"] @ x)

    cell = rflo.cells.from_function(
        init, step, unit_axes={"w_in": 0, "w_rec": 0}, name="test_plain_rnn"
    )
    net = rflo.init_network(N_IN, N_REC, N_OUT, cell=cell, seed=0)
    assert not traces.has_reverse_form(net)


def test_spiking_voltage_traces_are_kept_as_one_row():
    """LIF and ALIF keep the traces of ``w_rec``/``w_in`` along ``v`` as one row
    (1, n_pre), the ALIF adaptation's as a full matrix, and none along the
    refractory counter (no step reads it: :func:`traces.carried`); SnAp-1 (the
    unit's own synapse) keeps full ones.  The tests above check those rows
    against the backward pass."""
    setup = Setup(params=("w_in", "w_rec", "w_out"), route="generic")
    lif, alif = _network(CELLS["lif"]), _network(CELLS["alif_bellec"])
    assert traces.row_leaves(lif) == {0} and traces.row_leaves(alif) == {0, 2}
    tr = traces.local_init(alif, setup)
    assert traces.carried(alif) == (True, True, False)
    assert [t.shape for t in tr["w_rec"]] == [(1, N_REC), (N_REC, N_REC), (0,)]
    assert [t.shape for t in tr["w_in"]] == [(1, N_IN), (N_REC, N_IN), (0,)]
    snap = traces.local_init(lif, setup, diagonal=True)
    assert [t.shape for t in snap["w_rec"]] == [(N_REC, N_REC)]
    assert traces.row_leaves(_network("leaky_tau")) == frozenset()
