"""The Dask runner: resume, failures and retries, an unreachable scheduler, and a real
LocalCluster batch that matches the sequential loop."""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rasterio.crs import CRS

from aeroloc.batch.config import BatchConfig, BatchInputs
from aeroloc.batch.dask import ClusterConfig, check_scheduler_address, run_on_cluster
from aeroloc.batch.loop import PhotoJob, run_jobs
from aeroloc.catalog import PhotoRecord
from aeroloc.errors import ClusterError, ConfigError, InvalidInputError
from aeroloc.io.failures import FAILURE_FILE, read_failure
from aeroloc.io.results import RESULT_FILE

CRS_3031 = CRS.from_epsg(3031)


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A two-worker LocalCluster shared by this module's toy runs (its address)."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def toy_jobs(root: Path, ids: str = "abcd") -> tuple[PhotoJob, ...]:
    return tuple(
        PhotoJob(
            index=i,
            total=len(ids),
            archive_root=root,
            record=PhotoRecord(photo_id=pid, x=float(i), y=0.0, crs=CRS_3031),
            references=(),
            out_dir=root / "out" / pid,
        )
        for i, pid in enumerate(ids, 1)
    )


def finish(job: PhotoJob, *, calls: Path, fail: str = "") -> str:
    """A toy per-photo function: logs the call, fails on ``fail``, else writes a result."""
    calls.mkdir(parents=True, exist_ok=True)
    (calls / f"{job.photo_id}-{uuid.uuid4().hex}").touch()
    if job.photo_id in fail:
        raise InvalidInputError(f"photo {job.photo_id} is unreadable\nsecond line")
    assert job.out_dir is not None
    job.out_dir.mkdir(parents=True, exist_ok=True)
    (job.out_dir / RESULT_FILE).write_text("{}")
    return job.photo_id.upper()


def called(calls: Path) -> list[str]:
    return sorted(p.name.split("-")[0] for p in calls.iterdir()) if calls.is_dir() else []


def test_resume_submits_only_photos_not_done(tmp_path, scheduler):
    jobs = toy_jobs(tmp_path)
    for done in (jobs[0], jobs[2]):
        assert done.out_dir is not None
        done.out_dir.mkdir(parents=True)
        (done.out_dir / RESULT_FILE).write_text("{}")
    calls = tmp_path / "calls"
    seen = []
    out = run_on_cluster(
        jobs,
        functools.partial(finish, calls=calls),
        cluster=ClusterConfig(scheduler=scheduler),
        progress=seen.append,
    )
    assert called(calls) == ["b", "d"]
    assert [o.job.photo_id for o in out[:2]] == ["a", "c"] and all(o.skipped for o in out[:2])
    assert sorted((o.job.photo_id, o.value) for o in out[2:]) == [("b", "B"), ("d", "D")]
    assert list(out) == seen
    again = run_on_cluster(
        jobs, functools.partial(finish, calls=calls), cluster=ClusterConfig(scheduler=scheduler)
    )
    assert all(o.skipped for o in again) and called(calls) == ["b", "d"]


def test_a_failed_photo_is_recorded_and_retried_only_when_asked(tmp_path, scheduler):
    jobs = toy_jobs(tmp_path, "abc")
    calls = tmp_path / "calls"
    cluster = ClusterConfig(scheduler=scheduler)
    first = run_on_cluster(jobs, functools.partial(finish, calls=calls, fail="b"), cluster=cluster)
    failed = [o for o in first if o.failed]
    assert [o.job.photo_id for o in failed] == ["b"]
    assert failed[0].error == "InvalidInputError: photo b is unreadable"
    assert jobs[1].out_dir is not None
    record = read_failure(jobs[1].out_dir)
    assert record.attempts == 1 and record.error_type == "InvalidInputError"

    rerun = run_on_cluster(jobs, functools.partial(finish, calls=calls, fail="b"), cluster=cluster)
    assert all(o.skipped for o in rerun)
    assert [o.error for o in rerun if o.failed] == ["InvalidInputError: photo b is unreadable"]
    assert called(calls) == ["a", "b", "c"]

    retried = run_on_cluster(
        jobs, functools.partial(finish, calls=calls), cluster=cluster, retry_failed=True
    )
    assert [(o.job.photo_id, o.skipped, o.value) for o in retried if not o.skipped] == [
        ("b", False, "B")
    ]
    assert not (jobs[1].out_dir / FAILURE_FILE).exists()
    assert called(calls) == ["a", "b", "b", "c"]


def test_the_sequential_loop_records_failures_the_same_way(tmp_path):
    jobs = toy_jobs(tmp_path, "ab")
    calls = tmp_path / "calls"
    out = run_jobs(jobs, functools.partial(finish, calls=calls, fail="a"), record_failures=True)
    assert [(o.job.photo_id, o.failed) for o in out] == [("a", True), ("b", False)]
    again = run_jobs(
        jobs,
        functools.partial(finish, calls=calls, fail="a"),
        record_failures=True,
        retry_failed=True,
    )
    assert [o.skipped for o in again] == [False, True]
    assert jobs[0].out_dir is not None and read_failure(jobs[0].out_dir).attempts == 2
    with pytest.raises(InvalidInputError, match="photo a is unreadable"):
        run_jobs(jobs, functools.partial(finish, calls=calls, fail="a"))


def test_an_unreachable_scheduler_is_a_clear_error_within_the_timeout(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(
        ClusterError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"
    ):
        run_on_cluster(
            toy_jobs(tmp_path, "a"),
            functools.partial(finish, calls=tmp_path / "calls"),
            cluster=ClusterConfig(scheduler="tcp://127.0.0.1:9", connect_timeout_s=2.0),
        )
    assert time.perf_counter() - t0 < 10.0


def test_cluster_settings_are_checked():
    assert check_scheduler_address(" tcp://10.0.0.5:8786 ") == "tcp://10.0.0.5:8786"
    with pytest.raises(ConfigError, match="is not tcp://HOST:PORT"):
        ClusterConfig(scheduler="10.0.0.5")
    with pytest.raises(ConfigError, match="not both"):
        ClusterConfig(scheduler="tcp://h:1", n_workers=2)
    with pytest.raises(ConfigError, match="at least 1 worker"):
        ClusterConfig(n_workers=0)
    with pytest.raises(ConfigError, match="--workers must be ≥ 0"):
        BatchConfig(out_dir=Path("x"), workers=-1)


@pytest.mark.slow
def test_a_local_cluster_batch_gives_what_the_sequential_loop_gives(tiny_archive, tmp_path):
    from aeroloc.batch.run import batch_jobs, run_batch
    from aeroloc.batch.worker import LocateSpec

    spec = LocateSpec(buffer_m=1500.0)  # no verification: the candidates are compared
    runs = {}
    for name, workers in (("loop", 0), ("dask", 2)):
        out = tmp_path / name
        jobs, crs = batch_jobs(BatchInputs(catalog=tiny_archive), out)
        summary = run_batch(jobs, spec, BatchConfig(out_dir=out, workers=workers), crs=crs)
        assert summary.n_run == 3 and summary.n_failed_now == 0
        runs[name] = {
            j.photo_id: json.loads((out / j.photo_id / RESULT_FILE).read_text()) for j in jobs
        }
    assert runs["loop"].keys() == runs["dask"].keys()
    for pid, seq in runs["loop"].items():
        par = runs["dask"][pid]
        assert par["best"]["status"] == seq["best"]["status"] == "unverified"
        # one torch thread per worker against all cores in the loop: scores agree to rounding
        for a, b in zip(seq["candidates"], par["candidates"], strict=True):
            assert (a["rank"], a["x"], a["y"]) == (b["rank"], b["x"], b["y"])
            assert a["score"] == pytest.approx(b["score"], abs=1e-4)
