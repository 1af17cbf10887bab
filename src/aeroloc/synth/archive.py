"""Flight lines, catalog, ground truth, and the entry point :func:`make_archive`.

Output folder::

    reference.tif      Sentinel-2-like RGB, uint8, 10 m, EPSG:3031 (modern epoch)
    truth_epoch.tif    historical epoch as the film sees it, uint8 gray, same grid
    rock_outcrop.gpkg  ADD-like rock polygons (modern epoch, ~74 % agreement)
    photos/<id>.tif    scanned historical photos, uint8, no georeferencing
    catalog.csv        noisy metadata, lon/lat (WGS84)
    catalog.gpkg       same, x/y and points in EPSG:3031
    truth.json         exact poses, footprints, pixel→map affines, config, seed
    truth.gpkg         exact footprints
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from pyproj import Transformer

from aeroloc.errors import InvalidInputError
from aeroloc.files import atomic_output, remove_temp_files, write_geotiff
from aeroloc.geometry import footprint_corners
from aeroloc.io.archive import (
    CATALOG_CSV_FILE,
    CATALOG_FILE,
    REFERENCE_FILE,
    ROCK_MASK_FILE,
    TRUTH_EPOCH_FILE,
    TRUTH_GPKG_FILE,
    TruthRecord,
    photo_file,
    write_truth,
)
from aeroloc.synth.clouds import draw_cloud_layers
from aeroloc.synth.config import REFERENCE_GSD_M, SynthConfig, get_preset
from aeroloc.synth.noise import DetailTile
from aeroloc.synth.outcrops import OutcropResult, rock_outcrops
from aeroloc.synth.photo import (
    FEET_PER_M,
    HistoricalWorld,
    PhotoPose,
    cloud_layer,
    render_photo,
)
from aeroloc.synth.render import (
    FILM_DIFFUSE,
    FilmLook,
    Sun,
    cast_shadow,
    cover_fractions,
    far_horizon,
    film_curve,
    illumination,
    radiance,
    reflectance,
    sentinel2_rgb,
)
from aeroloc.synth.terrain import (
    Epoch,
    Site,
    Terrain,
    blur_px,
    check_dem,
    choose_site,
    dem_terrain,
    fractal_terrain,
    grid_xy,
    make_epoch,
)

CRS = "EPSG:3031"
CANDIDATE_LINES = 6
"""Valid placements drawn per flight line; the most mountainous is flown."""
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True, kw_only=True)
class ArchiveManifest:
    """What :func:`make_archive` wrote.

    Attributes:
        out_dir: the archive folder.
        reference, truth_epoch, rock_outcrop, catalog_csv, catalog_gpkg,
        truth_json, truth_gpkg: output files.
        photos: the scans, in catalog order.
        seed, preset: what made it.
        n_photos: number of photos.
        elapsed_s: wall-clock time of the run.
    """

    out_dir: Path
    reference: Path
    truth_epoch: Path
    rock_outcrop: Path
    catalog_csv: Path
    catalog_gpkg: Path
    truth_json: Path
    truth_gpkg: Path
    photos: tuple[Path, ...]
    seed: int
    preset: str
    n_photos: int
    elapsed_s: float

    def paths(self) -> dict[str, Path]:
        """Label → path of every output, for a CLI report."""
        return {
            "reference": self.reference,
            "truth epoch": self.truth_epoch,
            "rock outcrops": self.rock_outcrop,
            "catalog (csv)": self.catalog_csv,
            "catalog (gpkg)": self.catalog_gpkg,
            "truth (json)": self.truth_json,
            "truth (gpkg)": self.truth_gpkg,
            f"photos ({self.n_photos})": self.out_dir / "photos",
        }


@dataclass(frozen=True, kw_only=True)
class CatalogRow:
    """One catalog record as the archive would list it (noisy)."""

    photo_id: str
    path: str
    flight_line: str
    frame: int
    x: float
    y: float
    altitude_m: float
    focal_length_mm: float
    azimuth_deg: float
    view: str = "nadir"


# --------------------------------------------------------------------------- flight plan


def _inside(corners: np.ndarray, site: Site, margin_m: float) -> bool:
    x, y = corners[:, 0] - site.x0, site.y0 - corners[:, 1]
    return bool(
        x.min() >= margin_m
        and y.min() >= margin_m
        and x.max() <= site.width_m - margin_m
        and y.max() <= site.height_m - margin_m
    )


def plan_flights(
    cfg: SynthConfig,
    site: Site,
    rng: np.random.Generator,
    interest: np.ndarray | None = None,
) -> list[list[dict[str, Any]]]:
    """Straight flight lines of overlapping nadir photos inside the scene.

    Each line has its own true altitude (GSD), track and crab angle; photos
    follow at ``(1 - forward_overlap) × footprint`` with small jitter. Like
    the real survey, lines favour the mountains: of a few valid placements
    the one whose photo centres score highest on ``interest`` (``[H x W]`` on
    the 10 m grid) is kept. When the scene is too small (a small ``--dem``)
    lines get fewer photos, with a warning.

    Returns:
        Per line, per photo: dict with center_x, center_y, altitude_m,
        azimuth_deg, gsd_m, track_deg.

    Raises:
        InvalidInputError: not even one photo fits in the scene.
    """
    camera = cfg.camera
    film_over_focal = camera.film_width_mm / camera.focal_length_mm
    lines: list[list[dict[str, Any]]] = []
    reduced = False
    margin = min(cfg.edge_margin_m, 0.15 * min(site.width_m, site.height_m))
    for _ in range(cfg.n_lines):
        placed: list[dict[str, Any]] | None = None
        for k in range(cfg.photos_per_line, 0, -1):
            candidates: list[list[dict[str, Any]]] = []
            for _attempt in range(300):
                alt = cfg.nominal_altitude_m * (
                    1 + rng.uniform(-cfg.altitude_jitter_frac, cfg.altitude_jitter_frac)
                )
                side = alt * film_over_focal
                gsd = side / cfg.image_px
                spacing = (1 - cfg.forward_overlap) * side
                track = rng.uniform(0, 360)
                crab = rng.uniform(-cfg.crab_max_deg, cfg.crab_max_deg)
                cx = site.x0 + rng.uniform(0.1, 0.9) * site.width_m
                cy = site.y0 - rng.uniform(0.1, 0.9) * site.height_m
                tx, ty = math.sin(math.radians(track)), math.cos(math.radians(track))
                steps = spacing * (1 + rng.uniform(-0.04, 0.04, k))
                along = np.cumsum(steps) - steps[0]
                along -= along.mean()
                across = np.cumsum(rng.normal(0, 0.01 * side, k))
                across -= across.mean()
                photos = []
                for s_m, c_m in zip(along, across, strict=True):
                    photos.append(
                        {
                            "center_x": float(cx + s_m * tx + c_m * ty),
                            "center_y": float(cy + s_m * ty - c_m * tx),
                            "altitude_m": float(alt),
                            "azimuth_deg": float((track + crab + rng.normal(0, 0.4)) % 360),
                            "gsd_m": float(gsd),
                            "track_deg": float(track),
                            "side_m": float(side),
                        }
                    )
                ok = all(_inside(_corners(p), site, margin) for p in photos) and _separated(
                    photos, lines, 0.6 * side
                )
                if ok:
                    candidates.append(photos)
                    if len(candidates) == CANDIDATE_LINES:
                        break
            if candidates:
                scores = [_interest(c, site, interest) for c in candidates]
                placed = candidates[int(np.argmax(scores))]
                break
        if placed is None:
            reduced = True
            continue
        if len(placed) < cfg.photos_per_line:
            reduced = True
        lines.append(placed)
    n = sum(len(line) for line in lines)
    if n == 0:
        need = cfg.footprint_m * math.sqrt(2) + 2 * margin
        raise InvalidInputError(
            f"scene of {site.width_m / 1000:.1f} × {site.height_m / 1000:.1f} km is too small for "
            f"preset {cfg.name!r} (one photo needs about {need / 1000:.1f} km): "
            "use a larger DEM or --preset tiny"
        )
    if reduced:
        warnings.warn(
            f"scene too small for {cfg.n_lines} lines × {cfg.photos_per_line} photos: "
            f"placed {n} photos",
            stacklevel=3,
        )
    return lines


def _interest(photos: list[dict[str, Any]], site: Site, interest: np.ndarray | None) -> float:
    if interest is None:
        return 0.0
    h, w = interest.shape
    total = 0.0
    for p in photos:
        col = int(np.clip((p["center_x"] - site.x0) / REFERENCE_GSD_M, 0, w - 1))
        row = int(np.clip((site.y0 - p["center_y"]) / REFERENCE_GSD_M, 0, h - 1))
        total += float(interest[row, col])
    return total / len(photos)


def _corners(p: dict[str, Any]) -> np.ndarray:
    return footprint_corners(
        center_x=p["center_x"],
        center_y=p["center_y"],
        width_m=p["side_m"],
        height_m=p["side_m"],
        azimuth_deg=p["azimuth_deg"],
    )


def _separated(photos: list[dict[str, Any]], lines: list[list[dict[str, Any]]], d: float) -> bool:
    for line in lines:
        for q in line:
            for p in photos:
                if math.hypot(p["center_x"] - q["center_x"], p["center_y"] - q["center_y"]) < d:
                    return False
    return True


def _disk(rng: np.random.Generator, radius: float) -> np.ndarray:
    r = radius * math.sqrt(rng.uniform())
    a = rng.uniform(0, 2 * math.pi)
    return np.array([r * math.cos(a), r * math.sin(a)])


def make_poses_and_catalog(
    cfg: SynthConfig, lines: list[list[dict[str, Any]]], rng: np.random.Generator
) -> tuple[list[PhotoPose], list[CatalogRow]]:
    """True poses and the noisy catalog (errors within the configured bounds)."""
    poses: list[PhotoPose] = []
    rows: list[CatalogRow] = []
    rolls = rng.choice(np.arange(1000, 10000), size=len(lines), replace=False)
    year = int(rng.integers(1958, 1969))
    pos_max = cfg.position_error_max_m
    alt_max = 0.999 * cfg.altitude_error_max_frac
    hdg_max = cfg.heading_error_max_deg
    for line, roll in zip(lines, rolls, strict=True):
        flight_line = f"TMA{int(roll)}"
        frame0 = int(rng.integers(1, 200))
        month = int(rng.choice([10, 11, 0, 1]))
        date = f"{int(rng.integers(1, 29))} {MONTHS[month]} {year % 100:02d}"
        minutes0 = int(rng.integers(9 * 60, 17 * 60))
        line_offset = _disk(rng, 0.6 * pos_max)
        line_alt = rng.uniform(-0.6, 0.6) * alt_max
        for k, p in enumerate(line):
            frame = frame0 + k
            photo_id = f"CA{int(roll):04d}V{frame:04d}"
            offset = line_offset + _disk(rng, 0.4 * pos_max)
            alt_err = line_alt + rng.uniform(-0.4, 0.4) * alt_max
            alt_cat = p["altitude_m"] * (1 + alt_err)
            # the catalog gives the track from the flight map, the photo points along the heading
            hdg_err = float(
                np.clip(
                    ((p["track_deg"] - p["azimuth_deg"] + 180) % 360 - 180)
                    + rng.normal(0, hdg_max / 3),
                    -hdg_max,
                    hdg_max,
                )
            )
            minutes = minutes0 + (k * 20) // 60
            poses.append(
                PhotoPose(
                    photo_id=photo_id,
                    flight_line=flight_line,
                    frame=frame,
                    center_x=p["center_x"],
                    center_y=p["center_y"],
                    altitude_m=p["altitude_m"],
                    azimuth_deg=p["azimuth_deg"],
                    gsd_m=p["gsd_m"],
                    image_px=cfg.image_px,
                    altimeter_ft=alt_cat * FEET_PER_M,
                    clock_hm=((minutes // 60) % 24, minutes % 60),
                    roll=int(roll),
                    date=date,
                )
            )
            rows.append(
                CatalogRow(
                    photo_id=photo_id,
                    path=photo_file(photo_id),
                    flight_line=flight_line,
                    frame=frame,
                    x=round(p["center_x"] + float(offset[0]), 1),
                    y=round(p["center_y"] + float(offset[1]), 1),
                    altitude_m=round(alt_cat, 1),
                    focal_length_mm=cfg.focal_length_mm,
                    azimuth_deg=round((p["azimuth_deg"] + hdg_err) % 360, 2),
                )
            )
    return poses, rows


# --------------------------------------------------------------------------- rendering


def _slopes(surface: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d_row, d_col = np.gradient(surface, REFERENCE_GSD_M)
    return d_col.astype(np.float32), (-d_row).astype(np.float32)


def _fractions(epoch: Epoch) -> dict[str, np.ndarray]:
    return cover_fractions(
        sea_m=epoch.sea_m,
        ice_m=epoch.ice_m,
        rock=epoch.rock,
        seaice=epoch.seaice,
        blue=epoch.blue,
    )


def render_reference(
    terrain: Terrain, epoch: Epoch, sun: Sun, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sentinel-2-like RGB ``[3 x H x W]`` uint8 of ``epoch``, and its shadow ``[H x W]``."""
    dzdx, dzdy = _slopes(epoch.surface_m)
    cos_i, sky = illumination(dzdx, dzdy, sun)
    shadow = np.maximum(cast_shadow(epoch.surface_m, REFERENCE_GSD_M, sun), cos_i <= 0)
    x, y = grid_xy(epoch.surface_m.shape, REFERENCE_GSD_M)
    light_rock = terrain.geology.light_fraction(epoch.surface_m, x, y)
    albedo = reflectance(_fractions(epoch), light_rock, terrain.texture, pan=False)
    return sentinel2_rgb(albedo, cos_i, shadow, sky, sun, rng), shadow.astype(np.float32)


def render_film_epoch(terrain: Terrain, epoch: Epoch, sun: Sun) -> np.ndarray:
    """The epoch as nominal film sees it at 10 m, without defects: ``[H x W]`` uint8."""
    dzdx, dzdy = _slopes(epoch.surface_m)
    cos_i, sky = illumination(dzdx, dzdy, sun)
    shadow = cast_shadow(epoch.surface_m, REFERENCE_GSD_M, sun)
    x, y = grid_xy(epoch.surface_m.shape, REFERENCE_GSD_M)
    light_rock = terrain.geology.light_fraction(epoch.surface_m, x, y)
    albedo = reflectance(_fractions(epoch), light_rock, terrain.texture, pan=True)
    rho = radiance(albedo, cos_i, shadow, sky, sun, FILM_DIFFUSE)
    return np.clip(np.round(film_curve(rho) * 255), 0, 255).astype(np.uint8)


def draw_suns(
    rng: np.random.Generator,
    *,
    turn_deg: tuple[float, float] = (45.0, 160.0),
    elevation_deg: tuple[float, float] = (18.0, 33.0),
) -> tuple[Sun, Sun]:
    """Low modern (Sentinel-2) sun, and a historical sun from another direction.

    The historical azimuth is the modern one turned by ``turn_deg`` (a
    uniform ``(min, max)``, either way); its elevation is uniform in
    ``elevation_deg``, moved to 3.5° from the modern one when closer than 3°.
    The same draws from ``rng`` whatever the ranges.
    """
    modern = Sun(azimuth_deg=float(rng.uniform(0, 360)), elevation_deg=float(rng.uniform(15, 28)))
    turn = rng.uniform(*turn_deg) * (1 if rng.uniform() < 0.5 else -1)
    el = float(rng.uniform(*elevation_deg))
    if abs(el - modern.elevation_deg) < 3:
        el = modern.elevation_deg + (3.5 if el >= modern.elevation_deg else -3.5)
    hist = Sun(azimuth_deg=float((modern.azimuth_deg + turn) % 360), elevation_deg=el)
    return modern, hist


# --------------------------------------------------------------------------- writing


def _write_gpkg(path: Path, frame: gpd.GeoDataFrame, layer: str) -> Path:
    with atomic_output(path) as tmp:
        frame.to_file(tmp, driver="GPKG", layer=layer)
    return path


def _write_catalog(out: Path, rows: list[CatalogRow]) -> tuple[Path, Path]:
    to_lonlat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform([r.x for r in rows], [r.y for r in rows])
    common = {
        "photo_id": [r.photo_id for r in rows],
        "path": [r.path for r in rows],
        "flight_line": [r.flight_line for r in rows],
        "frame": [r.frame for r in rows],
    }
    tail = {
        "altitude_m": [r.altitude_m for r in rows],
        "focal_length_mm": [r.focal_length_mm for r in rows],
        "azimuth_deg": [r.azimuth_deg for r in rows],
        "view": [r.view for r in rows],
    }
    csv = pd.DataFrame({**common, "lon": np.round(lon, 7), "lat": np.round(lat, 7), **tail})
    csv_path = out / CATALOG_CSV_FILE
    with atomic_output(csv_path) as tmp:
        csv.to_csv(tmp, index=False)
    points = gpd.GeoDataFrame(
        {**common, "x": [r.x for r in rows], "y": [r.y for r in rows], **tail},
        geometry=gpd.points_from_xy([r.x for r in rows], [r.y for r in rows]),
        crs=CRS,
    )
    return csv_path, _write_gpkg(out / CATALOG_FILE, points, "catalog")


def _truth_record(
    pose: PhotoPose,
    box: tuple[int, int, int, int],
    look: FilmLook,
    scan_shape: tuple[int, int],
    extra_film: dict[str, Any] | None = None,
) -> TruthRecord:
    to_map = pose.image_to_map() @ Affine.translation(-box[0], -box[1])
    return TruthRecord(
        photo_id=pose.photo_id,
        path=photo_file(pose.photo_id),
        flight_line=pose.flight_line,
        frame=pose.frame,
        center_x=pose.center_x,
        center_y=pose.center_y,
        altitude_m=pose.altitude_m,
        azimuth_deg=pose.azimuth_deg,
        gsd_m=pose.gsd_m,
        image_box_px=tuple(box),
        scan_size_px=(scan_shape[1], scan_shape[0]),
        pixel_to_map=(to_map.a, to_map.b, to_map.c, to_map.d, to_map.e, to_map.f),
        footprint=tuple((x, y) for x, y in pose.footprint().tolist()),
        film={**look.to_dict(), **(extra_film or {})},
    )


# --------------------------------------------------------------------------- entry point


def make_archive(
    out_dir: str | os.PathLike[str],
    *,
    seed: int,
    preset: str = "default",
    dem: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
    config: SynthConfig | None = None,
) -> ArchiveManifest:
    """Write a synthetic TMA archive with ground truth into ``out_dir``.

    Args:
        out_dir: folder to write (created; existing outputs are replaced).
        seed: non-negative integer; the same seed and preset give the same archive.
        preset: ``tiny``, ``default``, ``large`` or ``hard`` (see :data:`PRESETS`).
        dem: a real DEM to use instead of fractal terrain (any CRS; see
            :func:`~aeroloc.synth.terrain.dem_terrain`).
        progress: called with one-line status messages.
        config: full settings, overriding ``preset``.

    Raises:
        ConfigError: unknown preset.
        InvalidInputError: negative seed; scene too small for one photo.
        MissingFileError, RasterReadError, DataQualityError: bad ``dem``.
        OutputError: ``out_dir`` not writable.
    """
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    cfg = config if config is not None else get_preset(preset)
    if dem is not None:
        check_dem(dem)
    out = Path(out_dir)
    for folder in (out, out / "photos"):
        remove_temp_files(folder)  # left by a killed run into the same folder
    # streams[10] (clouds) came with the hard preset; spawn keys 0-9 are unchanged by it
    streams = np.random.SeedSequence(int(seed)).spawn(11)
    rngs = [np.random.default_rng(s) for s in streams[:8]]
    r_site, r_terrain, r_modern, r_hist, r_sun, r_ref, r_rock, r_plan = rngs

    side_px = round(cfg.scene_size_m / REFERENCE_GSD_M)
    site = choose_site(r_site, width_px=side_px, height_px=side_px)
    if dem is not None:
        say(f"terrain: reading DEM {dem}")
        terrain = dem_terrain(dem, cfg, site, r_terrain)
        site = terrain.site
    else:
        say(f"terrain: {cfg.scene_size_m / 1000:.0f} km fractal ranges near {site.name}")
        terrain = fractal_terrain(cfg, site, r_terrain)
    # plan first: a scene too small for the flight plan fails before anything is written
    land_score = terrain.rock_score[terrain.front_m > 0]
    if land_score.size == 0:
        land_score = terrain.rock_score
    rugged = terrain.rock_score > np.quantile(land_score, 0.7)
    interest = blur_px(rugged.astype(np.float32), 100.0)
    del rugged
    lines = plan_flights(cfg, site, r_plan, interest)
    poses, catalog = make_poses_and_catalog(cfg, lines, r_plan)
    modern = make_epoch(terrain, "modern", r_modern)
    historical = make_epoch(
        terrain,
        "historical",
        r_hist,
        rock_share=cfg.historical_rock_share,
        ice_gain_scale=cfg.historical_ice_gain_scale,
    )
    sun_modern, sun_hist = draw_suns(
        r_sun,
        turn_deg=cfg.historical_sun_turn_deg,
        elevation_deg=cfg.historical_sun_elevation_deg,
    )
    transform = Affine(REFERENCE_GSD_M, 0.0, site.x0, 0.0, -REFERENCE_GSD_M, site.y0)

    say("reference: Sentinel-2-like RGB at 10 m")
    rgb, shadow_modern = render_reference(terrain, modern, sun_modern, r_ref)
    reference_path = write_geotiff(out / REFERENCE_FILE, rgb, transform=transform, crs=CRS)
    del rgb
    truth_epoch_path = write_geotiff(
        out / TRUTH_EPOCH_FILE,
        render_film_epoch(terrain, historical, sun_hist),
        transform=transform,
        crs=CRS,
    )

    say("rock outcrops: ADD-like polygons")
    fr = _fractions(modern)
    outcrops: OutcropResult = rock_outcrops(
        fr["rock"] > 0.5,
        modern.rock,
        shadow_modern,
        modern.sea_m > 0,
        transform,
        r_rock,
    )
    del fr, shadow_modern
    rock_path = _write_gpkg(
        out / ROCK_MASK_FILE,
        gpd.GeoDataFrame(
            {
                "id": np.arange(1, len(outcrops.polygons) + 1),
                "area_m2": [round(p.area, 1) for p in outcrops.polygons],
            },
            geometry=list(outcrops.polygons) if outcrops.polygons else gpd.GeoSeries([]),
            crs=CRS,
        ),
        "rock_outcrop",
    )

    photo_rngs = [np.random.default_rng(s) for s in streams[8].spawn(len(poses))]
    world = HistoricalWorld(
        site=site,
        epoch=historical,
        geology=terrain.geology,
        texture=terrain.texture,
        far_horizon=far_horizon(historical.surface_m, REFERENCE_GSD_M, sun_hist, cfg.shadow_near_m),
        near_m=cfg.shadow_near_m,
        sun=sun_hist,
        detail=DetailTile(np.random.default_rng(streams[9])),
        clouds=(
            draw_cloud_layers(
                site,
                list(dict.fromkeys(p.flight_line for p in poses)),
                cover=cfg.cloud_shadow_cover,
                darkening=cfg.cloud_shadow_darkening,
                rng=np.random.default_rng(streams[10]),
            )
            if cfg.cloud_shadows
            else None
        ),
    )

    def one(k: int) -> tuple[np.ndarray, TruthRecord]:
        pose = poses[k]
        scan, box, look = render_photo(world, pose, photo_rngs[k])
        layer = cloud_layer(world, pose)
        extra = None if layer is None else {"cloud_shadow": layer.to_dict()}
        return scan, _truth_record(pose, box, look, scan.shape, extra)

    photo_paths: list[Path] = []
    records: list[TruthRecord] = []
    # render in worker threads, write here (GDAL warning filters are not thread-safe)
    with ThreadPoolExecutor(max_workers=cfg.n_workers) as pool:
        for k, (scan, record) in enumerate(pool.map(one, range(len(poses)))):
            photo_paths.append(write_geotiff(out / photo_file(poses[k].photo_id), scan))
            records.append(record)
            say(f"photo {k + 1}/{len(poses)}: {poses[k].photo_id}")

    csv_path, cat_gpkg = _write_catalog(out, catalog)
    truth_gpkg = _write_gpkg(
        out / TRUTH_GPKG_FILE,
        gpd.GeoDataFrame(
            {
                key: [getattr(r, key) for r in records]
                for key in (
                    "photo_id",
                    "flight_line",
                    "frame",
                    "center_x",
                    "center_y",
                    "altitude_m",
                    "azimuth_deg",
                    "gsd_m",
                )
            },
            geometry=[shapely.Polygon(r.footprint) for r in records],
            crs=CRS,
        ),
        "truth",
    )
    truth_json = write_truth(
        out,
        records,
        crs=CRS,
        seed=int(seed),
        preset=cfg.name,
        extra={
            "dem": None if dem is None else str(dem),
            "config": cfg.to_dict(),
            "site": {
                "name": site.name,
                "x0": site.x0,
                "y0": site.y0,
                "width_px": site.width_px,
                "height_px": site.height_px,
                "px_m": REFERENCE_GSD_M,
            },
            "sun": {"reference": sun_modern.to_dict(), "photos": sun_hist.to_dict()},
            "rock_outcrop_agreement": outcrops.stats(),
        },
    )
    elapsed = time.perf_counter() - t0
    say(f"done: {len(poses)} photos in {elapsed:.1f} s")
    return ArchiveManifest(
        out_dir=out,
        reference=reference_path,
        truth_epoch=truth_epoch_path,
        rock_outcrop=rock_path,
        catalog_csv=csv_path,
        catalog_gpkg=cat_gpkg,
        truth_json=truth_json,
        truth_gpkg=truth_gpkg,
        photos=tuple(photo_paths),
        seed=int(seed),
        preset=cfg.name,
        n_photos=len(poses),
        elapsed_s=elapsed,
    )
