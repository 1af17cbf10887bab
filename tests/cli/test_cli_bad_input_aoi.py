"""``aeroloc aoi`` and ``aeroloc preprocess`` on bad input: one line, exit 2, nothing written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import Point

from aeroloc.files import write_geotiff
from cli_helpers import assert_one_line_error, files_under, run


def _raster(path: Path, data: np.ndarray, *, transform, crs: str | None) -> Path:
    write_geotiff(path, data, transform=transform, crs=crs)
    return path


def _camera_centre(archive: Path, photo_id: str) -> tuple[float, float]:
    cat = gpd.read_file(archive / "catalog.gpkg").to_crs(3031)
    row = cat[cat.photo_id == photo_id].iloc[0]
    return float(row.geometry.x), float(row.geometry.y)


def _catalog(archive: Path, photo_id: str) -> list[object]:
    return ["--catalog", archive / "catalog.gpkg", "--photo-id", photo_id]


def test_a_1x1_reference_is_refused(archive, first_id, tmp_path):
    x, y = _camera_centre(archive, first_id)
    # One 40 km pixel around the camera centre: the AoI holds one reference pixel.
    one = _raster(
        tmp_path / "one.tif",
        np.full((3, 1, 1), 100, np.uint8),
        transform=from_origin(x - 20_000, y + 20_000, 40_000, 40_000),
        crs="EPSG:3031",
    )
    out = tmp_path / "out"
    result = run("aoi", "--reference", one, *_catalog(archive, first_id), "--out", out)
    assert_one_line_error(result, "holds only 1 pixel(s) of reference one.tif", "too coarse")
    assert files_under(out) == []


@pytest.mark.parametrize("value", ["0", "-3", "nan"])
def test_focal_length_zero_is_refused_not_replaced(archive, catalog_args, tmp_path, value):
    out = tmp_path / "out"
    result = run("aoi", *catalog_args(), "--focal-length-mm", value, "--out", out)
    assert_one_line_error(result, "--focal-length-mm must be a positive number")
    assert files_under(out) == []


def test_a_tiny_focal_length_names_the_option(archive, catalog_args, tmp_path):
    result = run("aoi", *catalog_args(), "--focal-length-mm", "0.5", "--out", tmp_path / "o")
    assert_one_line_error(result, "--focal-length-mm/--film-mm: focal_length_mm must be between")


def test_a_geographic_reference_names_the_crs(archive, first_id, tmp_path):
    # EPSG:4326 covering the photo (lon 162.06, lat -77.67): degrees, not metres.
    geo = _raster(
        tmp_path / "geo.tif",
        np.full((3, 100, 100), 100, np.uint8),
        transform=from_origin(161.5, -77.2, 0.01, 0.01),
        crs="EPSG:4326",
    )
    out = tmp_path / "out"
    result = run("aoi", "--reference", geo, *_catalog(archive, first_id), "--out", out)
    line = assert_one_line_error(result, "geo.tif is in a geographic CRS (EPSG:4326", "gdalwarp")
    assert "resolution_m" not in line
    assert files_under(out) == []


@pytest.mark.parametrize("which", ["reference", "catalog"])
def test_a_folder_given_as_a_file_is_named_a_folder(archive, first_id, tmp_path, which):
    ref = tmp_path if which == "reference" else archive / "reference.tif"
    cat = tmp_path if which == "catalog" else archive / "catalog.gpkg"
    out = tmp_path / "out"
    args = ["--reference", ref, "--catalog", cat, "--photo-id", first_id, "--out", out]
    result = run("aoi", *args)
    assert_one_line_error(result, f"{tmp_path} is a folder: give the file itself")
    assert files_under(out) == []


def test_a_geopackage_without_layers_says_so(archive, first_id, tmp_path):
    empty = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame({"a": [1]}, geometry=[Point(0, 0)], crs=3031).to_file(empty, layer="x")
    with sqlite3.connect(empty) as con:
        for sql in (
            "DROP TABLE IF EXISTS rtree_x_geom",
            "DELETE FROM gpkg_geometry_columns",
            "DELETE FROM gpkg_contents",
            "DROP TABLE x",
        ):
            con.execute(sql)
    out = tmp_path / "out"
    args = ["--reference", archive / "reference.tif", "--catalog", empty, "--photo-id", first_id]
    result = run("aoi", *args, "--out", out)
    assert_one_line_error(result, "empty.gpkg: a GeoPackage without layers")
    assert files_under(out) == []


@pytest.mark.parametrize("command", ["aoi", "preprocess"])
def test_out_under_a_file_is_refused_before_any_work(archive, catalog_args, tmp_path, command):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    result = run(command, *catalog_args(), "--out", a_file / "sub")
    assert_one_line_error(result, f"cannot create --out {a_file / 'sub'}", "is a file")
    assert a_file.read_text() == ""


def test_preprocess_refuses_a_constant_photo(archive, catalog_args, tmp_path):
    const = _raster(
        tmp_path / "const.tif", np.full((400, 400), 77, np.uint8), transform=None, crs=None
    )
    out = tmp_path / "out"
    result = run("preprocess", const, *catalog_args(), "--buffer-m", 1500, "--out", out)
    assert_one_line_error(result, "const.tif is one constant value (77) everywhere")
    assert files_under(out) == []


def test_preprocess_names_a_folder_given_as_photo(archive, catalog_args, tmp_path):
    out = tmp_path / "out"
    result = run("preprocess", tmp_path, *catalog_args(), "--buffer-m", 1500, "--out", out)
    assert_one_line_error(result, f"photo {tmp_path} is a folder: give the file itself")
    assert files_under(out) == []


def test_a_float_reference_with_nan_and_inf_holes_crops_them_as_nodata(
    archive, catalog_args, tmp_path
):
    with rasterio.open(archive / "reference.tif") as ds:
        data = ds.read().astype(np.float32)
        transform = ds.transform
    data[:, 100:110, 100:110] = np.nan
    data[:, 300:310, 300:310] = np.inf
    data[:, 500, 500] = -np.inf
    holes = _raster(tmp_path / "holes.tif", data, transform=transform, crs="EPSG:3031")
    out = tmp_path / "out"
    result = run("-q", "aoi", *catalog_args()[2:], "--reference", holes, "--out", out)
    assert result.exit_code == 0, result.output
    with rasterio.open(out / "aoi.tif") as ds:
        aoi = ds.read()
    assert not np.isinf(aoi).any()
    assert np.isnan(aoi).any()
