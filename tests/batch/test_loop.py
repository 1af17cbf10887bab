"""The loop over an archive's photos: order, resume, progress, picklable jobs."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import pytest
from rasterio.crs import CRS

from aeroloc.batch.loop import (
    LocateSettings,
    PhotoJob,
    PhotoOutcome,
    archive_jobs,
    locate_job,
    run_jobs,
)
from aeroloc.catalog import Catalog, PhotoRecord
from aeroloc.errors import InvalidInputError
from aeroloc.heatmap.engines import HeatmapConfig
from aeroloc.io.archive import Archive, TruthRecord
from aeroloc.io.results import RESULT_FILE

CRS_3031 = CRS.from_epsg(3031)


def archive(root: Path) -> Archive:
    records = tuple(
        PhotoRecord(photo_id=pid, path=Path(f"photos/{pid}.tif"), x=10.0 * k, y=0.0, crs=CRS_3031)
        for k, pid in enumerate(("a", "b", "c"))
    )
    return Archive(
        archive_id="tiny-5",
        root=root,
        catalog=Catalog(records=records, crs=CRS_3031),
        reference=root / "reference.tif",
        rock_mask=None,
        truth={"b": TruthRecord(photo_id="b", center_x=1.0, center_y=2.0)},
        crs="EPSG:3031",
        seed=5,
        preset="tiny",
    )


def scale(job: PhotoJob, *, factor: float) -> float:
    """A module-level per-photo function (picklable through functools.partial)."""
    return job.record.x * factor


def test_jobs_follow_the_catalog_with_their_truth_and_folders(tmp_path):
    jobs = archive_jobs(archive(tmp_path), tmp_path / "results")
    assert [(j.index, j.total, j.photo_id) for j in jobs] == [(1, 3, "a"), (2, 3, "b"), (3, 3, "c")]
    assert [j.out_dir for j in jobs] == [tmp_path / "results" / p for p in "abc"]
    assert jobs[1].truth is not None and jobs[1].truth.center_y == 2.0 and jobs[0].truth is None
    assert jobs[0].references == (tmp_path / "reference.tif",) and jobs[0].archive_id == "tiny-5"
    assert jobs[0].archive_root == tmp_path
    assert all(j.out_dir is None for j in archive_jobs(archive(tmp_path)))


def test_run_skips_done_photos_reports_progress_and_collects(tmp_path):
    jobs = archive_jobs(archive(tmp_path), tmp_path / "results")
    done = tmp_path / "results" / "b"
    done.mkdir(parents=True)
    (done / RESULT_FILE).write_text("{}")
    seen: list[PhotoOutcome[float]] = []
    out = run_jobs(jobs, functools.partial(scale, factor=2.0), progress=seen.append)
    assert list(out) == seen
    assert [(o.job.photo_id, o.skipped, o.value) for o in out] == [
        ("a", False, 0.0),
        ("b", True, None),
        ("c", False, 40.0),
    ]
    assert out[1].seconds == 0.0 and out[0].seconds >= 0.0
    again = run_jobs(jobs, functools.partial(scale, factor=2.0), skip_done=False)
    assert [o.value for o in again] == [0.0, 20.0, 40.0]


def test_jobs_without_folders_are_never_skipped(tmp_path):
    jobs = archive_jobs(archive(tmp_path))
    assert not any(j.done for j in jobs)
    assert [o.value for o in run_jobs(jobs, functools.partial(scale, factor=1.0))] == [
        0.0,
        10.0,
        20.0,
    ]


def test_a_job_and_its_function_pickle(tmp_path):
    job = archive_jobs(archive(tmp_path), tmp_path / "results")[1]
    fn = functools.partial(scale, factor=3.0)
    job2, fn2 = pickle.loads(pickle.dumps((job, fn)))
    assert job2 == job and fn2(job2) == fn(job) == 30.0


def test_locate_job_needs_an_output_folder(tmp_path):
    job = archive_jobs(archive(tmp_path))[0]
    settings = LocateSettings(
        model=None,  # type: ignore[arg-type]
        model_label="m",
        buffer_m=1500.0,
        heatmap_config=HeatmapConfig(),
    )
    with pytest.raises(InvalidInputError, match="photo a: the job has no output folder"):
        locate_job(job, settings)
