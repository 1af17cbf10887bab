"""aeroloc.heatmap.poses: the pose grid, the rotated views and the search over heading and scale."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from scipy import ndimage

from aeroloc.errors import ConfigError
from aeroloc.heatmap.candidates import find_candidates
from aeroloc.heatmap.engines import HeatmapConfig, compute_heatmap
from aeroloc.heatmap.poses import (
    PoseGrid,
    best_over_poses,
    pose_view,
    refine_pose,
    view_cells_for_base,
)
from aeroloc.pipeline import load_model

SEARCH = PoseGrid.span(heading_deg=16, heading_step_deg=4, scale_max=1.15, scale_steps=1)


def _texture(seed: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.normal(size=(size, size)), 6)
    img += 0.4 * ndimage.gaussian_filter(rng.normal(size=(size, size)), 2)
    # ridges running one way, as in mountains: rotation changes what a window shows
    img += 0.8 * ndimage.gaussian_filter(rng.normal(size=(size, size)), (2, 12))
    return ((img - img.min()) / (img.max() - img.min())).astype(np.float32)


def _cut(aoi: np.ndarray, cx: float, cy: float, side: float, offset_deg: float, out_px: int):
    """A photo of ``side`` AoI px centred at (cx, cy), its top ``offset_deg`` clockwise of up."""
    t = (
        Affine.translation(cx, cy)
        @ Affine.rotation(offset_deg)
        @ Affine.scale(side / out_px)
        @ Affine.translation(-out_px / 2, -out_px / 2)
    )
    t = Affine.translation(-0.5, -0.5) @ t @ Affine.translation(0.5, 0.5)
    m = np.array([[t.a, t.b, t.c], [t.d, t.e, t.f]])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(aoi, m, (out_px, out_px), flags=flags)


def test_span_is_symmetric_and_holds_the_given_pose():
    assert SEARCH.heading_offsets_deg == (-16, -12, -8, -4, 0, 4, 8, 12, 16)
    assert SEARCH.scales == (pytest.approx(1 / 1.15, abs=1e-6), 1.0, 1.15)
    assert len(SEARCH.poses) == 27 and SEARCH.poses[0] == (0.0, 1.0)
    assert PoseGrid().is_single and not SEARCH.is_single
    assert PoseGrid.span(heading_deg=0, heading_step_deg=0).poses == ((0.0, 1.0),)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"heading_offsets_deg": ()},
        {"heading_offsets_deg": (0.0, 60.0)},
        {"scales": (0.3,)},
        {"scales": (1.0, 1.0)},
        {"scales": (math.nan,)},
    ],
)
def test_bad_grids_are_refused(kwargs):
    with pytest.raises(ConfigError):
        PoseGrid(**kwargs)
    with pytest.raises(ConfigError, match="PoseGrid"):
        HeatmapConfig(poses=(0.0, 1.0))  # type: ignore[arg-type]


def test_pose_view_lines_a_turned_window_up_with_the_photo():
    aoi = _texture(1, 300)
    photo = _cut(aoi, 160.0, 140.0, 80.0, 12.0, 80)
    view = pose_view(aoi, 80, 12.0, 1.0)
    vx, vy = (~view.to_base) @ (160.0, 140.0)
    win = view.image[round(vy - 40) : round(vy + 40), round(vx - 40) : round(vx + 40)]
    assert np.corrcoef(win.ravel(), photo.ravel())[0, 1] > 0.97
    # the other way round does not line up
    other = pose_view(aoi, 80, -12.0, 1.0)
    ox, oy = (~other.to_base) @ (160.0, 140.0)
    win = other.image[round(oy - 40) : round(oy + 40), round(ox - 40) : round(ox + 40)]
    assert np.corrcoef(win.ravel(), photo.ravel())[0, 1] < 0.8
    # base centres map onto the view's grid cell whose centre is nearest
    rows, cols, inside = view_cells_for_base(np.array([[160.0, 140.0]]), view, 10, (100, 100))
    assert inside[0]
    assert abs(cols[0] * 10 + 40 - vx) <= 5 and abs(rows[0] * 10 + 40 - vy) <= 5


def test_refine_pose_moves_between_steps_toward_the_better_neighbour():
    grid = PoseGrid(heading_offsets_deg=(-4.0, 0.0, 4.0), scales=(1.0,))
    scores = {
        p: s for p, s in zip(((0.0, 1.0), (-4.0, 1.0), (4.0, 1.0)), (0.8, 0.6, 0.7), strict=True)
    }
    offset, scale = refine_pose(grid, np.array([scores[p] for p in grid.poses]))
    assert 0.0 < offset < 2.0 and scale == 1.0
    # at the edge of the grid it stays put
    edge = np.array([0.6 if p != (4.0, 1.0) else 0.9 for p in grid.poses])
    assert refine_pose(grid, edge) == (4.0, 1.0)


def test_best_over_poses_ignores_nan():
    s = np.array([[[0.2, np.nan]], [[0.5, np.nan]]], dtype=np.float32)
    out = best_over_poses(s)
    assert out[0, 0] == pytest.approx(0.5) and np.isnan(out[0, 1])


@pytest.fixture(scope="module")
def shipped():
    return load_model()[0]


def _search(photo, aoi, model, window_px, poses):
    hm = compute_heatmap(
        photo,
        aoi,
        model=model,
        window_px=window_px,
        pixel_to_map=Affine.identity(),
        crs=CRS.from_epsg(3031),
        config=HeatmapConfig(poses=poses),
    )
    return hm, find_candidates(hm, max_candidates=10, azimuth_deg=100.0)


def test_single_pose_search_is_the_plain_heatmap(shipped):
    aoi = _texture(3, 400)
    photo = _cut(aoi, 200.0, 160.0, 160.0, 0.0, 200)
    plain, _ = _search(photo, aoi, shipped, 160, PoseGrid())
    grid = PoseGrid(heading_offsets_deg=(0.0, 8.0), scales=(1.0,))
    both, _ = _search(photo, aoi, shipped, 160, grid)
    assert both.pose_scores is not None and both.pose_scores.shape == (2, *plain.shape)
    np.testing.assert_array_equal(both.pose_scores[0], plain.scores)
    assert np.all(both.scores >= plain.scores)


@pytest.mark.parametrize("seed", [3, 4])
def test_photo_turned_12_degrees_and_scaled_0_9_is_found_with_its_pose(shipped, seed):
    """Known answer: the truth comes first, its heading and scale within one grid step.

    The model's scores change slowly with heading and scale (a broad peak), so
    the search resolves them to about a step; verification fits them exactly.
    """
    aoi = _texture(seed, 700)
    window, (cx, cy) = 160, (400.0, 320.0)  # on the base grid (stride 40)
    photo = _cut(aoi, cx, cy, 0.9 * window, 12.0, 200)
    _, cands = _search(photo, aoi, shipped, window, SEARCH)
    top = cands[0]
    assert math.hypot(top.x - cx, top.y - cy) < window / 4
    assert abs(top.heading_offset_deg - 12.0) <= 4.0 + 1e-6
    assert abs(math.log(top.scale / 0.9)) <= math.log(1.15) + 1e-6
    assert top.azimuth_deg == pytest.approx((100.0 + top.heading_offset_deg) % 360)
    # the candidate's outline is the turned, scaled window
    assert top.polygon.area == pytest.approx((window * top.scale) ** 2, rel=1e-6)
