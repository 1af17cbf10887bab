"""Ranked candidate locations: heatmap peaks after non-maximum suppression."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

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
        polygon: window outline in map coordinates.
        scale: window size relative to the nominal ground size (multi-scale search).
        azimuth_deg: heading of the window's rotated AoI.
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
    azimuth_deg: float = 0.0


def find_candidates(
    heatmap: Heatmap,
    *,
    max_candidates: int = 20,
    nms_radius_px: float | None = None,
    scale: float = 1.0,
    azimuth_deg: float = 0.0,
) -> tuple[Candidate, ...]:
    """Peaks of ``heatmap``, best first, at least ``nms_radius_px`` apart.

    Greedy non-maximum suppression: take the best remaining window, drop every
    window whose centre lies closer than the radius (default half a window),
    repeat. NaN windows are never candidates.
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
                polygon=heatmap.window_polygon(r, c),
                scale=scale,
                azimuth_deg=azimuth_deg,
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


def merge_candidates(
    groups: list[tuple[Candidate, ...]], *, min_distance_m: float, max_candidates: int = 20
) -> tuple[Candidate, ...]:
    """Merge candidates of several scales/headings, keeping the best per location.

    Scores from different searches are compared directly; a candidate closer
    than ``min_distance_m`` to a better one is dropped. Ranks are renumbered.
    """
    pool = sorted((c for g in groups for c in g), key=lambda c: -c.score)
    kept: list[Candidate] = []
    for cand in pool:
        if all(math.hypot(cand.x - k.x, cand.y - k.y) >= min_distance_m for k in kept):
            kept.append(cand)
        if len(kept) >= max_candidates:
            break
    return tuple(replace(c, rank=i + 1) for i, c in enumerate(kept))
