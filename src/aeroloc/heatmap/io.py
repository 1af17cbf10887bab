"""Write a :class:`Heatmap` as a north-up float32 GeoTIFF and as a picture.

The heatmap grid follows the rotated AoI, whose geotransform has rotation
terms; many GIS renderers ignore those, so the GeoTIFF is resampled by GDAL
(:func:`rasterio.warp.reproject`, nearest cell) onto a north-up grid with the
heatmap's cell size. Cells outside the rotated grid are NaN (the file's
nodata).

``heatmap.png`` draws the scores over the AoI with the top candidates, the
photo's status (title and legend title), its footprint — solid green when
accepted, dashed orange when it is only proposed (``review``) — the true
footprint when known, and axes that name the CRS.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from affine import Affine
from shapely.geometry import Polygon

from aeroloc.files import write_geotiff, write_png
from aeroloc.heatmap.grid import Heatmap
from aeroloc.report.style import crs_axis_labels

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def north_up(heatmap: Heatmap) -> tuple[np.ndarray, Affine]:
    """The heatmap resampled to a north-up grid: ``([H x W] float32, transform)``.

    The grid has the heatmap's cell size and covers its rotated grid; GDAL
    warps the scores onto it by nearest cell (NaN outside).
    """
    from rasterio.warp import Resampling, reproject

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
    out = np.full((height, width), np.nan, dtype=np.float32)
    reproject(
        heatmap.scores.astype(np.float32),
        out,
        src_transform=t,
        src_crs=heatmap.crs,
        src_nodata=np.nan,
        dst_transform=out_t,
        dst_crs=heatmap.crs,
        dst_nodata=np.nan,
        resampling=Resampling.nearest,
    )
    return out, out_t


def save_heatmap_tif(heatmap: Heatmap, path: str | os.PathLike[str]) -> Path:
    """Write the heatmap as a north-up float32 GeoTIFF (NaN nodata), atomically."""
    grid, transform = north_up(heatmap)
    return write_geotiff(path, grid, transform=transform, crs=heatmap.crs, nodata=float("nan"))


#: How ``heatmap.png`` draws the photo's footprint, by status: (colour, line style, label).
FOOTPRINT_STYLES: dict[str, tuple[str, str, str]] = {
    "accepted": ("lime", "-", "accepted footprint"),
    "review": ("orange", "--", "proposed footprint (review)"),
}


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
    status: str | None = None,
) -> Path:
    """Write :func:`heatmap_figure` as a PNG, atomically."""
    return write_png(
        path,
        heatmap_figure(
            heatmap,
            background=background,
            background_transform=background_transform,
            candidates=candidates,
            footprint=footprint,
            truth=truth,
            title=title,
            status=status,
        ),
    )


def heatmap_figure(
    heatmap: Heatmap,
    *,
    background: np.ndarray | None = None,
    background_transform: Affine | None = None,
    candidates: Sequence[tuple[int, Polygon]] = (),
    footprint: Polygon | None = None,
    truth: Polygon | None = None,
    title: str = "",
    status: str | None = None,
) -> Figure:
    """The heatmap at 50 % alpha over the AoI with candidates, footprints and the status.

    Args:
        heatmap: the scores.
        background: ``[H x W]`` gray AoI (north-up), drawn beneath.
        background_transform: its pixel → map transform.
        candidates: (rank, window polygon) pairs to outline and number.
        footprint: the verified footprint: solid green when ``status`` is
            ``accepted`` (or None), dashed orange when it is ``review``.
        truth: true footprint when known (drawn dashed, white).
        title: figure title (the status is appended).
        status: the photo's status, in the title and as the legend's title.
    """
    from matplotlib.figure import Figure

    grid, t = north_up(heatmap)
    h, w = grid.shape
    extent = (t.c, t.c + t.a * w, t.f + t.e * h, t.f)
    fig = Figure(figsize=(7.5, 7.5))
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
    for i, (rank, poly) in enumerate(candidates):
        xs, ys = poly.exterior.xy
        label = "candidate window (rank)" if i == 0 else None
        ax.plot(xs, ys, color="cyan", lw=1.0, label=label)
        cx, cy = poly.centroid.x, poly.centroid.y
        ax.text(
            cx, cy, str(rank), color="cyan", ha="center", va="center", fontsize=9, fontweight="bold"
        )
    if truth is not None:
        xs, ys = truth.exterior.xy
        ax.plot(xs, ys, color="white", lw=1.5, ls="--", label="truth")
    if footprint is not None:
        colour, style, label = FOOTPRINT_STYLES.get(
            status or "accepted", FOOTPRINT_STYLES["accepted"]
        )
        xs, ys = footprint.exterior.xy
        ax.plot(xs, ys, color=colour, lw=2.0, ls=style, label=label)
    if ax.get_legend_handles_labels()[0] or status:
        legend = ax.legend(
            loc="upper right",
            fontsize=9,
            title=f"status: {status}" if status else None,
            title_fontsize=10,
            framealpha=0.9,
            facecolor="white",
        )
        legend.set_zorder(10)
    _zoom_to_valid(ax, grid, t, pad_m=heatmap.window_px * heatmap.pixel_size_m / 2)
    head = title or f"{heatmap.model} ({heatmap.engine}, {heatmap.n_windows} windows)"
    ax.set_title(f"{head} — {status}" if status else head)
    xlabel, ylabel = crs_axis_labels(heatmap.crs)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(labelsize=7)
    return fig


def _zoom_to_valid(ax: Any, grid: np.ndarray, t: Affine, *, pad_m: float) -> None:
    """Limit the axes to the scored cells (plus a margin), not the whole padded AoI."""
    rows, cols = np.nonzero(np.isfinite(grid))
    if rows.size == 0:
        return
    x0, y0 = t.c + t.a * cols.min(), t.f + t.e * (rows.max() + 1)
    x1, y1 = t.c + t.a * (cols.max() + 1), t.f + t.e * rows.min()
    ax.set_xlim(x0 - pad_m, x1 + pad_m)
    ax.set_ylim(y0 - pad_m, y1 + pad_m)
