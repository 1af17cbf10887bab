"""``aeroloc locate``: find one photo in the reference and georeference it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from aeroloc.cli.options import (
    azimuth_option,
    buffer_option,
    candidates_option,
    catalog_options,
    check_matcher,
    check_model_spec,
    fail_on_exit_code,
    fail_on_option,
    out_dir_option,
    photo_argument,
    pose_grid,
    positive_number,
    reference_option,
    rock_mask_option,
    search_options,
    stride_option,
    warp_config,
    warp_option,
    warp_target_options,
)
from aeroloc.cli.output import report
from aeroloc.errors import InvalidInputError

if TYPE_CHECKING:
    from aeroloc.catalog import CatalogQuery
    from aeroloc.pipeline import LocateResult
    from aeroloc.request import LocateRequest

logger = logging.getLogger(__name__)


@click.command()
@photo_argument()
@reference_option
@catalog_options
@click.option(
    "--aoi",
    "aoi_bounds",
    default=None,
    metavar="MINX,MINY,MAXX,MAXY",
    help="Search area in the reference CRS (instead of a catalog).",
)
@click.option(
    "--gsd-m",
    type=float,
    default=None,
    callback=positive_number,
    help="Ground size of one scan pixel (with --aoi).",
)
@azimuth_option("Flight heading, clockwise from grid north (default: the catalog's).")
@buffer_option(default=10_000.0, help="Buffer around the rough footprint (with --catalog).")
@rock_mask_option("Rock-outcrop polygons (e.g. ADD) for the reference enhancement.")
@stride_option
@candidates_option
@search_options(max_verify=10, per_photo="the photo")
@warp_option
@warp_target_options
@fail_on_option
@out_dir_option()
@click.pass_context
def locate(
    ctx: click.Context,
    photo: Path | None,
    references: tuple[Path, ...],
    catalog: CatalogQuery | None,
    aoi_bounds: str | None,
    gsd_m: float | None,
    azimuth_deg: float | None,
    buffer_m: float,
    rock_mask: Path | None,
    model_spec: str | None,
    engine: str,
    heading_search: float,
    heading_step: float,
    scale_search: float,
    stride_fraction: float,
    max_candidates: int,
    verify: bool,
    matcher: str | None,
    max_verify: int,
    warp: bool,
    t_srs: str | None,
    resampling: str | None,
    fail_on: tuple[str, ...],
    out_dir: Path,
) -> None:
    """Find where PHOTO lies in the reference and georeference it.

    Either --catalog/--photo-id (AoI from the camera centre, altitude and
    heading) or --aoi/--gsd-m/--azimuth-deg (no catalog needed). Scores a
    heatmap, ranks candidates, then verifies them best-first by image matching
    until one is accepted. Writes result.json, heatmap.tif, heatmap.png,
    candidates.gpkg, heatmap_cells.npy and, for a verified photo,
    footprint.gpkg, gcps.points (QGIS), photo_gcps.tif (GDAL GCPs) and with
    --warp photo_warped.tif (a Cloud-Optimised GeoTIFF with an alpha band, in
    --t-srs, resampled with --resampling). --no-verify stops at the ranked
    candidates.

    Exit codes: 0 done (whatever the status, unless --fail-on), 2 bad input,
    3 the photo ended with a --fail-on status (its files are all written).
    """
    # Everything that needs no model is checked first: torch and the model load
    # only once the command line and its files are known to be usable.
    from aeroloc.files import output_lock, read_vector_info, remove_temp_files, require_file
    from aeroloc.request import request_from_bounds, request_from_catalog

    if photo is not None:
        require_file(photo, "photo")  # first: before the catalog (pandas) is read
    poses = pose_grid(heading_search, heading_step, scale_search)
    warp_settings = warp_config(warp=warp, t_srs=t_srs, resampling=resampling)
    request: LocateRequest
    if catalog is not None:
        request = request_from_catalog(
            catalog,
            references,
            azimuth_deg=azimuth_deg,
            buffer_m=buffer_m,
            photo_path=photo,
            rock_mask_path=rock_mask,
        )
    else:
        if aoi_bounds is None or gsd_m is None or azimuth_deg is None or photo is None:
            raise InvalidInputError(
                "give PHOTO with --aoi MINX,MINY,MAXX,MAXY --gsd-m G --azimuth-deg A, "
                "or --catalog CAT --photo-id ID"
            )
        request = request_from_bounds(
            photo,
            references,
            _parse_floats(aoi_bounds, 4, "--aoi"),
            gsd_m=gsd_m,
            azimuth_deg=azimuth_deg,
            rock_mask_path=rock_mask,
        )
    if rock_mask is not None:
        read_vector_info(rock_mask, "rock mask")
    check_model_spec(model_spec)
    # One run at a time per folder, refused before torch loads; a killed run's
    # temporary files are removed only under the lock, never a live run's.
    with output_lock(out_dir):
        remove_temp_files(out_dir)

        from aeroloc.heatmap.engines import HeatmapConfig
        from aeroloc.pipeline import load_model, locate_photo
        from aeroloc.verify.walk import VerifyConfig

        verify_config = (
            VerifyConfig(matcher=matcher, max_candidates=max_verify, warp=warp) if verify else None
        )
        if matcher is not None:
            check_matcher(matcher)  # before any work
        model, label = load_model(model_spec)
        logger.debug(
            "locate %s: AoI %s, model %s, engine %s",
            request.photo_id,
            request.aoi.describe(),
            label,
            engine,
        )
        result = locate_photo(
            request,
            out_dir,
            model=model,
            model_label=label,
            heatmap_config=HeatmapConfig(
                engine=engine, stride_fraction=stride_fraction, poses=poses
            ),
            max_candidates=max_candidates,
            verify=verify_config,
            warp=warp_settings,
        )
    if result is None:  # only when overwrite=False
        return
    report(_summary(request, result), result.paths())
    code = fail_on_exit_code(result.status, fail_on)
    if code:
        click.echo(f"aeroloc: photo {request.photo_id} is {result.status} (--fail-on)", err=True)
        ctx.exit(code)


def _summary(request: LocateRequest, result: LocateResult) -> str:
    """One line: windows scored, then the best candidate or the verification outcome."""
    head = (
        f"photo {request.photo_id}: {result.heatmap.n_windows} windows "
        f"({result.heatmap.engine}, {result.timings_s['heatmap']:.1f} s)"
    )
    ver = result.verification
    if ver is None:
        best = result.candidates[0]
        line = f"best candidate x={best.x:.0f} y={best.y:.0f} score {best.score:.3f} (unverified)"
    elif ver.chosen is None or ver.chosen.footprint is None:
        line = f"rejected: none of {ver.windows_tried} candidates verified ({ver.matcher})"
    else:
        c = ver.chosen
        centre = ver.chosen.footprint.centroid
        line = (
            f"{c.status}: candidate {c.candidate.rank} at x={centre.x:.0f} y={centre.y:.0f}, "
            f"{c.n_inliers} inliers ({ver.matcher}), p(correct) {c.p_correct:.2f}; "
            f"{ver.windows_tried} windows tried, search reduction "
            f"{ver.search_reduction:.1%}"
        )
    return f"{head}; {line}"


def _parse_floats(text: str, n: int, what: str) -> list[float]:
    """``text`` as ``n`` comma-separated numbers (``what`` names the option in the error)."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != n:
        raise InvalidInputError(f"{what} must be {n} comma-separated numbers, got {text!r}")
    return values
