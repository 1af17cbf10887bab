"""Reference (Sentinel-2) enhancement: gray conversion, rock mask, shadow lift (thesis 4.1.2).

In a grayscale Sentinel-2 scene, cast shadows are nearly as dark as rock, while
in the historical photos shadows are milder and rock is the darkest class. The
thesis therefore uses the rock-outcrop polygons to separate the two: shadows
(dark pixels off the rock mask) are lifted and rock is darkened. (Its text
words this as "reducing pixel values for shadowed regions and increasing
values for rock pixels" but describes and shows the opposite effect, which is
what is implemented here.)

The formula of :func:`enhance_reference`, for a gray value ``v``:

* ``g = clip((v - p_low) / (p_high - p_low), 0, 1)`` with ``p_low``/``p_high``
  the ``low_pct``/``high_pct`` percentiles of the valid pixels;
* ``w`` = rock mask (1 rock, 0 other) blurred by a Gaussian of ``feather_px``
  so no seam appears at polygon edges;
* ``out = 255 * (w * rock_gain * g + (1 - w) * g ** shadow_gamma)``.

``g ** shadow_gamma`` with ``shadow_gamma < 1`` lifts dark values most (0.09 →
0.3 for gamma 0.5) and leaves snow almost unchanged (0.9 → 0.95);
``rock_gain < 1`` darkens rock proportionally.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
from affine import Affine
from rasterio.crs import CRS
from scipy import ndimage

from aeroloc.errors import CRSError, DataQualityError, InvalidInputError
from aeroloc.files import parse_crs, read_vector_info
from aeroloc.preprocess._checks import bands_3d, fraction, grid_shape_hw, image_2d, positive_number

#: ITU-R BT.601 luma weights (the weights of OpenCV, PIL and aeroloc.files.read_gray).
BT601_WEIGHTS = (0.299, 0.587, 0.114)


@dataclass(frozen=True, kw_only=True)
class EnhanceConfig:
    """Parameters of the reference enhancement and of the rock-mask clean-up.

    Attributes:
        shadow_gamma: gamma (< 1 lifts) applied off the rock mask.
        rock_gain: factor (< 1 darkens) applied on the rock mask.
        feather_px: Gaussian sigma blurring the mask edge (0 = hard edge).
        low_pct, high_pct: percentiles mapped to 0 and 255.
        open_px, close_px: disk radii of the morphological opening (removes
            specks) and closing (fills gaps) of the rasterised rock mask.
        all_touched: rasterise every pixel a polygon touches (else pixel centres).
    """

    shadow_gamma: float = 0.5
    rock_gain: float = 0.6
    feather_px: float = 1.0
    low_pct: float = 0.5
    high_pct: float = 99.5
    open_px: int = 1
    close_px: int = 1
    all_touched: bool = False

    def __post_init__(self) -> None:
        fraction(self.shadow_gamma, name="shadow_gamma", low=0.05, high=1.0)
        fraction(self.rock_gain, name="rock_gain", low=0.0, high=1.0)
        positive_number(self.feather_px, name="feather_px", allow_zero=True)
        fraction(self.low_pct, name="low_pct", low=0.0, high=100.0)
        fraction(self.high_pct, name="high_pct", low=0.0, high=100.0)
        if self.low_pct >= self.high_pct:
            raise InvalidInputError(
                f"low_pct must be below high_pct, found {self.low_pct} >= {self.high_pct}"
            )
        for name in ("open_px", "close_px"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 50:
                raise InvalidInputError(f"{name} must be an int in [0, 50], found {value!r}")


#: Largest nodata speck (pixels, 8-connected) :func:`fill_specks` fills: the holes a
#: float raster has by the pixel, not an area without data.
SPECK_PX = 16


def fill_specks(gray: np.ndarray, *, max_px: int = SPECK_PX) -> np.ndarray:
    """``gray`` ``[H x W]`` with nodata specks of at most ``max_px`` pixels filled.

    Each speck (NaN, 8-connected) takes the mean of its valid neighbours,
    growing inwards one ring at a time; larger nodata areas stay NaN. The
    model and the matchers treat a window or cell with any nodata as unusable,
    so a reference sprinkled with single-pixel holes (NaN/Inf in a float
    raster, or its nodata value) would otherwise leave nothing to match.
    Returns a new array; ``gray`` is not changed.
    """
    out = np.array(gray, dtype=np.float32, copy=True)
    holes = ~np.isfinite(out)
    if not holes.any() or holes.all():
        return out
    labels, n = ndimage.label(holes, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    small = (sizes <= max_px) & (np.arange(n + 1) > 0)
    todo = small[labels]
    if not todo.any():
        return out
    kernel = np.ones((3, 3), np.float32)
    for _ in range(max_px):  # a speck of max_px pixels is at most max_px rings deep
        valid = np.isfinite(out)
        total = ndimage.convolve(np.where(valid, out, 0.0), kernel, mode="constant")
        count = ndimage.convolve(valid.astype(np.float32), kernel, mode="constant")
        ring = todo & (count > 0)
        if not ring.any():
            break
        out[ring] = total[ring] / count[ring]
        todo &= ~ring
    return out


def rgb_to_gray(data: np.ndarray) -> np.ndarray:
    """Gray image ``[H x W]`` float32 from bands ``[B x H x W]`` (or ``[H x W]``).

    One band is returned as is; three or more are read as R, G, B (extra bands
    ignored) and combined with ITU-R 601 weights. NaN stays NaN.
    """
    arr = bands_3d(data, name="reference data")
    if arr.shape[0] == 1:
        return arr[0].astype(np.float32)
    if arr.shape[0] == 2:
        raise InvalidInputError(
            f"reference data must have 1 (gray) or >= 3 (R, G, B...) bands, found {arr.shape[0]}"
        )
    r, g, b = (arr[i].astype(np.float32) for i in range(3))
    wr, wg, wb = BT601_WEIGHTS
    return np.asarray(wr * r + wg * g + wb * b, dtype=np.float32)


def clean_mask(mask: np.ndarray, *, open_px: int = 1, close_px: int = 1) -> np.ndarray:
    """Morphological opening then closing of a mask ``[H x W]`` with disk elements.

    The image edge is replicated so that neither step erodes the mask along
    the border. Returns bool ``[H x W]``.
    """
    arr = image_2d(mask, name="mask", allow_nan=False).astype(bool)
    for radius, op in ((open_px, ndimage.binary_opening), (close_px, ndimage.binary_closing)):
        if not isinstance(radius, int) or radius < 0:
            raise InvalidInputError(f"morphology radius must be an int >= 0, found {radius!r}")
        if radius == 0:
            continue
        padded = np.pad(arr, radius + 1, mode="edge")
        inner = slice(radius + 1, -radius - 1)
        arr = op(padded, structure=_disk(radius))[inner, inner]
    return np.asarray(arr, dtype=bool)


def rasterize_rock_mask(
    polygons: Any,
    *,
    transform: Affine,
    shape: tuple[int, int],
    crs: CRS | str,
    open_px: int = 1,
    close_px: int = 1,
    all_touched: bool = False,
    layer: str | int | None = None,
) -> np.ndarray:
    """Rasterise rock polygons on a raster grid and clean them morphologically.

    Args:
        polygons: vector file (GeoPackage, shapefile...) or a GeoDataFrame/GeoSeries.
        transform: grid affine (pixel → map) of the target raster.
        shape: ``(H, W)`` of the target raster.
        crs: CRS of the target raster; polygons are reprojected to it.
        open_px, close_px: see :func:`clean_mask`.
        all_touched: burn every touched pixel instead of pixel centres.
        layer: layer of a multi-layer file.

    Returns:
        bool ``[H x W]``, True on rock.
    """
    import geopandas as gpd
    from rasterio import features
    from rasterio.transform import array_bounds

    height, width = grid_shape_hw(shape)
    if crs is None:
        raise CRSError("reference grid has no CRS: rock polygons cannot be placed on it")
    grid_crs = parse_crs(crs)
    bounds_grid = _grid_bounds(transform, height, width, array_bounds)

    if isinstance(polygons, gpd.GeoDataFrame | gpd.GeoSeries):
        if polygons.crs is None:
            raise CRSError("rock polygons have no CRS: set one (e.g. gdf.set_crs('EPSG:3031'))")
        gdf = (
            polygons
            if isinstance(polygons, gpd.GeoDataFrame)
            else gpd.GeoDataFrame(geometry=polygons)
        )
        name = "rock polygons"
    else:
        gdf = _read_polygons(polygons, layer=layer, grid_crs=grid_crs, grid_bounds=bounds_grid)
        name = f"rock polygons {polygons}"
    _check_plausible_crs(gdf, name)
    gdf = gdf.to_crs(grid_crs)

    geoms = [g for g in gdf.geometry if g is not None and not g.is_empty]
    polys = [g for g in geoms if g.geom_type in ("Polygon", "MultiPolygon")]
    if len(polys) < len(geoms):
        warnings.warn(
            f"{name}: ignored {len(geoms) - len(polys)} non-polygon geometries",
            stacklevel=2,
        )
    if polys:
        burnt = features.rasterize(
            ((g, 1) for g in polys),
            out_shape=(height, width),
            transform=transform,
            fill=0,
            dtype="uint8",
            all_touched=all_touched,
        ).astype(bool)
    else:
        burnt = np.zeros((height, width), dtype=bool)
    return clean_mask(burnt, open_px=open_px, close_px=close_px)


def enhance_reference(
    gray: np.ndarray, rock_mask: np.ndarray | None, config: EnhanceConfig | None = None
) -> np.ndarray:
    """Lift shadows and darken rock in a gray reference ``[H x W]`` (see module docstring).

    Args:
        gray: gray reference ``[H x W]``, any value range, NaN = nodata.
        rock_mask: bool ``[H x W]`` on the same grid, or None to only stretch
            to 0–255 (no rock information, no shadow lift).
        config: enhancement parameters.

    Returns:
        float32 ``[H x W]`` in 0–255, NaN where ``gray`` is NaN.
    """
    cfg = config or EnhanceConfig()
    arr = image_2d(gray, name="gray reference").astype(np.float32)
    valid = np.isfinite(arr)
    lo, hi = (float(v) for v in np.percentile(arr[valid], [cfg.low_pct, cfg.high_pct]))
    if not hi > lo:
        raise DataQualityError(
            f"gray reference has no contrast: expected distinct {cfg.low_pct}/{cfg.high_pct} "
            f"percentiles, found both {lo:g}"
        )
    g = np.clip((arr - lo) / (hi - lo), 0.0, 1.0)
    if rock_mask is None:
        out = g
    else:
        mask = image_2d(rock_mask, name="rock mask", allow_nan=False)
        if mask.shape != arr.shape:
            raise InvalidInputError(
                f"rock mask must match the reference grid {arr.shape}, found {mask.shape}"
            )
        w = mask.astype(np.float32)
        if cfg.feather_px > 0:
            w = ndimage.gaussian_filter(w, cfg.feather_px, mode="nearest")
        out = w * (cfg.rock_gain * g) + (1.0 - w) * np.power(g, cfg.shadow_gamma)
    out = (255.0 * out).astype(np.float32)
    out[~valid] = np.nan
    return out


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return np.asarray(xx * xx + yy * yy <= radius * radius + radius)


def _grid_bounds(
    transform: Any, height: int, width: int, array_bounds: Any
) -> tuple[float, float, float, float]:
    if not isinstance(transform, Affine):
        raise InvalidInputError(
            f"transform must be an affine.Affine, found {type(transform).__name__}"
        )
    if transform.is_degenerate:
        raise InvalidInputError(f"transform is degenerate (zero pixel size): {tuple(transform)}")
    if transform.b == 0 and transform.d == 0:
        return tuple(float(v) for v in array_bounds(height, width, transform))  # type: ignore[return-value]
    corners = np.array([transform @ c for c in ((0, 0), (width, 0), (width, height), (0, height))])
    return (
        float(corners[:, 0].min()),
        float(corners[:, 1].min()),
        float(corners[:, 0].max()),
        float(corners[:, 1].max()),
    )


def _read_polygons(
    path: str | os.PathLike[str],
    *,
    layer: str | int | None,
    grid_crs: CRS,
    grid_bounds: tuple[float, float, float, float],
) -> Any:
    import pyogrio
    from pyogrio.errors import DataLayerError, DataSourceError
    from rasterio.warp import transform_bounds

    p = Path(path)
    info = read_vector_info(p, "rock polygons", layer=layer)
    file_crs = parse_crs(info["crs"])
    if info.get("total_bounds") is not None:
        _check_plausible_bounds(file_crs, info["total_bounds"], f"rock polygons {p}")
    try:
        # Only features near the grid are read: the ADD layer covers a continent.
        bbox = transform_bounds(grid_crs, file_crs, *grid_bounds, densify_pts=21)
    except Exception as exc:  # any PROJ failure means the two CRSs do not relate
        raise CRSError(
            f"cannot transform the reference grid from {grid_crs} to the CRS of {p} "
            f"({file_crs}): {exc}"
        ) from exc
    if not all(math.isfinite(v) for v in bbox):
        bbox = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return pyogrio.read_dataframe(p, layer=layer, bbox=bbox)
    except (DataSourceError, DataLayerError, ValueError) as exc:
        raise InvalidInputError(f"cannot read rock polygons {p}: {exc}") from exc


def _check_plausible_crs(gdf: Any, name: str) -> None:
    if len(gdf) and gdf.crs is not None:
        _check_plausible_bounds(gdf.crs, gdf.total_bounds, name)


def _check_plausible_bounds(crs: Any, bounds: Any, name: str) -> None:
    """Raise :class:`CRSError` when coordinates cannot be in the declared geographic CRS."""
    if not pyproj.CRS.from_user_input(crs).is_geographic:
        return
    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
        return
    if xmin < -360 or xmax > 360 or ymax > 90 or ymin < -90:
        raise CRSError(
            f"{name}: coordinates ({xmin:.0f}, {ymin:.0f}, {xmax:.0f}, {ymax:.0f}) are not "
            f"degrees but the declared CRS {pyproj.CRS.from_user_input(crs).to_string()} is "
            "geographic: fix the file's CRS (e.g. ogr2ogr -a_srs EPSG:3031)"
        )
