"""``aeroloc batch`` as one stage call: a catalog in, every photo located, one table out.

:func:`batch_jobs` turns a catalog file (as ``locate --catalog`` reads it)
or an archive folder (as ``aeroloc synth`` writes it) into one
:class:`~aeroloc.batch.loop.PhotoJob` per photo, each writing into
``out_dir/<photo_id>/``. It checks, before any photo is touched, that the
photo ids are unique (the catalog does) and that the reference covers at
least one camera centre; photos without a flight line or frame are kept as
lines of their own, with a warning.

:func:`run_batch` first removes what a killed run left: the hidden
temporary files of :func:`aeroloc.files.atomic_output` in the output folder
and the photo folders, and unfinished attempt folders
(:data:`aeroloc.batch.placement.ATTEMPTS_DIR`). With flight lines (the
default, ``lines``) it places the photos with
:func:`aeroloc.batch.lines.run_line_batch` (seeds over the full AoI, then
neighbours and shrunken searches outwards along each line) and ends with
each line's joint solve and picture (:func:`aeroloc.batch.lines.solve_lines`);
without, it runs :func:`aeroloc.batch.worker.locate_spec_job` over the jobs
(:func:`aeroloc.batch.dask.run_on_cluster`). Either runs on Dask or, with
``workers=0``, in this process (for debugging: same order, same failure
records, no Dask). Finished photos are skipped, failed ones are recorded and
skipped on a rerun unless ``retry_failed``, every line's most promising
photos go first (:mod:`aeroloc.batch.priority`), and at the end
``results.gpkg`` and ``results.csv`` are rebuilt from what is on disk
(:mod:`aeroloc.io.table`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from aeroloc.batch.config import BatchConfig, BatchInputs, LinesConfig
from aeroloc.batch.dask import DaskRunner, open_client, run_on_cluster, scores_on_cluster
from aeroloc.batch.lines import LinesSummary, run_line_batch, solve_lines
from aeroloc.batch.loop import (
    InProcessRunner,
    PhotoJob,
    PhotoOutcome,
    archive_jobs,
    run_jobs,
    skipped_outcome,
)
from aeroloc.batch.placement import clear_attempts, place_line_job
from aeroloc.batch.priority import job_priority, order_by_line
from aeroloc.batch.worker import LocateSpec, PhotoReport, locate_spec_job
from aeroloc.catalog import PhotoRecord, parse_column_map, read_catalog
from aeroloc.errors import InvalidInputError, NoOverlapError
from aeroloc.files import open_raster, remove_temp_files
from aeroloc.io.archive import is_archive, read_archive
from aeroloc.io.results import METHODS, read_result
from aeroloc.io.table import FAILED, ResultsTable, TablePaths, build_results_table
from aeroloc.report import write_report

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class BatchSummary:
    """What a batch run did, and the table it left.

    Attributes:
        counts: photos per status in the rebuilt table (all photos, this run and earlier).
        n_photos: photos in the catalog.
        n_run: photos this run located or tried.
        n_skipped: photos skipped (done, or failed before and not retried).
        n_failed_now: photos that failed in this run.
        seconds: wall time of the run.
        tables: ``results.gpkg`` and ``results.csv``.
        where: where the photos ran.
        methods: photos per method in the table (search, propagated, neighbour, line).
        n_without_full_search: photos with a result that no full-AoI search placed.
        lines: what the joint solve did (None without flight lines, or when interrupted).
    """

    counts: dict[str, int]
    n_photos: int
    n_run: int
    n_skipped: int
    n_failed_now: int
    seconds: float
    tables: TablePaths
    where: str
    methods: dict[str, int] = field(default_factory=dict)
    n_without_full_search: int = 0
    lines: LinesSummary | None = None
    report: Path | None = None

    def describe(self) -> str:
        """One paragraph: counts per status and method, what this run did, time, the table."""
        counts = ", ".join(f"{n} {status}" for status, n in self.counts.items()) or "no photos"
        methods = ", ".join(f"{n} {m}" for m, n in self.methods.items())
        placed = (
            f" Methods: {methods}; {self.n_without_full_search} placed without a full-AoI search."
            if methods
            else ""
        )
        solve = ""
        if self.lines is not None:
            solve = (
                f" Joint solve of {len(self.lines.solutions)} line(s): "
                f"{len(self.lines.contradicted)} accepted photo(s) contradict their line "
                f"(now review), {len(self.lines.placed_by_line)} placed by their line."
            )
        return (
            f"{self.n_photos} photo(s): {counts}.{placed}{solve} This run located {self.n_run} "
            f"({self.n_failed_now} failed) and skipped {self.n_skipped} already processed, "
            f"in {self.seconds:.0f} s on {self.where}. Table: {self.tables.gpkg} "
            f"(layers footprints, gcps) and {self.tables.csv}."
            + (f" Report: {self.report}." if self.report is not None else "")
        )


def batch_jobs(inputs: BatchInputs, out_dir: Path) -> tuple[tuple[PhotoJob, ...], str]:
    """One job per catalog photo, and the map CRS (see the module docstring).

    Raises:
        MissingFileError: the catalog, an archive's files or a reference is missing.
        CatalogError: a bad catalog (e.g. a duplicate photo id).
        NoOverlapError: no camera centre lies on the reference.
        InvalidInputError: a catalog file without ``--reference``.
    """
    source = Path(inputs.catalog)
    if source.is_dir() and is_archive(source):
        archive = read_archive(source)
        references = inputs.references or (archive.reference,)
        jobs = tuple(
            PhotoJob(
                index=j.index,
                total=j.total,
                archive_root=j.archive_root,
                record=j.record,
                references=references,
                rock_mask=inputs.rock_mask or j.rock_mask,
                truth=j.truth,
                out_dir=j.out_dir,
                archive_id=j.archive_id,
            )
            for j in archive_jobs(archive, out_dir)
        )
        crs = _reference_crs(references)
    else:
        if not inputs.references:
            raise InvalidInputError(f"{source} is a catalog file: give --reference REF.tif")
        references = inputs.references
        crs = _reference_crs(references)
        catalog = read_catalog(
            source,
            columns=parse_column_map(inputs.columns),
            crs=inputs.catalog_crs,
            target_crs=crs,
        )
        records = list(catalog)
        jobs = tuple(
            PhotoJob(
                index=i,
                total=len(records),
                archive_root=source.parent,
                record=rec,
                references=references,
                rock_mask=inputs.rock_mask,
                out_dir=out_dir / rec.photo_id,
                archive_id=source.stem,
            )
            for i, rec in enumerate(records, 1)
        )
    _check_jobs(jobs)
    return jobs, crs


def _reference_crs(references: Sequence[Path]) -> str:
    from aeroloc.aoi import check_projected

    with open_raster(references[0], what="reference raster", need_crs=True) as ds:
        return str(check_projected(ds.crs, f"reference raster {references[0]}").to_string())


def _check_jobs(jobs: Sequence[PhotoJob]) -> None:
    """Warn about photos without line or frame; refuse a reference that no photo is on."""
    if not jobs:
        raise InvalidInputError("the catalog lists no photos")
    single = [j.photo_id for j in jobs if not j.record.flight_line or j.record.frame is None]
    if single:
        logger.warning(
            "%d photo(s) without a flight line or frame (e.g. %s) are treated as single photos",
            len(single),
            ", ".join(single[:3]),
        )
    references = jobs[0].references
    if not any(_on_reference(j.record, references) for j in jobs):
        raise NoOverlapError(
            f"none of the {len(jobs)} camera centres lies on the reference "
            f"{', '.join(str(p) for p in references)}: check the reference, the catalog's "
            "x/y columns and --crs"
        )


def _on_reference(record: PhotoRecord, references: Sequence[Path]) -> bool:
    from rasterio.warp import transform as warp_transform

    for path in references:
        with open_raster(path, what="reference raster", need_crs=True) as ds:
            xs, ys = warp_transform(record.crs, ds.crs, [record.x], [record.y])
            left, bottom, right, top = ds.bounds
            if left <= xs[0] <= right and bottom <= ys[0] <= top:
                return True
    return False


def outcome_status(outcome: PhotoOutcome[Any]) -> str:
    """``accepted``, ``review``, ``rejected``, ``unverified`` or ``failed`` of one outcome.

    A photo skipped as done gets the status in its ``result.json``.
    """
    if outcome.failed:
        return FAILED
    if isinstance(outcome.value, PhotoReport):
        return outcome.value.status
    if outcome.skipped and outcome.job.out_dir is not None:
        try:
            return read_result(outcome.job.out_dir).status
        except (InvalidInputError, OSError):
            return FAILED
    return "unverified"


def clean_unfinished(out_dir: Path, jobs: Sequence[PhotoJob]) -> None:
    """Remove what a killed run left: atomic-write temporaries and attempt folders."""
    remove_temp_files(out_dir)
    for job in jobs:
        if job.out_dir is not None and job.out_dir.is_dir():
            remove_temp_files(job.out_dir)
            clear_attempts(job.out_dir)


def run_batch(
    jobs: Sequence[PhotoJob],
    spec: LocateSpec,
    config: BatchConfig,
    *,
    crs: str,
    progress: Callable[[PhotoOutcome[PhotoReport]], None] | None = None,
    lines: LinesConfig | None = None,
) -> BatchSummary:
    """Locate every pending photo of ``jobs``; rebuild the table (see the module docstring).

    Args:
        jobs: from :func:`batch_jobs` (their ``out_dir`` inside ``config.out_dir``).
        spec: how each photo is located.
        config: where, and whether to retry failed photos.
        crs: the reference CRS (the table's).
        progress: called with each outcome as soon as it is known.
        lines: place photos along their flight lines, then solve each line;
            None locates every photo over its full AoI.
    """
    t0 = time.perf_counter()
    clean_unfinished(config.out_dir, jobs)
    summary_lines: LinesSummary | None = None
    outcomes: Sequence[PhotoOutcome[PhotoReport]]
    try:
        if lines is not None:
            outcomes = _run_lines(jobs, spec, config, lines, crs=crs, progress=progress)
            if lines.solve:
                summary_lines = solve_lines(jobs, config.out_dir, crs=crs, config=lines)
        else:
            outcomes = _run_plain(jobs, spec, config, progress=progress)
    finally:
        # also after an interrupt or a cluster error: the table shows what is on disk
        table, paths = build_results_table(config.out_dir, [j.record for j in jobs], crs=crs)
    report = write_report(config.out_dir, photos=[j.record for j in jobs])
    return BatchSummary(
        counts=table.counts(),
        n_photos=len(jobs),
        n_run=sum(not o.skipped for o in outcomes),
        n_skipped=sum(o.skipped for o in outcomes),
        n_failed_now=sum(o.failed and not o.skipped for o in outcomes),
        seconds=time.perf_counter() - t0,
        tables=paths,
        where=config.describe(),
        methods=method_counts(table),
        n_without_full_search=sum(r.full_search == 0 for r in table.footprints),
        lines=summary_lines,
        report=report,
    )


def method_counts(table: ResultsTable) -> dict[str, int]:
    """Photos per method (:data:`~aeroloc.io.results.METHODS` order; absent ones left out)."""
    found = [r.method for r in table.footprints]
    return {m: found.count(m) for m in METHODS if m in found}


def _run_lines(
    jobs: Sequence[PhotoJob],
    spec: LocateSpec,
    config: BatchConfig,
    lines: LinesConfig,
    *,
    crs: str,
    progress: Callable[[PhotoOutcome[PhotoReport]], None] | None,
) -> Sequence[PhotoOutcome[PhotoReport]]:
    fn = partial(place_line_job, spec=spec, lines=lines)
    pending = [j for j in jobs if skipped_outcome(j, retry_failed=config.retry_failed) is None]
    if config.in_process or not pending:
        scores = {j.photo_id: job_priority(j) for j in pending} if config.prioritise else {}
        return run_line_batch(
            jobs,
            InProcessRunner(fn),
            crs=crs,
            config=lines,
            scores=scores,
            retry_failed=config.retry_failed,
            progress=progress,
        )
    cluster = config.cluster()
    logger.info("%d photo(s) to place on a %s", len(pending), cluster.describe())
    with open_client(cluster) as client:
        scores = scores_on_cluster(client, pending, job_priority) if config.prioritise else {}
        return run_line_batch(
            jobs,
            DaskRunner(client, fn),
            crs=crs,
            config=lines,
            scores=scores,
            retry_failed=config.retry_failed,
            progress=progress,
        )


def _run_plain(
    jobs: Sequence[PhotoJob],
    spec: LocateSpec,
    config: BatchConfig,
    *,
    progress: Callable[[PhotoOutcome[PhotoReport]], None] | None,
) -> Sequence[PhotoOutcome[PhotoReport]]:
    fn = partial(locate_spec_job, spec=spec)
    if config.in_process:
        return run_jobs(
            _in_process_order(jobs, config),
            fn,
            record_failures=True,
            retry_failed=config.retry_failed,
            progress=progress,
        )
    return run_on_cluster(
        jobs,
        fn,
        cluster=config.cluster(),
        retry_failed=config.retry_failed,
        priority=job_priority if config.prioritise else None,
        progress=progress,
    )


def _in_process_order(jobs: Sequence[PhotoJob], config: BatchConfig) -> tuple[PhotoJob, ...]:
    """Skipped jobs first (catalog order), then the pending ones by line and priority."""
    skipped: list[PhotoJob] = []
    pending: list[PhotoJob] = []
    for job in jobs:
        done = skipped_outcome(job, retry_failed=config.retry_failed) is not None
        (skipped if done else pending).append(job)
    if not config.prioritise:
        return (*skipped, *pending)
    scores = {j.photo_id: job_priority(j) for j in pending}
    return (*skipped, *order_by_line(pending, scores))


def torch_threads_for(config: BatchConfig) -> int:
    """Torch threads per process: every core in this process, else 1 per worker."""
    return max(1, os.cpu_count() or 1) if config.in_process else 1
