"""A sweep's grid is counted before it is expanded: a spec of more points than
``max_points`` is refused at once, with the count, the limit and the fix."""

import time

import pytest

from rflo.sweep.spec import MAX_POINTS, grid_size, read_spec, spec_from_dict, spec_toml


def test_a_ten_million_point_spec_is_refused_in_seconds():
    data = {"trials": 10, "grid": {"seed": range(10**7)}}  # a list from TOML: the same count
    t0 = time.perf_counter()
    with pytest.raises(
        ValueError,
        match=r"the grid has 10,000,000 points, more than "
        r"max_points = 1,000,000 .*set max_points higher",
    ):
        spec_from_dict(data)
    assert time.perf_counter() - t0 < 5


def test_the_size_is_the_product_over_every_list_and_grids_add_up():
    assert (
        grid_size(
            {
                "rule": ["rflo", "bptt"],
                "lr": {"tau": [0.0, 0.1, 0.2]},
                "seed": range(5),
                "units": 8,
                "set": {"period": [40, 80], "intervals": [[10, 20]]},
            }
        )
        == 2 * 3 * 5 * 2
    )
    grids = [{"rule": "bptt", "seed": list(range(600))}, {"rule": "rflo", "seed": list(range(500))}]
    with pytest.raises(ValueError, match="1,100 points, more than max_points = 1,000"):
        spec_from_dict({"max_points": 1000, "grid": grids})
    assert MAX_POINTS == 10**6


def test_max_points_is_settable_and_round_trips(tmp_path):
    data = {"trials": 5, "max_points": 4, "grid": {"lr": [0.01, 0.1], "seed": [0, 1]}}
    spec = spec_from_dict(data)
    assert spec.max_points == 4 and len(spec.points()) == 4
    path = tmp_path / "s.toml"
    path.write_text(spec_toml(spec))
    assert read_spec(path).max_points == 4
    assert "max_points" not in spec_from_dict({"grid": {"seed": [0]}}).as_dict()  # default
    with pytest.raises(ValueError, match="'max_points' must be an integer >= 1"):
        spec_from_dict({**data, "max_points": 0})
    with pytest.raises(ValueError, match="4 points, more than max_points = 3"):
        spec_from_dict({**data, "max_points": 3})


def test_the_command_line_refuses_a_huge_grid_before_planning(tmp_path, capsys):
    from rflo.sweep.cli import main

    spec = tmp_path / "huge.toml"  # 10^4 seeds x 10^3 rates: 10^7 points from a small file
    spec.write_text(
        "trials = 10\n[grid]\nseed = ["
        + ", ".join(map(str, range(10**4)))
        + "]\nlr = ["
        + ", ".join(f"{i / 1e4:g}" for i in range(1, 1001))
        + "]\n"
    )
    t0 = time.perf_counter()
    assert main(["run", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert time.perf_counter() - t0 < 5
    assert "10,000,000 points, more than max_points" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
