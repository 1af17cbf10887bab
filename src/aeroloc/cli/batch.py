"""``aeroloc batch``: every photo of a catalog, on Dask, resumable, into one GeoPackage."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aeroloc.cli.options import (
    PATH,
    buffer_option,
    candidates_option,
    catalog_crs_option,
    check_matcher,
    columns_option,
    out_dir_option,
    pose_grid,
    references_option,
    rock_mask_option,
    search_options,
    stride_option,
    warp_option,
)
from aeroloc.cli.output import QUIET_KEY
from aeroloc.errors import InvalidInputError, MissingFileError

if TYPE_CHECKING:
    from aeroloc.batch.config import BatchConfig
    from aeroloc.batch.loop import PhotoJob, PhotoOutcome
    from aeroloc.batch.worker import PhotoReport

logger = logging.getLogger(__name__)

#: Statuses the progress bar counts, in its order.
_SHOWN = ("accepted", "review", "rejected", "unverified", "failed")


@click.command()
@click.argument("catalog", type=PATH)
@references_option(
    required=False,
    help="Georeferenced reference raster (repeat for a mosaic; first wins); "
    "default for an archive folder: its reference.tif.",
)
@columns_option
@catalog_crs_option
@rock_mask_option("Rock-outcrop polygons for the enhancement (default: an archive's own).")
@out_dir_option("Output folder: <photo_id>/ per photo, results.gpkg, results.csv.")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Worker processes of a local Dask cluster, one thread each (default: one per "
    "core); 0 runs in this process without Dask (for debugging).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Use an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (instead of --workers).",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    default=False,
    help="Also rerun photos that failed in an earlier run (they are skipped otherwise).",
)
@click.option(
    "--lines/--no-lines",
    "use_lines",
    default=True,
    show_default=True,
    help="Place photos along their flight lines (neighbour matching, searches around the "
    "line's prediction, a joint solve per line, OUT/lines/<line>.png); --no-lines "
    "searches every photo over its full AoI.",
)
@buffer_option(default=10_000.0, help="AoI buffer around each rough footprint.")
@stride_option
@candidates_option
@search_options(max_verify=10, per_photo="each photo")
@warp_option
def batch(
    catalog: Path,
    references: tuple[Path, ...],
    columns: str | None,
    catalog_crs: str | None,
    rock_mask: Path | None,
    out_dir: Path,
    workers: int | None,
    scheduler: str | None,
    retry_failed: bool,
    use_lines: bool,
    buffer_m: float,
    stride_fraction: float,
    max_candidates: int,
    model_spec: str | None,
    engine: str,
    heading_search: float,
    heading_step: float,
    scale_search: float,
    verify: bool,
    matcher: str | None,
    max_verify: int,
    warp: bool,
) -> None:
    """Locate and georeference every photo of CATALOG into --out.

    CATALOG is a catalog file (CSV, GeoPackage or shapefile, as locate
    --catalog reads it) or an archive folder (as aeroloc synth writes it).
    Each photo's files go to OUT/<photo_id>/ exactly as locate writes them.
    A rerun skips finished photos and photos that failed (see
    OUT/<photo_id>/failed.json) unless --retry-failed. Within each flight
    line the most textured, rocky photos go first and are searched over the
    full AoI; then each line grows outwards from its accepted photos: a
    photo is matched to its accepted neighbour (confirmed against the
    reference), else searched around the line's prediction, else over the
    full AoI. Each line is then solved jointly: an accepted photo that
    contradicts its line goes to review, a photo nothing placed gets its
    line's position (method line). At the end OUT/results.gpkg (layers
    footprints and gcps), OUT/results.csv and OUT/lines/<line>.png are
    rebuilt from what is on disk.
    """
    from aeroloc.batch.config import BatchConfig, BatchInputs, LinesConfig

    _check_inputs(catalog, references, rock_mask)
    config = BatchConfig(
        out_dir=out_dir, workers=workers, scheduler=scheduler, retry_failed=retry_failed
    )
    poses = pose_grid(heading_search, heading_step, scale_search)
    if matcher is not None:
        check_matcher(matcher)  # the matcher registry imports torch: after the cheap checks
    if model_spec is not None:
        from aeroloc.batch.worker import worker_model

        # A bad --model fails here once, not in every photo; cached, so an
        # in-process run (--workers 0) does not load it again.
        worker_model(model_spec)

    from aeroloc.files import output_lock

    # Two batches writing one --out would locate the same photos twice and
    # race on results.gpkg: the second is refused while the first holds the lock.
    with output_lock(out_dir):
        from aeroloc.batch.run import batch_jobs, run_batch, torch_threads_for
        from aeroloc.batch.worker import LocateSpec
        from aeroloc.heatmap.engines import HeatmapConfig
        from aeroloc.verify.walk import VerifyConfig

        inputs = BatchInputs(
            catalog=catalog,
            references=references,
            rock_mask=rock_mask,
            columns=columns,
            catalog_crs=catalog_crs,
        )
        jobs, crs = batch_jobs(inputs, out_dir)
        spec = LocateSpec(
            model=model_spec,
            buffer_m=buffer_m,
            heatmap_config=HeatmapConfig(
                engine=engine, stride_fraction=stride_fraction, poses=poses
            ),
            verify=(
                VerifyConfig(matcher=matcher, max_candidates=max_verify, warp=warp)
                if verify
                else None
            ),
            max_candidates=max_candidates,
            torch_threads=torch_threads_for(config),
        )
        quiet = bool(click.get_current_context().meta.get(QUIET_KEY, False))
        with _ProgressBar(jobs, config, disable=quiet) as bar:
            summary = run_batch(
                jobs,
                spec,
                config,
                crs=crs,
                progress=bar.update,
                lines=LinesConfig() if use_lines else None,
            )
        click.echo(summary.describe())


def _check_inputs(catalog: Path, references: tuple[Path, ...], rock_mask: Path | None) -> None:
    """One-line errors for missing inputs, before anything heavy is imported."""
    if not catalog.exists():
        raise MissingFileError(f"catalog not found: {catalog}")
    if catalog.is_dir() and not (catalog / "truth.json").is_file():
        raise InvalidInputError(
            f"{catalog} is a folder but not an archive (no truth.json): give a catalog file "
            "or an archive folder"
        )
    for ref in references:
        if not ref.is_file():
            raise MissingFileError(f"reference raster not found: {ref}")
    if not references and not catalog.is_dir():
        raise InvalidInputError(f"{catalog} is a catalog file: give --reference REF.tif")
    if rock_mask is not None:
        from aeroloc.files import read_vector_info

        read_vector_info(rock_mask, "rock mask")


class _ProgressBar:
    """A rich progress bar on stderr: photos done of those to run, counts per status, ETA.

    Photos skipped as already processed are counted by their status but are
    not part of the bar, so the ETA follows the photos this run locates.
    """

    def __init__(self, jobs: tuple[PhotoJob, ...], config: BatchConfig, *, disable: bool):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._counts = dict.fromkeys(_SHOWN, 0)
        self._skipped = 0
        self._progress = Progress(
            TextColumn("[bold]batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=disable,
            redirect_stderr=True,
        )
        self._task = self._progress.add_task("photos", total=len(jobs), counts=self._text())
        self._where = config.describe()

    def __enter__(self) -> _ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()

    def _text(self) -> str:
        parts = [f"{s} {n}" for s, n in self._counts.items() if n or s != "unverified"]
        if self._skipped:
            parts.append(f"skipped {self._skipped}")
        return " · ".join(parts)

    def update(self, outcome: PhotoOutcome[PhotoReport]) -> None:
        from aeroloc.batch.run import outcome_status

        status = outcome_status(outcome)
        self._counts[status] = self._counts.get(status, 0) + 1
        job = outcome.job
        if outcome.skipped:
            self._skipped += 1
            task = self._progress.tasks[0]
            self._progress.update(self._task, total=(task.total or 1) - 1, counts=self._text())
            logger.debug("photo %s: skipped (%s earlier)", job.photo_id, status)
            return
        self._progress.update(self._task, advance=1, counts=self._text())
        if outcome.failed:
            logger.debug(
                "photo %s: failed after %.1f s: %s", job.photo_id, outcome.seconds, outcome.error
            )
        else:
            logger.debug("photo %s: %s in %.1f s", job.photo_id, status, outcome.seconds)
