"""Search over heading and scale: the AoI seen at a few poses, the best kept per location.

A catalog's heading and altitude are rough. A photo whose true heading is
``δ`` off the given one, or whose footprint is ``s`` times the assumed one,
matches its window worse than at the right pose, and the truth drops in rank.
The pose search scores the AoI under every pose ``(δ, s)`` of a small grid
(:class:`PoseGrid`) and keeps, per heatmap cell, the best score and the pose
that gave it.

One pose is one ordinary heatmap (any engine): the AoI (already rotated to the
given heading) is rotated by ``δ`` about its centre (:func:`pose_view`), the
window is ``s`` times the nominal one, and the engine scores that view on its
own grid. Each cell of the base grid (``δ = 0, s = 1``) then takes the score
of the view's window whose centre is nearest its own (at most half a stride
away). The base pose, when it is in the grid, is the ordinary heatmap to the
last bit.

Angles are clockwise as displayed (rows down) and relative to the given
heading: ``δ = +8`` means the photo's top edge points 8° clockwise of the
heading the AoI was rotated to, so the true heading is the given one + 8°.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from affine import Affine

from aeroloc.errors import ConfigError

#: Largest heading offset a pose grid may hold (a wrong heading by 90° or 180°
#: is verification's retry, not the search's).
MAX_OFFSET_DEG = 45.0
#: Scales a pose grid may hold.
SCALE_RANGE = (0.5, 2.0)


@dataclass(frozen=True, kw_only=True)
class PoseGrid:
    """The headings and scales the heatmap scores.

    Attributes:
        heading_offsets_deg: offsets from the given heading (clockwise degrees).
        scales: footprint sizes relative to the nominal one (1.1 = the photo
            covers 10 % more ground than its altitude says).
    """

    heading_offsets_deg: tuple[float, ...] = (0.0,)
    scales: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if not self.heading_offsets_deg or not self.scales:
            raise ConfigError("a pose grid needs at least one heading offset and one scale")
        for a in self.heading_offsets_deg:
            if not (math.isfinite(a) and abs(a) <= MAX_OFFSET_DEG):
                raise ConfigError(f"heading offsets must be within ±{MAX_OFFSET_DEG:.0f}°, got {a}")
        lo, hi = SCALE_RANGE
        for s in self.scales:
            if not (math.isfinite(s) and lo <= s <= hi):
                raise ConfigError(f"scales must be within {lo}–{hi}, got {s}")
        if len(set(self.poses)) != len(self.poses):
            raise ConfigError("the pose grid lists a heading or scale twice")

    @classmethod
    def span(
        cls,
        *,
        heading_deg: float,
        heading_step_deg: float,
        scale_max: float = 1.0,
        scale_steps: int = 0,
    ) -> PoseGrid:
        """A symmetric grid: offsets ``-heading_deg … +heading_deg`` in steps; scales geometric.

        The scales are ``scale_max ** (k / scale_steps)`` for ``k = -scale_steps …
        scale_steps``, so 1 is always one of them and ``scale_max = 1.15`` with
        one step gives ``(0.87, 1, 1.15)``.
        """
        if not (math.isfinite(heading_deg) and heading_deg >= 0) or (
            heading_deg > 0 and not heading_step_deg > 0
        ):
            raise ConfigError(
                "heading span must be ≥ 0 with a step > 0, "
                f"got ±{heading_deg} by {heading_step_deg}"
            )
        if scale_steps < 0 or not (math.isfinite(scale_max) and scale_max >= 1.0):
            raise ConfigError(
                f"scale_max must be ≥ 1 with ≥ 0 steps, got {scale_max} in {scale_steps}"
            )
        n = 0 if heading_deg == 0 else math.floor(heading_deg / heading_step_deg + 1e-9)
        offsets = tuple(float(k * heading_step_deg) for k in range(-n, n + 1))
        if scale_steps == 0 or scale_max == 1.0:
            return cls(heading_offsets_deg=offsets)
        scales = tuple(
            round(float(scale_max ** (k / scale_steps)), 6)
            for k in range(-scale_steps, scale_steps + 1)
        )
        return cls(heading_offsets_deg=offsets, scales=scales)

    @property
    def poses(self) -> tuple[tuple[float, float], ...]:
        """Every ``(heading offset, scale)``, the base pose first when present."""
        grid = [(float(a), float(s)) for s in self.scales for a in self.heading_offsets_deg]
        grid.sort(key=lambda p: (p != (0.0, 1.0),))
        return tuple(grid)

    @property
    def is_single(self) -> bool:
        """True for the one-pose grid of an ordinary heatmap."""
        return len(self.poses) == 1


#: An ordinary heatmap: the given heading and scale only.
SINGLE_POSE = PoseGrid()
#: The search for a rough catalog (``--heading-search 16 --heading-step 8 --scale-search
#: 0.15``): ±16° in 8° steps, × 1.15^(-1, 0, 1), 15 poses (the model's scores resolve
#: the heading to about a step anyway). Not the default: on the default synthetic
#: preset it lowered recall@1 and costs 10-20x the heatmap (docs/benchmarks/log.md).
SEARCH_POSES = PoseGrid.span(heading_deg=16, heading_step_deg=8, scale_max=1.15, scale_steps=1)


@dataclass(frozen=True, kw_only=True, eq=False)
class PoseView:
    """The AoI as one pose sees it.

    Attributes:
        image: ``[H' x W']`` the AoI rotated by the pose's offset (NaN outside).
        to_base: view pixel (col, row) → base AoI pixel (col, row).
        window_px: window side in view pixels.
    """

    image: np.ndarray
    to_base: Affine
    window_px: int


def pose_view(aoi: np.ndarray, window_px: int, offset_deg: float, scale: float) -> PoseView:
    """The AoI seen at pose ``(offset_deg, scale)``: rotated about its centre, window scaled.

    Rotating the AoI by ``-offset_deg`` (counter-clockwise as displayed) turns a
    direction ``offset_deg`` clockwise of the AoI's up into the view's up, so a
    photo whose top points that way lines up with the view's windows. The view
    is the rotated AoI's bounding box; pixels from outside the AoI are NaN.
    """
    window = max(8, round(window_px * scale))
    if offset_deg == 0.0:
        return PoseView(image=aoi, to_base=Affine.identity(), window_px=window)
    h, w = aoi.shape
    theta = math.radians(offset_deg)
    cos, sin = abs(math.cos(theta)), abs(math.sin(theta))
    out_w = math.ceil(w * cos + h * sin)
    out_h = math.ceil(h * cos + w * sin)
    # view px = R(-δ) (base px - base centre) + view centre, in pixel-corner
    # coordinates; cv2 samples at pixel centres, hence the half-pixel shifts.
    to_view = (
        Affine.translation(out_w / 2, out_h / 2)
        @ Affine.rotation(-offset_deg)
        @ Affine.translation(-w / 2, -h / 2)
    )
    centred = Affine.translation(-0.5, -0.5) @ to_view @ Affine.translation(0.5, 0.5)
    matrix = np.array([[centred.a, centred.b, centred.c], [centred.d, centred.e, centred.f]])
    image = cv2.warpAffine(
        np.asarray(aoi, dtype=np.float32),
        matrix,
        (out_w, out_h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float("nan"),
    )
    return PoseView(image=image, to_base=~to_view, window_px=window)


def view_cells_for_base(
    base_centres_px: np.ndarray,
    view: PoseView,
    view_stride_px: int,
    view_shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For base window centres ``[N x 2]`` (col, row), the view cell nearest each.

    Returns:
        ``(rows, cols, inside)``: the view cells, and which centres fall on the
        view's grid at all.
    """
    to_view = ~view.to_base
    cx, cy = base_centres_px[:, 0], base_centres_px[:, 1]
    vx = to_view.a * cx + to_view.b * cy + to_view.c
    vy = to_view.d * cx + to_view.e * cy + to_view.f
    half = view.window_px / 2
    rows = np.rint((vy - half) / view_stride_px).astype(np.int64)
    cols = np.rint((vx - half) / view_stride_px).astype(np.int64)
    inside = (rows >= 0) & (rows < view_shape[0]) & (cols >= 0) & (cols < view_shape[1])
    return rows, cols, inside


def _vertex(left: float, mid: float, right: float) -> float:
    """Offset (in steps, within ±0.5) of the parabola's peak through three equally spaced scores."""
    denom = left - 2.0 * mid + right
    if not (math.isfinite(denom) and denom < 0):
        return 0.0
    return float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))


def refine_pose(grid: PoseGrid, scores: np.ndarray) -> tuple[float, float]:
    """The pose of one cell, refined between grid steps: ``(heading offset °, scale)``.

    Args:
        grid: the poses scored.
        scores: ``[P]`` the cell's score at each of ``grid.poses`` (NaN = not scored).

    The best pose is moved toward its better neighbours by a parabola through
    the three scores along the heading axis (at the best scale) and along the
    log-scale axis (at the best heading). A pose at the edge of the grid, or
    without finite neighbours, stays where it is.
    """
    poses = grid.poses
    if not np.isfinite(scores).any():
        return 0.0, 1.0
    k = int(np.nanargmax(scores))
    offset, scale = poses[k]
    index = {p: i for i, p in enumerate(poses)}
    offsets = sorted(set(grid.heading_offsets_deg))
    scales = sorted(set(grid.scales))

    def score(p: tuple[float, float]) -> float:
        i = index.get(p)
        return math.nan if i is None else float(scores[i])

    i = offsets.index(offset)
    if 0 < i < len(offsets) - 1:
        step = offsets[i + 1] - offsets[i]
        if math.isclose(step, offsets[i] - offsets[i - 1]):
            d = _vertex(score((offsets[i - 1], scale)), scores[k], score((offsets[i + 1], scale)))
            offset = offset + d * step
    j = scales.index(scale)
    if 0 < j < len(scales) - 1:
        ratio = scales[j + 1] / scales[j]
        if math.isclose(ratio, scales[j] / scales[j - 1], rel_tol=1e-4):
            d = _vertex(
                score((poses[k][0], scales[j - 1])), scores[k], score((poses[k][0], scales[j + 1]))
            )
            scale = scale * ratio**d
    return float(offset), float(scale)


def best_over_poses(pose_scores: np.ndarray) -> np.ndarray:
    """``[R x C]`` each cell's best score over ``[P x R x C]`` (NaN where no pose scored it)."""
    finite = np.isfinite(pose_scores)
    best = np.where(finite, pose_scores, -np.inf).max(axis=0)
    return np.where(finite.any(axis=0), best, np.nan).astype(np.float32)
