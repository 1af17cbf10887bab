"""The geometry of a similarity heatmap: one cell per sliding window.

Windows of ``window_px`` pixels slide over the (rotated) area of interest with
a step of ``stride_px``; window ``(row, col)`` covers AoI pixels
``[row·stride, row·stride + window) × [col·stride, col·stride + window)``.
``pixel_to_map`` maps AoI pixel coordinates (col, row) to map coordinates, so
every cell, rotated or not, has an exact place on the map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import Polygon

from aeroloc.errors import DataQualityError, InvalidInputError
from aeroloc.heatmap.poses import SINGLE_POSE, PoseGrid, refine_pose


def grid_shape(height_px: int, width_px: int, window_px: int, stride_px: int) -> tuple[int, int]:
    """Number of window rows and columns that fit into an image of the given size."""
    if window_px <= 0 or stride_px <= 0:
        raise InvalidInputError(
            f"window and stride must be > 0 px, got window {window_px}, stride {stride_px}"
        )
    if height_px < window_px or width_px < window_px:
        raise DataQualityError(
            f"area of interest ({width_px} x {height_px} px) is smaller than one window "
            f"({window_px} px): enlarge the AoI buffer or check the photo's ground size"
        )
    return (height_px - window_px) // stride_px + 1, (width_px - window_px) // stride_px + 1


@dataclass(frozen=True, kw_only=True)
class Heatmap:
    """Window scores over an area of interest.

    Attributes:
        scores: ``[R x C]`` float32 similarity in [0, 1]; NaN = window not scored
            (nodata), never ranked.
        window_px: window side in AoI pixels.
        stride_px: step between windows in AoI pixels.
        pixel_to_map: AoI pixel (col, row) → map (x, y).
        crs: map CRS.
        model: model name or checkpoint that produced the scores.
        engine: ``naive``, ``batched`` or ``dense``.
        pose_grid: the headings and scales scored.
        pose_scores: ``[P x R x C]`` every pose's scores (None without a pose
            search); ``scores`` is their maximum over poses.
    """

    scores: np.ndarray
    window_px: int
    stride_px: int
    pixel_to_map: Affine
    crs: CRS
    model: str = ""
    engine: str = ""
    timings_s: dict[str, float] = field(default_factory=dict)
    pose_grid: PoseGrid = SINGLE_POSE
    pose_scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.scores.ndim != 2:
            raise InvalidInputError(f"heatmap scores must be [R x C], got {self.scores.shape}")
        n = len(self.pose_grid.poses)
        if self.pose_scores is not None and self.pose_scores.shape != (n, *self.scores.shape):
            raise InvalidInputError(
                f"heatmap pose_scores must be [{n} x R x C] for "
                f"{self.scores.shape}, got {self.pose_scores.shape}"
            )

    def pose_at(self, row: int, col: int) -> tuple[float, float]:
        """``(heading offset °, scale)`` the pose search found at cell ``(row, col)``.

        Refined between grid steps (:func:`aeroloc.heatmap.poses.refine_pose`);
        the single pose scored when there was no search.
        """
        if self.pose_scores is None:
            offset, scale = self.pose_grid.poses[0]
            return float(offset), float(scale)
        return refine_pose(self.pose_grid, self.pose_scores[:, row, col])

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.scores.shape[0]), int(self.scores.shape[1])

    @property
    def n_windows(self) -> int:
        return int(self.scores.size)

    @property
    def valid(self) -> np.ndarray:
        """``[R x C]`` bool: windows that were scored."""
        return np.isfinite(self.scores)

    @property
    def pixel_size_m(self) -> float:
        """Ground size of one AoI pixel (the transform may be rotated)."""
        t = self.pixel_to_map
        return math.hypot(t.a, t.d)

    def center_px(self, row: float, col: float) -> tuple[float, float]:
        """AoI pixel (col, row) of the centre of window ``(row, col)``."""
        half = self.window_px / 2
        return col * self.stride_px + half, row * self.stride_px + half

    def center_map(self, row: float, col: float) -> tuple[float, float]:
        """Map (x, y) of the centre of window ``(row, col)``."""
        x, y = self.pixel_to_map @ self.center_px(row, col)
        return float(x), float(y)

    def window_polygon(
        self, row: int, col: int, *, offset_deg: float = 0.0, scale: float = 1.0
    ) -> Polygon:
        """Map polygon of window ``(row, col)``, turned and scaled about its centre.

        ``offset_deg`` is clockwise as displayed in the AoI's pixels (see
        :mod:`aeroloc.heatmap.poses`); the defaults give the plain window.
        """
        cx, cy = self.center_px(row, col)
        half = self.window_px * scale / 2
        turn = Affine.translation(cx, cy) @ Affine.rotation(offset_deg)
        corners = [
            turn @ (dx, dy)
            for dx, dy in ((-half, -half), (half, -half), (half, half), (-half, half))
        ]
        return Polygon([self.pixel_to_map @ p for p in corners])

    def cell_of(self, x: float, y: float) -> tuple[float, float]:
        """Fractional (row, col) of the window whose centre is at map (x, y)."""
        col_px, row_px = ~self.pixel_to_map @ (x, y)
        half = self.window_px / 2
        return (row_px - half) / self.stride_px, (col_px - half) / self.stride_px

    def nearest_cell(self, x: float, y: float) -> tuple[int, int] | None:
        """The window whose centre is nearest map (x, y), or None when outside the grid."""
        r, c = self.cell_of(x, y)
        ri, ci = round(r), round(c)
        rows, cols = self.shape
        if 0 <= ri < rows and 0 <= ci < cols:
            return ri, ci
        return None

    def cell_transform(self) -> Affine:
        """Heatmap cell (col, row) → map, each cell centred on its window centre."""
        offset = self.window_px / 2 - self.stride_px / 2
        return (
            self.pixel_to_map
            @ Affine.translation(offset, offset)
            @ Affine.scale(self.stride_px, self.stride_px)
        )

    def percentile(self, score: float) -> float:
        """Percentile rank (0–100) of ``score`` among the valid window scores."""
        return percentile_rank(self.scores, score)


def box_sums(img: np.ndarray, side: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``[R x C]`` sums of ``img [H x W]`` over the ``side``-pixel squares at ``rows`` × ``cols``.

    ``rows``/``cols`` are top-left pixels; squares are clipped to the image.
    One summed-area table: int32 counts for a bool mask (int64 beyond 2^31
    pixels), float64 otherwise, so a mask of a 50 km AoI costs 4 bytes a pixel.
    """
    if img.dtype == np.bool_ and img.size < 2**31:
        # OpenCV's integral image: the same int32 table, about 10x faster.
        sat = cv2.integral(img.view(np.uint8), sdepth=cv2.CV_32S)
    else:
        dtype: type = np.int64 if img.dtype == np.bool_ else np.float64
        sat = np.zeros((img.shape[0] + 1, img.shape[1] + 1), dtype=dtype)
        np.cumsum(img, axis=0, dtype=dtype, out=sat[1:, 1:])
        np.cumsum(sat[1:, 1:], axis=1, out=sat[1:, 1:])
    r0 = np.clip(np.asarray(rows, dtype=np.int64), 0, img.shape[0])
    c0 = np.clip(np.asarray(cols, dtype=np.int64), 0, img.shape[1])
    r1 = np.clip(r0 + side, 0, img.shape[0])
    c1 = np.clip(c0 + side, 0, img.shape[1])
    total = sat[np.ix_(r1, c1)] - sat[np.ix_(r0, c1)] - sat[np.ix_(r1, c0)] + sat[np.ix_(r0, c0)]
    return total.astype(np.float64)


def percentile_rank(scores: np.ndarray, value: float) -> float:
    """Share (%) of finite ``scores`` below ``value``, ties counted half.

    Raises:
        DataQualityError: no finite score at all.
    """
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        raise DataQualityError("the heatmap has no valid window (all nodata)")
    below = np.count_nonzero(finite < value)
    ties = np.count_nonzero(finite == value)
    return float(100.0 * (below + 0.5 * ties) / finite.size)
