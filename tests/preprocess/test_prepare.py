"""The AoI as the pipeline keeps it: one gray band, and a small preview for pictures."""

from __future__ import annotations

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import box

from aeroloc.aoi import AoIRaster
from aeroloc.preprocess import enhance_aoi, enhance_aoi_preview, gray_aoi, rgb_to_gray


def _raster(bands: int, h: int, w: int) -> AoIRaster:
    rng = np.random.default_rng(0)
    data = rng.uniform(0, 255, (bands, h, w)).astype(np.float32)
    data[:, :5, :7] = np.nan
    transform = Affine(10.0, 0.0, 1000.0, 0.0, -10.0, 5000.0)
    return AoIRaster(
        data=data,
        transform=transform,
        crs=CRS.from_epsg(3031),
        polygon=box(1000.0, 5000.0 - 10 * h, 1000.0 + 10 * w, 5000.0),
        resolution_m=10.0,
    )


def test_gray_aoi_keeps_one_band_as_enhance_reads_it():
    rgb = _raster(3, 40, 50)
    gray = gray_aoi(rgb)
    assert gray.data.shape == (1, 40, 50) and gray.data.dtype == np.float32
    np.testing.assert_array_equal(gray.data[0], rgb_to_gray(rgb.data))
    assert np.isnan(gray.data[0, :5, :7]).all()
    np.testing.assert_array_equal(enhance_aoi(gray)[0], enhance_aoi(rgb)[0])
    one = _raster(1, 40, 50)
    assert gray_aoi(one) is one


def test_preview_of_a_large_aoi_is_small_and_covers_the_same_ground():
    raster = _raster(1, 900, 1200)
    image, transform = enhance_aoi_preview(raster, max_px=300)
    assert image.shape == (225, 300)
    # same corners on the ground
    h, w = image.shape
    np.testing.assert_allclose(transform @ (w, h), raster.transform @ (1200, 900))
    np.testing.assert_allclose(transform @ (0, 0), raster.transform @ (0, 0))
    small = _raster(1, 90, 120)
    image, transform = enhance_aoi_preview(small, max_px=300)
    np.testing.assert_array_equal(image, enhance_aoi(small)[0])
    assert transform == small.transform
