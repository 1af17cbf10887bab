"""aeroloc.synth.archive: the tiny archive, its files, truth, determinism, DEMs and previews."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS

from aeroloc.geometry import photo_to_map
from aeroloc.synth import make_archive

CSV_COLUMNS = [
    "photo_id",
    "path",
    "flight_line",
    "frame",
    "lon",
    "lat",
    "altitude_m",
    "focal_length_mm",
    "azimuth_deg",
    "view",
]
GPKG_COLUMNS = [
    "photo_id",
    "path",
    "flight_line",
    "frame",
    "x",
    "y",
    "altitude_m",
    "focal_length_mm",
    "azimuth_deg",
    "view",
    "geometry",
]


# --------------------------------------------------------------------------- contract


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def test_reference_and_truth_epoch_grids(archive: Path) -> None:
    with rasterio.open(archive / "reference.tif") as ref:
        assert (ref.count, ref.dtypes[0]) == (3, "uint8")
        assert ref.crs == CRS.from_epsg(3031)
        assert ref.nodata is None
        assert ref.transform.a == 10.0 and ref.transform.e == -10.0
        assert ref.transform.b == 0.0 and ref.transform.d == 0.0
        assert (ref.width, ref.height) == (1000, 1000)
        # Antarctica: well inside the EPSG:3031 disk, away from the pole
        assert 200_000 < math.hypot(*(ref.transform @ (500, 500))) < 3_000_000
        rgb = ref.read()
    with rasterio.open(archive / "truth_epoch.tif") as te:
        assert (te.count, te.dtypes[0]) == (1, "uint8")
        assert te.crs == CRS.from_epsg(3031)
        assert te.transform == ref.transform and te.shape == ref.shape
    # snow near saturation, but not a blank image
    assert np.percentile(rgb, 75) > 225
    assert rgb.std() > 20


def test_truth_affine_matches_geometry(truth: dict) -> None:
    assert truth["crs"] == "EPSG:3031" and truth["reference"] == "reference.tif"
    assert truth["seed"] == 0 and truth["config"]["name"] == "tiny"
    for photo in truth["photos"]:
        col0, row0, col1, row1 = photo["image_box_px"]
        expected = photo_to_map(
            center_x=photo["center_x"],
            center_y=photo["center_y"],
            gsd_m=photo["gsd_m"],
            azimuth_deg=photo["azimuth_deg"],
            width_px=col1 - col0,
            height_px=row1 - row0,
        ) @ Affine.translation(-col0, -row0)
        got = Affine(*photo["pixel_to_map"])
        assert got.almost_equals(expected, precision=1e-6)
        corners = [
            got @ (c, r) for c, r in ((col0, row0), (col1, row0), (col1, row1), (col0, row1))
        ]
        np.testing.assert_allclose(corners, photo["footprint"], atol=1e-6)
        # ground size follows the camera: altitude × film / focal = gsd × width
        side = photo["altitude_m"] * 228.6 / 152.4
        assert side == pytest.approx(photo["gsd_m"] * (col1 - col0), rel=1e-9)
        # the image top points along the heading
        top_mid = np.mean(photo["footprint"][:2], axis=0)
        bearing = math.degrees(
            math.atan2(top_mid[0] - photo["center_x"], top_mid[1] - photo["center_y"])
        )
        assert (bearing - photo["azimuth_deg"] + 180) % 360 - 180 == pytest.approx(0, abs=1e-6)


def test_truth_gpkg_has_footprints(archive: Path, truth: dict) -> None:
    gdf = gpd.read_file(archive / "truth.gpkg")
    assert gdf.crs.to_epsg() == 3031
    assert list(gdf["photo_id"]) == [p["photo_id"] for p in truth["photos"]]
    for geom, photo in zip(gdf.geometry, truth["photos"], strict=True):
        side = photo["gsd_m"] * (photo["image_box_px"][2] - photo["image_box_px"][0])
        assert geom.area == pytest.approx(side * side, rel=1e-6)


def test_catalog_columns_and_noise_bounds(archive: Path, truth: dict) -> None:
    csv = pd.read_csv(archive / "catalog.csv")
    assert list(csv.columns) == CSV_COLUMNS
    gpkg = gpd.read_file(archive / "catalog.gpkg")
    assert list(gpkg.columns) == GPKG_COLUMNS
    assert gpkg.crs.to_epsg() == 3031
    assert set(csv["view"]) == {"nadir"}
    assert all((archive / p).is_file() for p in csv["path"])
    to_3031 = Transformer.from_crs("EPSG:4326", "EPSG:3031", always_xy=True)
    x, y = to_3031.transform(csv["lon"].to_numpy(), csv["lat"].to_numpy())
    np.testing.assert_allclose(x, gpkg["x"], atol=0.5)
    np.testing.assert_allclose(y, gpkg["y"], atol=0.5)
    np.testing.assert_allclose(gpkg.geometry.x, gpkg["x"])

    cfg = truth["config"]
    for row, photo in zip(gpkg.itertuples(), truth["photos"], strict=True):
        assert row.photo_id == photo["photo_id"] and row.frame == photo["frame"]
        off = math.hypot(row.x - photo["center_x"], row.y - photo["center_y"])
        assert off <= cfg["position_error_max_m"] + 0.1
        rel = abs(row.altitude_m / photo["altitude_m"] - 1)
        assert rel <= cfg["altitude_error_max_frac"] + 1e-3
        dh = (row.azimuth_deg - photo["azimuth_deg"] + 180) % 360 - 180
        assert abs(dh) <= cfg["heading_error_max_deg"] + 0.01
        assert row.focal_length_mm == 152.4


def test_flight_line_overlap(truth: dict) -> None:
    photos = truth["photos"]
    assert len({p["flight_line"] for p in photos}) == 1
    frames = [p["frame"] for p in photos]
    assert frames == list(range(frames[0], frames[0] + len(frames)))
    for a, b in itertools.pairwise(photos):
        side = a["gsd_m"] * (a["image_box_px"][2] - a["image_box_px"][0])
        step = math.hypot(b["center_x"] - a["center_x"], b["center_y"] - a["center_y"])
        assert 1 - step / side == pytest.approx(0.6, abs=0.04)


def test_same_seed_same_archive_other_seed_differs(archive: Path, tmp_path: Path) -> None:
    again = make_archive(tmp_path / "again", seed=0, preset="tiny")
    assert (archive / "reference.tif").read_bytes() == again.reference.read_bytes()
    first = again.photos[0].relative_to(again.out_dir)
    np.testing.assert_array_equal(_read(archive / first), _read(again.photos[0]))
    assert (archive / "catalog.csv").read_text() == again.catalog_csv.read_text()
    assert (archive / "truth.json").read_text() == again.truth_json.read_text()

    other = make_archive(tmp_path / "other", seed=1, preset="tiny")
    assert not np.array_equal(_read(archive / "reference.tif"), _read(other.reference))
    assert other.catalog_csv.read_text() != again.catalog_csv.read_text()


# --------------------------------------------------------------------------- previews
