"""Tests of aeroloc.preprocess.rotate: the AoI rotated to the heading."""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine

from aeroloc.errors import (
    CRSError,
    DataQualityError,
    InvalidInputError,
)
from aeroloc.preprocess import (
    rotate_aoi,
    rotated_grid,
)
from preprocess_helpers import CRS_3031, aoi_grid


@pytest.mark.parametrize("azimuth", [0.0, 23.5, 90.0, 137.0, 200.0, 301.7])
def test_rotated_aoi_mapping_round_trips(azimuth: float) -> None:
    transform, shape = aoi_grid()
    data = np.random.default_rng(8).random(shape).astype(np.float32)
    rot = rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=azimuth)
    rng = np.random.default_rng(9)
    h, w = rot.shape
    cols, rows = rng.uniform(0, w, 500), rng.uniform(0, h, 500)
    xs, ys = rot.to_map(cols, rows)
    back_c, back_r = rot.to_pixel(xs, ys)
    err = np.hypot(back_c - cols, back_r - rows)
    assert err.max() < 0.5
    assert err.max() < 1e-6  # the maps are exact inverses
    # The inverse is the photo convention: the top edge points along the heading.
    x_top, y_top = rot.to_map([w / 2], [0.0])
    x_mid, y_mid = rot.to_map([w / 2], [h / 2])
    heading = math.degrees(math.atan2(x_top[0] - x_mid[0], y_top[0] - y_mid[0])) % 360
    assert heading == pytest.approx(azimuth % 360, abs=1e-6)
    # Every valid rotated pixel maps back into the source AoI.
    valid_r, valid_c = np.nonzero(rot.valid_mask)
    sc, sr = rot.to_source_pixel(valid_c + 0.5, valid_r + 0.5)
    assert sc.min() > -0.5 and sc.max() < shape[1] + 0.5
    assert sr.min() > -0.5 and sr.max() < shape[0] + 0.5


@pytest.mark.parametrize("azimuth", [0.0, 37.5, 90.0, 200.0, 301.0])
def test_marker_lands_at_predicted_rotated_pixel(azimuth: float) -> None:
    transform, shape = aoi_grid()
    data = np.zeros(shape, dtype=np.float32)
    src_col, src_row = 57, 21
    data[src_row - 1 : src_row + 2, src_col - 1 : src_col + 2] = 1.0  # 3x3 marker
    x, y = transform @ (src_col + 0.5, src_row + 0.5)
    rot = rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=azimuth)
    pred_c, pred_r = rot.forward @ (x, y)
    img = np.nan_to_num(rot.data[0])
    rr, cc = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    centroid = ((cc + 0.5) * img).sum() / img.sum(), ((rr + 0.5) * img).sum() / img.sum()
    assert math.hypot(centroid[0] - pred_c, centroid[1] - pred_r) < 0.5


def test_azimuth_zero_is_identity() -> None:
    transform, shape = aoi_grid()
    data = np.random.default_rng(10).random((2, *shape)).astype(np.float32)
    data[1, 5, 5] = np.nan
    rot = rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=0.0)
    assert rot.shape == shape
    np.testing.assert_allclose(tuple(rot.inverse), tuple(transform), atol=1e-6)
    np.testing.assert_allclose(rot.data, data, atol=1e-5)
    assert np.isnan(rot.data[1, 5, 5])
    # 360 degrees is the same heading.
    rot360 = rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=360.0)
    np.testing.assert_allclose(rot360.data, data, atol=1e-5)


def test_heading_east_puts_east_edge_on_top() -> None:
    transform, shape = aoi_grid()
    data = np.zeros(shape, dtype=np.float32)
    data[:, -1] = 1.0  # east edge
    rot = rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=90.0)
    assert rot.shape == (shape[1], shape[0])
    np.testing.assert_allclose(rot.data[0, 0], 1.0, atol=1e-5)
    np.testing.assert_allclose(rot.data[0], np.rot90(data, 1), atol=1e-5)


def test_rotation_pads_with_nan_not_zero() -> None:
    transform, shape = aoi_grid()
    data = np.random.default_rng(11).uniform(100, 200, size=shape).astype(np.float32)
    rot = rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=45.0)
    h, w = rot.shape
    expected_side = (shape[0] + shape[1]) / math.sqrt(2)
    assert abs(h - expected_side) <= 1 and abs(w - expected_side) <= 1
    corners = rot.data[0, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert np.isnan(corners).all()
    finite = rot.data[np.isfinite(rot.data)]
    assert finite.min() >= 100 and finite.max() <= 200  # no 0 padding leaks in
    assert rot.valid_mask.sum() == pytest.approx(shape[0] * shape[1], rel=0.03)
    inverse, grid_shape = rotated_grid(transform=transform, shape=shape, azimuth_deg=45.0)
    assert grid_shape == rot.shape and inverse == rot.inverse


def test_window_polygon_and_nearest_mask() -> None:
    transform, shape = aoi_grid()
    mask = np.zeros(shape, dtype=np.float32)
    mask[10:20, 10:30] = 1.0
    rot = rotate_aoi(
        mask, transform=transform, crs=CRS_3031, azimuth_deg=33.0, resampling="nearest"
    )
    values = rot.data[np.isfinite(rot.data)]
    assert set(np.unique(values).tolist()) <= {0.0, 1.0}
    poly = rot.window_polygon(0, 0, 10, 10)
    xs, ys = rot.to_map([0, 10], [0, 0])
    assert poly.exterior.coords[0] == pytest.approx((xs[0], ys[0]))
    assert poly.exterior.coords[1] == pytest.approx((xs[1], ys[1]))
    assert poly.area == pytest.approx((10 * rot.gsd_m) ** 2)


def test_rotate_errors() -> None:
    transform, shape = aoi_grid()
    data = np.ones(shape, dtype=np.float32)
    with pytest.raises(CRSError, match="no CRS"):
        rotate_aoi(data, transform=transform, crs=None, azimuth_deg=10)
    with pytest.raises(InvalidInputError, match=r"affine\.Affine, found tuple"):
        rotate_aoi(data, transform=(10, 0, 0, 0, -10, 0), crs=CRS_3031, azimuth_deg=10)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="invertible"):
        rotate_aoi(data, transform=Affine(0, 0, 0, 0, 0, 0), crs=CRS_3031, azimuth_deg=10)
    with pytest.raises(InvalidInputError, match="azimuth_deg must be finite"):
        rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=math.nan)
    with pytest.raises(InvalidInputError, match="resampling must be one of"):
        rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=10, resampling="cubic")
    with pytest.raises(DataQualityError, match="all nodata"):
        rotate_aoi(data * np.nan, transform=transform, crs=CRS_3031, azimuth_deg=10)
    with pytest.raises(InvalidInputError, match="is empty"):
        rotate_aoi(np.ones((1, 0, 5)), transform=transform, crs=CRS_3031, azimuth_deg=10)
    rot = rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=10)
    with pytest.raises(InvalidInputError, match="same shape"):
        rot.to_map([1, 2], [1])
