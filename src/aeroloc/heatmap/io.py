"""Write a :class:`Heatmap` as a north-up float32 GeoTIFF and as a picture.

The heatmap grid follows the rotated AoI, whose geotransform has rotation
terms; many GIS renderers ignore those, so the GeoTIFF is resampled (nearest
cell) onto a north-up grid with the heatmap's cell size. Cells outside the
rotated grid are NaN (the file's nodata).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from shapely.geometry import Polygon

from aeroloc.files import write_geotiff, write_png
from aeroloc.heatmap.grid import Heatmap


def apply_affine(t: Affine, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``t`` to coordinate arrays: ``(u, v)`` → ``(x, y)``."""
    return t.a * u + t.b * v + t.c, t.d * u + t.e * v + t.f


def north_up(heatmap: Heatmap) -> tuple[np.ndarray, Affine]:
    """The heatmap resampled to a north-up grid: ``([H x W] float32, transform)``."""
    t = heatmap.cell_transform()
    if abs(t.b) < 1e-9 and abs(t.d) < 1e-9 and t.a > 0 and t.e < 0:
        return heatmap.scores.astype(np.float32), t
    rows, cols = heatmap.shape
    corners = np.array([t @ (c, r) for c, r in ((0, 0), (cols, 0), (cols, rows), (0, rows))])
    cell = math.hypot(t.a, t.d)
    minx, miny = corners.min(0)
    maxx, maxy = corners.max(0)
    width = max(1, math.ceil((maxx - minx) / cell))
    height = max(1, math.ceil((maxy - miny) / cell))
    out_t = Affine(cell, 0, minx, 0, -cell, maxy)
    jj, ii = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    xs, ys = apply_affine(out_t, jj.ravel(), ii.ravel())
    cf, rf = apply_affine(~t, xs, ys)
    cc = np.floor(cf).astype(np.int64)
    rr = np.floor(rf).astype(np.int64)
    inside = (cc >= 0) & (cc < cols) & (rr >= 0) & (rr < rows)
    out = np.full(width * height, np.nan, dtype=np.float32)
    out[inside] = heatmap.scores[rr[inside], cc[inside]]
    return out.reshape(height, width), out_t


def save_heatmap_tif(heatmap: Heatmap, path: str | os.PathLike[str]) -> Path:
    """Write the heatmap as a north-up float32 GeoTIFF (NaN nodata), atomically."""
    grid, transform = north_up(heatmap)
    return write_geotiff(path, grid, transform=transform, crs=heatmap.crs, nodata=float("nan"))


def save_heatmap_png(
    heatmap: Heatmap,
    path: str | os.PathLike[str],
    *,
    background: np.ndarray | None = None,
    background_transform: Affine | None = None,
    candidates: Sequence[tuple[int, Polygon]] = (),
    footprint: Polygon | None = None,
    truth: Polygon | None = None,
    title: str = "",
) -> Path:
    """Draw the heatmap at 50 % alpha over the AoI with candidates and footprints.

    Args:
        heatmap: the scores.
        path: PNG to write.
        background: ``[H x W]`` gray AoI (north-up), drawn beneath.
        background_transform: its pixel → map transform.
        candidates: (rank, window polygon) pairs to outline and number.
        footprint: accepted footprint (drawn in green).
        truth: true footprint when known (drawn dashed, white).
        title: figure title.
    """
    from matplotlib.figure import Figure

    grid, t = north_up(heatmap)
    h, w = grid.shape
    extent = (t.c, t.c + t.a * w, t.f + t.e * h, t.f)
    fig = Figure(figsize=(7, 7))
    ax = fig.subplots()
    if background is not None and background_transform is not None:
        bt = background_transform
        bh, bw = background.shape
        ax.imshow(
            background,
            cmap="gray",
            extent=(bt.c, bt.c + bt.a * bw, bt.f + bt.e * bh, bt.f),
            interpolation="bilinear",
        )
    im = ax.imshow(grid, cmap="inferno", alpha=0.5, extent=extent, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="similarity")
    for rank, poly in candidates:
        xs, ys = poly.exterior.xy
        ax.plot(xs, ys, color="cyan", lw=1.0)
        cx, cy = poly.centroid.x, poly.centroid.y
        ax.text(
            cx, cy, str(rank), color="cyan", ha="center", va="center", fontsize=9, fontweight="bold"
        )
    if truth is not None:
        xs, ys = truth.exterior.xy
        ax.plot(xs, ys, color="white", lw=1.5, ls="--", label="truth")
    if footprint is not None:
        xs, ys = footprint.exterior.xy
        ax.plot(xs, ys, color="lime", lw=2.0, label="accepted footprint")
    if truth is not None or footprint is not None:
        ax.legend(loc="lower right", fontsize=8)
    _zoom_to_valid(ax, grid, t, pad_m=heatmap.window_px * heatmap.pixel_size_m / 2)
    ax.set_title(title or f"{heatmap.model} ({heatmap.engine}, {heatmap.n_windows} windows)")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(labelsize=7)
    return write_png(path, fig)


def _zoom_to_valid(ax: Any, grid: np.ndarray, t: Affine, *, pad_m: float) -> None:
    """Limit the axes to the scored cells (plus a margin), not the whole padded AoI."""
    rows, cols = np.nonzero(np.isfinite(grid))
    if rows.size == 0:
        return
    x0, y0 = t.c + t.a * cols.min(), t.f + t.e * (rows.max() + 1)
    x1, y1 = t.c + t.a * (cols.max() + 1), t.f + t.e * rows.min()
    ax.set_xlim(x0 - pad_m, x1 + pad_m)
    ax.set_ylim(y0 - pad_m, y1 + pad_m)
