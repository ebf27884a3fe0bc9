"""Kill `rflo train` at random moments at least 20 times (SIGKILL, SIGTERM,
SIGINT; many during checkpoint writes), resume each time, and check that
every run ends bit-identical to an uninterrupted one with no temporary file
left (benchmarks/fault_injection.py; its tally is in docs/long-runs.md)."""

import importlib.util
import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_killed_and_resumed_runs_equal_the_uninterrupted_one(tmp_path, capsys):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fault_injection.py"
    spec = importlib.util.spec_from_file_location("fault_injection", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    status = module.main(["--kills", "20", "--seed", "0", "--out", str(tmp_path)])
    report = json.loads(capsys.readouterr().out)
    assert status == 0, report["failures"]
    assert report["kills"] >= 20 and report["different"] == 0
    assert report["identical"] == report["runs"]
