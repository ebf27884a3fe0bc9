"""A sweep's chunks and the paper figures train through the library's Session
(rflo.session.Session.for_networks): a chunk keeps its checkpoint in its work
folder while it trains and goes on from it bit-identically; the figures'
spec_train is the session's run."""

import signal

import numpy as np
import pytest

pytest.importorskip("pyarrow")

import rflo  # noqa: E402
from rflo.sweep import make_plan  # noqa: E402
from rflo.sweep.spec import spec_from_dict  # noqa: E402

#: tiny: two lanes that share a seed (they differ only in their rates)
TINY = {
    "name": "tiny",
    "trials": 20,
    "record_every": 10,
    "max_networks": 2,
    "grid": {
        "rule": "rflo",
        "units": 6,
        "lr_rec": [0.01, 0.03],
        "lr_out": 0.02,
        "seed": 0,
        "set": {"period": 20},
    },
    "backend": {"devices": 1},
}


class StopAfterTwoSegments:
    """SIGINT as the session sees it, arriving after its second segment."""

    status = 128 + signal.SIGINT

    def __init__(self):
        self.checks = 0

    @property
    def signum(self):
        self.checks += 1
        return signal.SIGINT if self.checks > 2 else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def test_spec_train_runs_through_the_session(monkeypatch):
    from rflo.ensemble import init_ensemble, train_ensemble
    from rflo.paper.common import spec_train
    from rflo.session import Session
    from rflo.spec import RunSpec

    made = []
    real = Session.for_networks.__func__
    monkeypatch.setattr(
        Session,
        "for_networks",
        classmethod(lambda cls, *a, **kw: made.append(kw) or real(cls, *a, **kw)),
    )
    task = rflo.periodic_task(period=20)
    nets = init_ensemble(task.n_in, 6, task.n_out, seeds=[0, 0])
    lr = np.array([[0.0, 0.01, 0.02], [0.0, 0.03, 0.02]])
    spec = RunSpec(trials=20, units=6, set={"period": 20})
    res = spec_train(spec, nets, lr=lr, seeds=[0, 0])
    assert len(made) == 1 and made[0]["seeds"] == [0, 0]
    direct = train_ensemble(nets, task, "rflo", trials=20, lr=lr, seeds=[0, 0])
    np.testing.assert_array_equal(res.loss, direct.loss)
    np.testing.assert_array_equal(res.networks.w_rec, direct.networks.w_rec)
    np.testing.assert_array_equal(res.diverged_at, direct.diverged_at)
    assert res.rule == "rflo" and res.network(1).w_rec.shape == (6, 6)


@pytest.mark.slow  # 4.5 s; a stopped session resuming bit for bit stays in the default run (test_spec_session.py)
def test_a_stopped_chunk_goes_on_from_its_work_folder_bit_identically(tmp_path, monkeypatch):
    from rflo import checkpoint, session
    from rflo.ensemble import init_ensemble, train_ensemble
    from rflo.sweep.backends import run_one
    from rflo.sweep.chunk import train_chunk, work_folder
    from rflo.sweep.store import read_chunk_networks, read_chunk_table

    spec = spec_from_dict(TINY)
    (chunk,) = make_plan(spec)
    assert [p["seed"] for p in chunk.points] == [0, 0]
    task = rflo.periodic_task(period=20)  # what the chunk computes, in one call
    direct = train_ensemble(
        init_ensemble(task.n_in, 6, task.n_out, seeds=[0, 0]),
        task,
        trials=20,
        lr=np.array([[0.0, 0.01, 0.02], [0.0, 0.03, 0.02]]),
        seeds=[0, 0],
    )

    work = work_folder(tmp_path, chunk.id)
    monkeypatch.setattr(session, "StopRequest", StopAfterTwoSegments)
    with pytest.raises(KeyboardInterrupt, match="the checkpoint is saved"):
        train_chunk(chunk, spec, work=work)
    monkeypatch.undo()
    saved = checkpoint.load_progress(work / "part0-of-1", "rflo")
    assert 0 < saved.done < 20 and saved.loss.shape == (2, saved.done)  # stopped mid-way

    assert run_one(tmp_path, spec, chunk) is None  # goes on from the checkpoint, writes the chunk
    assert not work.exists() and not work.parent.exists()  # removed once the files are written
    table = read_chunk_table(tmp_path, chunk.id).to_pydict()
    np.testing.assert_array_equal(
        np.reshape(table["loss"], (2, 2)), direct.loss.astype(float).reshape(2, 2, 10).mean(axis=2)
    )
    assert table["diverged_at"] == [0] * 4
    back = read_chunk_networks(tmp_path, chunk.id)
    for i in range(2):
        np.testing.assert_array_equal(back[chunk.index[i]].w_rec, direct.networks.w_rec[i])
