"""The ``aeroloc`` command line.

A thin layer: each subcommand parses options, calls one stage's entry point and
prints what it wrote. Every :class:`~aeroloc.errors.AeroLocError` becomes a
one-line message on stderr and exit code 2, without a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from aeroloc import __version__
from aeroloc.errors import AeroLocError

EXIT_USAGE = 2


class AeroLocGroup(click.Group):
    """Click group that turns aeroloc errors into one-line messages and exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AeroLocError as exc:
            click.echo(f"aeroloc: error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            click.echo("aeroloc: interrupted; finished outputs are kept, rerun to resume", err=True)
            ctx.exit(130)


def _say(message: str) -> None:
    click.echo(message, err=True)


def _report(title: str, paths: dict[str, Path]) -> None:
    click.echo(title)
    for label, path in paths.items():
        click.echo(f"  {label:<18} {path}")


@click.group(cls=AeroLocGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aeroloc")
def cli() -> None:
    """Locate historical aerial photographs in modern georeferenced imagery.

    Pipeline: catalog → aoi → preprocess → heatmap → candidates → verify → georef.
    Run `aeroloc COMMAND --help` for each step.
    """


@cli.command()
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder to write the archive into (created).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--preset",
    type=click.Choice(["tiny", "default", "large"]),
    default="default",
    show_default=True,
    help="Archive size.",
)
@click.option(
    "--dem",
    type=click.Path(path_type=Path),
    default=None,
    help="Use this DEM (GeoTIFF) instead of fractal terrain.",
)
def synth(out_dir: Path, seed: int, preset: str, dem: Path | None) -> None:
    """Make a synthetic TMA archive with ground truth.

    Writes reference.tif (Sentinel-2-like RGB, 10 m, EPSG:3031), rock_outcrop.gpkg,
    photos/*.tif (scanned historical photos), catalog.gpkg/.csv (noisy metadata)
    and truth.json/.gpkg (exact footprints). Deterministic per seed.
    """
    from aeroloc.synth import make_archive

    manifest = make_archive(out_dir, seed=seed, preset=preset, dem=dem, progress=_say)
    _report(f"synthetic archive (seed {seed}, preset {preset}) in {out_dir}:", manifest.paths())


def _catalog_options(f: Any) -> Any:
    """Options that pick one photo record from a catalog."""
    f = click.option(
        "--crs",
        "catalog_crs",
        default=None,
        help="CRS of the catalog's x/y values (default: layer CRS, WGS84 for "
        "lon/lat, else the reference CRS).",
    )(f)
    f = click.option(
        "--columns",
        default=None,
        metavar="FIELD=COL,...",
        help="Map catalog columns, e.g. photo_id=ENTITY_ID,x=LON,y=LAT.",
    )(f)
    f = click.option("--photo-id", default=None, help="Photo to process (catalog row).")(f)
    f = click.option(
        "--catalog",
        type=click.Path(path_type=Path),
        default=None,
        help="Photo catalog (CSV, GeoPackage or shapefile).",
    )(f)
    return f


def _record(
    catalog: Path, photo_id: str | None, columns: str | None, crs: str | None, target_crs: Any
) -> Any:
    from aeroloc.catalog import parse_column_map, read_catalog
    from aeroloc.errors import CatalogError

    if photo_id is None:
        raise CatalogError("--catalog needs --photo-id to pick the photo")
    cat = read_catalog(catalog, columns=parse_column_map(columns), crs=crs, target_crs=target_crs)
    return cat.get(photo_id)


def _reference_crs(references: tuple[Path, ...]) -> Any:
    from aeroloc.files import open_raster

    with open_raster(references[0], what="reference raster", need_crs=True) as ds:
        return ds.crs


_reference_option = click.option(
    "--reference",
    "references",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Georeferenced reference raster (repeat for a mosaic; first wins).",
)


def _search_options(*, max_verify: int, per_photo: str) -> Any:
    """The model, engine and verification options ``locate`` and ``demo`` share."""

    def add(f: Any) -> Any:
        for opt in reversed(
            (
                click.option(
                    "--model",
                    "model_spec",
                    default=None,
                    help="Model name or checkpoint file (default: the shipped "
                    "effnet-lite0-siamese).",
                ),
                click.option(
                    "--engine",
                    type=click.Choice(["dense", "batched", "naive"]),
                    default="dense",
                    show_default=True,
                    help="Heatmap engine.",
                ),
                click.option(
                    "--verify/--no-verify",
                    default=True,
                    show_default=True,
                    help=f"Verify candidates by image matching and georeference {per_photo}.",
                ),
                click.option(
                    "--matcher",
                    default=None,
                    help="Matcher for verification: effnet-dense (default; CNN feature "
                    "correlation, robust to a changed sun), sift, orb, akaze, "
                    "xfeat-lighterglue, disk-lightglue, aliked-lightglue.",
                ),
                click.option(
                    "--max-candidates",
                    "max_verify",
                    type=int,
                    default=max_verify,
                    show_default=True,
                    help="Verify at most this many candidates, best first (stops at the "
                    "first accepted).",
                ),
            )
        ):
            f = opt(f)
        return f

    return add


@cli.command()
@_reference_option
@_catalog_options
@click.option(
    "--buffer-m",
    type=float,
    default=10_000.0,
    show_default=True,
    help="Buffer around the rough footprint.",
)
@click.option(
    "--focal-length-mm",
    type=float,
    default=None,
    help="Focal length when the catalog has none (default 152.4, TMA).",
)
@click.option(
    "--film-mm", type=float, default=228.6, show_default=True, help="Film side (9 in for TMA)."
)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
def aoi(
    references: tuple[Path, ...],
    catalog: Path | None,
    photo_id: str | None,
    columns: str | None,
    catalog_crs: str | None,
    buffer_m: float,
    focal_length_mm: float | None,
    film_mm: float,
    out_dir: Path,
) -> None:
    """Crop the reference to the area of interest around one photo.

    The AoI is the photo's rough footprint (camera centre, altitude, focal
    length, film format, heading) grown by --buffer-m. Writes aoi.tif (reference
    pixels, NaN outside the data) and aoi.gpkg (AoI and footprint polygons).
    """
    from aeroloc.aoi import (
        AoIConfig,
        aoi_polygon_to_gpkg,
        build_aoi,
        check_center_in_reference,
        crop_reference,
        save_aoi,
    )
    from aeroloc.errors import CatalogError
    from aeroloc.geometry import Camera

    if catalog is None:
        raise CatalogError("aoi needs --catalog and --photo-id")
    record = _record(catalog, photo_id, columns, catalog_crs, _reference_crs(references))
    camera = Camera(
        focal_length_mm=focal_length_mm or 152.4, film_width_mm=film_mm, film_height_mm=film_mm
    )
    area = build_aoi(record, AoIConfig(buffer_m=buffer_m, camera=camera))
    check_center_in_reference(record, references)
    raster = crop_reference(references, area)
    paths = {
        "aoi raster": save_aoi(raster, out_dir / "aoi.tif"),
        "aoi polygons": aoi_polygon_to_gpkg(area, out_dir / "aoi.gpkg"),
    }
    _report(
        f"AoI of photo {record.photo_id}: {area.describe()}, "
        f"{raster.data.shape[2]} x {raster.data.shape[1]} px, "
        f"{raster.valid_fraction:.0%} valid",
        paths,
    )


@cli.command()
@click.argument("photo", required=False, type=click.Path(path_type=Path))
@_reference_option
@_catalog_options
@click.option(
    "--azimuth-deg",
    type=float,
    default=None,
    help="Flight heading (clockwise from grid north); default: the catalog's.",
)
@click.option("--buffer-m", type=float, default=10_000.0, show_default=True)
@click.option(
    "--rock-mask",
    type=click.Path(path_type=Path),
    default=None,
    help="Rock-outcrop polygons (e.g. ADD) to lift shadows and darken rock.",
)
@click.option(
    "--binarize/--no-binarize",
    default=False,
    show_default=True,
    help="Also write a binary photo (averaged-histogram threshold).",
)
@click.option(
    "--threshold",
    "threshold_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Averaged-histogram threshold JSON to reuse (implies --binarize).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
def preprocess(
    photo: Path | None,
    references: tuple[Path, ...],
    catalog: Path | None,
    photo_id: str | None,
    columns: str | None,
    catalog_crs: str | None,
    azimuth_deg: float | None,
    buffer_m: float,
    rock_mask: Path | None,
    binarize: bool,
    threshold_path: Path | None,
    out_dir: Path,
) -> None:
    """Preprocess a scanned photo and its AoI; write rasters and a before/after PNG.

    Crops the fiducial frame, optionally binarises the photo, enhances the
    reference (gray, rock mask), rotates the AoI to the heading and
    histogram-matches the photo to it. PHOTO defaults to the catalog's path.
    """
    from dataclasses import replace

    from aeroloc.aoi import AoIConfig
    from aeroloc.errors import CatalogError
    from aeroloc.pipeline import request_from_record
    from aeroloc.preprocess.run import preprocess_photo

    if catalog is None:
        raise CatalogError("preprocess needs --catalog and --photo-id to place the AoI")
    record = _record(catalog, photo_id, columns, catalog_crs, _reference_crs(references))
    if azimuth_deg is not None:
        record = replace(record, azimuth_deg=azimuth_deg)
    request = request_from_record(
        record,
        references,
        aoi_config=AoIConfig(buffer_m=buffer_m),
        photo_path=photo,
        rock_mask_path=rock_mask,
    )
    outputs = preprocess_photo(request, out_dir, threshold_path=threshold_path, binarize=binarize)
    _report(f"preprocessed photo {record.photo_id}:", outputs.paths())


def _parse_floats(text: str, n: int, what: str) -> list[float]:
    from aeroloc.errors import InvalidInputError

    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != n:
        raise InvalidInputError(f"{what} must be {n} comma-separated numbers, got {text!r}")
    return values


@cli.command()
@click.option(
    "--archive",
    "archives",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Synthetic archive folder (repeat).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option(
    "--buffer-m",
    type=float,
    default=None,
    help="AoI buffer around each photo (default: the dataset builder's).",
)
@click.option(
    "--threshold",
    type=int,
    default=None,
    help="Fixed gray threshold for the binary variant (default: averaged histogram).",
)
def triplets(
    archives: tuple[Path, ...], out_dir: Path, buffer_m: float | None, threshold: int | None
) -> None:
    """Build a training dataset (photo, true window, AoI) from synthetic archives.

    Every photo is prepared exactly as `locate` prepares it (noisy catalog
    centre, altitude and heading); triplets are sampled from it at training time.
    """
    from aeroloc.triplets import DEFAULT_BUFFER_M, triplets_command

    triplets_command(
        list(archives),
        out_dir,
        buffer_m=DEFAULT_BUFFER_M if buffer_m is None else buffer_m,
        threshold=threshold,
    )


@cli.command()
@click.option("--model", "model_name", required=True, help="Registry name of the model.")
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="Dataset folder written by `aeroloc triplets`.",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Checkpoint file to write (.pt).",
)
@click.option("--epochs", type=int, default=None)
@click.option("--seed", type=int, default=None)
@click.option(
    "--resume", type=click.Path(path_type=Path), default=None, help="Checkpoint to continue from."
)
@click.option("--lr", type=float, default=None)
@click.option("--batch-size", type=int, default=None)
@click.option(
    "--weights",
    default="preset",
    help="imagenet, none (random init), a path, or preset (the model's default).",
)
@click.option("--threads", type=int, default=None)
@click.option(
    "--loss",
    type=click.Choice(["metric", "rank"]),
    default=None,
    help="metric: the model's thesis loss on triplets; rank: every window of the AoI "
    "against the truth (dense training only). Default: the preset's.",
)
def train(
    model_name: str,
    data: Path,
    out_path: Path,
    epochs: int | None,
    seed: int | None,
    resume: Path | None,
    lr: float | None,
    batch_size: int | None,
    weights: str,
    threads: int | None,
    loss: str | None,
) -> None:
    """Train a similarity model on a triplet dataset (thesis recipes as presets).

    Splits 8:1:1 by flight line, stops early on the validation confidence
    level, writes the checkpoint, its loss curve and can resume.
    """
    from aeroloc.train import train_command

    train_command(
        model=model_name,
        data=data,
        out=out_path,
        epochs=epochs,
        seed=seed,
        resume=resume,
        lr=lr,
        batch_size=batch_size,
        weights=weights,
        threads=threads,
        loss=loss,
    )


@cli.command()
@click.argument("photo", required=False, type=click.Path(path_type=Path))
@_reference_option
@_catalog_options
@click.option(
    "--aoi",
    "aoi_bounds",
    default=None,
    metavar="MINX,MINY,MAXX,MAXY",
    help="Search area in the reference CRS (instead of a catalog).",
)
@click.option(
    "--gsd-m", type=float, default=None, help="Ground size of one scan pixel (with --aoi)."
)
@click.option(
    "--azimuth-deg",
    type=float,
    default=None,
    help="Flight heading, clockwise from grid north (default: the catalog's).",
)
@click.option(
    "--buffer-m",
    type=float,
    default=10_000.0,
    show_default=True,
    help="Buffer around the rough footprint (with --catalog).",
)
@click.option(
    "--rock-mask",
    type=click.Path(path_type=Path),
    default=None,
    help="Rock-outcrop polygons (e.g. ADD) for the reference enhancement.",
)
@click.option(
    "--stride",
    "stride_fraction",
    type=float,
    default=0.25,
    show_default=True,
    help="Window step as a fraction of the window.",
)
@click.option(
    "--candidates",
    "max_candidates",
    type=int,
    default=20,
    show_default=True,
    help="Candidates kept from the heatmap (ranked, in result.json and candidates.gpkg).",
)
@_search_options(max_verify=10, per_photo="the photo")
@click.option(
    "--warp",
    is_flag=True,
    default=False,
    help="Also write photo_warped.tif, the photo resampled north-up onto the map.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
def locate(
    photo: Path | None,
    references: tuple[Path, ...],
    catalog: Path | None,
    photo_id: str | None,
    columns: str | None,
    catalog_crs: str | None,
    aoi_bounds: str | None,
    gsd_m: float | None,
    azimuth_deg: float | None,
    buffer_m: float,
    rock_mask: Path | None,
    model_spec: str | None,
    engine: str,
    stride_fraction: float,
    max_candidates: int,
    verify: bool,
    matcher: str | None,
    max_verify: int,
    warp: bool,
    out_dir: Path,
) -> None:
    """Find where PHOTO lies in the reference and georeference it.

    Either --catalog/--photo-id (AoI from the camera centre, altitude and
    heading) or --aoi/--gsd-m/--azimuth-deg (no catalog needed). Scores a
    heatmap, ranks candidates, then verifies them best-first by image matching
    until one is accepted. Writes result.json, heatmap.tif, heatmap.png,
    candidates.gpkg, heatmap_cells.npy and, for a verified photo,
    footprint.gpkg, gcps.points (QGIS), photo_gcps.tif (GDAL GCPs) and with
    --warp photo_warped.tif. --no-verify stops at the ranked candidates.
    """
    from aeroloc.aoi import AoIConfig, aoi_from_bounds
    from aeroloc.errors import InvalidInputError
    from aeroloc.heatmap.engines import HeatmapConfig
    from aeroloc.pipeline import (
        LocateRequest,
        VerifyConfig,
        load_model,
        locate_photo,
        request_from_record,
    )

    verify_config = (
        VerifyConfig(matcher=matcher, max_candidates=max_verify, warp=warp) if verify else None
    )
    if matcher is not None:
        _check_matcher(matcher)  # before any work
    if catalog is not None:
        record = _record(catalog, photo_id, columns, catalog_crs, _reference_crs(references))
        if azimuth_deg is not None:
            from dataclasses import replace

            record = replace(record, azimuth_deg=azimuth_deg)
        request = request_from_record(
            record,
            references,
            aoi_config=AoIConfig(buffer_m=buffer_m),
            photo_path=photo,
            rock_mask_path=rock_mask,
        )
    else:
        if aoi_bounds is None or gsd_m is None or azimuth_deg is None or photo is None:
            raise InvalidInputError(
                "give PHOTO with --aoi MINX,MINY,MAXX,MAXY --gsd-m G --azimuth-deg A, "
                "or --catalog CAT --photo-id ID"
            )
        area = aoi_from_bounds(
            _parse_floats(aoi_bounds, 4, "--aoi"),
            _reference_crs(references),
            azimuth_deg=azimuth_deg,
        )
        request = LocateRequest(
            photo_path=photo,
            references=references,
            aoi=area,
            azimuth_deg=azimuth_deg,
            gsd_m=gsd_m,
            rock_mask_path=rock_mask,
            photo_id=photo.stem,
        )
    model, label = load_model(model_spec)
    result = locate_photo(
        request,
        out_dir,
        model=model,
        model_label=label,
        heatmap_config=HeatmapConfig(engine=engine, stride_fraction=stride_fraction),
        max_candidates=max_candidates,
        verify=verify_config,
    )
    if result is None:  # only when overwrite=False
        return
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
    _report(f"{head}; {line}", result.paths())


@cli.command()
@click.option(
    "--truth",
    "truth_path",
    required=True,
    type=click.Path(path_type=Path),
    help="truth.json of a synthetic archive (or the archive folder).",
)
@click.option(
    "--results",
    "result_dirs",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="Folder(s) written by `aeroloc locate` (repeat, or a parent folder).",
)
@click.option(
    "--hit-radius-m",
    type=float,
    default=None,
    help="Distance that counts as found (default: half a window).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
def evaluate(
    truth_path: Path, result_dirs: tuple[Path, ...], hit_radius_m: float | None, out_dir: Path
) -> None:
    """Score locate results against ground truth (confidence level, recall@k, error).

    For verified results also the footprint's centre error and IoU, GCP
    residuals, accepted-and-correct share and false-accept rate. Writes
    evaluation.csv, evaluation.md and a score histogram per photo with the
    true score marked.
    """
    from aeroloc.evaluate import evaluate as run_evaluate
    from aeroloc.evaluate import write_evaluation

    folders = _result_folders(result_dirs)
    evaluation, heatmaps = run_evaluate(truth_path, folders, hit_radius_m=hit_radius_m)
    paths = write_evaluation(evaluation, heatmaps, out_dir)
    click.echo(evaluation.to_markdown())
    _report("evaluation written:", paths)


@cli.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("demo-output"),
    show_default=True,
)
@click.option(
    "--seed",
    type=int,
    default=100,
    show_default=True,
    help="Archive seed (disjoint from the training seeds).",
)
@click.option(
    "--preset",
    type=click.Choice(["tiny", "default", "large"]),
    default="default",
    show_default=True,
)
@click.option(
    "--buffer-m",
    type=float,
    default=5_000.0,
    show_default=True,
    help="AoI buffer (the synthetic catalog is off by at most 3 km).",
)
@_search_options(max_verify=5, per_photo="each photo")
def demo(
    out_dir: Path,
    seed: int,
    preset: str,
    model_spec: str | None,
    engine: str,
    buffer_m: float,
    verify: bool,
    matcher: str | None,
    max_verify: int,
) -> None:
    """Run the full pipeline on a synthetic archive and report against its truth.

    Synthesises the archive, locates and verifies every photo, evaluates and
    writes report.md with every heatmap and footprint. Reruns skip finished
    photos.
    """
    from aeroloc.demo import run_demo

    if matcher is not None:
        _check_matcher(matcher)
    summary = run_demo(
        out_dir,
        seed=seed,
        preset=preset,
        model=model_spec,
        engine=engine,
        buffer_m=buffer_m,
        verify=verify,
        matcher=matcher,
        max_candidates=max_verify,
        say=_say,
    )
    click.echo(summary.evaluation.to_markdown())
    click.echo(f"report: {summary.report} ({summary.seconds:.0f} s)")


def _check_matcher(name: str) -> None:
    from aeroloc.errors import ModelError
    from aeroloc.verify import list_matchers

    if name.strip().lower() not in list_matchers():
        raise ModelError(f"unknown matcher {name!r}: choose one of {', '.join(list_matchers())}")


def _result_folders(paths: tuple[Path, ...]) -> list[Path]:
    from aeroloc.errors import MissingFileError

    folders: list[Path] = []
    for p in paths:
        if (p / "result.json").is_file():
            folders.append(p)
        elif p.is_dir():
            folders.extend(sorted(q.parent for q in p.glob("*/result.json")))
        else:
            raise MissingFileError(f"results folder not found: {p}")
    if not folders:
        raise MissingFileError(f"no result.json under {', '.join(map(str, paths))}")
    return folders


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="aeroloc")


if __name__ == "__main__":
    main()
