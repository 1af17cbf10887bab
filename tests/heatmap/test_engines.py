"""aeroloc.heatmap.engines: the engine registry and the three engines (known answers, agreement)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from affine import Affine
from rasterio.crs import CRS
from scipy import ndimage

from aeroloc.errors import ConfigError, DataQualityError
from aeroloc.heatmap.engines import (
    EngineInputs,
    HeatmapConfig,
    _scaled_windows,
    compute_heatmap,
    cut_window,
    list_engines,
    model_scale_aoi,
    register_engine,
    window_scale,
)
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


def _scene(window: int = 40, size: int = 110):
    aoi = _texture(1, size)
    # a multiple of the quarter-window stride (10 px for 40 px windows)
    row0, col0 = 5 * (window // 4), 3 * (window // 4)
    photo = aoi[row0 : row0 + window, col0 : col0 + window].copy()
    return aoi, photo, (row0 // (window // 4), col0 // (window // 4))


def _heatmap(photo, aoi, model, *, window_px=40, **kw):
    """compute_heatmap on the test scene's grid (identity affine, EPSG:3031)."""
    return compute_heatmap(
        photo,
        aoi,
        model=model,
        window_px=window_px,
        pixel_to_map=Affine.identity(),
        crs=CRS_3031,
        **kw,
    )


@pytest.mark.parametrize("engine", ["naive", "batched"])
def test_engine_finds_window_cut_at_known_place(model, engine):
    aoi, photo, truth = _scene()
    hm = _heatmap(photo, aoi, model, config=HeatmapConfig(engine=engine))
    best = np.unravel_index(np.nanargmax(hm.scores), hm.shape)
    assert max(abs(best[0] - truth[0]), abs(best[1] - truth[1])) <= 1
    assert hm.engine == engine
    assert np.all((hm.scores >= 0) & (hm.scores <= 1))


def test_engines_agree(model):
    # A window the size of the model input: no resampling, so batched's slices of
    # the AoI at model scale are exactly naive's separately cut windows.
    aoi, photo, _ = _scene(window=128, size=300)
    maps = {
        e: _heatmap(photo, aoi, model, window_px=128, config=HeatmapConfig(engine=e)).scores
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
    hm = _heatmap(photo, aoi, model, config=HeatmapConfig(engine="dense"))
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
        _heatmap(np.full_like(photo, 0.9), aoi, model)
    with pytest.raises(ConfigError, match="unknown engine"):
        HeatmapConfig(engine="gpu")
    with pytest.raises(DataQualityError, match="smaller than one window"):
        _heatmap(photo, aoi[:30, :30], model)


def test_a_registered_engine_is_one_function(model, monkeypatch):
    import aeroloc.heatmap.engines as engines

    monkeypatch.setattr(engines, "_ENGINES", dict(engines._ENGINES))
    assert list_engines() == ["naive", "batched", "dense"]

    @register_engine("constant")
    def constant(inputs: EngineInputs) -> np.ndarray:
        inputs.report(len(inputs.cells))
        return np.where(inputs.valid, np.float32(0.5), np.float32(np.nan))

    assert "constant" in list_engines()
    aoi, photo, _ = _scene()
    done = []
    hm = _heatmap(
        photo,
        aoi,
        model,
        config=HeatmapConfig(engine="constant"),
        progress=lambda i, n: done.append((i, n)),
    )
    assert hm.engine == "constant" and np.all(hm.scores == 0.5)
    assert done == [(hm.scores.size, hm.scores.size)]
    with pytest.raises(ConfigError, match="already registered"):
        register_engine("dense")(constant)
