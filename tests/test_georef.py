"""Georeferenced outputs: transforms, GCP files that parse back, footprint, warped GeoTIFF."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from affine import Affine

from aeroloc.errors import DataQualityError, InvalidInputError, MissingFileError
from aeroloc.files import write_geotiff
from aeroloc.geometry import footprint_corners, photo_to_map
from aeroloc.georef import (
    GroundControlPoints,
    PhotoTransform,
    gcps_from_matches,
    gcps_from_transform,
    read_footprint_gpkg,
    read_gcp_geotiff,
    read_points,
    write_georef_outputs,
    write_points,
    write_warped_geotiff,
)

CRS = "EPSG:3031"
BOX = (10, 20, 110, 120)  # image area inside a 130 x 140 scan


def nadir(azimuth_deg: float = 30.0) -> PhotoTransform:
    """Photo whose 100 px image area (scan box BOX) covers 200 m around (1000, -2000)."""
    image_to_map = photo_to_map(
        center_x=1000.0, center_y=-2000.0, gsd_m=2.0, azimuth_deg=azimuth_deg,
        width_px=100, height_px=100,
    )  # fmt: skip
    return PhotoTransform.from_affine(image_to_map @ Affine.translation(-10, -20), CRS)


def scan_file(tmp_path):
    rng = np.random.default_rng(0)
    scan = rng.integers(0, 256, size=(140, 130), dtype=np.uint8)
    return write_geotiff(tmp_path / "photo.tif", scan), scan


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


def test_points_file_round_trips_with_qgis_conventions(tmp_path):
    gcps = gcps_from_transform(nadir(), BOX, n_per_side=3)
    path = write_points(tmp_path / "gcps.points", gcps)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("#CRS: ") and "3031" in lines[0]
    assert lines[1] == "mapX,mapY,sourceX,sourceY,enable,dX,dY,residual"
    first = lines[2].split(",")
    # QGIS: sourceY is the negative row
    assert float(first[2]) == pytest.approx(gcps.pixel_xy[0, 0])
    assert float(first[3]) == pytest.approx(-gcps.pixel_xy[0, 1])
    assert float(first[3]) < 0
    back = read_points(path)
    np.testing.assert_allclose(back.pixel_xy, gcps.pixel_xy, atol=1e-9)
    np.testing.assert_allclose(back.map_xy, gcps.map_xy, atol=1e-9)
    assert back.crs is not None and back.crs.to_epsg() == 3031


def test_points_reader_skips_disabled_rows_and_rejects_other_files(tmp_path):
    p = tmp_path / "hand.points"
    p.write_text(
        "mapX,mapY,sourceX,sourceY,enable,dX,dY,residual\n"
        "100.0,200.0,5.0,-7.0,1,0,0,0\n"
        "300.0,400.0,9.0,-9.0,0,0,0,0\n"
    )
    got = read_points(p)
    assert len(got) == 1 and got.crs is None
    np.testing.assert_allclose(got.pixel_xy, [[5.0, 7.0]])
    bad = tmp_path / "bad.points"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(InvalidInputError, match=r"not a QGIS \.points file"):
        read_points(bad)
    with pytest.raises(MissingFileError, match="GCP points file not found"):
        read_points(tmp_path / "none.points")


def test_gcp_geotiff_keeps_the_pixels_and_parses_back(tmp_path):
    photo, scan = scan_file(tmp_path)
    out = write_georef_outputs(photo, tmp_path / "out", nadir(), BOX)
    with rasterio.open(out.paths["gcp_geotiff"]) as ds:
        np.testing.assert_array_equal(ds.read(1), scan)
    back = read_gcp_geotiff(out.paths["gcp_geotiff"])
    assert back.crs is not None and back.crs.to_epsg() == 3031
    points = read_points(out.paths["gcps"])
    np.testing.assert_allclose(back.pixel_xy, points.pixel_xy, atol=1e-9)
    np.testing.assert_allclose(back.map_xy, points.map_xy, atol=1e-6)
    assert out.gcp_source == "grid" and len(back) == 25
    fp = read_footprint_gpkg(out.paths["footprint"])
    assert fp.area == pytest.approx(200.0 * 200.0)
    assert set(out.files().values()) == {"footprint.gpkg", "gcps.points", "photo_gcps.tif"}


def test_gcp_geotiff_without_plain_photo_raises(tmp_path):
    from aeroloc.georef import write_gcp_geotiff

    with pytest.raises(InvalidInputError, match="at least 3 GCPs"):
        write_gcp_geotiff(
            tmp_path / "x.tif",
            tmp_path / "y.tif",
            GroundControlPoints(pixel_xy=np.zeros((2, 2)), map_xy=np.zeros((2, 2)), crs=CRS),
        )
    photo, _ = scan_file(tmp_path)
    with pytest.raises(InvalidInputError, match="carries no GCPs"):
        read_gcp_geotiff(photo)


def test_gcps_from_tie_points_spread_and_carry_residuals():
    t = nadir()
    rng = np.random.default_rng(1)
    pix = rng.uniform([10, 20], [110, 120], size=(400, 2))
    xs, ys = t.apply(pix[:, 0], pix[:, 1])
    mp = np.column_stack([xs, ys])
    mp[0] += (2.0, 0.0)  # one tie point off by one photo pixel along x-ish
    g = gcps_from_matches(t, pix, mp, max_points=16)
    assert len(g) == 16
    # one per 4 x 4 cell: every quadrant of the photo holds some
    assert ((g.pixel_xy[:, 0] < 60) & (g.pixel_xy[:, 1] < 70)).any()
    assert ((g.pixel_xy[:, 0] > 60) & (g.pixel_xy[:, 1] > 70)).any()
    all_g = gcps_from_matches(t, pix[:5], mp[:5])
    assert math.hypot(*all_g.residual_px[0]) == pytest.approx(1.0)
    np.testing.assert_allclose(all_g.residual_px[1:], 0.0, atol=1e-6)


def test_tie_points_become_the_gcps_when_enough(tmp_path):
    photo, _ = scan_file(tmp_path)
    t = nadir()
    pix = np.array([[20.0 + 9 * i, 30.0 + 8 * i] for i in range(10)])
    xs, ys = t.apply(pix[:, 0], pix[:, 1])
    out = write_georef_outputs(
        photo,
        tmp_path / "o",
        t,
        BOX,
        tie_pixel_xy=pix,
        tie_map_xy=np.column_stack([xs, ys]),
        properties={"status": "accepted"},
    )
    assert out.gcp_source == "tie points" and len(read_points(out.paths["gcps"])) == 10


def test_warped_geotiff_puts_photo_pixels_at_their_map_position(tmp_path):
    photo, scan = scan_file(tmp_path)
    t = nadir(0.0)  # north-up: the warp is a pure resampling at 2 m
    path = write_warped_geotiff(photo, tmp_path / "w.tif", t, BOX)
    with rasterio.open(path) as ds:
        data = ds.read(1)
        assert ds.crs.to_epsg() == 3031 and ds.nodata == 0
        assert ds.res == pytest.approx((2.0, 2.0))
        assert ds.bounds.left == pytest.approx(900.0) and ds.bounds.top == pytest.approx(-1900.0)
        # scan pixel (col 40, row 50) has its centre at map (900 + 61, -1900 - 61)
        row, col = ds.index(961.0, -1961.0)
    assert data.shape == (100, 100)
    assert int(data[row, col]) == max(1, int(scan[50, 40]))
