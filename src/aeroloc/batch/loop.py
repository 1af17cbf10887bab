"""One loop over an archive's photos: skip what is done, report progress, collect outcomes.

A batch is a tuple of :class:`PhotoJob` (plain, picklable descriptions of one
photo: its catalog record, the archive's reference and rock mask, its truth,
its output folder) and one per-photo function ``fn(job) -> T``. :func:`run_jobs`
calls ``fn`` on every job in order, skipping a job whose output folder already
holds a ``result.json`` (resume), and returns one :class:`PhotoOutcome` per
job. Because a job is plain data and ``fn`` a plain callable (a module-level
function, or a :func:`functools.partial` of one), a distributed runner
(:mod:`aeroloc.batch.dask`) takes the same two arguments and maps ``fn`` over
the jobs on workers.

With ``record_failures``, a photo whose ``fn`` raises is a *failed* photo, not
a crashed batch: :func:`attempt` catches the exception, writes its one-line
reason to ``failed.json`` (:mod:`aeroloc.io.failures`) and returns an outcome
with ``error`` set; a rerun skips the photo unless ``retry_failed``.

:func:`locate_job` is the usual per-photo function: the photo through
:func:`aeroloc.pipeline.locate_photo` with the AoI around its catalog
position, as the demo and the benches run it.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from shapely.geometry import Polygon

from aeroloc.aoi import AoIConfig, PartialOverlapWarning
from aeroloc.catalog import PhotoRecord
from aeroloc.errors import InvalidInputError
from aeroloc.io.archive import Archive, TruthRecord
from aeroloc.io.failures import (
    FailureRecord,
    clear_failure,
    has_failure,
    read_failure,
    write_failure,
)
from aeroloc.io.results import has_result

if TYPE_CHECKING:
    # torch comes with these: imported where a photo is located, so that
    # the loop (and a worker that only scores or skips photos) stays light
    from aeroloc.heatmap.engines import HeatmapConfig
    from aeroloc.models import Embedder
    from aeroloc.pipeline import LocateResult
    from aeroloc.verify.walk import VerifyConfig

T = TypeVar("T")

logger = logging.getLogger(__name__)


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

    @property
    def failed(self) -> bool:
        """True when an earlier run recorded this photo as failed (``failed.json``)."""
        return self.out_dir is not None and has_failure(self.out_dir)


@dataclass(frozen=True, kw_only=True)
class PhotoOutcome(Generic[T]):
    """What the loop did with one job.

    Attributes:
        job: the job.
        skipped: True when the job was already done, or had failed before and
            was not retried (``value`` is None).
        value: what the per-photo function returned (None when it failed).
        seconds: time spent on the job (0 when skipped).
        error: the one-line reason the photo failed (this run, or the earlier
            one when skipped); None when it did not.
    """

    job: PhotoJob
    skipped: bool
    value: T | None
    seconds: float
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


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


def skipped_outcome(job: PhotoJob, *, retry_failed: bool = False) -> PhotoOutcome[Any] | None:
    """The outcome of a job a rerun skips: done, or failed before and not retried; else None."""
    if job.done:
        return PhotoOutcome(job=job, skipped=True, value=None, seconds=0.0)
    if not retry_failed and job.failed and job.out_dir is not None:
        return PhotoOutcome(
            job=job, skipped=True, value=None, seconds=0.0, error=_earlier_reason(job.out_dir)
        )
    return None


def _earlier_reason(folder: Path) -> str:
    try:
        return read_failure(folder).reason
    except InvalidInputError as exc:
        return f"failed earlier (unreadable record: {exc})"


def attempt(job: PhotoJob, fn: Callable[[PhotoJob], T]) -> PhotoOutcome[T]:
    """Run ``fn(job)``; an exception makes a failed outcome and ``failed.json``, not a raise.

    ``KeyboardInterrupt`` (and other non-``Exception`` exits) still propagate.
    A success deletes a ``failed.json`` left by an earlier attempt. This is a
    module-level function, so a distributed runner can submit it to workers.
    """
    t0 = time.perf_counter()
    try:
        value = fn(job)
    except Exception as exc:
        seconds = time.perf_counter() - t0
        record = FailureRecord.from_exception(
            job.photo_id, exc, seconds=seconds, attempts=_attempts_so_far(job) + 1
        )
        logger.debug("photo %s failed", job.photo_id, exc_info=True)
        record_failure(job, record)
        return PhotoOutcome(
            job=job, skipped=False, value=None, seconds=seconds, error=record.reason
        )
    if job.out_dir is not None:
        clear_failure(job.out_dir)
    return PhotoOutcome(job=job, skipped=False, value=value, seconds=time.perf_counter() - t0)


def record_failure(job: PhotoJob, record: FailureRecord) -> None:
    """Write ``failed.json`` into the job's folder; a write that fails is only logged."""
    if job.out_dir is None:
        return
    try:
        write_failure(record, job.out_dir)
    except OSError as exc:  # disk full, permissions: the outcome still says why
        logger.warning("photo %s: cannot record its failure: %s", job.photo_id, exc)


def _attempts_so_far(job: PhotoJob) -> int:
    if job.out_dir is None or not has_failure(job.out_dir):
        return 0
    with contextlib.suppress(InvalidInputError):
        return read_failure(job.out_dir).attempts
    return 0


def run_jobs(
    jobs: Sequence[PhotoJob],
    fn: Callable[[PhotoJob], T],
    *,
    skip_done: bool = True,
    progress: Callable[[PhotoOutcome[T]], None] | None = None,
    record_failures: bool = False,
    retry_failed: bool = False,
) -> tuple[PhotoOutcome[T], ...]:
    """Call ``fn`` on every job in order; skip finished ones; collect the outcomes.

    Args:
        jobs: the photos.
        fn: the per-photo function (a plain callable on the job).
        skip_done: skip a job whose ``out_dir`` already holds a ``result.json``
            (and, with ``record_failures``, one that failed before).
        progress: called with each outcome as soon as it is known.
        record_failures: catch each photo's exception (see :func:`attempt`)
            instead of letting it end the loop.
        retry_failed: with ``record_failures``, rerun photos that failed before.
    """
    outcomes: list[PhotoOutcome[T]] = []
    for job in jobs:
        outcome: PhotoOutcome[T] | None = None
        if skip_done and record_failures:
            outcome = skipped_outcome(job, retry_failed=retry_failed)
        elif skip_done and job.done:
            outcome = PhotoOutcome(job=job, skipped=True, value=None, seconds=0.0)
        if outcome is None and record_failures:
            outcome = attempt(job, fn)
        elif outcome is None:
            t0 = time.perf_counter()
            value = fn(job)
            outcome = PhotoOutcome(
                job=job, skipped=False, value=value, seconds=time.perf_counter() - t0
            )
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return tuple(outcomes)


class InProcessRunner(Generic[T]):
    """Jobs submitted one by one and run in this process, highest priority first.

    The in-process twin of :class:`aeroloc.batch.dask.DaskRunner`: a caller
    that decides which photo to run next from the outcomes so far (the
    flight-line scheduler, :mod:`aeroloc.batch.lines`) submits jobs and takes
    outcomes with the same three calls on either. Each job runs through
    :func:`attempt`, so a photo that raises is a failed outcome. Ties in
    priority keep submission order.
    """

    def __init__(self, fn: Callable[[PhotoJob], T]) -> None:
        self._fn = fn
        self._queue: list[tuple[int, int, PhotoJob]] = []
        self._count = 0

    def submit(self, job: PhotoJob, *, priority: int = 0) -> None:
        """Queue ``job`` (a higher ``priority`` runs sooner)."""
        heapq.heappush(self._queue, (-priority, self._count, job))
        self._count += 1

    def pending(self) -> int:
        """Jobs submitted whose outcome has not been taken."""
        return len(self._queue)

    def next_outcome(self) -> PhotoOutcome[T]:
        """Run the next job and return its outcome.

        Raises:
            InvalidInputError: nothing is pending.
        """
        if not self._queue:
            raise InvalidInputError("no job is pending")
        _, _, job = heapq.heappop(self._queue)
        return attempt(job, self._fn)


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
        max_candidates: candidates kept from the heatmap.
    """

    model: Embedder
    model_label: str
    buffer_m: float
    heatmap_config: HeatmapConfig
    verify: VerifyConfig | None = None
    draw_truth: bool = True
    ignore_warnings: bool = False
    max_candidates: int = 20


def locate_job(job: PhotoJob, settings: LocateSettings) -> LocateResult | None:
    """Locate one photo of a batch into ``job.out_dir`` (None when it was already done).

    Raises:
        InvalidInputError: the job has no output folder; or what
            :func:`aeroloc.pipeline.locate_photo` raises.
    """
    from aeroloc.pipeline import locate_photo, request_from_record

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
            max_candidates=settings.max_candidates,
            truth_footprint=footprint,
            overwrite=False,
            verify=settings.verify,
        )
