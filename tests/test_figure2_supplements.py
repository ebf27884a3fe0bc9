"""Figure 2's supplements 2 and 3: the command line (fast) and the quick run
end to end against the paper's claims (slow)."""

import csv
import json

import numpy as np
import pytest

from rflo.paper import figure2_supplements as supp


def test_refuses_a_non_empty_folder_and_bad_arguments(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert supp.main(["--out", str(tmp_path), "--quick"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert supp.main(["--out", str(tmp_path / "x"), "--seed", "-1"]) == 2
    assert not (tmp_path / "x").exists()


def test_gain_network_follows_the_caption():
    net = supp.gain_network(400, seed=3, gain=2.0)
    assert np.std(np.asarray(net.w_rec)) == pytest.approx(2.0 / np.sqrt(400), rel=0.02)
    assert np.max(np.abs(np.asarray(net.w_out))) <= 2.0 / np.sqrt(400)
    assert np.max(np.abs(np.asarray(net.w_out))) > 0.9 * 2.0 / np.sqrt(400)


@pytest.mark.slow
def test_quick_run_shows_the_papers_claims(tmp_path):
    out = tmp_path / "s"
    assert supp.main(["--out", str(out), "--quick"]) == 0
    for name in ("supplement2.png", "supplement3.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    final = {}
    with open(out / "final_loss.csv") as fh:
        for row in csv.DictReader(fh):
            final.setdefault((row["panel"], row["condition"], row["value"]), []).append(
                float(row["final_loss"])
            )
    med = {k: float(np.median(v)) for k, v in final.items()}
    s2 = {c: med["supplement2", c, ""] for c in supp.CONDITIONS}
    # training both beats either alone; the frozen readout learns nothing much
    assert s2["both"] < s2["readout_only"] and s2["both"] < s2["recurrent_only"]
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["supplement2"]["final_loss"]["recurrent_only"]["median"]
        > 0.5 * summary["supplement2"]["untrained"]["median"]
    )
    # the largest network learns better than the smallest
    sizes = supp.QUICK.sizes
    assert med["supplement3", "N", str(sizes[-1])] < med["supplement3", "N", str(sizes[0])]
    assert set(summary["claims"]) == {
        "both_beat_readout_only",
        "both_beat_recurrent_only",
        "recurrent_only_fails",
        "larger_N_learns_better",
        "larger_g_learns_better",
    }
