"""aeroloc.heatmap.io: heatmap files, north-up and georeferenced."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rasterio.crs import CRS

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
