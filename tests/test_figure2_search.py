"""Figure 2's rate search as sweeps (rflo.paper.figure2_search) and the named
network of the paper's Figure 2 (murray2019)."""

from pathlib import Path

import numpy as np
import pytest

from rflo.paper import figure2, figure2_search, figure2_train
from rflo.paper.common import paper_network

ROOT = Path(__file__).resolve().parent.parent


def test_named_murray_networks_are_the_methods_draw():
    from rflo.networks import build_network
    from rflo.session import build
    from rflo.spec import RunSpec

    task = build(RunSpec(period=40))[0]
    for name, dale in (("murray2019", None), ("murray2019_dale", 0.5)):
        named = build_network(name, 5, task)
        ref = paper_network(1, 30, 1, 5, 10.0, dale=dale)
        for k in ("w_in", "w_rec", "w_out", "b", "h0"):
            np.testing.assert_array_equal(
                np.asarray(getattr(named, k)), np.asarray(getattr(ref, k))
            )
        assert (named.sign is None) == (dale is None)


def test_full_search_uses_the_papers_grid_on_nine_other_networks():
    cfg = figure2.FULL
    assert (
        cfg.lr_grid == figure2_search.PAPER_GRID == (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3)
    )
    seeds = figure2_search.grid_seeds(cfg)
    assert len(seeds) >= 9 and not set(seeds) & set(range(cfg.n_networks))
    spec = figure2_search.search_spec(cfg)
    # the paper's single-rate stage: one eta for both matrices, every (rule, period)
    assert len(spec["grid"]) == len(cfg.rate_keys()) * len(cfg.lr_grid)
    assert all(g["lr_rec"] == g["lr_out"] and g["lr_in"] == 0.0 for g in spec["grid"])
    assert {g["network"] for g in spec["grid"]} == {"murray2019", "murray2019_dale"}
    with pytest.raises(ValueError, match="previous stage"):
        figure2_search.search_spec(cfg, "rec")
    with pytest.raises(ValueError, match="one of joint"):
        figure2_search.search_spec(cfg, "final")


def test_shipped_search_specs_are_the_papers_single_rate_stage():
    pytest.importorskip("pyarrow")
    from rflo.sweep.spec import read_spec, spec_from_dict

    for mode in ("full", "quick"):
        shipped = read_spec(ROOT / "examples" / "sweeps" / f"figure2_search_{mode}.toml")
        mine = spec_from_dict(figure2_search.search_spec(figure2.config(mode)))
        assert shipped.points() == mine.points()
        assert shipped.trials == mine.trials


@pytest.mark.slow
def test_the_search_through_sweeps_equals_the_in_process_search(tmp_path):
    """Same records (every grid score, every final loss, the choice) both ways,
    on the Methods' networks (the named network murray2019)."""
    pytest.importorskip("pyarrow")
    cfg = figure2.Config(
        mode="tiny",
        n_networks=2,
        trials=20,
        periods_tau=(2,),
        panel_a_periods_tau=(2,),
        panel_d_period_tau=2,
        dale_periods_tau=(2,),
        ablation_networks=2,
        grid_networks=2,
        lr_grid=(0.03, 1.0, 30.0),
    )
    direct = [figure2_train.grid_search(cfg, r, p) for r, p in cfg.rate_keys()]
    swept = figure2_search.search(cfg, tmp_path / "search", devices=1)
    chosen = set()
    for a, b in zip(direct, swept):
        a.pop("seconds"), b.pop("seconds")
        assert a == b
        chosen.add((a["chosen"]["lr_rec"], a["chosen"]["lr_out"]))
    assert any(d > 0 for g in direct for d in g["joint"]["diverged"])  # 30 diverges: scored out
    assert len(chosen) > 1  # the choice is not the same everywhere
