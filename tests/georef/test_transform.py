"""aeroloc.georef.transform: footprints, homographies, degenerate transforms."""

from __future__ import annotations

import numpy as np
import pytest

from aeroloc.errors import DataQualityError, InvalidInputError
from aeroloc.geometry import footprint_corners
from aeroloc.georef import (
    PhotoTransform,
)
from georef_helpers import BOX, CRS, nadir


def test_footprint_of_a_nadir_photo_is_its_rotated_square():
    t = nadir(30.0)
    got = np.array(t.footprint(BOX).exterior.coords)[:4]
    want = footprint_corners(
        center_x=1000.0, center_y=-2000.0, width_m=200.0, height_m=200.0, azimuth_deg=30.0
    )
    np.testing.assert_allclose(got, want, atol=1e-9)
    assert t.pixel_size_m(60, 70) == pytest.approx(2.0)
    assert t.check(BOX) is None


def test_homography_maps_and_inverts():
    m = np.array([[2.0, 0.1, 100.0], [-0.2, -1.9, 50.0], [1e-4, 2e-4, 1.0]])
    t = PhotoTransform(matrix=m, kind="homography", crs=CRS)
    x, y = t.apply([0.0, 50.0], [0.0, 80.0])
    # (50, 80): w = 1 + 0.005 + 0.016
    assert x[1] == pytest.approx((100 + 50 * 2 + 80 * 0.1) / 1.021)
    c, r = t.to_pixel(x, y)
    np.testing.assert_allclose(c, [0, 50], atol=1e-9)
    np.testing.assert_allclose(r, [0, 80], atol=1e-9)
    assert PhotoTransform.from_json(t.to_json()).apply(50.0, 80.0)[0] == pytest.approx(x[1])


@pytest.mark.parametrize(
    ("matrix", "reason"),
    [
        (np.array([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 1]]), "mirrors"),  # y up like x: mirrored
        (np.array([[1.0, 0, 0], [0, -1.0, 0], [-0.02, 0, 1]]), "horizon"),
    ],
)
def test_degenerate_transforms_give_a_reason(matrix, reason):
    t = PhotoTransform(matrix=matrix, kind="homography", crs=CRS)
    assert reason in (t.check(BOX) or "")
    with pytest.raises(DataQualityError, match="no valid footprint"):
        t.footprint(BOX)


def test_twisted_quadrilateral_is_degenerate():
    # swaps the two right-hand corners: a bow tie
    src = np.float32([[10, 20], [110, 20], [110, 120], [10, 120]])
    dst = np.float32([[0, 0], [100, 0], [0, -100], [100, -100]])
    import cv2

    t = PhotoTransform(matrix=cv2.getPerspectiveTransform(src, dst), kind="homography", crs=CRS)
    assert t.check(BOX) is not None


def test_singular_or_malformed_transform_is_rejected():
    with pytest.raises(InvalidInputError, match="singular"):
        PhotoTransform(matrix=np.zeros((3, 3)), kind="affine", crs=CRS)
    with pytest.raises(InvalidInputError, match=r"\[3 x 3\]"):
        PhotoTransform(matrix=np.eye(2), kind="affine", crs=CRS)
    with pytest.raises(InvalidInputError, match="kind"):
        PhotoTransform(matrix=np.eye(3), kind="spline", crs=CRS)
    with pytest.raises(InvalidInputError, match="not a transform record"):
        PhotoTransform.from_json({"kind": "affine"})
