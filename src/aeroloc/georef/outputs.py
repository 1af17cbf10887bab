"""The files of a located photo: QGIS GCPs, GCP and warped GeoTIFFs, footprint.

A located photo carries a :class:`PhotoTransform`, a 3 × 3 homogeneous matrix
from photo *scan* pixels ``(col, row)`` (origin at the top-left corner of the
top-left pixel, as in rasterio and GDAL) to map ``(x, y)`` in the reference
CRS. From it this module writes:

* ``gcps.points`` — ground control points for the QGIS georeferencer. QGIS's
  convention: an optional ``#CRS: <WKT>`` line, then the header
  ``mapX,mapY,sourceX,sourceY,enable,dX,dY,residual``; ``sourceX`` is the
  pixel column and ``sourceY`` the *negative* pixel row (QGIS puts an
  un-referenced raster's rows at negative y). ``dX, dY, residual`` are the
  fit residuals in photo pixels.
* ``photo_gcps.tif`` — a copy of the scan with the same GCPs and the CRS as
  GDAL GCPs (``gdalwarp photo_gcps.tif out.tif`` georeferences it).
* ``photo_warped.tif`` (optional) — the image area warped by GDAL onto a
  north-up map grid, clipped to the footprint (alpha band), as a
  Cloud-Optimised GeoTIFF (:mod:`aeroloc.georef.warp`).
* ``footprint.gpkg`` — the image area's corners mapped, as a polygon.

GCPs are the verified tie points (photo pixel ↔ reference position) when
there are enough of them, otherwise a regular grid inside the image area
mapped through the transform.
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from shapely.geometry import Polygon

from aeroloc.errors import InvalidInputError, RasterReadError
from aeroloc.files import atomic_output, open_raster, parse_crs
from aeroloc.georef.gcps import (
    MIN_MATCH_GCPS,
    GroundControlPoints,
    gcps_from_matches,
    gcps_from_transform,
)
from aeroloc.georef.transform import PhotoTransform
from aeroloc.georef.warp import WarpConfig, write_warped_cog

POINTS_HEADER = ("mapX", "mapY", "sourceX", "sourceY", "enable", "dX", "dY", "residual")
FOOTPRINT_FILE = "footprint.gpkg"
POINTS_FILE = "gcps.points"
GCP_TIFF_FILE = "photo_gcps.tif"
WARPED_FILE = "photo_warped.tif"


# --------------------------------------------------------------------------- QGIS .points


def write_points(path: str | os.PathLike[str], gcps: GroundControlPoints) -> Path:
    """Write GCPs as a QGIS georeferencer ``.points`` file, atomically (see the module doc)."""
    buf = io.StringIO()
    if gcps.crs is not None:
        buf.write(f"#CRS: {gcps.crs.to_wkt()}\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(POINTS_HEADER)
    for (col, row), (x, y), (dx, dy) in zip(
        gcps.pixel_xy, gcps.map_xy, gcps.residual_px, strict=True
    ):
        writer.writerow(
            [
                repr(float(x)),
                repr(float(y)),
                repr(float(col)),
                repr(-float(row)),
                1,
                f"{dx:.6f}",
                f"{dy:.6f}",
                f"{math.hypot(dx, dy):.6f}",
            ]
        )
    with atomic_output(path) as tmp:
        tmp.write_text(buf.getvalue())
    return Path(path)


def read_points(path: str | os.PathLike[str]) -> GroundControlPoints:
    """Read the enabled GCPs of a QGIS ``.points`` file (``sourceY`` back to a positive row).

    Raises:
        MissingFileError: no such file.
        InvalidInputError: not a ``.points`` file.
    """
    from aeroloc.files import require_file

    p = require_file(path, "GCP points file")
    lines = p.read_text().splitlines()
    crs = None
    if lines and lines[0].startswith("#CRS:"):
        text = lines.pop(0)[len("#CRS:") :].strip()
        crs = parse_crs(text) if text else None
    rows = list(csv.DictReader(line for line in lines if line.strip()))
    need = {"mapX", "mapY", "sourceX", "sourceY"}
    if not rows and (not lines or not need <= set(lines[0].split(","))):
        raise InvalidInputError(
            f"{p} is not a QGIS .points file (header {','.join(POINTS_HEADER)})"
        )
    if rows and not need <= set(rows[0]):
        raise InvalidInputError(
            f"{p} is not a QGIS .points file: expected columns {','.join(POINTS_HEADER)}, "
            f"found {','.join(rows[0])}"
        )
    pix, mp, res = [], [], []
    try:
        for r in rows:
            if str(r.get("enable", "1")).strip() in ("0", "false", "False"):
                continue
            pix.append((float(r["sourceX"]), -float(r["sourceY"])))
            mp.append((float(r["mapX"]), float(r["mapY"])))
            res.append((float(r.get("dX") or 0.0), float(r.get("dY") or 0.0)))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{p}: a GCP row is not numeric ({exc})") from exc
    return GroundControlPoints(
        pixel_xy=np.asarray(pix, dtype=np.float64).reshape(-1, 2),
        map_xy=np.asarray(mp, dtype=np.float64).reshape(-1, 2),
        crs=crs,
        residual_px=np.asarray(res, dtype=np.float64).reshape(-1, 2),
    )


# --------------------------------------------------------------------------- GeoTIFFs


def write_gcp_geotiff(
    photo_path: str | os.PathLike[str], path: str | os.PathLike[str], gcps: GroundControlPoints
) -> Path:
    """Copy the scan to a GeoTIFF carrying ``gcps`` (and their CRS) as GDAL GCPs, atomically."""
    if gcps.crs is None:
        raise InvalidInputError("GCPs need a CRS to be written into a GeoTIFF")
    if len(gcps) < 3:
        raise InvalidInputError(f"a GCP GeoTIFF needs at least 3 GCPs, got {len(gcps)}")
    with open_raster(photo_path, what="photo") as src:
        try:
            data = src.read()
        except RasterioIOError as exc:
            raise RasterReadError(f"cannot read photo {photo_path}: corrupt data ({exc})") from exc
        profile = {
            "driver": "GTiff",
            "height": src.height,
            "width": src.width,
            "count": src.count,
            "dtype": src.dtypes[0],
            "compress": "deflate",
        }
        if src.nodata is not None:
            profile["nodata"] = src.nodata
    if src.height >= 256 and src.width >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    points = [
        GroundControlPoint(row=float(r), col=float(c), x=float(x), y=float(y), id=str(i + 1))
        for i, ((c, r), (x, y)) in enumerate(zip(gcps.pixel_xy, gcps.map_xy, strict=True))
    ]
    with atomic_output(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data)
            dst.gcps = (points, gcps.crs)
    return Path(path)


def read_gcp_geotiff(path: str | os.PathLike[str]) -> GroundControlPoints:
    """The GDAL GCPs of a GeoTIFF written by :func:`write_gcp_geotiff`.

    Raises:
        InvalidInputError: the file carries no GCPs.
    """
    with open_raster(path, what="GCP GeoTIFF") as ds:
        points, crs = ds.gcps
    if not points:
        raise InvalidInputError(f"{path} carries no GCPs")
    return GroundControlPoints(
        pixel_xy=np.array([(g.col, g.row) for g in points], dtype=np.float64),
        map_xy=np.array([(g.x, g.y) for g in points], dtype=np.float64),
        crs=crs,
    )


def write_warped_geotiff(
    photo_path: str | os.PathLike[str],
    path: str | os.PathLike[str],
    transform: PhotoTransform,
    box: Sequence[float],
    *,
    resolution_m: float | None = None,
    config: WarpConfig | None = None,
) -> Path:
    """Warp the image area onto the map as a Cloud-Optimised GeoTIFF with alpha, atomically.

    :func:`aeroloc.georef.warp.write_warped_cog` (GDAL's warper and COG
    driver); ``resolution_m`` overrides ``config.resolution`` (default: the
    photo's own pixel size at its centre).
    """
    cfg = config or WarpConfig()
    if resolution_m is not None:
        cfg = replace(cfg, resolution=resolution_m)
    return write_warped_cog(photo_path, path, transform, box, config=cfg)


def write_footprint_gpkg(
    path: str | os.PathLike[str],
    footprint: Polygon,
    crs: CRS | str,
    properties: Mapping[str, Any] | None = None,
) -> Path:
    """One footprint polygon with attributes as a GeoPackage layer ``footprint``, atomically."""
    import geopandas as gpd

    frame = gpd.GeoDataFrame(
        [dict(properties or {})] if properties else [{"id": 1}],
        geometry=[footprint],
        crs=parse_crs(crs).to_wkt(),
    )
    with atomic_output(path) as tmp:
        frame.to_file(tmp, layer="footprint", driver="GPKG")
    return Path(path)


def read_footprint_gpkg(path: str | os.PathLike[str]) -> Polygon:
    """The footprint polygon of a ``footprint.gpkg``."""
    import geopandas as gpd

    from aeroloc.files import require_file

    frame = gpd.read_file(require_file(path, "footprint file"), layer="footprint")
    geom = frame.geometry.iloc[0]
    if not isinstance(geom, Polygon):
        raise InvalidInputError(f"{path}: the footprint layer holds no polygon")
    return geom


# --------------------------------------------------------------------------- all outputs


@dataclass(frozen=True, kw_only=True, eq=False)
class GeorefOutputs:
    """What :func:`write_georef_outputs` wrote."""

    footprint: Polygon
    gcps: GroundControlPoints
    gcp_source: str
    paths: dict[str, Path]

    def files(self) -> dict[str, str]:
        """Label → file name (relative to the output folder), for ``result.json``."""
        return {k: p.name for k, p in self.paths.items()}


def write_georef_outputs(
    photo_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    transform: PhotoTransform,
    box: Sequence[float],
    *,
    tie_pixel_xy: np.ndarray | None = None,
    tie_map_xy: np.ndarray | None = None,
    warp: bool = False,
    warp_config: WarpConfig | None = None,
    properties: Mapping[str, Any] | None = None,
) -> GeorefOutputs:
    """Write ``footprint.gpkg``, ``gcps.points``, ``photo_gcps.tif`` (and ``photo_warped.tif``).

    Args:
        photo_path: the scan.
        out_dir: folder to write into.
        transform: photo scan pixel → map.
        box: image area ``(col0, row0, col1, row1)`` in scan pixels.
        tie_pixel_xy: ``[N x 2]`` verified tie points in scan pixels (optional).
        tie_map_xy: ``[N x 2]`` their map positions.
        warp: also write ``photo_warped.tif`` (a COG warped by GDAL).
        warp_config: its target CRS, resampling and tiling (default: :class:`WarpConfig`).
        properties: attributes of the footprint feature (status, score, ...).
    """
    out = Path(out_dir)
    footprint = transform.footprint(box)
    if (
        tie_pixel_xy is not None
        and tie_map_xy is not None
        and len(np.asarray(tie_pixel_xy).reshape(-1, 2)) >= MIN_MATCH_GCPS
    ):
        gcps = gcps_from_matches(transform, tie_pixel_xy, tie_map_xy)
        source = "tie points"
    else:
        gcps = gcps_from_transform(transform, box)
        source = "grid"
    paths = {
        "footprint": write_footprint_gpkg(
            out / FOOTPRINT_FILE, footprint, transform.crs, properties
        ),
        "gcps": write_points(out / POINTS_FILE, gcps),
        "gcp_geotiff": write_gcp_geotiff(photo_path, out / GCP_TIFF_FILE, gcps),
    }
    if warp:
        paths["warped"] = write_warped_geotiff(
            photo_path, out / WARPED_FILE, transform, box, config=warp_config
        )
    return GeorefOutputs(footprint=footprint, gcps=gcps, gcp_source=source, paths=paths)
