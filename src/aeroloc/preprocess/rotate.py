"""Rotate the AoI to the photo's heading, keeping an exact pixel ↔ map mapping.

The seed thesis (Fig. 4.17–4.18) rotates the AoI rather than the photo: padding
then only touches windows near the AoI corners, while a rotated photo would
carry false padding into every comparison. Here the padding is NaN (never a
gray value), and the rotated raster keeps two explicit affine maps:

* ``inverse`` — rotated pixel ``(col, row)`` → map ``(x, y)``. It is
  :func:`aeroloc.geometry.photo_to_map` for a "photo" centred on the AoI
  centre, with the AoI pixel size and the flight azimuth, so the rotated AoI
  is oriented exactly like the photos (top edge along the heading). It is a
  valid (rotated) GeoTIFF geotransform.
* ``forward`` — map ``(x, y)`` → rotated pixel ``(col, row)``, its inverse.

Pixel coordinates follow rasterio: the origin is the top-left corner of the
top-left pixel, so pixel ``(i, j)`` has its centre at ``(i + 0.5, j + 0.5)``.
The canvas is the smallest one, centred on the AoI centre, that holds the
whole rotated AoI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import Polygon

from aeroloc.errors import CRSError, InvalidInputError
from aeroloc.files import parse_crs
from aeroloc.geometry import photo_to_map
from aeroloc.preprocess._checks import bands_3d, grid_shape_hw

_RESAMPLING = {"bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}
# cv2 remaps in 16-bit coordinates; tiles keep every call well inside that
# and bound the temporary memory.
_TILE_PX = 2048


@dataclass(frozen=True, kw_only=True, eq=False)
class RotatedAoI:
    """An AoI resampled so that the flight heading points up.

    Attributes:
        data: float32 ``[B x H' x W']``; NaN outside the AoI and where it had nodata.
        inverse: Affine, rotated pixel ``(col, row)`` → map ``(x, y)``.
        crs: map CRS.
        azimuth_deg: flight heading, clockwise from grid north.
        source_transform: Affine of the AoI before rotation (pixel → map).
        source_shape: ``(H, W)`` of the AoI before rotation.
    """

    data: np.ndarray
    inverse: Affine
    crs: CRS
    azimuth_deg: float
    source_transform: Affine
    source_shape: tuple[int, int]

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise InvalidInputError(f"data must be [B x H x W], found shape {self.data.shape}")
        if not isinstance(self.inverse, Affine) or self.inverse.is_degenerate:
            raise InvalidInputError(
                f"inverse must be a non-degenerate Affine, found {self.inverse!r}"
            )

    @property
    def forward(self) -> Affine:
        """Affine, map ``(x, y)`` → rotated pixel ``(col, row)``."""
        return ~self.inverse

    @property
    def shape(self) -> tuple[int, int]:
        """``(H', W')`` of the rotated canvas."""
        return int(self.data.shape[1]), int(self.data.shape[2])

    @property
    def gsd_m(self) -> float:
        """Pixel size of the rotated canvas in map units."""
        return float(math.hypot(self.inverse.a, self.inverse.d))

    @property
    def valid_mask(self) -> np.ndarray:
        """bool ``[H' x W']``: True where every band holds AoI data."""
        return np.asarray(np.isfinite(self.data).all(axis=0))

    def to_map(self, cols: Any, rows: Any) -> tuple[np.ndarray, np.ndarray]:
        """Rotated pixel coordinates → map coordinates (arrays of any shape)."""
        return _apply(self.inverse, cols, rows)

    def to_pixel(self, xs: Any, ys: Any) -> tuple[np.ndarray, np.ndarray]:
        """Map coordinates → rotated pixel coordinates (arrays of any shape)."""
        return _apply(self.forward, xs, ys)

    def to_source_pixel(self, cols: Any, rows: Any) -> tuple[np.ndarray, np.ndarray]:
        """Rotated pixel coordinates → pixel coordinates of the unrotated AoI."""
        return _apply(~self.source_transform @ self.inverse, cols, rows)

    def window_polygon(self, col0: float, row0: float, col1: float, row1: float) -> Polygon:
        """Map polygon of the rotated-pixel box ``[col0, col1) x [row0, row1)``.

        Corners in order top-left, top-right, bottom-right, bottom-left.
        """
        xs, ys = self.to_map([col0, col1, col1, col0], [row0, row0, row1, row1])
        return Polygon(zip(xs.tolist(), ys.tolist(), strict=True))


def rotated_grid(
    *, transform: Affine, shape: tuple[int, int], azimuth_deg: float
) -> tuple[Affine, tuple[int, int]]:
    """Pixel → map Affine and ``(H', W')`` of the heading-up canvas holding an AoI.

    Args:
        transform: AoI Affine (pixel → map), north-up or not.
        shape: ``(H, W)`` of the AoI.
        azimuth_deg: flight heading, clockwise from grid north.
    """
    src = _check_transform(transform)
    height, width = grid_shape_hw(shape)
    az = _check_azimuth(azimuth_deg)
    gsd = min(math.hypot(src.a, src.d), math.hypot(src.b, src.e))
    cx, cy = src @ (width / 2.0, height / 2.0)
    s, c = math.sin(math.radians(az)), math.cos(math.radians(az))
    # Half-extents of the AoI along the rotated canvas axes (right, down).
    corners = np.array([src @ p for p in ((0, 0), (width, 0), (width, height), (0, height))])
    dx, dy = corners[:, 0] - cx, corners[:, 1] - cy
    half_u = float(np.abs(dx * c - dy * s).max())
    half_v = float(np.abs(-dx * s - dy * c).max())
    width_r = max(1, math.ceil(2.0 * half_u / gsd - 1e-6))
    height_r = max(1, math.ceil(2.0 * half_v / gsd - 1e-6))
    inverse = photo_to_map(
        center_x=cx,
        center_y=cy,
        gsd_m=gsd,
        azimuth_deg=az,
        width_px=width_r,
        height_px=height_r,
    )
    return inverse, (height_r, width_r)


def rotate_aoi(
    data: np.ndarray,
    *,
    transform: Affine,
    crs: CRS | str,
    azimuth_deg: float,
    resampling: str = "bilinear",
) -> RotatedAoI:
    """Resample an AoI ``[B x H x W]`` (or ``[H x W]``) so the heading points up.

    Args:
        data: AoI bands; NaN = nodata.
        transform: AoI Affine (pixel → map).
        crs: map CRS of ``transform``.
        azimuth_deg: flight heading, clockwise from grid north.
        resampling: "bilinear" for imagery, "nearest" for masks and labels.

    Returns:
        A :class:`RotatedAoI`. Output pixels whose bilinear footprint is at
        least half valid take the weighted mean of the valid source pixels;
        the others are NaN.
    """
    arr = bands_3d(data, name="AoI data")
    if crs is None:
        raise CRSError("AoI has no CRS: the rotated AoI could not be mapped back")
    map_crs = parse_crs(crs)
    if resampling not in _RESAMPLING:
        raise InvalidInputError(
            f"resampling must be one of {sorted(_RESAMPLING)}, found {resampling!r}"
        )
    src_t = _check_transform(transform)
    height, width = int(arr.shape[1]), int(arr.shape[2])
    inverse, (height_r, width_r) = rotated_grid(
        transform=src_t, shape=(height, width), azimuth_deg=azimuth_deg
    )
    # Destination index → source index (cv2 puts pixel centres at integers).
    half = Affine.translation(0.5, 0.5)
    dst_to_src = ~half @ ~src_t @ inverse @ half

    values = arr.astype(np.float32)
    valid = np.isfinite(values)
    values = np.where(valid, values, np.float32(0.0))
    weights = valid.astype(np.float32)
    out = np.full((arr.shape[0], height_r, width_r), np.nan, dtype=np.float32)
    flags = _RESAMPLING[resampling] | cv2.WARP_INVERSE_MAP
    tile = _TILE_PX
    for r0 in range(0, height_r, tile):
        for c0 in range(0, width_r, tile):
            th, tw = min(tile, height_r - r0), min(tile, width_r - c0)
            box = _source_box(dst_to_src, c0, r0, tw, th, width, height)
            if box is None:
                continue
            sc0, sr0, sc1, sr1 = box
            m = Affine.translation(-sc0, -sr0) @ dst_to_src @ Affine.translation(c0, r0)
            mat = np.array([[m.a, m.b, m.c], [m.d, m.e, m.f]], dtype=np.float64)
            for band in range(arr.shape[0]):
                warp = [
                    cv2.warpAffine(
                        np.ascontiguousarray(src[band, sr0:sr1, sc0:sc1]),
                        mat,
                        (tw, th),
                        flags=flags,
                        borderMode=cv2.BORDER_CONSTANT,
                        borderValue=0.0,
                    )
                    for src in (values, weights)
                ]
                wv, ww = warp
                with np.errstate(invalid="ignore", divide="ignore"):
                    block = np.where(ww >= 0.5 - 1e-4, wv / ww, np.nan)
                out[band, r0 : r0 + th, c0 : c0 + tw] = block
    return RotatedAoI(
        data=out,
        inverse=inverse,
        crs=map_crs,
        azimuth_deg=float(azimuth_deg) % 360.0,
        source_transform=src_t,
        source_shape=(height, width),
    )


def _source_box(
    dst_to_src: Affine, c0: int, r0: int, tw: int, th: int, width: int, height: int
) -> tuple[int, int, int, int] | None:
    """Source index window a destination tile samples from (with a 2-px margin)."""
    pts = np.array(
        [dst_to_src @ p for p in ((c0, r0), (c0 + tw, r0), (c0 + tw, r0 + th), (c0, r0 + th))]
    )
    sc0 = max(0, math.floor(pts[:, 0].min()) - 2)
    sr0 = max(0, math.floor(pts[:, 1].min()) - 2)
    sc1 = min(width, math.ceil(pts[:, 0].max()) + 3)
    sr1 = min(height, math.ceil(pts[:, 1].max()) + 3)
    if sc0 >= sc1 or sr0 >= sr1:
        return None
    return sc0, sr0, sc1, sr1


def _apply(t: Affine, u: Any, v: Any) -> tuple[np.ndarray, np.ndarray]:
    uu = np.asarray(u, dtype=np.float64)
    vv = np.asarray(v, dtype=np.float64)
    if uu.shape != vv.shape:
        raise InvalidInputError(
            f"coordinate arrays must have the same shape, found {uu.shape} and {vv.shape}"
        )
    return t.a * uu + t.b * vv + t.c, t.d * uu + t.e * vv + t.f


def _check_transform(transform: Any) -> Affine:
    if not isinstance(transform, Affine):
        raise InvalidInputError(
            f"transform must be an affine.Affine, found {type(transform).__name__}"
        )
    if transform.is_degenerate or not all(math.isfinite(v) for v in tuple(transform)[:6]):
        raise InvalidInputError(
            f"transform must be finite and invertible, found {tuple(transform)[:6]}"
        )
    return transform


def _check_azimuth(azimuth_deg: Any) -> float:
    try:
        az = float(azimuth_deg)
    except (TypeError, ValueError):
        raise InvalidInputError(f"azimuth_deg must be a number, found {azimuth_deg!r}") from None
    if not math.isfinite(az):
        raise InvalidInputError(f"azimuth_deg must be finite, found {azimuth_deg!r}")
    return az % 360.0
