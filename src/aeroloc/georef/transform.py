"""A located photo's transform: scan pixel ``(col, row)`` → map ``(x, y)`` (3 × 3 homogeneous)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import Polygon

from aeroloc.errors import DataQualityError, InvalidInputError
from aeroloc.files import parse_crs

TRANSFORM_KINDS = ("similarity", "affine", "homography")


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
