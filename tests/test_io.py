"""The .npz network format."""

import io

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
    good = {
        k: np.asarray(v)
        for k, v in rflo.init_network(1, 4, 1)._asdict().items()
        if v is not None and k != "cell"
    }
    with pytest.raises(ValueError, match="no network file"):
        rflo.load_network(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        rflo.load_network(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match=r"missing arrays \['b'\]"):
        rflo.load_network(
            _write(tmp_path / "nob.npz", **{k: v for k, v in good.items() if k != "b"})
        )
    with pytest.raises(ValueError, match=r"w_out has shape \(1, 5\), which does not fit"):
        rflo.load_network(_write(tmp_path / "shape.npz", **{**good, "w_out": np.zeros((1, 5))}))
    nan = good["w_rec"].copy()
    nan[1, 2] = np.nan
    with pytest.raises(ValueError, match="w_rec contains NaN"):
        rflo.load_network(_write(tmp_path / "nan.npz", **{**good, "w_rec": nan}))
    with pytest.raises(ValueError, match="not plain data"):
        rflo.load_network(
            _write(tmp_path / "pickle.npz", **{**good, "b": np.array([{"x": 1}], dtype=object)})
        )
    with pytest.raises(ValueError, match="unexpected arrays"):
        rflo.load_network(_write(tmp_path / "extra.npz", **good, evil=np.zeros(2)))
    # a truncated file
    full = _write(tmp_path / "full.npz", **good)
    data = full.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable .npz"):
        rflo.load_network(tmp_path / "trunc.npz")


def _bomb(path, declared=(4, 4), real_bytes=50_000_000):
    """An .npz whose w_rec header declares ``declared`` float64 values but whose
    data (zeros, deflated to a few kB) runs on for ``real_bytes``."""
    import zipfile

    good = rflo.init_network(1, 4, 1, dtype="float64")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": declared}
    )
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for k in ("w_in", "w_out", "b", "h0", "tau"):
            buf = io.BytesIO()
            np.save(buf, np.asarray(getattr(good, k)))
            zf.writestr(k + ".npy", buf.getvalue())
        with zf.open("w_rec.npy", "w", force_zip64=True) as fh:
            fh.write(header.getvalue())
            chunk = bytes(1 << 20)
            for _ in range(real_bytes >> 20):
                fh.write(chunk)
    return path


def test_a_deflate_bomb_is_refused_after_the_declared_size(tmp_path):
    """Decompression stops one byte past what the header declares."""
    import tracemalloc

    bomb = _bomb(tmp_path / "bomb.npz")
    assert bomb.stat().st_size < 200_000  # 50 MB of data in a small file
    tracemalloc.start()
    with pytest.raises(ValueError, match="w_rec.*more data than its header declares"):
        rflo.load_network(bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5_000_000, peak  # the 50 MB were never decompressed


def test_declared_sizes_are_checked_before_reading(tmp_path):
    # a header declaring 4 TB beside a 4-unit network: refused from the headers
    huge = _bomb(tmp_path / "huge.npz", declared=(1_000_000, 1_000_000), real_bytes=0)
    with pytest.raises(ValueError, match=r"w_in has shape \(4, 1\), which does not fit w_rec"):
        rflo.load_network(huge)
    # consistent shapes that need more than the limit the caller sets
    net = rflo.save_network(tmp_path / "n.npz", rflo.init_network(1, 64, 1))
    with pytest.raises(ValueError, match="declare .* more than the .* allowed"):
        rflo.load_network(net, max_bytes=10_000)
    assert rflo.load_network(net, max_bytes=100_000).n_rec == 64
    # unknown names are refused before any array is read
    good = {
        k: np.asarray(v)
        for k, v in rflo.init_network(1, 4, 1)._asdict().items()
        if v is not None and k != "cell"
    }
    with pytest.raises(ValueError, match=r"unexpected arrays \['evil'\]"):
        rflo.load_network(_write(tmp_path / "e.npz", **good, evil=np.zeros(3)))


def test_broken_headers_and_formats_say_what_is_wrong(tmp_path):
    good = {
        k: np.asarray(v)
        for k, v in rflo.init_network(1, 4, 1)._asdict().items()
        if v is not None and k != "cell"
    }
    data = bytearray(_write(tmp_path / "ok.npz", **good).read_bytes())
    data[:4] = b"XK\x03\x04"  # flipped zip magic: not 'pickled data'
    (tmp_path / "magic.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not start with a zip header"):
        rflo.load_network(tmp_path / "magic.npz")
    with pytest.raises(ValueError, match="'format' must be one integer"):
        rflo.load_network(_write(tmp_path / "f.npz", **good, format=np.zeros(0, int)))
    with pytest.raises(ValueError, match="'format' must be one integer"):
        rflo.load_network(_write(tmp_path / "g.npz", **good, format=np.array(1.5)))
    with pytest.raises(ValueError, match="w_rec must hold numbers"):
        rflo.load_network(
            _write(tmp_path / "s.npz", **{**good, "w_rec": np.array([["a"] * 4] * 4)})
        )
