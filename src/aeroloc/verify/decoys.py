"""The fit must beat wrong places: an accepted fit against the photo's own decoys.

A matcher that searches for the best alignment finds *some* consistent tie
points almost anywhere in terrain with repeated structure (ridges, snow
patches under a low sun): on the real-raster benchmark, wrong places of the
Aletsch and Jacksboro scenes gave 20–45 inliers, more than the absolute
``accept_inliers``. How many inliers a wrong place gets depends on the photo
and the terrain, so no fixed count separates right from wrong everywhere. The
photo's own wrong places measure it: the *decoys* are the heatmap's other
candidates (the places that look most like the photo) centred outside the
accepted footprint. Each is matched like a candidate, with the accepted
footprint blanked (nodata) in its box so that it cannot find the accepted
place again; a decoy whose box that footprint covers for more than
:data:`MAX_BLANKED_SHARE` is skipped. A fit is kept only when it has at least
``AcceptanceRules.min_decoy_ratio`` times the inliers of the best decoy;
otherwise it goes to review with both counts: the photo's pattern is not
unique enough in this AoI to trust the place.

A decoy whose box misses the footprint is an ordinary candidate try (the
walk's own, reused when it was tried already). With no decoy (an AoI too
small for another place) the test is skipped: it only ever lowers a status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np
from affine import Affine
from shapely.geometry import Point, Polygon

from aeroloc.heatmap.candidates import Candidate
from aeroloc.preprocess.prepare import PreparedPair
from aeroloc.verify.accept import AcceptanceRules

#: Decoys matched per accepted fit (those the walk already tried count first).
DEFAULT_DECOYS = 3
#: A decoy whose box the accepted footprint covers more than this share of is skipped
#: (too little of it is left once the footprint is blanked).
MAX_BLANKED_SHARE = 0.5


def box_polygon(box_px: tuple[int, int, int, int], pixel_to_map: Affine) -> Polygon:
    """The map outline of an AoI pixel box ``(col0, row0, col1, row1)``."""
    c0, r0, c1, r1 = box_px
    return Polygon([pixel_to_map @ (c, r) for c, r in ((c0, r0), (c1, r0), (c1, r1), (c0, r1))])


def decoy_candidates(
    accepted_footprint: Polygon, candidates: Iterable[Candidate], *, exclude_rank: int
) -> list[Candidate]:
    """Candidates (in rank order) centred outside the accepted footprint: other places."""
    return [
        c
        for c in candidates
        if c.rank != exclude_rank and not accepted_footprint.contains(Point(c.x, c.y))
    ]


def blank_polygon(
    window: np.ndarray, polygon: Polygon, map_to_pixel: Affine, offset: tuple[int, int]
) -> np.ndarray:
    """A copy of ``window`` (cut at ``offset`` = (col0, row0) of an AoI) with ``polygon`` NaN."""
    ring = np.array([map_to_pixel @ xy for xy in polygon.exterior.coords], dtype=np.float64)
    ring -= np.asarray(offset, dtype=np.float64)
    mask = np.zeros(window.shape, dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(ring * 16).astype(np.int32)], 1, shift=4)
    out = window.astype(np.float32, copy=True)
    out[mask.astype(bool)] = np.nan
    return out


def blanked_share(
    prepared: PreparedPair, box: tuple[int, int, int, int], polygon: Polygon
) -> float:
    """Share of the AoI box ``box`` that ``polygon`` covers."""
    cover = box_polygon(box, prepared.pixel_to_map)
    return float(cover.intersection(polygon).area / cover.area) if cover.area > 0 else 1.0


def decoy_reason(
    n_inliers: int, decoys: Sequence[tuple[int, int]], rules: AcceptanceRules
) -> str | None:
    """Why a fit with ``n_inliers`` does not beat its decoys, or None when it does.

    Args:
        n_inliers: inliers of the accepted fit.
        decoys: ``(rank, n_inliers)`` of each decoy matched.
        rules: ``min_decoy_ratio`` (0 turns the test off).
    """
    if rules.min_decoy_ratio <= 0 or not decoys:
        return None
    rank, best = max(decoys, key=lambda d: (d[1], -d[0]))
    if best < rules.min_inliers or n_inliers >= rules.min_decoy_ratio * best:
        return None
    return (
        f"{n_inliers} inliers here but {best} at a wrong place (candidate {rank}, which "
        f"does not overlap): {rules.min_decoy_ratio:g}x the best wrong place needed to accept"
    )
