"""``photo_warped.tif``: the photo warped by GDAL onto a map grid, as a Cloud-Optimised GeoTIFF.

The scan's image area is handed to GDAL's warper (:func:`rasterio.warp.reproject`)
with the fitted transform as its georeferencing:

* similarity and affine transforms are an affine geotransform of the crop
  (exact);
* a homography is not a geotransform, so it goes in as a dense grid of GCPs
  laid through it (:func:`~aeroloc.georef.gcps.gcps_from_transform`,
  :data:`HOMOGRAPHY_GCPS_PER_SIDE` per side, corners included) and GDAL
  interpolates between them with a thin-plate spline (``SRC_METHOD=GCP_TPS``);
  for the perspective of an aerial photo that lands within a few hundredths
  of a pixel of the homography (at most about 0.2 px for a 6–8 % scale
  change across the photo; ``tests/georef/test_warp.py`` measures it).

The output grid is north-up in :attr:`WarpConfig.t_srs` (default: the
transform's CRS, i.e. the reference CRS) and covers the footprint; its pixel
is the photo pixel's ground size at the photo centre (in the transform's CRS)
or, in another CRS, the side of the square with the same area. Pixels outside
the footprint are transparent: the last band is an alpha band (the image
area's mask warped with nearest neighbour), so scan values of 0 stay 0.

The file is written by GDAL's COG driver: tiled (:attr:`WarpConfig.block_px`),
compressed, with internal overviews (each half the size of the last, down to
one tile; a warp that fits in one tile needs and has none), the IFDs ahead of
the image data. uint8 and uint16 scans keep their values and bands (alpha at
the type's maximum); other types are stretched into uint16. The warp's
settings are recorded in the file's tags (``AEROLOC_*``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioIOError
from rasterio.io import MemoryFile
from rasterio.windows import Window
from shapely.geometry import Polygon, mapping, shape

from aeroloc.errors import ConfigError, InvalidInputError, RasterReadError
from aeroloc.files import atomic_output, open_raster, parse_crs
from aeroloc.georef.gcps import gcps_from_transform
from aeroloc.georef.transform import PhotoTransform

#: Resampling methods the warp offers (GDAL warper names).
RESAMPLING_METHODS = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode")
#: Largest side of a warped GeoTIFF (pixels); a coarser grid is used beyond it.
MAX_WARP_PX = 16_000
#: GCPs per side of the grid that carries a homography into the warper.
HOMOGRAPHY_GCPS_PER_SIDE = 16
#: The GDAL driver that writes the file.
COG_DRIVER = "COG"


@dataclass(frozen=True, kw_only=True)
class WarpConfig:
    """How ``photo_warped.tif`` is made.

    Attributes:
        t_srs: target CRS (anything :func:`aeroloc.files.parse_crs` reads);
            None: the transform's CRS (the reference's).
        resampling: GDAL resampling of the photo (:data:`RESAMPLING_METHODS`),
            also used for the overviews (``nearest`` for ``mode``).
        resolution: output pixel size in target CRS units; None: the photo's
            own (see the module docstring).
        block_px: tile side (a multiple of 16).
        compress: GeoTIFF compression (``deflate``, ``lzw``, ``zstd``, ...).
    """

    t_srs: str | None = None
    resampling: str = "bilinear"
    resolution: float | None = None
    block_px: int = 256
    compress: str = "deflate"

    def __post_init__(self) -> None:
        if self.t_srs is not None:
            parse_crs(self.t_srs)
        if self.resampling not in RESAMPLING_METHODS:
            known = ", ".join(RESAMPLING_METHODS)
            raise ConfigError(f"unknown resampling {self.resampling!r}: use one of {known}")
        if self.resolution is not None and not (
            math.isfinite(self.resolution) and self.resolution > 0
        ):
            raise ConfigError(f"warp resolution must be > 0, got {self.resolution}")
        if self.block_px < 16 or self.block_px % 16:
            raise ConfigError(f"block_px must be a positive multiple of 16, got {self.block_px}")

    def target_crs(self, default: CRS) -> CRS:
        """:attr:`t_srs` parsed, or ``default``."""
        return default if self.t_srs is None else parse_crs(self.t_srs)


@dataclass(frozen=True, kw_only=True)
class WarpGrid:
    """The north-up output grid: ``[height x width]`` pixels, ``transform`` pixel → ``crs``."""

    transform: Affine
    width: int
    height: int
    crs: CRS


def warp_grid(
    transform: PhotoTransform,
    box: Sequence[float],
    *,
    crs: CRS,
    resolution: float | None = None,
) -> WarpGrid:
    """North-up grid in ``crs`` covering the footprint of ``box`` (see the module docstring)."""
    from rasterio.warp import transform_geom

    footprint = transform.footprint(box)
    c0, r0, c1, r1 = (float(v) for v in box)
    same = crs == transform.crs
    poly = footprint if same else _polygon(transform_geom(transform.crs, crs, _dense(footprint)))
    if resolution is not None:
        res = float(resolution)
    elif same:
        res = transform.pixel_size_m((c0 + c1) / 2, (r0 + r1) / 2)
    else:
        res = math.sqrt(poly.area / max((c1 - c0) * (r1 - r0), 1.0))
    minx, miny, maxx, maxy = poly.bounds
    width, height = math.ceil((maxx - minx) / res - 1e-9), math.ceil((maxy - miny) / res - 1e-9)
    if max(width, height) > MAX_WARP_PX:
        res *= max(width, height) / MAX_WARP_PX
        width, height = math.ceil((maxx - minx) / res), math.ceil((maxy - miny) / res)
    return WarpGrid(
        transform=Affine(res, 0.0, minx, 0.0, -res, maxy),
        width=max(width, 1),
        height=max(height, 1),
        crs=crs,
    )


def write_warped_cog(
    photo_path: str | os.PathLike[str],
    path: str | os.PathLike[str],
    transform: PhotoTransform,
    box: Sequence[float],
    *,
    config: WarpConfig | None = None,
) -> Path:
    """Warp the image area ``box`` of the scan onto the map; write a COG with alpha, atomically.

    Args:
        photo_path: the scan.
        path: the GeoTIFF to write (``photo_warped.tif``).
        transform: scan pixel → map.
        box: image area ``(col0, row0, col1, row1)`` in scan pixels.
        config: target CRS, resampling, resolution, tiling.

    Raises:
        InvalidInputError: the image area lies outside the photo.
        RasterReadError: the scan cannot be read.
        DataQualityError: the transform gives no valid footprint.
    """
    from rasterio.warp import reproject

    cfg = config or WarpConfig()
    crop, (c0, r0, c1, r1) = _read_crop(photo_path, box)
    data = _as_storable(crop)
    grid = warp_grid(
        transform, (c0, r0, c1, r1), crs=cfg.target_crs(transform.crs), resolution=cfg.resolution
    )
    source = _source_georeferencing(transform, c0, r0, c1 - c0, r1 - r0)
    method = Resampling[cfg.resampling]
    bands, height, width = data.shape
    out = np.zeros((bands + 1, grid.height, grid.width), dtype=data.dtype)
    common: dict[str, Any] = {
        **source,
        "src_crs": transform.crs,
        "dst_transform": grid.transform,
        "dst_crs": grid.crs,
    }
    # the alpha band first: the image area's mask, so data pixels of 0 stay data
    opaque = np.iinfo(data.dtype).max
    reproject(
        np.full((height, width), opaque, dtype=data.dtype),
        out[bands],
        dst_nodata=0,
        resampling=Resampling.nearest,
        **common,
    )
    for b in range(bands):
        reproject(data[b], out[b], resampling=method, init_dest_nodata=True, **common)
    out[:bands, out[bands] == 0] = 0
    return _write_cog(path, out, grid, cfg, kind=transform.kind)


def _read_crop(
    photo_path: str | os.PathLike[str], box: Sequence[float]
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``[B x h x w]`` pixels of the image area (clipped to the scan) and the box used."""
    c0, r0, c1, r1 = (round(float(v)) for v in box)
    with open_raster(photo_path, what="photo") as src:
        c0, r0 = max(c0, 0), max(r0, 0)
        c1, r1 = min(c1, src.width), min(r1, src.height)
        if c1 - c0 < 2 or r1 - r0 < 2:
            raise InvalidInputError(f"image area {tuple(box)} lies outside the photo")
        bands = [i for i, ci in enumerate(src.colorinterp, 1) if ci != ColorInterp.alpha]
        try:
            crop = src.read(bands or None, window=Window(c0, r0, c1 - c0, r1 - r0))
        except RasterioIOError as exc:
            raise RasterReadError(f"cannot read photo {photo_path}: corrupt data ({exc})") from exc
    return crop, (c0, r0, c1, r1)


def _as_storable(crop: np.ndarray) -> np.ndarray:
    """uint8/uint16 as they are; anything else stretched into uint16 (finite range)."""
    if crop.dtype in (np.uint8, np.uint16):
        return crop
    values = crop.astype(np.float64)
    finite = np.isfinite(values)
    lo = float(values[finite].min()) if finite.any() else 0.0
    hi = float(values[finite].max()) if finite.any() else 1.0
    scaled = (np.where(finite, values, lo) - lo) / max(hi - lo, 1e-12) * 65535.0
    return np.clip(np.round(scaled), 0, 65535).astype(np.uint16)


def _source_georeferencing(
    transform: PhotoTransform, col0: int, row0: int, width: int, height: int
) -> dict[str, Any]:
    """``src_transform`` (similarity, affine) or TPS ``gcps`` (homography) of the crop."""
    crop_to_scan = Affine.translation(col0, row0)
    if transform.kind != "homography":
        a, b, c = transform.matrix[0]
        d, e, f = transform.matrix[1]
        return {"src_transform": Affine(a, b, c, d, e, f) @ crop_to_scan}
    grid = gcps_from_transform(
        transform,
        (col0, row0, col0 + width, row0 + height),
        n_per_side=HOMOGRAPHY_GCPS_PER_SIDE,
        inset=0.0,
    )
    points = [
        GroundControlPoint(row=float(r - row0), col=float(c - col0), x=float(x), y=float(y))
        for (c, r), (x, y) in zip(grid.pixel_xy, grid.map_xy, strict=True)
    ]
    return {"gcps": points, "SRC_METHOD": "GCP_TPS"}


def _write_cog(
    path: str | os.PathLike[str], out: np.ndarray, grid: WarpGrid, cfg: WarpConfig, *, kind: str
) -> Path:
    """Write ``out`` (data bands, then alpha) through the COG driver, atomically."""
    from rasterio.shutil import copy as gdal_copy

    count = out.shape[0]
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": count,
        "dtype": out.dtype.name,
        "crs": grid.crs,
        "transform": grid.transform,
        # the last band is alpha (a TIFF extra sample), kept by the COG driver
        "photometric": "RGB" if count == 4 else "MINISBLACK",
        "alpha": "YES",
    }
    overview = "nearest" if cfg.resampling == "mode" else cfg.resampling
    with MemoryFile() as mem:
        with mem.open(**profile) as staged:
            staged.write(out)
            staged.update_tags(
                AEROLOC_RESAMPLING=cfg.resampling,
                AEROLOC_TRANSFORM_KIND=kind,
                AEROLOC_GEOREFERENCING="thin-plate spline through a GCP grid"
                if kind == "homography"
                else "affine geotransform",
            )
        with mem.open() as staged, atomic_output(path) as tmp:
            gdal_copy(
                staged,
                tmp,
                driver=COG_DRIVER,
                BLOCKSIZE=cfg.block_px,
                COMPRESS=cfg.compress.upper(),
                OVERVIEWS="AUTO",
                RESAMPLING=overview.upper(),
                BIGTIFF="IF_SAFER",
            )
    return Path(path)


def _dense(poly: Polygon, n: int = 16) -> dict[str, Any]:
    """GeoJSON of ``poly`` with ``n`` points per edge (edges bend in another CRS)."""
    xs, ys = poly.exterior.xy
    ring: list[tuple[float, float]] = []
    for i in range(len(xs) - 1):
        for t in np.linspace(0.0, 1.0, n, endpoint=False):
            ring.append((xs[i] + t * (xs[i + 1] - xs[i]), ys[i] + t * (ys[i + 1] - ys[i])))
    ring.append(ring[0])
    return dict(mapping(Polygon(ring)))


def _polygon(geojson: Any) -> Polygon:
    geom = shape(geojson)
    if not isinstance(geom, Polygon):
        raise InvalidInputError("the footprint does not map to a polygon in the target CRS")
    return geom
