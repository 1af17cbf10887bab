"""aeroloc.heatmap.grid: window grid geometry and percentile ranks."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.crs import CRS

from aeroloc.errors import DataQualityError, InvalidInputError
from aeroloc.geometry import photo_to_map
from aeroloc.heatmap.grid import Heatmap, grid_shape, percentile_rank

CRS_3031 = CRS.from_epsg(3031)


def test_grid_shape_counts_windows():
    assert grid_shape(100, 140, 40, 10) == (7, 11)
    with pytest.raises(DataQualityError, match="smaller than one window"):
        grid_shape(30, 100, 40, 10)
    with pytest.raises(InvalidInputError, match="must be > 0"):
        grid_shape(100, 100, 0, 10)


def test_rotated_grid_maps_cells_to_map_and_back():
    t = photo_to_map(
        center_x=1000.0, center_y=-2000.0, gsd_m=10.0, azimuth_deg=37.0, width_px=200, height_px=200
    )
    hm = Heatmap(
        scores=np.zeros((5, 5), np.float32),
        window_px=40,
        stride_px=10,
        pixel_to_map=t,
        crs=CRS_3031,
    )
    x, y = hm.center_map(2, 3)
    r, c = hm.cell_of(x, y)
    assert (r, c) == pytest.approx((2.0, 3.0))
    assert hm.nearest_cell(x, y) == (2, 3)
    assert hm.window_polygon(0, 0).area == pytest.approx(400.0**2)
    assert hm.pixel_size_m == pytest.approx(10.0)


def test_percentile_rank_counts_ties_half():
    scores = np.array([[0.1, 0.2], [0.3, np.nan]])
    assert percentile_rank(scores, 0.2) == pytest.approx(100 * 1.5 / 3)
    with pytest.raises(DataQualityError, match="no valid window"):
        percentile_rank(np.full((2, 2), np.nan), 0.5)
