"""One loop over an archive's photos: skip what is done, report progress, collect outcomes.

A batch is a tuple of :class:`PhotoJob` (plain, picklable descriptions of one
photo: its catalog record, the archive's reference and rock mask, its truth,
its output folder) and one per-photo function ``fn(job) -> T``. :func:`run_jobs`
calls ``fn`` on every job in order, skipping a job whose output folder already
holds a ``result.json`` (resume), and returns one :class:`PhotoOutcome` per
job. Because a job is plain data and ``fn`` a plain callable (a module-level
function, or a :func:`functools.partial` of one), a distributed runner can
take the same two arguments and map ``fn`` over the jobs on workers.

:func:`locate_job` is the usual per-photo function: the photo through
:func:`aeroloc.pipeline.locate_photo` with the AoI around its catalog
position, as the demo and the benches run it.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from shapely.geometry import Polygon

from aeroloc.aoi import AoIConfig, PartialOverlapWarning
from aeroloc.catalog import PhotoRecord
from aeroloc.errors import InvalidInputError
from aeroloc.heatmap.engines import HeatmapConfig
from aeroloc.io.archive import Archive, TruthRecord
from aeroloc.io.results import has_result
from aeroloc.models import Embedder
from aeroloc.pipeline import LocateResult, locate_photo, request_from_record
from aeroloc.verify.walk import VerifyConfig

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class PhotoJob:
    """One photo of a batch (picklable: paths, records and numbers only).

    Attributes:
        index: 1-based position in the batch.
        total: number of jobs in the batch.
        archive_root: the archive folder.
        record: the photo's catalog record.
        references: reference rasters (mosaic, first wins).
        rock_mask: rock-outcrop polygons, or None.
        truth: the photo's truth record, when the archive has one.
        out_dir: folder the photo's result goes to; None for a job that
            writes no result (never skipped).
        archive_id: which archive the photo comes from.
    """

    index: int
    total: int
    archive_root: Path
    record: PhotoRecord
    references: tuple[Path, ...]
    rock_mask: Path | None = None
    truth: TruthRecord | None = None
    out_dir: Path | None = None
    archive_id: str = ""

    @property
    def photo_id(self) -> str:
        return self.record.photo_id

    @property
    def done(self) -> bool:
        """True when the output folder already holds a finished result."""
        return self.out_dir is not None and has_result(self.out_dir)


@dataclass(frozen=True, kw_only=True)
class PhotoOutcome(Generic[T]):
    """What the loop did with one job.

    Attributes:
        job: the job.
        skipped: True when the job was already done (``value`` is None).
        value: what the per-photo function returned.
        seconds: time spent on the job (0 when skipped).
    """

    job: PhotoJob
    skipped: bool
    value: T | None
    seconds: float


def archive_jobs(
    archive: Archive, results_dir: str | os.PathLike[str] | None = None
) -> tuple[PhotoJob, ...]:
    """One job per catalog photo of ``archive``, in catalog order.

    Args:
        archive: the archive (see :func:`aeroloc.io.archive.read_archive`).
        results_dir: each photo's result goes to ``results_dir/<photo_id>``;
            None gives jobs without an output folder.
    """
    records = list(archive.catalog)
    return tuple(
        PhotoJob(
            index=i,
            total=len(records),
            archive_root=archive.root,
            record=rec,
            references=(archive.reference,),
            rock_mask=archive.rock_mask,
            truth=archive.truth.get(rec.photo_id),
            out_dir=None if results_dir is None else Path(results_dir) / rec.photo_id,
            archive_id=archive.archive_id,
        )
        for i, rec in enumerate(records, 1)
    )


def run_jobs(
    jobs: Sequence[PhotoJob],
    fn: Callable[[PhotoJob], T],
    *,
    skip_done: bool = True,
    progress: Callable[[PhotoOutcome[T]], None] | None = None,
) -> tuple[PhotoOutcome[T], ...]:
    """Call ``fn`` on every job in order; skip finished ones; collect the outcomes.

    Args:
        jobs: the photos.
        fn: the per-photo function (a plain callable on the job).
        skip_done: skip a job whose ``out_dir`` already holds a ``result.json``.
        progress: called with each outcome as soon as it is known.
    """
    outcomes: list[PhotoOutcome[T]] = []
    for job in jobs:
        if skip_done and job.done:
            outcome: PhotoOutcome[T] = PhotoOutcome(job=job, skipped=True, value=None, seconds=0.0)
        else:
            t0 = time.perf_counter()
            value = fn(job)
            outcome = PhotoOutcome(
                job=job, skipped=False, value=value, seconds=time.perf_counter() - t0
            )
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return tuple(outcomes)


@dataclass(frozen=True, kw_only=True)
class LocateSettings:
    """How :func:`locate_job` locates each photo.

    Attributes:
        model: similarity model for the heatmap.
        model_label: how reports name the model.
        buffer_m: AoI buffer around the catalog position.
        heatmap_config: engine and stride.
        verify: verification settings; None skips verification.
        draw_truth: draw the true footprint on ``heatmap.png`` (when the job has one).
        ignore_warnings: silence every warning while locating (the benches);
            False silences only :class:`~aeroloc.aoi.PartialOverlapWarning`.
    """

    model: Embedder
    model_label: str
    buffer_m: float
    heatmap_config: HeatmapConfig
    verify: VerifyConfig | None = None
    draw_truth: bool = True
    ignore_warnings: bool = False


def locate_job(job: PhotoJob, settings: LocateSettings) -> LocateResult | None:
    """Locate one photo of a batch into ``job.out_dir`` (None when it was already done).

    Raises:
        InvalidInputError: the job has no output folder; or what
            :func:`aeroloc.pipeline.locate_photo` raises.
    """
    if job.out_dir is None:
        raise InvalidInputError(f"photo {job.photo_id}: the job has no output folder")
    footprint: Any = None
    if settings.draw_truth and job.truth is not None and job.truth.footprint is not None:
        footprint = Polygon(job.truth.footprint)
    with warnings.catch_warnings():
        if settings.ignore_warnings:
            warnings.simplefilter("ignore")
        else:
            warnings.simplefilter("ignore", PartialOverlapWarning)
        request = request_from_record(
            job.record,
            job.references,
            aoi_config=AoIConfig(buffer_m=settings.buffer_m),
            rock_mask_path=job.rock_mask,
        )
        return locate_photo(
            request,
            job.out_dir,
            model=settings.model,
            model_label=settings.model_label,
            heatmap_config=settings.heatmap_config,
            truth_footprint=footprint,
            overwrite=False,
            verify=settings.verify,
        )
