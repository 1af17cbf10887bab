"""Area of interest: rough photo footprint plus buffer, and the reference cropped to it.

The rough footprint is the ground rectangle of a nadir photo centred on the
catalog's camera centre: ground size = altitude × film size / focal length,
rotated so that its top edge points along the flight heading. The AoI is that
rectangle grown by ``buffer_m`` on every side (10 km by default, since TMA
camera centres are off by a few km).

:func:`crop_reference` reads only the AoI's window of each reference raster
(windowed reads; a :class:`~rasterio.vrt.WarpedVRT` onto the AoI grid when the
reference is in another CRS or on another grid), so memory is bounded by the
AoI, not the scene.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform, transform_bounds
from shapely.geometry import Point, Polygon, box

from aeroloc.catalog import PhotoRecord
from aeroloc.errors import (
    ConfigError,
    CRSError,
    DataQualityError,
    InvalidInputError,
    NoOverlapError,
    RasterReadError,
)
from aeroloc.files import atomic_output, finite_or_nan, open_raster, write_geotiff
from aeroloc.geometry import Camera, check_altitude, footprint_corners

DEFAULT_BUFFER_M = 10_000.0
MAX_BUFFER_M = 500_000.0
#: Largest AoI grid read per band (pixels); a guard against a too-fine resolution.
MAX_AOI_PIXELS = 100_000_000
#: Fewest reference pixels with data an AoI must hold (a 1 x 1 reference, or one far
#: coarser than the AoI, is no picture to search).
MIN_VALID_PIXELS = 16
# GDAL's default (0.125 px) approximates the warp by up to a metre at 10 m;
# AoI pixels feed geolocation, so approximate 10 times closer.
WARP_TOLERANCE_PX = 0.01


class PartialOverlapWarning(UserWarning):
    """Part of the AoI lies outside the reference data; those pixels are NaN."""


# GEOS returns an empty polygon for a buffer far below the coordinates'
# precision (1e-20 m around a 457 m footprint), so a buffer under 1 mm is none.
_MIN_BUFFER_M = 1e-3


@dataclass(frozen=True, kw_only=True)
class AoIConfig:
    """How to build an AoI.

    Attributes:
        buffer_m: distance added on every side of the rough footprint (m).
        camera: camera used when a record gives no focal length (default TMA:
            152.4 mm lens, 9 × 9 in film); its film format is always used.
        default_altitude_m: flying height for records without altitude; None
            makes a missing altitude an error.
    """

    buffer_m: float = DEFAULT_BUFFER_M
    camera: Camera = field(default_factory=Camera)
    default_altitude_m: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.buffer_m) and 0.0 <= self.buffer_m <= MAX_BUFFER_M):
            raise ConfigError(
                f"buffer_m must be between 0 and {MAX_BUFFER_M:.0f} m, got {self.buffer_m}"
            )
        if not isinstance(self.camera, Camera):
            raise ConfigError(f"camera must be an aeroloc.geometry.Camera, got {self.camera!r}")
        if self.default_altitude_m is not None:
            try:
                check_altitude(self.default_altitude_m)
            except InvalidInputError as exc:
                raise ConfigError(f"default_altitude_m: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class AoI:
    """Area of interest around one photo's approximate position.

    Attributes:
        polygon: footprint grown by ``buffer_m`` (map CRS, m).
        bounds: ``(minx, miny, maxx, maxy)`` of ``polygon``.
        crs: map CRS.
        footprint: rough photo footprint (rectangle; top edge along the heading).
        buffer_m: buffer used.
        center_x: camera centre easting (m).
        center_y: camera centre northing (m).
        ground_width_m: footprint width across track (m).
        ground_height_m: footprint height along track (m).
        azimuth_deg: heading used, or None when unknown (the AoI then covers
            every heading: a disc around the centre).
        photo_id: the photo, when built from a record.
    """

    polygon: Polygon
    bounds: tuple[float, float, float, float]
    crs: CRS
    footprint: Polygon
    buffer_m: float
    center_x: float
    center_y: float
    ground_width_m: float
    ground_height_m: float
    azimuth_deg: float | None = None
    photo_id: str | None = None

    @property
    def width_m(self) -> float:
        """East-west extent of the AoI bounds (m)."""
        return self.bounds[2] - self.bounds[0]

    @property
    def height_m(self) -> float:
        """North-south extent of the AoI bounds (m)."""
        return self.bounds[3] - self.bounds[1]

    def describe(self) -> str:
        """``(minx..maxx, miny..maxy) EPSG:3031`` for messages."""
        minx, miny, maxx, maxy = self.bounds
        return f"({minx:.0f}..{maxx:.0f}, {miny:.0f}..{maxy:.0f}) {_crs_name(self.crs)}"


@dataclass(frozen=True, kw_only=True, eq=False)
class AoIRaster:
    """Reference data cropped to an AoI, on one north-up grid.

    Attributes:
        data: ``[B x H x W]`` float32; NaN where no reference has data.
        transform: pixel ``(col, row)`` → map ``(x, y)``.
        crs: map CRS (the AoI's).
        polygon: the AoI polygon.
        resolution_m: pixel size (m).
        sources: reference files that were read, in priority order.
    """

    data: np.ndarray
    transform: Affine
    crs: CRS
    polygon: Polygon
    resolution_m: float
    sources: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise InvalidInputError(f"AoIRaster data must be [B x H x W], got {self.data.shape}")

    @property
    def valid_mask(self) -> np.ndarray:
        """``[H x W]`` bool: True where every band has data."""
        return np.asarray(np.all(np.isfinite(self.data), axis=0))

    @property
    def valid_fraction(self) -> float:
        """Fraction of the grid's pixels with data in every band."""
        mask = self.valid_mask
        return float(mask.mean()) if mask.size else 0.0

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` of the grid."""
        _, h, w = self.data.shape
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (w, h)
        return (min(left, right), min(top, bottom), max(left, right), max(top, bottom))


def rough_footprint(
    center: PhotoRecord | tuple[float, float],
    *,
    altitude_m: float | None = None,
    azimuth_deg: float | None = None,
    camera: Camera | None = None,
) -> Polygon:
    """Ground rectangle of a nadir photo, top edge along the heading.

    Args:
        center: a catalog record, or a camera centre ``(x, y)`` in map metres.
        altitude_m: flying height above ground; default: the record's.
        azimuth_deg: heading clockwise from grid north; default: the record's, else 0.
        camera: film format and focal length; default TMA, with the record's
            focal length when it has one.

    Returns:
        Polygon with corners top-left, top-right, bottom-right, bottom-left.
    """
    x, y, altitude, azimuth, cam = _resolve(center, altitude_m, azimuth_deg, camera)
    width_m, height_m = cam.ground_size_m(altitude)
    return _rectangle(x, y, width_m, height_m, azimuth)


def _rectangle(
    x: float, y: float, width_m: float, height_m: float, azimuth: float | None
) -> Polygon:
    corners = footprint_corners(
        center_x=x,
        center_y=y,
        width_m=width_m,
        height_m=height_m,
        azimuth_deg=0.0 if azimuth is None else azimuth,
    )
    return Polygon(corners)


def _resolve(
    center: PhotoRecord | tuple[float, float],
    altitude_m: float | None,
    azimuth_deg: float | None,
    camera: Camera | None,
) -> tuple[float, float, float, float | None, Camera]:
    if isinstance(center, PhotoRecord):
        x, y = center.x, center.y
        altitude = altitude_m if altitude_m is not None else center.altitude_m
        azimuth = azimuth_deg if azimuth_deg is not None else center.azimuth_deg
        cam = center.camera(camera)
        what = f"photo {center.photo_id}"
    else:
        x, y = (float(v) for v in center)
        altitude, azimuth, cam = altitude_m, azimuth_deg, camera or Camera()
        what = "the photo"
    if altitude is None:
        raise InvalidInputError(
            f"{what} has no altitude_m: add it to the catalog or set a default altitude "
            "(AoIConfig.default_altitude_m)"
        )
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InvalidInputError(f"{what}: camera centre ({x}, {y}) is not finite")
    check_altitude(altitude)
    if azimuth is not None and not math.isfinite(azimuth):
        raise InvalidInputError(f"{what}: azimuth_deg must be finite, got {azimuth}")
    return x, y, altitude, azimuth, cam


def build_aoi(record: PhotoRecord, config: AoIConfig | None = None) -> AoI:
    """Rough footprint of ``record`` grown by the buffer.

    The footprint uses the record's altitude (or ``config.default_altitude_m``),
    its focal length (or the config camera's) and the config's film format. The
    AoI is the footprint grown by ``buffer_m`` with square corners, so its side
    is ``ground size + 2 × buffer_m``. With no heading in the record, the AoI is
    the disc that contains the footprint at any heading, grown by the buffer.
    Oblique (left/right) views are treated as nadir, with a warning.
    """
    cfg = config or AoIConfig()
    altitude = record.altitude_m if record.altitude_m is not None else cfg.default_altitude_m
    x, y, altitude, azimuth, camera = _resolve(record, altitude, None, cfg.camera)
    width_m, height_m = camera.ground_size_m(altitude)
    footprint = _rectangle(x, y, width_m, height_m, azimuth)
    if record.view != "nadir":
        warnings.warn(
            f"photo {record.photo_id} is an oblique ({record.view}) view; its AoI is built "
            "as for a nadir photo and may miss the imaged area",
            stacklevel=2,
        )
    if azimuth is None:
        radius = math.hypot(width_m, height_m) / 2 + cfg.buffer_m
        polygon = Point(x, y).buffer(radius, quad_segs=32)
    elif cfg.buffer_m >= _MIN_BUFFER_M:
        polygon = footprint.buffer(cfg.buffer_m, join_style="mitre", mitre_limit=2.0)
    else:
        polygon = footprint
    minx, miny, maxx, maxy = polygon.bounds
    return AoI(
        polygon=polygon,
        bounds=(float(minx), float(miny), float(maxx), float(maxy)),
        crs=record.crs,
        footprint=footprint,
        buffer_m=cfg.buffer_m,
        center_x=x,
        center_y=y,
        ground_width_m=width_m,
        ground_height_m=height_m,
        azimuth_deg=azimuth,
        photo_id=record.photo_id,
    )


def aoi_from_bounds(
    bounds: Sequence[float],
    crs: CRS | str,
    *,
    ground_size_m: float = 0.0,
    azimuth_deg: float | None = None,
    photo_id: str | None = None,
) -> AoI:
    """An AoI given directly as ``(minx, miny, maxx, maxy)`` in ``crs`` (no catalog).

    The rough footprint is a square of ``ground_size_m`` at the box centre
    (a point when unknown); ``buffer_m`` is recorded as 0.
    """
    from aeroloc.files import parse_crs

    if len(bounds) != 4 or not all(math.isfinite(float(v)) for v in bounds):
        raise InvalidInputError(
            f"AoI bounds must be 4 finite numbers MINX,MINY,MAXX,MAXY, got {bounds}"
        )
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    if not (maxx > minx and maxy > miny):
        raise InvalidInputError(
            f"AoI bounds must have MAXX > MINX and MAXY > MINY, got {minx},{miny},{maxx},{maxy}"
        )
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    footprint = (
        _rectangle(cx, cy, ground_size_m, ground_size_m, azimuth_deg)
        if ground_size_m > 0
        else Point(cx, cy).buffer(1.0)
    )
    return AoI(
        polygon=box(minx, miny, maxx, maxy),
        bounds=(minx, miny, maxx, maxy),
        crs=parse_crs(crs),
        footprint=footprint,
        buffer_m=0.0,
        center_x=cx,
        center_y=cy,
        ground_width_m=ground_size_m,
        ground_height_m=ground_size_m,
        azimuth_deg=azimuth_deg,
        photo_id=photo_id,
    )


def check_projected(crs: CRS, what: str) -> CRS:
    """Return ``crs`` when its units are metres; raise :class:`CRSError` for degrees.

    Every stage measures in metres (buffer, footprint, pixel size), so the CRS
    the pipeline works in (the first reference's) must be projected.
    """
    if crs.is_geographic or not crs.is_projected:
        raise CRSError(
            f"{what} is in a geographic CRS ({_crs_name(crs)}, degrees) but aeroloc works in "
            "metres: reproject it to a projected CRS first, e.g. "
            "gdalwarp -t_srs EPSG:3031 in.tif out.tif"
        )
    return crs


def check_center_in_reference(
    record: PhotoRecord, paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]
) -> tuple[Path, ...]:
    """References whose extent contains the photo's camera centre.

    Raises:
        NoOverlapError: the centre lies outside every reference.
        MissingFileError, RasterReadError, CRSError: a reference cannot be used.
    """
    refs = _as_paths(paths)
    inside: list[Path] = []
    extents: list[str] = []
    for p in refs:
        with open_raster(p, what="reference raster", need_crs=True) as ds:
            x, y = _transform_point(record.x, record.y, record.crs, ds.crs)
            left, bottom, right, top = ds.bounds
            if min(left, right) <= x <= max(left, right) and min(bottom, top) <= y <= max(
                bottom, top
            ):
                inside.append(p)
            extents.append(f"{p.name} {_fmt_bounds(ds.bounds)} {_crs_name(ds.crs)}")
    if not inside:
        raise NoOverlapError(
            f"camera centre ({record.x:.0f}, {record.y:.0f}) {_crs_name(record.crs)} of photo "
            f"{record.photo_id} lies outside reference {'; '.join(extents)}: "
            "check the catalog's x/y columns and --crs"
        )
    return tuple(inside)


def crop_reference(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    aoi: AoI,
    *,
    resolution_m: float | None = None,
    resampling: str = "bilinear",
    warn_partial: bool = True,
) -> AoIRaster:
    """Read the AoI from one or more reference rasters onto one north-up grid.

    The grid covers ``aoi.bounds`` in ``aoi.crs``. Its pixel size is
    ``resolution_m`` or the first reference's; when the first reference is in
    the AoI's CRS, the grid is aligned with its pixels, so those pixels are
    copied exactly. References in another CRS or on another grid are read
    through a WarpedVRT onto the AoI grid. Several references are mosaicked
    in order by :func:`rasterio.merge.merge` (``method="first"``): the first
    valid pixel wins.

    Args:
        paths: reference rasters, highest priority first.
        aoi: area of interest.
        resolution_m: output pixel size (m); default: the first reference's.
        resampling: rasterio resampling name used when warping.
        warn_partial: warn when part of the AoI has no data. Callers that
            expect it pass False rather than filtering warnings, which is not
            thread-safe (``warnings.catch_warnings`` changes global state).

    Returns:
        AoIRaster with ``[B x H x W]`` float32 data, NaN outside the data.

    Raises:
        NoOverlapError: the AoI does not overlap any reference.
        DataQualityError: the AoI overlaps only nodata.
        MissingFileError, RasterReadError, CRSError: a reference cannot be used.
        InvalidInputError: bad resolution, different band counts, grid too large.

    Warns:
        PartialOverlapWarning: part of the AoI has no data (NaN there).
    """
    refs = _as_paths(paths)
    try:
        method = Resampling[resampling]
    except KeyError:
        known = ", ".join(r.name for r in Resampling if r.value < 8)
        raise ConfigError(f"unknown resampling {resampling!r}: use one of {known}") from None
    if resolution_m is not None and not (math.isfinite(resolution_m) and resolution_m > 0):
        raise InvalidInputError(f"resolution_m must be > 0, got {resolution_m}")
    check_projected(aoi.crs, f"the AoI of {refs[0].name}")

    datasets: list[rasterio.DatasetReader] = []
    try:
        for p in refs:
            datasets.append(open_raster(p, what="reference raster", need_crs=True))
        _check_overlap(datasets, aoi)
        bands = [_data_bands(ds) for ds in datasets]
        for ds, b in zip(datasets[1:], bands[1:], strict=True):
            if len(b) != len(bands[0]):
                raise InvalidInputError(
                    f"reference {Path(ds.name).name} has {len(b)} bands but "
                    f"{Path(datasets[0].name).name} has {len(bands[0])}: "
                    "mosaicked references need the same bands"
                )
        transform, width, height, res = _aoi_grid(datasets[0], aoi, resolution_m)
        out = _mosaic(datasets, bands, aoi.crs, transform, width, height, method)
    finally:
        for ds in datasets:
            ds.close()

    result = AoIRaster(
        data=out,
        transform=transform,
        crs=aoi.crs,
        polygon=aoi.polygon,
        resolution_m=res,
        sources=tuple(refs),
    )
    valid = result.valid_fraction
    names = ", ".join(p.name for p in refs)
    if valid == 0.0:
        raise DataQualityError(
            f"AoI {aoi.describe()} overlaps reference {names} only where it has no data"
        )
    n_valid = int(result.valid_mask.sum())
    if n_valid < MIN_VALID_PIXELS:
        raise DataQualityError(
            f"AoI {aoi.describe()} holds only {n_valid} pixel(s) of reference {names} at "
            f"{result.resolution_m:g} m (at least {MIN_VALID_PIXELS} needed): the reference "
            "is too small or too coarse for this AoI"
        )
    if valid < 1.0 and warn_partial:
        warnings.warn(
            f"{1.0 - valid:.1%} of AoI {aoi.describe()} lies outside reference {names} "
            "(or on its nodata); those pixels are NaN",
            PartialOverlapWarning,
            stacklevel=2,
        )
    return result


def save_aoi(aoi_raster: AoIRaster, path: str | os.PathLike[str]) -> Path:
    """Write the cropped reference as a float32 GeoTIFF with NaN nodata, atomically."""
    return write_geotiff(
        path,
        aoi_raster.data.astype(np.float32, copy=False),
        transform=aoi_raster.transform,
        crs=aoi_raster.crs,
        nodata=float("nan"),
    )


def read_aoi(path: str | os.PathLike[str]) -> AoIRaster:
    """Read a georeferenced, north-up AoI raster (e.g. written by :func:`save_aoi`).

    Nodata becomes NaN; the polygon is the raster's extent.

    Raises:
        RasterReadError: corrupt data.
        InvalidInputError: the grid is rotated or its pixels are not square.
    """
    with open_raster(path, what="AoI raster", need_crs=True) as ds:
        try:
            data = ds.read(masked=True)
        except RasterioIOError as exc:
            raise RasterReadError(f"cannot read AoI raster {path}: corrupt data ({exc})") from exc
        transform, crs, bounds = ds.transform, ds.crs, ds.bounds
    if not _is_north_up(transform) or not math.isclose(transform.a, -transform.e):
        raise InvalidInputError(
            f"AoI raster {path} must be north-up with square pixels, found the grid {transform}"
        )
    return AoIRaster(
        data=np.asarray(np.ma.filled(data.astype(np.float32), np.nan)),
        transform=transform,
        crs=crs,
        polygon=box(*bounds),
        resolution_m=float(transform.a),
        sources=(Path(path),),
    )


def aoi_polygon_to_gpkg(aoi: AoI, path: str | os.PathLike[str]) -> Path:
    """Write the AoI and the rough footprint as two polygons (layer ``aoi``), atomically.

    Columns: ``kind`` ("aoi"/"footprint"), ``photo_id``, ``buffer_m``,
    ``azimuth_deg``.
    """
    import geopandas as gpd

    gdf = gpd.GeoDataFrame(
        {
            "kind": ["aoi", "footprint"],
            "photo_id": [aoi.photo_id or "", aoi.photo_id or ""],
            "buffer_m": [aoi.buffer_m, 0.0],
            "azimuth_deg": [
                np.nan if aoi.azimuth_deg is None else aoi.azimuth_deg,
            ]
            * 2,
        },
        geometry=[aoi.polygon, aoi.footprint],
        crs=aoi.crs.to_wkt(),
    )
    with atomic_output(path) as tmp:
        gdf.to_file(tmp, driver="GPKG", layer="aoi")
    return Path(path)


def write_aoi(
    record: PhotoRecord,
    references: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    config: AoIConfig,
) -> tuple[AoI, AoIRaster, dict[str, Path]]:
    """Crop the references to ``record``'s AoI; write ``aoi.tif`` and ``aoi.gpkg``.

    Returns:
        The AoI, the cropped reference and the written files by label.
    """
    area = build_aoi(record, config)
    check_center_in_reference(record, references)
    raster = crop_reference(references, area)
    paths = {
        "aoi raster": save_aoi(raster, Path(out_dir) / "aoi.tif"),
        "aoi polygons": aoi_polygon_to_gpkg(area, Path(out_dir) / "aoi.gpkg"),
    }
    return area, raster, paths


def _as_paths(paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[Path]:
    if isinstance(paths, str | os.PathLike):
        return [Path(paths)]
    refs = [Path(p) for p in paths]
    if not refs:
        raise InvalidInputError("no reference raster given")
    return refs


def _check_overlap(datasets: Sequence[rasterio.DatasetReader], aoi: AoI) -> None:
    aoi_box = box(*aoi.bounds)
    extents = []
    for ds in datasets:
        ref_bounds = _bounds_in(ds, aoi.crs)
        if ref_bounds is not None and box(*ref_bounds).intersects(aoi_box):
            inter = box(*ref_bounds).intersection(aoi_box)
            if inter.area > 0:
                return
        shown = _fmt_bounds(ref_bounds) if ref_bounds is not None else "(not transformable)"
        extents.append(f"{Path(ds.name).name} (bounds {shown})")
    raise NoOverlapError(
        f"AoI {aoi.describe()} does not overlap reference {'; '.join(extents)}: "
        "check the camera centre, the catalog CRS and the reference"
    )


def _bounds_in(ds: rasterio.DatasetReader, crs: CRS) -> tuple[float, float, float, float] | None:
    left, bottom, right, top = ds.bounds
    if ds.crs == crs:
        return (min(left, right), min(bottom, top), max(left, right), max(bottom, top))
    try:
        b = transform_bounds(ds.crs, crs, left, bottom, right, top, densify_pts=21)
    except (RasterioError, ValueError):  # a reference far outside the AoI CRS's domain
        return None
    if not all(math.isfinite(v) for v in b):
        return None
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def _data_bands(ds: rasterio.DatasetReader) -> list[int]:
    """1-based band indexes, without an alpha band."""
    bands = [i for i, ci in enumerate(ds.colorinterp, start=1) if ci != ColorInterp.alpha]
    return bands or list(range(1, ds.count + 1))


def _is_north_up(t: Affine) -> bool:
    return t.b == 0 and t.d == 0 and t.a > 0 and t.e < 0


def _aoi_grid(
    ds: rasterio.DatasetReader, aoi: AoI, resolution_m: float | None
) -> tuple[Affine, int, int, float]:
    """North-up grid covering ``aoi.bounds``, aligned to ``ds`` when it shares the CRS."""
    same_crs = ds.crs == aoi.crs and _is_north_up(ds.transform)
    if resolution_m is not None:
        res = float(resolution_m)
    elif same_crs:
        res = float(min(abs(ds.transform.a), abs(ds.transform.e)))
    else:
        left, bottom, right, top = ds.bounds
        t, _, _ = calculate_default_transform(
            ds.crs, aoi.crs, ds.width, ds.height, left, bottom, right, top
        )
        res = float(min(abs(t.a), abs(t.e)))
    if same_crs and math.isclose(res, ds.transform.a) and math.isclose(res, -ds.transform.e):
        origin_x, origin_y = ds.transform.c, ds.transform.f
    else:
        origin_x, origin_y = 0.0, 0.0
    minx, miny, maxx, maxy = aoi.bounds
    col0 = math.floor((minx - origin_x) / res + 1e-9)
    col1 = math.ceil((maxx - origin_x) / res - 1e-9)
    row0 = math.floor((origin_y - maxy) / res + 1e-9)
    row1 = math.ceil((origin_y - miny) / res - 1e-9)
    width, height = max(col1 - col0, 1), max(row1 - row0, 1)
    if width * height > MAX_AOI_PIXELS:
        raise InvalidInputError(
            f"AoI {aoi.describe()} at {res:g} m would be {width} x {height} pixels "
            f"(> {MAX_AOI_PIXELS:,}): use a coarser reference or a smaller AoI "
            "(--buffer-m, --aoi)"
        )
    transform = Affine(res, 0.0, origin_x + col0 * res, 0.0, -res, origin_y - row0 * res)
    return transform, width, height, res


def _mosaic(
    datasets: Sequence[rasterio.DatasetReader],
    bands: Sequence[list[int]],
    crs: CRS,
    transform: Affine,
    width: int,
    height: int,
    method: Resampling,
) -> np.ndarray:
    """``[B x H x W]`` float32 of the references on the grid, first valid pixel first.

    A reference aligned with the grid is read as it is (its pixels copied); any
    other is seen through a WarpedVRT onto the grid. ``rasterio.merge.merge``
    then reads each one's window of the grid and fills what is still NaN.
    """
    from rasterio.merge import merge

    names = ", ".join(Path(ds.name).name for ds in datasets)
    for ds, b in zip(datasets[1:], bands[1:], strict=True):
        if b != bands[0]:
            raise InvalidInputError(
                f"reference {Path(ds.name).name} has its data bands at {b} but "
                f"{Path(datasets[0].name).name} at {bands[0]}: mosaicked references need "
                "their bands (and any alpha band) in the same order"
            )
    vrts: list[WarpedVRT] = []
    sources: list[rasterio.DatasetReader | WarpedVRT] = []
    try:
        for ds in datasets:
            if _aligned_offset(ds, crs, transform) is not None:
                sources.append(ds)
                continue
            vrt = WarpedVRT(
                ds,
                crs=crs,
                transform=transform,
                width=width,
                height=height,
                resampling=method,
                dtype="float32",
                nodata=np.nan,
                tolerance=WARP_TOLERANCE_PX,
            )
            vrts.append(vrt)
            sources.append(vrt)
        left, top = transform.c, transform.f
        data: np.ndarray | None = None
        # One source at a time: NaN/Inf pixels of a float reference become nodata
        # (finite_or_nan) before the next reference may fill them, as its declared
        # nodata would; merge alone would keep an Inf as data.
        for src in sources:
            with warnings.catch_warnings():
                # rasterio's merge still multiplies Affines with `*` (its warning, not ours)
                warnings.filterwarnings("ignore", "Use `@` matmul", PendingDeprecationWarning)
                layer, _ = merge(
                    [src],
                    bounds=(left, top + transform.e * height, left + transform.a * width, top),
                    res=(transform.a, -transform.e),
                    nodata=np.nan,
                    dtype="float32",
                    indexes=bands[0],
                )
            layer = finite_or_nan(np.asarray(layer, dtype=np.float32))
            if data is None:
                data = layer
            else:
                holes = np.isnan(data)
                data[holes] = layer[holes]
            if not np.isnan(data).any():
                break
    except RasterioIOError as exc:
        raise RasterReadError(
            f"cannot read reference raster {names}: corrupt data ({exc})"
        ) from exc
    finally:
        for vrt in vrts:
            vrt.close()
    if data is None:  # no source: _as_paths refuses an empty list
        raise InvalidInputError("no reference raster given")
    if data.shape[1:] != (height, width):  # merge sizes its output from the bounds
        raise InvalidInputError(
            f"the mosaic of {names} came out {data.shape[2]} x {data.shape[1]} pixels, "
            f"expected {width} x {height}"
        )
    return np.asarray(data, dtype=np.float32)


def _aligned_offset(
    ds: rasterio.DatasetReader, crs: CRS, transform: Affine
) -> tuple[int, int] | None:
    """Pixel offset (col, row) of the grid in ``ds`` when both share CRS and pixels."""
    t = ds.transform
    if ds.crs != crs or not _is_north_up(t):
        return None
    if not (math.isclose(t.a, transform.a) and math.isclose(t.e, transform.e)):
        return None
    col = (transform.c - t.c) / t.a
    row = (transform.f - t.f) / t.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(col), round(row)


def _transform_point(x: float, y: float, src: CRS, dst: CRS) -> tuple[float, float]:
    if src == dst:
        return x, y
    from rasterio.warp import transform

    xs, ys = transform(src, dst, [x], [y])
    return float(xs[0]), float(ys[0])


def _fmt_bounds(b: Sequence[float]) -> str:
    left, bottom, right, top = b
    return f"({left:.0f}..{right:.0f}, {bottom:.0f}..{top:.0f})"


def _crs_name(crs: CRS | None) -> str:
    if crs is None:
        return "(no CRS)"
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()
