"""Tests of aeroloc.preprocess.enhance: gray, rock mask, shadow lift."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from aeroloc.errors import (
    CRSError,
    DataQualityError,
    InvalidInputError,
    MissingFileError,
)
from aeroloc.preprocess import (
    EnhanceConfig,
    clean_mask,
    enhance_reference,
    rasterize_rock_mask,
    rgb_to_gray,
)
from preprocess_helpers import CRS_3031, aoi_grid, rock_gdf


def test_rgb_to_gray_uses_bt601() -> None:
    rgb = np.stack([np.full((2, 2), 100.0), np.full((2, 2), 50.0), np.full((2, 2), 200.0)])
    rgb[:, 0, 0] = np.nan
    gray = rgb_to_gray(rgb.astype(np.float32))
    assert gray.dtype == np.float32 and gray.shape == (2, 2)
    assert gray[1, 1] == pytest.approx(0.299 * 100 + 0.587 * 50 + 0.114 * 200, rel=1e-6)
    assert np.isnan(gray[0, 0])
    np.testing.assert_array_equal(rgb_to_gray(rgb[0]), rgb[0].astype(np.float32))
    with pytest.raises(InvalidInputError, match="found 2"):
        rgb_to_gray(rgb[:2])
    with pytest.raises(InvalidInputError, match=r"\[B x H x W\]"):
        rgb_to_gray(np.zeros((1, 2, 3, 4)))


def test_rasterize_rock_mask_known_pixels(tmp_path) -> None:
    transform, shape = aoi_grid()
    path = tmp_path / "rock.gpkg"
    rock_gdf().to_file(path)
    mask = rasterize_rock_mask(path, transform=transform, shape=shape, crs=CRS_3031)
    expected = np.zeros(shape, dtype=bool)
    expected[15:30, 20:40] = True
    np.testing.assert_array_equal(mask, expected)

    # The same polygons stored in lon/lat are reprojected onto the grid.
    path_ll = tmp_path / "rock_ll.gpkg"
    rock_gdf().to_crs("EPSG:4326").to_file(path_ll)
    mask_ll = rasterize_rock_mask(path_ll, transform=transform, shape=shape, crs=CRS_3031)
    assert (mask_ll != expected).sum() <= 4

    # A GeoDataFrame works too; without opening the one-pixel speck stays.
    raw = rasterize_rock_mask(rock_gdf(), transform=transform, shape=shape, crs=CRS_3031, open_px=0)
    assert raw[9, 60] and not mask[9, 60]


def test_rasterize_rock_mask_crs_errors(tmp_path) -> None:
    transform, shape = aoi_grid()
    no_crs = tmp_path / "nocrs.gpkg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rock_gdf().set_crs(None, allow_override=True).to_file(no_crs)
    with pytest.raises(CRSError, match="have no CRS"):
        rasterize_rock_mask(no_crs, transform=transform, shape=shape, crs=CRS_3031)
    wrong = tmp_path / "wrong.gpkg"
    rock_gdf().set_crs("EPSG:4326", allow_override=True).to_file(wrong)
    with pytest.raises(CRSError, match="are not degrees"):
        rasterize_rock_mask(wrong, transform=transform, shape=shape, crs=CRS_3031)
    with pytest.raises(CRSError, match="have no CRS"):
        rasterize_rock_mask(
            rock_gdf().set_crs(None, allow_override=True),
            transform=transform,
            shape=shape,
            crs=CRS_3031,
        )
    with pytest.raises(CRSError, match="unknown CRS"):
        rasterize_rock_mask(rock_gdf(), transform=transform, shape=shape, crs="EPSG:nope")
    with pytest.raises(MissingFileError, match="rock polygons not found"):
        rasterize_rock_mask(tmp_path / "x.gpkg", transform=transform, shape=shape, crs=CRS_3031)
    not_vector = tmp_path / "x.gpkg"
    not_vector.write_text("hello")
    with pytest.raises(InvalidInputError, match="cannot read rock polygons"):
        rasterize_rock_mask(not_vector, transform=transform, shape=shape, crs=CRS_3031)
    with pytest.raises(InvalidInputError, match=r"shape must be \(H, W\)"):
        rasterize_rock_mask(rock_gdf(), transform=transform, shape=(5,), crs=CRS_3031)  # type: ignore[arg-type]


def test_clean_mask_opens_closes_and_keeps_border() -> None:
    mask = np.zeros((30, 30), dtype=bool)
    mask[0:12, 0:12] = True  # touches the image border
    mask[5, 5] = False  # a hole: closed
    mask[20, 20] = True  # a speck: opened away
    out = clean_mask(mask, open_px=1, close_px=1)
    assert out[5, 5] and not out[20, 20]
    assert out[0, 0] and out[0, 11] and out[11, 0]
    with pytest.raises(InvalidInputError, match="must not contain NaN"):
        clean_mask(np.array([[1.0, np.nan], [0.0, 0.0]]))


def test_enhance_lifts_shadow_and_darkens_rock() -> None:
    gray = np.array([[10.0, 60.0, 60.0, 240.0, np.nan]], dtype=np.float32)
    gray = np.repeat(gray, 3, axis=0)
    rock = np.zeros(gray.shape, dtype=bool)
    rock[:, 2] = True
    cfg = EnhanceConfig(feather_px=0.0, low_pct=0.0, high_pct=100.0)
    out = enhance_reference(gray, rock, cfg)
    g_shadow = (60 - 10) / (240 - 10)
    assert out[1, 1] == pytest.approx(255 * g_shadow**0.5, rel=1e-5)  # shadow lifted
    assert out[1, 2] == pytest.approx(255 * 0.6 * g_shadow, rel=1e-5)  # rock darkened
    assert out[1, 1] > 255 * g_shadow > out[1, 2]
    assert out[1, 3] == pytest.approx(255.0) and out[1, 0] == pytest.approx(0.0)
    assert np.isnan(out[:, 4]).all()
    stretched = enhance_reference(gray, None, cfg)
    assert stretched[1, 1] == pytest.approx(255 * g_shadow, rel=1e-5)


def test_enhance_errors() -> None:
    with pytest.raises(DataQualityError, match="no contrast"):
        enhance_reference(np.full((4, 4), 3.0), None)
    with pytest.raises(DataQualityError, match="all nodata"):
        enhance_reference(np.full((4, 4), np.nan), None)
    with pytest.raises(InvalidInputError, match=r"match the reference grid \(4, 4\)"):
        enhance_reference(np.arange(16.0).reshape(4, 4), np.zeros((3, 3), dtype=bool))
    with pytest.raises(InvalidInputError, match="low_pct must be below high_pct"):
        EnhanceConfig(low_pct=50, high_pct=40)
    with pytest.raises(InvalidInputError, match="open_px"):
        EnhanceConfig(open_px=-1)
