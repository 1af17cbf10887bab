"""The report's pictures: the overview map and one along-track plot per flight line.

Both are :class:`matplotlib.figure.Figure` objects (Agg, no pyplot state);
:func:`png_bytes` renders one to PNG for embedding.

* :func:`overview_figure` — every footprint over a downsampled view of the
  reference (:func:`read_overview`: one averaging read at most
  :data:`OVERVIEW_MAX_PX` pixels on a side, from the raster's own overviews
  when it has them; never the full array), coloured by status, a review
  footprint dashed; photos without a footprint are listed in the legend with
  their count (and marked at their catalog centre when it is known).
* :func:`along_track_figure` — a flight line's located photos: position along
  the line's principal direction (km from the first located frame) against
  frame, coloured by status, with a straight-line fit and each photo's
  residual from it.
"""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from aeroloc.errors import AeroLocError
from aeroloc.io.table import FootprintRow
from aeroloc.report.style import STATUS_COLOURS, STATUS_ORDER, crs_axis_labels

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

#: Longest side of the reference overview read for the map (pixels).
OVERVIEW_MAX_PX = 1000
#: Margin around the footprints on the map, as a fraction of their extent.
MAP_MARGIN = 0.15
#: Photo ids are written on the map up to this many footprints.
MAX_LABELS = 60


@dataclass(frozen=True, kw_only=True, eq=False)
class Overview:
    """A downsampled view of the reference: ``[H x W]`` float32 gray (NaN: no data)."""

    image: np.ndarray
    transform: Affine
    source: str


def map_extent(
    geometries: Sequence[BaseGeometry], points: Sequence[tuple[float, float]] = ()
) -> tuple[float, float, float, float] | None:
    """``(minx, miny, maxx, maxy)`` around the footprints and points, with a margin."""
    xs: list[float] = []
    ys: list[float] = []
    for g in geometries:
        minx, miny, maxx, maxy = g.bounds
        xs += [minx, maxx]
        ys += [miny, maxy]
    for x, y in points:
        xs.append(x)
        ys.append(y)
    if not xs:
        return None
    minx, maxx, miny, maxy = min(xs), max(xs), min(ys), max(ys)
    pad = MAP_MARGIN * max(maxx - minx, maxy - miny, 1.0)
    return minx - pad, miny - pad, maxx + pad, maxy + pad


def read_overview(
    reference: str | os.PathLike[str],
    crs: CRS | None,
    extent: tuple[float, float, float, float] | None,
    *,
    max_px: int = OVERVIEW_MAX_PX,
) -> Overview | None:
    """The reference over ``extent`` (all of it when None), at most ``max_px`` on a side.

    A reference in another CRS is read through a WarpedVRT in ``crs``. The
    read is windowed and decimated by GDAL (``out_shape``, average), so it
    costs about ``max_px²`` pixels whatever the raster's size. Returns None
    (and logs why) when the reference cannot be read or does not overlap.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window, from_bounds

    from aeroloc.files import open_raster

    try:
        ds = open_raster(reference, what="reference raster", need_crs=crs is not None)
    except AeroLocError as exc:
        logger.warning("report: no reference overview (%s)", exc)
        return None
    try:
        src = ds if crs is None or ds.crs == crs else WarpedVRT(ds, crs=crs)
        with src:
            full = Window(0, 0, src.width, src.height)
            if extent is None:
                window = full
            else:
                try:
                    window = from_bounds(*extent, transform=src.transform).intersection(full)
                except rasterio.errors.WindowError:
                    logger.warning("report: the reference %s does not cover the map", reference)
                    return None
            window = window.round_offsets().round_lengths()
            if window.width < 1 or window.height < 1:
                return None
            scale = min(1.0, max_px / max(window.width, window.height))
            shape = (max(1, round(window.height * scale)), max(1, round(window.width * scale)))
            bands = [1, 2, 3] if src.count >= 3 else [1]
            data = src.read(
                bands, window=window, out_shape=(len(bands), *shape),
                resampling=Resampling.average, masked=True,
            )  # fmt: skip
            # the window's own transform, composed here (rasterio's
            # window_transform multiplies Affines with the deprecated ``*``)
            origin = Affine.translation(window.col_off, window.row_off)
            transform = (
                src.transform
                @ origin
                @ Affine.scale(window.width / shape[1], window.height / shape[0])
            )
    except (rasterio.errors.RasterioError, OSError) as exc:
        logger.warning("report: cannot read the reference %s (%s)", reference, exc)
        return None
    finally:
        ds.close()
    arr = np.ma.filled(data.astype(np.float32), np.nan)
    gray = np.nanmean(arr, axis=0) if arr.shape[0] > 1 else arr[0]
    return Overview(image=_stretch(gray), transform=transform, source=Path(reference).name)


def _stretch(gray: np.ndarray) -> np.ndarray:
    """2–98 % percentile stretch into [0, 1] (NaN stays NaN)."""
    finite = np.isfinite(gray)
    if not finite.any():
        return gray
    lo, hi = np.percentile(gray[finite], [2, 98])
    return np.clip((gray - lo) / max(float(hi - lo), 1e-9), 0, 1).astype(np.float32)


def overview_figure(
    rows: Sequence[FootprintRow],
    crs: CRS | None,
    *,
    overview: Overview | None = None,
    centres: Mapping[str, tuple[float, float]] | None = None,
) -> Figure:
    """Footprints by status over the reference (see the module docstring).

    Args:
        rows: the table's photos.
        crs: their CRS (names the axes).
        overview: the reference beneath, if any.
        centres: catalog camera centres by photo id, to mark photos without a footprint.
    """
    from matplotlib.artist import Artist
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig = Figure(figsize=(9, 8))
    ax = fig.subplots()
    if overview is not None:
        h, w = overview.image.shape
        t = overview.transform
        ax.imshow(
            overview.image,
            cmap="gray",
            extent=(t.c, t.c + t.a * w, t.f + t.e * h, t.f),
            interpolation="bilinear",
        )
    counts = {s: 0 for s in STATUS_ORDER}
    drawn: dict[str, bool] = {}
    marked: dict[str, bool] = {}
    located = [r for r in rows if r.geometry is not None]
    shapes = [r.geometry for r in located if r.geometry is not None]
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
        colour = STATUS_COLOURS.get(row.status, "black")
        if row.geometry is not None:
            for poly in _polygons(row.geometry):
                xs, ys = poly.exterior.xy
                ax.fill(xs, ys, color=colour, alpha=0.3, lw=0)
                ax.plot(xs, ys, color=colour, lw=1.5, ls="--" if row.status == "review" else "-")
            drawn[row.status] = True
            if len(located) <= MAX_LABELS:
                c = row.geometry.centroid
                ax.text(c.x, c.y, row.photo_id, fontsize=7, ha="center", va="center")
        elif centres is not None and row.photo_id in centres:
            x, y = centres[row.photo_id]
            ax.plot([x], [y], marker="x", color=colour, ms=7, mew=2, ls="none")
            marked[row.status] = True
    handles: list[Artist] = []
    for status in (*STATUS_ORDER, *sorted(set(counts) - set(STATUS_ORDER))):
        n = counts.get(status, 0)
        if not n:
            continue
        colour = STATUS_COLOURS.get(status, "black")
        how = "footprint" if drawn.get(status) else "catalog centre" if marked.get(status) else None
        label = f"{status}: {n}" + ("" if how else " (no footprint)")
        if how == "catalog centre":
            handles.append(Line2D([], [], marker="x", color=colour, ls="none", mew=2, label=label))
        else:
            handles.append(
                Patch(
                    facecolor=colour, edgecolor=colour, alpha=0.6 if how else 0.25,
                    ls="--" if status == "review" else "-", label=label,
                )
            )  # fmt: skip
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=9, title="status", framealpha=0.9)
    extent = map_extent(shapes, list((centres or {}).values()) if not shapes else ())
    if extent is not None:
        ax.set_xlim(extent[0], extent[2])
        ax.set_ylim(extent[1], extent[3])
    ax.set_aspect("equal")
    xlabel, ylabel = crs_axis_labels(crs)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(labelsize=7)
    where = f" over {overview.source}" if overview is not None else ""
    ax.set_title(f"{len(located)} of {len(rows)} photos located{where}")
    return fig


def _polygons(geometry: BaseGeometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [geometry]
    return [g for g in getattr(geometry, "geoms", ()) if isinstance(g, Polygon)]


@dataclass(frozen=True, kw_only=True)
class AlongTrack:
    """A line's located photos along its principal direction.

    Attributes:
        frames: ``[N]`` frame numbers (sorted).
        along_km: ``[N]`` position along the line from the first located frame (km).
        statuses: status of each.
        fit: ``(slope km/frame, intercept km)`` of a straight-line fit (None below 2 photos).
    """

    frames: np.ndarray
    along_km: np.ndarray
    statuses: tuple[str, ...]
    fit: tuple[float, float] | None


def along_track(rows: Sequence[FootprintRow], *, km_per_unit: float = 1e-3) -> AlongTrack:
    """Project the footprint centres of a line's rows with a frame onto its principal axis.

    ``km_per_unit`` converts CRS units to the reported distance (km for a metric CRS).
    """
    placed = sorted(
        (r for r in rows if r.geometry is not None and r.frame is not None),
        key=lambda r: int(r.frame or 0),
    )
    frames = np.array([int(r.frame or 0) for r in placed], dtype=np.int64)
    centres = [r.geometry.centroid for r in placed if r.geometry is not None]
    xy = np.array([(c.x, c.y) for c in centres]).reshape(-1, 2)
    statuses = tuple(r.status for r in placed)
    if len(placed) < 2:
        return AlongTrack(
            frames=frames, along_km=np.zeros(len(placed)), statuses=statuses, fit=None
        )
    centred = xy - xy.mean(0)
    direction = np.linalg.svd(centred, full_matrices=False)[2][0]
    if np.dot(xy[-1] - xy[0], direction) < 0:  # point the axis from the first frame on
        direction = -direction
    along = (xy - xy[0]) @ direction * km_per_unit
    slope, intercept = np.polyfit(frames.astype(float), along, 1)
    return AlongTrack(
        frames=frames, along_km=along, statuses=statuses, fit=(float(slope), float(intercept))
    )


def along_track_figure(line: str, rows: Sequence[FootprintRow], crs: CRS | None) -> Figure:
    """Along-track position against frame for one line (see the module docstring)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    km_per_unit, unit = _along_unit(crs)
    track = along_track(rows, km_per_unit=km_per_unit)
    fig = Figure(figsize=(6, 3.2))
    ax = fig.subplots()
    for status in dict.fromkeys(track.statuses):
        keep = np.array([s == status for s in track.statuses])
        ax.plot(
            track.frames[keep], track.along_km[keep], "o", color=STATUS_COLOURS.get(status, "k"),
            label=status,
        )  # fmt: skip
    if track.fit is not None:
        slope, intercept = track.fit
        f = np.array([track.frames.min(), track.frames.max()], dtype=float)
        ax.plot(f, slope * f + intercept, "--", color="0.3", lw=1, label="straight-line fit")
        worst = float(np.abs(track.along_km - (slope * track.frames + intercept)).max())
        residual = f"{worst * 1000:.0f} m" if unit == "km" else f"{worst:.3g} {unit}"
        ax.set_title(
            f"line {line}: {len(track.frames)} located, {slope:.3g} {unit} per frame, "
            f"largest residual {residual}",
            fontsize=9,
        )
    else:
        ax.set_title(f"line {line}: {len(track.frames)} located (too few for a fit)", fontsize=9)
    ax.set_xlabel("frame", fontsize=9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"along track ({unit})", fontsize=9)
    ax.tick_params(labelsize=7)
    if track.statuses:
        ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def _along_unit(crs: CRS | None) -> tuple[float, str]:
    """(factor from CRS units, unit name) for along-track distances: km when projected."""
    if crs is None or not crs.is_projected:
        return 1.0, "CRS units"
    name, factor = crs.linear_units_factor
    return (float(factor) / 1000.0, "km") if math.isfinite(factor) and factor > 0 else (1.0, name)


def png_bytes(fig: Figure, *, dpi: int = 90) -> bytes:
    """``fig`` rendered to PNG bytes (Agg, no file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()
