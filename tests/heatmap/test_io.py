"""aeroloc.heatmap.io: heatmap files, north-up and georeferenced."""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import Polygon

from aeroloc.geometry import photo_to_map
from aeroloc.heatmap.grid import Heatmap
from aeroloc.heatmap.io import north_up, save_heatmap_png, save_heatmap_tif

CRS_3031 = CRS.from_epsg(3031)


def test_heatmap_files_are_north_up_and_georeferenced(tmp_path):
    import rasterio

    t = photo_to_map(
        center_x=5000.0, center_y=5000.0, gsd_m=10.0, azimuth_deg=30.0, width_px=100, height_px=100
    )
    scores = np.arange(36, dtype=np.float32).reshape(6, 6) / 36
    hm = Heatmap(scores=scores, window_px=40, stride_px=12, pixel_to_map=t, crs=CRS_3031)
    grid, gt = north_up(hm)
    assert gt.b == 0 and gt.d == 0 and gt.e < 0
    x, y = hm.center_map(2, 4)
    col, row = ~gt @ (x, y)
    assert grid[math.floor(row), math.floor(col)] == pytest.approx(scores[2, 4])
    path = save_heatmap_tif(hm, tmp_path / "heatmap.tif")
    with rasterio.open(path) as ds:
        assert ds.crs == CRS_3031 and ds.dtypes[0] == "float32"
    png = save_heatmap_png(hm, tmp_path / "heatmap.png")
    assert png.stat().st_size > 1000


def _reference_north_up(hm: Heatmap) -> tuple[np.ndarray, object]:
    """The hand-written resampling ``north_up`` used before GDAL did it (nearest cell by
    inverse mapping of each output cell centre): the behaviour to keep."""
    t = hm.cell_transform()
    rows, cols = hm.shape
    corners = np.array([t @ (c, r) for c, r in ((0, 0), (cols, 0), (cols, rows), (0, rows))])
    cell = math.hypot(t.a, t.d)
    minx, miny = corners.min(0)
    maxx, maxy = corners.max(0)
    width, height = math.ceil((maxx - minx) / cell), math.ceil((maxy - miny) / cell)
    out_t = Affine(cell, 0, minx, 0, -cell, maxy)
    jj, ii = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    xs, ys = out_t @ (jj.ravel(), ii.ravel())
    cf, rf = ~t @ (xs, ys)
    cc, rr = np.floor(cf).astype(int), np.floor(rf).astype(int)
    inside = (cc >= 0) & (cc < cols) & (rr >= 0) & (rr < rows)
    out = np.full(width * height, np.nan, dtype=np.float32)
    out[inside] = hm.scores[rr[inside], cc[inside]]
    return out.reshape(height, width), out_t


@pytest.mark.parametrize("azimuth", [0.0, 17.0, 30.0, 135.0])
def test_north_up_by_gdal_matches_the_nearest_cell_resampling(azimuth):
    t = photo_to_map(
        center_x=5000.0, center_y=5000.0, gsd_m=10.0, azimuth_deg=azimuth, width_px=300,
        height_px=200,
    )  # fmt: skip
    scores = np.random.default_rng(3).random((20, 30)).astype(np.float32)
    hm = Heatmap(scores=scores, window_px=40, stride_px=12, pixel_to_map=t, crs=CRS_3031)
    grid, gt = north_up(hm)
    want, want_t = _reference_north_up(hm)
    assert tuple(gt)[:6] == pytest.approx(tuple(want_t)[:6])
    assert grid.shape == want.shape
    # the same cells are filled, up to a sliver along the rotated edges ...
    assert (np.isfinite(grid) != np.isfinite(want)).mean() < 0.02
    # ... with the same scores, except where a cell centre falls on a heatmap cell
    # boundary (a tie, which either side may take)
    rows, cols = np.indices(grid.shape)
    cf, rf = ~hm.cell_transform() @ (gt @ (cols + 0.5, rows + 0.5))
    tie = (np.abs(cf - np.round(cf)) < 1e-6) | (np.abs(rf - np.round(rf)) < 1e-6)
    both = np.isfinite(grid) & np.isfinite(want) & ~tie
    assert both.sum() > 0.9 * np.isfinite(want).sum()
    np.testing.assert_array_equal(grid[both], want[both])
    assert set(np.unique(grid[np.isfinite(grid)])) <= set(scores.ravel().tolist())


def _figure(status, footprint):
    from aeroloc.heatmap.io import heatmap_figure

    t = photo_to_map(
        center_x=5000.0, center_y=5000.0, gsd_m=10.0, azimuth_deg=30.0, width_px=100,
        height_px=100,
    )  # fmt: skip
    scores = np.arange(36, dtype=np.float32).reshape(6, 6) / 36
    hm = Heatmap(scores=scores, window_px=40, stride_px=12, pixel_to_map=t, crs=CRS_3031)
    window = Polygon([(4800, 4800), (5200, 4800), (5200, 5200), (4800, 5200)])
    return heatmap_figure(
        hm, candidates=[(1, window)], footprint=footprint, status=status, title="p1: m"
    )


FOOTPRINT = Polygon([(4850, 4850), (5150, 4850), (5150, 5150), (4850, 5150)])


def _lines(fig):
    return {line.get_label(): line for line in fig.axes[0].get_lines()}


def test_review_footprint_is_drawn_dashed_with_the_status_in_title_and_legend():
    fig = _figure("review", FOOTPRINT)
    ax = fig.axes[0]
    line = _lines(fig)["proposed footprint (review)"]
    assert line.get_linestyle() == "--" and line.get_color() == "orange"
    np.testing.assert_allclose(line.get_xydata(), np.asarray(FOOTPRINT.exterior.coords))
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "status: review"
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["candidate window (rank)", "proposed footprint (review)"]
    assert min(t.get_fontsize() for t in legend.get_texts()) >= 9
    assert ax.get_title().endswith("— review")
    assert "EPSG:3031" in ax.get_xlabel() and "(m)" in ax.get_xlabel()
    assert ax.get_ylabel() == "northing y (m)"


def test_accepted_footprint_is_solid_and_a_rejected_photo_shows_its_status():
    line = _lines(_figure("accepted", FOOTPRINT))["accepted footprint"]
    assert line.get_linestyle() == "-" and line.get_color() == "lime"
    fig = _figure("rejected", None)
    assert "proposed footprint (review)" not in _lines(fig)
    assert fig.axes[0].get_legend().get_title().get_text() == "status: rejected"


def test_review_footprint_is_in_the_png(tmp_path):
    from matplotlib.colors import to_rgb

    from aeroloc.files import write_png

    path = write_png(tmp_path / "h.png", _figure("review", FOOTPRINT))
    import matplotlib.image

    rgb = matplotlib.image.imread(path)[..., :3]
    orange = np.array(to_rgb("orange"))
    assert (np.abs(rgb - orange).max(axis=-1) < 0.05).sum() > 50
