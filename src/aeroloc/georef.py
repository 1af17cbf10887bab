"""Georeferenced outputs of a located photo: transform, GCPs, footprint, GeoTIFFs.

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
* ``photo_warped.tif`` (optional) — the image area resampled north-up onto
  the map grid by the transform itself (exact for a homography).
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rasterio
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from shapely.geometry import Polygon

from aeroloc.errors import DataQualityError, InvalidInputError, RasterReadError
from aeroloc.files import atomic_output, open_raster, parse_crs, write_geotiff

POINTS_HEADER = ("mapX", "mapY", "sourceX", "sourceY", "enable", "dX", "dY", "residual")
FOOTPRINT_FILE = "footprint.gpkg"
POINTS_FILE = "gcps.points"
GCP_TIFF_FILE = "photo_gcps.tif"
WARPED_FILE = "photo_warped.tif"
TRANSFORM_KINDS = ("similarity", "affine", "homography")
#: Fewest tie points that are used as GCPs; with fewer, a grid is used instead.
MIN_MATCH_GCPS = 6
#: Largest side of a warped GeoTIFF (pixels); a coarser grid is used beyond it.
MAX_WARP_PX = 16_000


@dataclass(frozen=True, kw_only=True, eq=False)
class PhotoTransform:
    """Photo scan pixel ``(col, row)`` → map ``(x, y)``.

    Attributes:
        matrix: ``[3 x 3]`` float64 homogeneous matrix (last row ``0 0 1`` for
            similarity and affine transforms).
        kind: ``similarity``, ``affine`` or ``homography``.
        crs: map CRS.
    """

    matrix: np.ndarray
    kind: str
    crs: CRS

    def __post_init__(self) -> None:
        m = np.asarray(self.matrix, dtype=np.float64)
        if m.shape != (3, 3):
            raise InvalidInputError(f"transform matrix must be [3 x 3], found shape {m.shape}")
        if not np.isfinite(m).all():
            raise InvalidInputError("transform matrix has non-finite values")
        if abs(m[2, 2]) < 1e-300 or abs(np.linalg.det(m)) < 1e-300:
            raise InvalidInputError("transform matrix is singular (degenerate geometry)")
        if self.kind not in TRANSFORM_KINDS:
            raise InvalidInputError(
                f"transform kind must be one of {', '.join(TRANSFORM_KINDS)}, found {self.kind!r}"
            )
        object.__setattr__(self, "matrix", m / m[2, 2])
        object.__setattr__(self, "crs", parse_crs(self.crs))

    @classmethod
    def from_affine(cls, transform: Affine, crs: CRS | str, kind: str = "affine") -> PhotoTransform:
        """From an :class:`affine.Affine` (e.g. a truth record's ``pixel_to_map``)."""
        a, b, c, d, e, f = tuple(transform)[:6]
        return cls(matrix=np.array([[a, b, c], [d, e, f], [0, 0, 1.0]]), kind=kind, crs=crs)

    def apply(self, cols: Any, rows: Any) -> tuple[np.ndarray, np.ndarray]:
        """Photo pixels → map coordinates (arrays of any shape)."""
        return _project(self.matrix, cols, rows)

    def to_pixel(self, xs: Any, ys: Any) -> tuple[np.ndarray, np.ndarray]:
        """Map coordinates → photo pixels (arrays of any shape)."""
        return _project(np.linalg.inv(self.matrix), xs, ys)

    def footprint(self, box: Sequence[float]) -> Polygon:
        """Map polygon of the pixel box ``(col0, row0, col1, row1)`` (the image area).

        Corners in order top-left, top-right, bottom-right, bottom-left.

        Raises:
            DataQualityError: the box does not map to a valid quadrilateral
                (a corner beyond the horizon, a twisted or mirrored polygon).
        """
        reason = self.check(box)
        if reason:
            raise DataQualityError(f"the transform gives no valid footprint: {reason}")
        return self._quad(box)

    def check(self, box: Sequence[float]) -> str | None:
        """Why the image area ``box`` does not map to a sane footprint, or None."""
        c0, r0, c1, r1 = (float(v) for v in box)
        cols = np.array([c0, c1, c1, c0])
        rows = np.array([r0, r0, r1, r1])
        w = self.matrix[2, 0] * cols + self.matrix[2, 1] * rows + self.matrix[2, 2]
        if (w <= 1e-9).any():
            return "a photo corner maps beyond the horizon (degenerate homography)"
        quad = self._quad(box)
        if not quad.is_valid or quad.area <= 0:
            return "the mapped photo corners form a twisted polygon (degenerate geometry)"
        xs, ys = quad.exterior.xy
        # signed area of TL, TR, BR, BL: negative (clockwise) unless the photo is mirrored
        signed = 0.5 * sum(xs[i] * ys[i + 1] - xs[i + 1] * ys[i] for i in range(len(xs) - 1))
        if signed > 0:
            return "the transform mirrors the photo"
        return None

    def _quad(self, box: Sequence[float]) -> Polygon:
        c0, r0, c1, r1 = (float(v) for v in box)
        xs, ys = self.apply([c0, c1, c1, c0], [r0, r0, r1, r1])
        return Polygon(zip(xs.tolist(), ys.tolist(), strict=True))

    def pixel_size_m(self, col: float, row: float) -> float:
        """Ground size of one photo pixel at ``(col, row)`` (square root of the local area)."""
        h = 0.5
        xs, ys = self.apply([col - h, col + h, col - h], [row - h, row - h, row + h])
        jx = np.array([xs[1] - xs[0], ys[1] - ys[0]])
        jy = np.array([xs[2] - xs[0], ys[2] - ys[0]])
        return float(math.sqrt(abs(jx[0] * jy[1] - jx[1] * jy[0])))

    def to_json(self) -> dict[str, Any]:
        """JSON-able record: kind, row-major matrix, CRS."""
        return {
            "kind": self.kind,
            "matrix": [[float(v) for v in row] for row in self.matrix],
            "crs": self.crs.to_string(),
            "pixels": "photo scan (col, row), origin at the top-left pixel corner",
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhotoTransform:
        """Inverse of :meth:`to_json`."""
        try:
            return cls(
                matrix=np.asarray(data["matrix"], dtype=np.float64),
                kind=str(data["kind"]),
                crs=data["crs"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidInputError):
                raise
            raise InvalidInputError(
                f"not a transform record (expected kind, matrix, crs): {exc}"
            ) from exc


def _project(m: np.ndarray, u: Any, v: Any) -> tuple[np.ndarray, np.ndarray]:
    uu = np.asarray(u, dtype=np.float64)
    vv = np.asarray(v, dtype=np.float64)
    if uu.shape != vv.shape:
        raise InvalidInputError(
            f"coordinate arrays must have the same shape, found {uu.shape} and {vv.shape}"
        )
    w = m[2, 0] * uu + m[2, 1] * vv + m[2, 2]
    return (m[0, 0] * uu + m[0, 1] * vv + m[0, 2]) / w, (m[1, 0] * uu + m[1, 1] * vv + m[1, 2]) / w


def affine_matrix(t: Affine) -> np.ndarray:
    """``[3 x 3]`` homogeneous matrix of an :class:`affine.Affine`."""
    a, b, c, d, e, f = tuple(t)[:6]
    return np.array([[a, b, c], [d, e, f], [0.0, 0.0, 1.0]])


@dataclass(frozen=True, kw_only=True, eq=False)
class GroundControlPoints:
    """Photo pixel ↔ map pairs.

    Attributes:
        pixel_xy: ``[N x 2]`` photo scan pixel ``(col, row)``.
        map_xy: ``[N x 2]`` map ``(x, y)``.
        crs: CRS of ``map_xy`` (None when a file did not say); strings are parsed.
        residual_px: ``[N x 2]`` fit residual ``(dX, dY)`` in photo pixels,
            zeros when unknown.
    """

    pixel_xy: np.ndarray
    map_xy: np.ndarray
    crs: CRS | None = None
    residual_px: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    def __post_init__(self) -> None:
        p = np.asarray(self.pixel_xy, dtype=np.float64).reshape(-1, 2)
        m = np.asarray(self.map_xy, dtype=np.float64).reshape(-1, 2)
        if p.shape != m.shape:
            raise InvalidInputError(
                f"pixel_xy and map_xy must both be [N x 2], found {p.shape} and {m.shape}"
            )
        if not (np.isfinite(p).all() and np.isfinite(m).all()):
            raise InvalidInputError("GCP coordinates must be finite")
        r = np.asarray(self.residual_px, dtype=np.float64).reshape(-1, 2)
        if r.shape[0] == 0:
            r = np.zeros_like(p)
        if r.shape != p.shape:
            raise InvalidInputError(f"residual_px must be [N x 2] like pixel_xy, found {r.shape}")
        object.__setattr__(self, "pixel_xy", p)
        object.__setattr__(self, "map_xy", m)
        object.__setattr__(self, "residual_px", r)
        if self.crs is not None:
            object.__setattr__(self, "crs", parse_crs(self.crs))

    def __len__(self) -> int:
        return int(self.pixel_xy.shape[0])


def gcps_from_transform(
    transform: PhotoTransform, box: Sequence[float], *, n_per_side: int = 5, inset: float = 0.05
) -> GroundControlPoints:
    """A regular ``n × n`` grid of GCPs inside the image area ``box``, mapped exactly.

    Args:
        transform: photo → map.
        box: image area ``(col0, row0, col1, row1)`` in scan pixels.
        n_per_side: points along each side (≥ 2).
        inset: distance of the outer points from the box edge, as a fraction of its size.
    """
    if n_per_side < 2:
        raise InvalidInputError(f"n_per_side must be ≥ 2, got {n_per_side}")
    c0, r0, c1, r1 = (float(v) for v in box)
    fc = np.linspace(inset, 1 - inset, n_per_side)
    cc, rr = np.meshgrid(c0 + fc * (c1 - c0), r0 + fc * (r1 - r0))
    xs, ys = transform.apply(cc.ravel(), rr.ravel())
    return GroundControlPoints(
        pixel_xy=np.column_stack([cc.ravel(), rr.ravel()]),
        map_xy=np.column_stack([xs, ys]),
        crs=transform.crs,
    )


def gcps_from_matches(
    transform: PhotoTransform,
    pixel_xy: np.ndarray,
    map_xy: np.ndarray,
    *,
    max_points: int = 64,
) -> GroundControlPoints:
    """GCPs from tie points (photo pixel ↔ reference map position), spread over the photo.

    The photo is divided into a grid of about ``max_points`` cells; in each
    the tie point that fits ``transform`` best is kept, so the GCPs cover the
    image rather than bunch where texture is richest. Residuals are the
    distance, in photo pixels, between each pixel and its map position
    projected back by ``transform``.

    Args:
        transform: the fitted photo → map transform.
        pixel_xy: ``[N x 2]`` photo scan pixels ``(col, row)``.
        map_xy: ``[N x 2]`` map positions of the same points.
        max_points: most GCPs to keep.
    """
    p = np.asarray(pixel_xy, dtype=np.float64).reshape(-1, 2)
    m = np.asarray(map_xy, dtype=np.float64).reshape(-1, 2)
    if p.shape != m.shape:
        raise InvalidInputError(
            f"pixel_xy and map_xy must both be [N x 2], found {p.shape} and {m.shape}"
        )
    back_c, back_r = transform.to_pixel(m[:, 0], m[:, 1])
    resid = np.column_stack([back_c - p[:, 0], back_r - p[:, 1]])
    err = np.hypot(resid[:, 0], resid[:, 1])
    keep = _spread(p, err, max_points)
    return GroundControlPoints(
        pixel_xy=p[keep], map_xy=m[keep], crs=transform.crs, residual_px=resid[keep]
    )


def _spread(points: np.ndarray, err: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` points, the best-fitting one per grid cell."""
    if len(points) <= max_points:
        return np.arange(len(points))
    side = max(1, int(math.sqrt(max_points)))
    lo, hi = points.min(0), points.max(0)
    span = np.maximum(hi - lo, 1e-9)
    cell = np.minimum((side * (points - lo) / span).astype(int), side - 1)
    key = cell[:, 1] * side + cell[:, 0]
    order = np.lexsort((err, key))
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    chosen = order[first]
    if len(chosen) < max_points:
        taken = set(chosen.tolist())
        rest = [i for i in np.argsort(err, kind="stable").tolist() if i not in taken]
        chosen = np.concatenate([chosen, np.asarray(rest[: max_points - len(chosen)], int)])
    return np.sort(chosen[:max_points])


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
) -> Path:
    """Resample the image area north-up onto the map grid, atomically.

    The grid covers the footprint at ``resolution_m`` (default: the photo's
    own pixel size at its centre). Each output pixel takes the bilinear value
    of the photo pixel the transform maps onto it (exact for homographies).
    0 is nodata; photo pixels that were 0 become 1.
    """
    from aeroloc.files import read_gray

    c0, r0, c1, r1 = (round(float(v)) for v in box)
    scan = read_gray(photo_path, what="photo")
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, scan.shape[1]), min(r1, scan.shape[0])
    if c1 - c0 < 2 or r1 - r0 < 2:
        raise InvalidInputError(f"image area {tuple(box)} lies outside the photo")
    image = np.nan_to_num(scan[r0:r1, c0:c1], nan=0.0)
    lo, hi = float(image.min()), float(image.max())
    if lo < 0 or hi > 255:  # not 8-bit: stretch into 1..255
        image = (image - lo) / max(hi - lo, 1e-9) * 254 + 1
    image = np.clip(np.round(image), 1, 255).astype(np.uint8)
    poly = transform.footprint(box)
    res = resolution_m or transform.pixel_size_m((c0 + c1) / 2, (r0 + r1) / 2)
    minx, miny, maxx, maxy = poly.bounds
    width, height = math.ceil((maxx - minx) / res), math.ceil((maxy - miny) / res)
    if max(width, height) > MAX_WARP_PX:
        res *= max(width, height) / MAX_WARP_PX
        width, height = math.ceil((maxx - minx) / res), math.ceil((maxy - miny) / res)
    dst = Affine(res, 0.0, minx, 0.0, -res, maxy)
    # output pixel index → crop pixel index (cv2 puts pixel centres at integers)
    to_crop = (
        affine_matrix(Affine.translation(-c0 - 0.5, -r0 - 0.5))
        @ np.linalg.inv(transform.matrix)
        @ affine_matrix(dst @ Affine.translation(0.5, 0.5))
    )
    out = cv2.warpPerspective(
        image,
        to_crop,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return write_geotiff(path, out, transform=dst, crs=transform.crs, nodata=0)


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
        warp: also write the north-up resampled photo.
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
        paths["warped"] = write_warped_geotiff(photo_path, out / WARPED_FILE, transform, box)
    return GeorefOutputs(footprint=footprint, gcps=gcps, gcp_source=source, paths=paths)
