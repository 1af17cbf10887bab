"""Ranked candidate locations: heatmap peaks after non-maximum suppression."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from shapely.geometry import Polygon

from aeroloc.errors import DataQualityError, InvalidInputError
from aeroloc.heatmap.grid import Heatmap


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One ranked window.

    Attributes:
        rank: 1 = best.
        score: similarity in [0, 1].
        percentile: percentile rank (0–100) of the score among all valid windows.
        row, col: heatmap cell.
        x, y: window centre in map coordinates.
        polygon: window outline in map coordinates (turned and scaled to the
            pose the search found).
        scale: footprint size the search found, relative to the nominal one.
        heading_offset_deg: heading the search found, relative to the given
            heading to which the AoI is rotated (clockwise degrees).
        azimuth_deg: the heading the search found: the given heading plus
            ``heading_offset_deg``, in [0, 360).
    """

    rank: int
    score: float
    percentile: float
    row: int
    col: int
    x: float
    y: float
    polygon: Polygon
    scale: float = 1.0
    heading_offset_deg: float = 0.0
    azimuth_deg: float = 0.0


def find_candidates(
    heatmap: Heatmap,
    *,
    max_candidates: int = 20,
    nms_radius_px: float | None = None,
    azimuth_deg: float = 0.0,
) -> tuple[Candidate, ...]:
    """Peaks of ``heatmap``, best first, at least ``nms_radius_px`` apart.

    Greedy non-maximum suppression: take the best remaining window, drop every
    window whose centre lies closer than the radius (default half a window),
    repeat. NaN windows are never candidates. Each candidate carries the pose
    its cell kept (:meth:`Heatmap.pose_at`); ``azimuth_deg`` is the given
    heading the AoI was rotated to.
    """
    if max_candidates < 1:
        raise InvalidInputError(f"max_candidates must be ≥ 1, got {max_candidates}")
    radius = heatmap.window_px / 2 if nms_radius_px is None else float(nms_radius_px)
    scores = heatmap.scores
    valid = np.isfinite(scores)
    if not valid.any():
        raise DataQualityError(
            "every window of the heatmap is nodata: the AoI holds no valid reference pixels"
        )
    rows, cols = np.nonzero(valid)
    order = np.argsort(-scores[rows, cols], kind="stable")
    rows, cols = rows[order], cols[order]
    # Window centres in AoI pixels; the grid is regular, so compare in cells.
    radius_cells = radius / heatmap.stride_px
    suppressed = np.zeros(scores.shape, dtype=bool)
    r_reach = math.ceil(radius_cells)
    finite = scores[valid]
    out: list[Candidate] = []
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        if suppressed[r, c]:
            continue
        score = float(scores[r, c])
        x, y = heatmap.center_map(r, c)
        offset, scale = heatmap.pose_at(r, c)
        pct = float(
            100.0
            * (np.count_nonzero(finite < score) + 0.5 * np.count_nonzero(finite == score))
            / finite.size
        )
        out.append(
            Candidate(
                rank=len(out) + 1,
                score=score,
                percentile=pct,
                row=r,
                col=c,
                x=x,
                y=y,
                polygon=heatmap.window_polygon(r, c, offset_deg=offset, scale=scale),
                scale=scale,
                heading_offset_deg=offset,
                azimuth_deg=float((azimuth_deg + offset) % 360.0),
            )
        )
        if len(out) >= max_candidates:
            break
        r0, r1 = max(0, r - r_reach), min(scores.shape[0], r + r_reach + 1)
        c0, c1 = max(0, c - r_reach), min(scores.shape[1], c + r_reach + 1)
        rr, cc = np.mgrid[r0:r1, c0:c1]
        near = (rr - r) ** 2 + (cc - c) ** 2 < radius_cells**2
        suppressed[r0:r1, c0:c1] |= near
    return tuple(out)


def search_box(
    heatmap: Heatmap, candidate: Candidate, *, margin_frac: float, shape: tuple[int, int]
) -> tuple[int, int, int, int]:
    """AoI pixel box ``(col0, row0, col1, row1)`` of a candidate window grown by a margin.

    The window (side ``window_px × scale``) is grown by ``margin_frac`` of its
    side on every side and clipped to an AoI of ``shape`` ``(H, W)``: with 0.5
    the box is twice the window, so the photo is still inside it when the
    candidate is off by up to half a window.
    """
    if not (math.isfinite(margin_frac) and margin_frac >= 0):
        raise InvalidInputError(f"margin_frac must be ≥ 0, got {margin_frac}")
    side = heatmap.window_px * candidate.scale
    cx, cy = heatmap.center_px(candidate.row, candidate.col)
    half = side / 2 + margin_frac * side
    height, width = shape
    c0, r0 = max(0, math.floor(cx - half)), max(0, math.floor(cy - half))
    c1, r1 = min(width, math.ceil(cx + half)), min(height, math.ceil(cy + half))
    if c1 <= c0 or r1 <= r0:
        raise InvalidInputError(
            f"candidate {candidate.rank} lies outside the AoI ({width} x {height} px)"
        )
    return c0, r0, c1, r1
