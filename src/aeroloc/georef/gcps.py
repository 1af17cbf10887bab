"""Ground control points: from the verified tie points, or a grid mapped through the transform."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rasterio.crs import CRS

from aeroloc.errors import InvalidInputError
from aeroloc.files import parse_crs
from aeroloc.georef.transform import PhotoTransform

#: Fewest tie points that are used as GCPs; with fewer, a grid is used instead.
MIN_MATCH_GCPS = 6


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
