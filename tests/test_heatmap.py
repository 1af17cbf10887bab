"""Heatmap grid geometry and the three engines (known-answer and agreement)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from affine import Affine
from rasterio.crs import CRS
from scipy import ndimage

from aeroloc.errors import ConfigError, DataQualityError, InvalidInputError
from aeroloc.geometry import photo_to_map
from aeroloc.heatmap.engines import (
    HeatmapConfig,
    _scaled_windows,
    compute_heatmap,
    cut_window,
    model_scale_aoi,
    window_scale,
)
from aeroloc.heatmap.grid import Heatmap, grid_shape, percentile_rank
from aeroloc.heatmap.io import north_up, save_heatmap_png, save_heatmap_tif
from aeroloc.models import get_model

CRS_3031 = CRS.from_epsg(3031)


def _texture(seed: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.normal(size=(size, size)), 3)
    img += 0.5 * ndimage.gaussian_filter(rng.normal(size=(size, size)), 1)
    img = (img - img.min()) / (img.max() - img.min())
    return img.astype(np.float32)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return get_model("effnet-lite0-siamese", input_size=128).eval()


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


def _scene(window: int = 40, size: int = 110):
    aoi = _texture(1, size)
    # a multiple of the quarter-window stride (10 px for 40 px windows)
    row0, col0 = 5 * (window // 4), 3 * (window // 4)
    photo = aoi[row0 : row0 + window, col0 : col0 + window].copy()
    return aoi, photo, (row0 // (window // 4), col0 // (window // 4))


@pytest.mark.parametrize("engine", ["naive", "batched"])
def test_engine_finds_window_cut_at_known_place(model, engine):
    aoi, photo, truth = _scene()
    hm = compute_heatmap(
        photo,
        aoi,
        model=model,
        window_px=40,
        pixel_to_map=Affine.identity(),
        crs=CRS_3031,
        config=HeatmapConfig(engine=engine),
    )
    best = np.unravel_index(np.nanargmax(hm.scores), hm.shape)
    assert max(abs(best[0] - truth[0]), abs(best[1] - truth[1])) <= 1
    assert hm.engine == engine
    assert np.all((hm.scores >= 0) & (hm.scores <= 1))


def test_engines_agree(model):
    # A window the size of the model input: no resampling, so batched's slices of
    # the AoI at model scale are exactly naive's separately cut windows.
    aoi, photo, _ = _scene(window=128, size=300)
    maps = {
        e: compute_heatmap(
            photo,
            aoi,
            model=model,
            window_px=128,
            pixel_to_map=Affine.identity(),
            crs=CRS_3031,
            config=HeatmapConfig(engine=e),
        ).scores
        for e in ("naive", "batched", "dense")
    }
    np.testing.assert_allclose(maps["naive"], maps["batched"], atol=1e-4)
    # dense sees real surroundings where a crop sees padding: same grid, valid scores
    assert maps["dense"].shape == maps["batched"].shape
    assert np.isfinite(maps["dense"]).all()
    assert np.all((maps["dense"] >= 0) & (maps["dense"] <= 1))


def test_batched_slices_the_scaled_aoi_where_naive_cuts(model):
    aoi = _texture(2, 90)
    aoi[:, 28:33] = np.nan  # nodata inside the windows is filled alike
    scale = window_scale(model, 40, context_cells=1)
    fill = float(np.nanmean(aoi))
    # windows whose context stays inside the AoI (at its edge a crop resamples the
    # fill value into the border, the scaled AoI its own border pixels)
    cells = [(2, 3), (3, 2), (1, 1)]
    sliced = list(_scaled_windows(model_scale_aoi(aoi, scale, fill), cells, 10, scale))
    for (r, c), got in zip(cells, sliced, strict=True):
        cut = cut_window(aoi, r * 10, c * 10, scale, fill)
        assert got.shape == cut.shape == scale.crop_hw
        # the same pixels; only the outermost resampled pixels see different neighbours
        inner = (slice(4, -4), slice(4, -4))
        np.testing.assert_allclose(got[inner], cut[inner], atol=1e-5)


def test_nodata_windows_score_nan_and_are_not_ranked(model):
    aoi, photo, _ = _scene()
    aoi[:, :40] = np.nan
    hm = compute_heatmap(
        photo,
        aoi,
        model=model,
        window_px=40,
        pixel_to_map=Affine.identity(),
        crs=CRS_3031,
        config=HeatmapConfig(engine="dense"),
    )
    assert np.isnan(hm.scores[:, 0]).all()
    assert np.isfinite(hm.scores[:, -1]).all()
    aoi[:] = np.nan
    with pytest.raises(DataQualityError, match="nodata"):
        compute_heatmap(
            photo, aoi, model=model, window_px=40, pixel_to_map=Affine.identity(), crs=CRS_3031
        )


def test_textureless_photo_and_bad_config_are_errors(model):
    aoi, photo, _ = _scene()
    with pytest.raises(DataQualityError, match="no texture"):
        compute_heatmap(
            np.full_like(photo, 0.9),
            aoi,
            model=model,
            window_px=40,
            pixel_to_map=Affine.identity(),
            crs=CRS_3031,
        )
    with pytest.raises(ConfigError, match="unknown engine"):
        HeatmapConfig(engine="gpu")
    with pytest.raises(DataQualityError, match="smaller than one window"):
        compute_heatmap(
            photo,
            aoi[:30, :30],
            model=model,
            window_px=40,
            pixel_to_map=Affine.identity(),
            crs=CRS_3031,
        )


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
