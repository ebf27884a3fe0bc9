"""The .npz network format."""


import numpy as np
import pytest

import rflo


def test_round_trip(tmp_path):
    net = rflo.init_network(2, 10, 3, seed=4, dale=0.8, connectivity=0.5, tau=5.0)
    path = rflo.save_network(tmp_path / "net.npz", net)
    back = rflo.load_network(path)
    for k, v in net._asdict().items():
        np.testing.assert_array_equal(getattr(back, k), v)
    with np.load(path, allow_pickle=False) as data:  # readable by plain numpy
        assert {"w_in", "w_rec", "w_out", "b", "h0", "tau"} <= set(data.files)
        assert float(data["tau"]) == 5.0


def test_suffix_added(tmp_path):
    path = rflo.save_network(tmp_path / "net", rflo.init_network(1, 4, 1))
    assert path.name == "net.npz" and path.exists()


def test_no_temporary_files_left(tmp_path):
    rflo.save_network(tmp_path / "a.npz", rflo.init_network(1, 4, 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_malformed_files(tmp_path):
    good = {k: np.asarray(v) for k, v in rflo.init_network(1, 4, 1)._asdict().items() if v is not None and k != "cell"}
    with pytest.raises(ValueError, match="no network file"):
        rflo.load_network(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        rflo.load_network(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match=r"missing arrays \['b'\]"):
        rflo.load_network(_write(tmp_path / "nob.npz", **{k: v for k, v in good.items() if k != "b"}))
    with pytest.raises(ValueError, match=r"w_out must have shape"):
        rflo.load_network(_write(tmp_path / "shape.npz", **{**good, "w_out": np.zeros((1, 5))}))
    nan = good["w_rec"].copy()
    nan[1, 2] = np.nan
    with pytest.raises(ValueError, match="w_rec contains NaN"):
        rflo.load_network(_write(tmp_path / "nan.npz", **{**good, "w_rec": nan}))
    with pytest.raises(ValueError, match="not a plain-data"):
        rflo.load_network(_write(tmp_path / "pickle.npz", **{**good, "b": np.array([{"x": 1}], dtype=object)}))
    with pytest.raises(ValueError, match="unexpected arrays"):
        rflo.load_network(_write(tmp_path / "extra.npz", **good, evil=np.zeros(2)))
    # a truncated file
    full = _write(tmp_path / "full.npz", **good)
    data = full.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable .npz"):
        rflo.load_network(tmp_path / "trunc.npz")
