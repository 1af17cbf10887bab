"""aeroloc.georef.outputs: GCP files that parse back, footprint, warped GeoTIFF."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from aeroloc.errors import InvalidInputError, MissingFileError
from aeroloc.georef import (
    GroundControlPoints,
    gcps_from_transform,
    read_footprint_gpkg,
    read_gcp_geotiff,
    read_points,
    write_georef_outputs,
    write_points,
    write_warped_geotiff,
)
from georef_helpers import BOX, CRS, nadir, scan_file


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
        data, alpha = ds.read(1), ds.read(2)
        assert ds.crs.to_epsg() == 3031 and ds.colorinterp[1].name == "alpha"
        assert ds.res == pytest.approx((2.0, 2.0))
        assert ds.bounds.left == pytest.approx(900.0) and ds.bounds.top == pytest.approx(-1900.0)
        # scan pixel (col 40, row 50) has its centre at map (900 + 61, -1900 - 61)
        row, col = ds.index(961.0, -1961.0)
    assert data.shape == (100, 100)
    # the image area fills the grid (north-up); a scan value of 0 stays 0, alpha says "data"
    assert int(data[row, col]) == int(scan[50, 40]) and (alpha == 255).all()
