"""Where a sweep's chunks run.

``local``           in this process, one chunk after another; ``devices``
                    splits each chunk's networks over JAX devices (host devices
                    on a CPU: every core; the GPUs JAX finds).
``slurm``           one Slurm job-array task per chunk, through submitit.
``submitit_local``  the same jobs as local processes (submitit's local
                    executor): the Slurm path on a laptop.

A chunk that fails leaves its traceback in ``DIR/failed/<id>.txt`` and is run
again by the next ``run``; a chunk that was written is never run again.  A
chunk trains through a :class:`rflo.session.Session` with its checkpoints in
``DIR/work/<id>``: one killed (a node lost, a job's time limit, Ctrl-C) goes
on from its last checkpoint when run again.  Jobs
receive only the sweep folder and a chunk id (submitit sends them as a small
pickle of those strings; every result is written as data: parquet and npz).
"""

from __future__ import annotations

import contextlib
import traceback
from pathlib import Path

from rflo.sweep.devices import (  # noqa: F401  (importable from here, as before)
    configure_host_devices,
    cpu_count,
    resolve_devices,
)

__all__ = [
    "run_local",
    "run_submitit",
    "run_chunk_job",
    "compile_cache",
    "configure_host_devices",
    "resolve_devices",
    "cpu_count",
]


@contextlib.contextmanager
def compile_cache(folder):
    """Within the block, JAX keeps its compiled programs in ``DIR/jax-cache``
    (shared by every job of the sweep: a chunk of a shape compiled before loads
    instead of compiling); JAX's own settings are restored afterwards, so a
    sweep run from Python leaves the process as it found it."""
    import jax

    old = (
        jax.config.jax_compilation_cache_dir,
        jax.config.jax_persistent_cache_min_compile_time_secs,
    )
    _cache_settings(str(Path(folder).resolve() / "jax-cache"), 0.5)
    try:
        yield
    finally:
        _cache_settings(*old)


def _cache_settings(folder, min_seconds):
    import jax

    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_seconds)
    try:  # JAX opens its cache once; let it open the new folder
        from jax._src import compilation_cache

        compilation_cache.reset_cache()
    except Exception:  # noqa: BLE001 - a JAX without it: the first folder stays
        pass


def _failed(folder, chunk_id) -> Path:
    return Path(folder) / "failed" / f"{chunk_id}.txt"


def _record_failure(folder, chunk_id, text):
    from rflo.files import atomic_write

    atomic_write(
        _failed(folder, chunk_id), lambda tmp: Path(tmp).write_text(text, encoding="utf-8")
    )


def run_one(folder, spec, chunk, devices=1):
    """Train and write one chunk; on an error, write its traceback to
    ``DIR/failed/<id>.txt`` and return it (None when the chunk is written).
    While it trains, the chunk keeps its checkpoints in ``DIR/work/<id>``
    (a killed chunk goes on from there), removed once its files are written."""
    import shutil

    from rflo.sweep import chunk as chunks

    work = chunks.work_folder(folder, chunk.id)
    try:
        with chunks.chunk_work(work):
            columns, nets, seconds = chunks.train_chunk(chunk, spec, devices)
        chunks.write_chunk(folder, chunk, spec, columns, nets, seconds)
    except Exception:  # noqa: BLE001 - any failure of one chunk is recorded, the sweep goes on
        text = traceback.format_exc()
        _record_failure(folder, chunk.id, text)
        return text
    _failed(folder, chunk.id).unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(OSError):  # the last chunk's: DIR/work goes too
        work.parent.rmdir()
    return None


def run_local(folder, spec, chunks, devices=1, log=print) -> list:
    """Run ``chunks`` here, one after another; returns the ids that failed."""
    from rflo.compiled import release_if_crowded

    failed = []
    for i, chunk in enumerate(chunks, 1):
        release_if_crowded()  # many chunks' programs can exhaust the process's mappings
        error = run_one(folder, spec, chunk, devices)
        last = error.strip().splitlines()[-1] if error else None
        log(
            f"chunk {i}/{len(chunks)} {chunk.id} ({len(chunk.points)} networks): "
            + (f"FAILED: {last}" if error else "done")
        )
        if error:
            failed.append(chunk.id)
    return failed


def run_chunk_job(folder: str, chunk_id: str, devices="auto") -> str:
    """What a submitit job runs: read the sweep in ``folder``, train the chunk
    ``chunk_id`` and write it (raises on failure, after recording it)."""
    from rflo.sweep.folder import load_folder_spec
    from rflo.sweep.plan import make_plan

    configure_host_devices(devices)
    devices = resolve_devices(devices)
    spec = load_folder_spec(folder)
    chunk = {c.id: c for c in make_plan(spec)}.get(chunk_id)
    if chunk is None:
        raise ValueError(
            f"{folder}: no chunk {chunk_id} in this sweep's plan (spec or rflo version changed?)"
        )
    with compile_cache(folder):
        error = run_one(folder, spec, chunk, devices)
    if error:
        raise RuntimeError(f"chunk {chunk_id} failed:\n{error}")
    return chunk_id


def _executor(folder, backend, settings):
    import submitit

    where = Path(folder) / "jobs"
    if backend == "submitit_local":
        ex = submitit.AutoExecutor(folder=where, cluster="local")
        ex.update_parameters(timeout_min=int(settings.get("time", 60)))
        return ex
    ex = submitit.AutoExecutor(folder=where, cluster="slurm")
    names = {
        "partition": "slurm_partition",
        "account": "slurm_account",
        "qos": "slurm_qos",
        "constraint": "slurm_constraint",
        "array_parallelism": "slurm_array_parallelism",
        "cpus_per_task": "cpus_per_task",
        "mem_gb": "mem_gb",
        "gpus_per_node": "gpus_per_node",
        "time": "timeout_min",
    }
    params = {names[k]: v for k, v in settings.items() if k in names}
    params.setdefault("timeout_min", 60)
    params.setdefault("cpus_per_task", 1)
    ex.update_parameters(name="rflo-sweep", **params)
    return ex


def run_submitit(folder, spec, chunks, backend="slurm", devices="auto", wait=True, log=print):
    """Submit one job per chunk (a job array); with ``wait``, wait for them and
    return the ids that failed (else return the jobs)."""
    ex = _executor(folder, backend, spec.backend.get("slurm", {}))
    ids = [c.id for c in chunks]
    jobs = ex.map_array(run_chunk_job, [str(folder)] * len(ids), ids, [devices] * len(ids))
    log(
        f"submitted {len(jobs)} job(s) through submitit ({backend}): "
        f"{jobs[0].job_id if jobs else '-'} ...; their logs are in {Path(folder) / 'jobs'}"
    )
    if not wait:
        return jobs
    failed = []
    for job, cid in zip(jobs, ids):
        try:
            job.result()
            log(f"chunk {cid}: done (job {job.job_id})")
        except Exception as exc:  # noqa: BLE001 - a failed or cancelled job: run again later
            last = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            if not _failed(folder, cid).exists():
                _record_failure(folder, cid, f"job {job.job_id} ended without the chunk:\n{exc}\n")
            log(f"chunk {cid}: FAILED (job {job.job_id}): {last}")
            failed.append(cid)
    return failed
