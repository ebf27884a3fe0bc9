"""Murray (2019) Figure 4 (a loop that chains syllables): the measurement and
the verdicts, the command line, and (slow) the quick run end to end."""

import json

import numpy as np
import pytest

from rflo.paper import figure4


def test_target_is_a_square_of_reaches_and_holds():
    cfg = figure4.QUICK
    target = figure4._target(cfg)
    assert target.shape == (1600, 2)
    path = figure4._path(target, cfg)
    corners = path[[399, 799, 1199, 1599]]
    np.testing.assert_allclose(corners, [[1, 0], [1, 1], [0, 1], [0, 0]], atol=0.02)
    np.testing.assert_allclose(target[200:400], 0, atol=1e-6)  # the first hold


def test_summary_scores_cursor_paths_and_checks_the_claim():
    cfg = figure4.Config(mode="t", n_networks=3)
    target = figure4._target(cfg)
    r = {
        "config": cfg,
        "seeds": [0, 1, 2],
        "seconds": 1.0,
        "rewards": np.ones((3, cfg.selector_trials, 3)),
        "choices": np.zeros((3, 4)),
        "syllable_loss": np.ones((3, 10)),
        "loop_y": np.stack([target] * 3),  # perfect
        "baselines": {
            "rflo": np.stack([target * 0.5] * 3),  # half speed: off the path
            "bptt": np.stack([target] * 3),
        },
    }
    s = figure4.summarize(r)
    loop = s["outputs"]["loop (RFLO syllables + selector)"]["position_error"]
    assert loop["median"] == 0
    assert s["outputs"]["no loop, rflo"]["position_error"]["median"] > 0.2
    assert s["claims"]["loop_beats_rflo_without_loop"]["verdict"].startswith("reproduced")
    assert s["claims"]["loop_beats_bptt_without_loop"]["verdict"].startswith("not reproduced")


def test_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "x").write_text("mine")
    assert figure4.main(["--out", str(tmp_path), "--quick"]) == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_chains_the_syllables(tmp_path):
    # the one-hot variant of the selector's rule chains the syllables; the paper's
    # rule (z before the winner-take-all, the default) does not here (docs/paper.md)
    assert figure4.main(["--quick", "--update", "choice", "--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"figure4.png", "paths.csv", "loss_curves.csv", "summary.json"} <= names
    s = json.loads((tmp_path / "summary.json").read_text())
    # the selector learns the order: every network plays the target sequence
    assert s["played_sequences"] == [list(figure4.QUICK.sequence)] * figure4.QUICK.n_networks
    assert s["selector_reward_last_10pct"]["median"] > 0.8
    assert set(s["claims"]) == {"loop_beats_rflo_without_loop", "loop_beats_bptt_without_loop"}
    for claim in s["claims"].values():
        assert isinstance(claim["ranges_overlap"], bool) and claim["verdict"]
