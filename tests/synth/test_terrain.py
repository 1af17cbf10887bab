"""aeroloc.synth.terrain: archives on a given DEM (placed, checked, reprojected); the epochs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from aeroloc.errors import (
    DataQualityError,
    InvalidInputError,
    MissingFileError,
    RasterReadError,
)
from aeroloc.synth import get_preset, make_archive
from aeroloc.synth.render import cover_fractions
from aeroloc.synth.terrain import Epoch, Terrain, choose_site, fractal_terrain, make_epoch


def _write_dem(path: Path, *, crs: str | None, px_m: float, size: int = 260) -> None:
    yy, xx = np.mgrid[0:size, 0:size] / size
    rng = np.random.default_rng(3)
    dem = 1200 * np.exp(-((xx - 0.5) ** 2 + (yy - 0.45) ** 2) / 0.05)
    dem += 300 * np.sin(9 * xx) * np.cos(7 * yy) + 20 * rng.standard_normal((size, size))
    dem = dem.astype(np.float32) + 400
    transform = Affine(px_m, 0, 500_000, 0, -px_m, 1_500_000)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "float32",
        "transform": transform,
        "nodata": -9999.0,
    }
    if crs is not None:
        profile["crs"] = crs
    dem[:3, :3] = -9999.0  # a few nodata cells get filled
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(dem, 1)


def test_dem_in_another_crs_is_placed_in_antarctica(tmp_path: Path) -> None:
    dem = tmp_path / "dem.tif"
    _write_dem(dem, crs="EPSG:32633", px_m=30.0)
    m = make_archive(tmp_path / "out", seed=2, preset="tiny", dem=dem)
    with rasterio.open(m.reference) as ref:
        assert (ref.width, ref.height) == (780, 780)  # 260 px × 30 m at 10 m
        assert ref.crs == CRS.from_epsg(3031)
        assert 200_000 < math.hypot(*(ref.transform @ (390, 390))) < 3_000_000
    truth = json.loads(m.truth_json.read_text())
    assert truth["dem"] == str(dem) and m.n_photos >= 1


def test_dem_in_epsg3031_keeps_its_location(tmp_path: Path) -> None:
    dem = tmp_path / "dem3031.tif"
    _write_dem(dem, crs="EPSG:3031", px_m=30.0)
    m = make_archive(tmp_path / "out", seed=2, preset="tiny", dem=dem)
    with rasterio.open(m.reference) as ref:
        assert ref.bounds.left == pytest.approx(500_000)
        assert ref.bounds.top == pytest.approx(1_500_000)
        assert ref.width == 780


def test_bad_dem_inputs(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="DEM not found"):
        make_archive(tmp_path / "o1", seed=0, preset="tiny", dem=tmp_path / "nope.tif")
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00 this is not a tiff")
    with pytest.raises(RasterReadError, match="cannot read DEM"):
        make_archive(tmp_path / "o2", seed=0, preset="tiny", dem=corrupt)
    small = tmp_path / "small.tif"
    _write_dem(small, crs="EPSG:32633", px_m=10.0, size=40)
    with pytest.raises(DataQualityError, match="too small"):
        make_archive(tmp_path / "o3", seed=0, preset="tiny", dem=small)
    empty = tmp_path / "empty.tif"
    profile = {"driver": "GTiff", "width": 8, "height": 8, "count": 1, "dtype": "float32"}
    profile |= {"crs": "EPSG:32633", "transform": rasterio.transform.from_origin(0, 80, 10, 10)}
    with rasterio.open(empty, "w", nodata=-9999.0, **profile) as ds:
        ds.write(np.full((1, 8, 8), -9999.0, np.float32))
    with pytest.raises(DataQualityError, match="no valid elevation"):
        make_archive(tmp_path / "o4", seed=0, preset="tiny", dem=empty)
    assert not (tmp_path / "o1").exists() or not any((tmp_path / "o1").iterdir())


def test_dem_too_small_for_preset(tmp_path: Path) -> None:
    dem = tmp_path / "dem.tif"
    _write_dem(dem, crs="EPSG:32633", px_m=30.0, size=180)
    with pytest.raises(InvalidInputError, match="too small for preset 'default'"):
        make_archive(tmp_path / "out", seed=0, preset="default", dem=dem)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- epochs


@pytest.fixture(scope="module")
def small_terrain() -> Terrain:
    cfg = get_preset("tiny", scene_size_m=6000.0, image_px=500, edge_margin_m=500.0)
    site = choose_site(np.random.default_rng(11), width_px=600, height_px=600)
    return fractal_terrain(cfg, site, np.random.default_rng(12))


def _cover(epoch: Epoch) -> dict[str, float]:
    fr = cover_fractions(
        sea_m=epoch.sea_m, ice_m=epoch.ice_m, rock=epoch.rock, seaice=epoch.seaice, blue=epoch.blue
    )
    land = epoch.sea_m <= 0
    return {k: float(v[land].mean()) for k, v in fr.items()}


def test_a_lower_historical_rock_share_is_a_snowier_past(small_terrain: Terrain) -> None:
    def epoch(**kw: float) -> Epoch:
        return make_epoch(small_terrain, "historical", np.random.default_rng(5), **kw)

    default = epoch()
    # the default is the share the historical epoch always had
    np.testing.assert_array_equal(default.rock, epoch(rock_share=0.20).rock)
    hard = epoch(rock_share=get_preset("hard").historical_rock_share)
    bare = (default.ice_m <= 0) & (default.sea_m <= 0)
    assert np.mean(default.rock[bare] > 0) == pytest.approx(0.20, abs=0.01)
    assert np.mean(hard.rock[bare] > 0) == pytest.approx(0.10, abs=0.01)
    # hard rock is a subset of the default's: the same outcrops, fewer of them bare
    assert not np.any((hard.rock > 0) & ~(default.rock > 0))
    assert _cover(hard)["snow"] > _cover(default)["snow"] + 0.01
    assert _cover(hard)["rock"] < 0.7 * _cover(default)["rock"]
    modern = make_epoch(small_terrain, "modern", np.random.default_rng(5))
    assert _cover(modern)["rock"] > _cover(default)["rock"]
    with pytest.raises(InvalidInputError, match="rock_share"):
        epoch(rock_share=1.5)


def test_ice_gain_scale_raises_the_historical_ice(small_terrain: Terrain) -> None:
    def epoch(scale: float) -> Epoch:
        return make_epoch(
            small_terrain, "historical", np.random.default_rng(5), ice_gain_scale=scale
        )

    default, double, none = epoch(1.0), epoch(2.0), epoch(0.0)
    land = default.sea_m <= 0
    gain = small_terrain.ice_gain_m
    glacier = land & (none.ice_m > 0)  # ice even at the modern level
    np.testing.assert_allclose(
        double.surface_m[glacier] - default.surface_m[glacier], gain[glacier], rtol=1e-4, atol=1e-3
    )
    assert 10.0 < float(np.median(gain[glacier])) < 100.0  # tens of metres more ice
    assert np.mean(double.ice_m[land] > 0) > np.mean(default.ice_m[land] > 0)
    # scale 0: the historical ice stands where the modern does (the ice front still moves)
    modern = make_epoch(small_terrain, "modern", np.random.default_rng(5))
    both = land & (modern.sea_m <= 0)
    np.testing.assert_array_equal(none.ice_m[both], modern.ice_m[both])
