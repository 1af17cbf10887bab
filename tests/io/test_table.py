"""results.gpkg and results.csv from a batch folder: every photo a row, every GCP a point."""

from __future__ import annotations

import math
import shutil
import sqlite3

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from shapely import wkt

from aeroloc.io.archive import read_archive
from aeroloc.io.failures import FailureRecord, write_failure
from aeroloc.io.results import read_result
from aeroloc.io.table import (
    CSV_FILE,
    FOOTPRINT_COLUMNS,
    GCP_COLUMNS,
    GPKG_FILE,
    build_results_table,
)


@pytest.fixture
def batch_dir(located_tiny, tiny_archive, tmp_path):
    """The located tiny batch (photos 1-2), photo 3 failed, plus a photo never run."""
    out = tmp_path / "batch"
    shutil.copytree(located_tiny, out)
    archive = read_archive(tiny_archive)
    third = archive.catalog.records[2].photo_id
    write_failure(
        FailureRecord(
            photo_id=third, reason="OutputError: disk full", error_type="OutputError", seconds=0.5
        ),
        out / third,
    )
    return out, archive


def test_the_gpkg_has_both_layers_every_photo_and_the_crs(batch_dir):
    out, archive = batch_dir
    records = list(archive.catalog)
    table, paths = build_results_table(out, records, crs=archive.crs)
    assert paths.gpkg == out / GPKG_FILE and paths.csv == out / CSV_FILE
    assert {tuple(layer) for layer in pyogrio.list_layers(paths.gpkg)} == {
        ("footprints", "Polygon"),
        ("gcps", "Point"),
    }
    with sqlite3.connect(paths.gpkg) as db:  # GeoPackage 1.2: GDAL 3.6 reads it without warning
        assert db.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200
    feet = gpd.read_file(paths.gpkg, layer="footprints")
    assert feet.crs.to_epsg() == 3031
    assert list(feet.columns) == [*FOOTPRINT_COLUMNS, "geometry"]
    assert list(feet.photo_id) == [r.photo_id for r in records]
    assert list(feet.frame) == [r.frame for r in records]
    assert set(feet.flight_line) == {records[0].flight_line}
    located, failed = feet.iloc[:2], feet.iloc[2]
    assert set(located.status) <= {"accepted", "review"} and set(located.method) == {"search"}
    assert failed.status == "failed" and failed.reasons == "OutputError: disk full"
    assert failed.geometry is None and pd.isna(failed.method) and failed.total_s == 0.5
    for _, row in located.iterrows():
        rec = read_result(out / row.photo_id)
        assert (
            row.geometry.is_valid
            and row.geometry.centroid.distance(gpd.points_from_xy([row.x], [row.y])[0]) < 1.0
        )
        assert row.p_correct == pytest.approx(rec.best.p_correct)
        assert row.error_m == pytest.approx(rec.best.rmse_px * rec.aoi_pixel_m)
        assert row.total_s == pytest.approx(rec.timings_s["total"])
        assert (out / row.footprint_file).is_file() and (out / row.gcps_file).is_file()
        assert row.result_file == f"{row.photo_id}/result.json"
    assert table.counts()["failed"] == 1

    gcps = gpd.read_file(paths.gpkg, layer="gcps")
    assert gcps.crs.to_epsg() == 3031 and list(gcps.columns) == [*GCP_COLUMNS, "geometry"]
    assert len(gcps) == int(located.n_gcps.sum()) > 0
    assert set(gcps.photo_id) == set(located.photo_id)
    assert (gcps.residual_m >= 0).all() and gcps.residual_m.median() < 50.0
    assert (gcps.geometry.x == gcps.map_x).all() and (gcps.geometry.y == gcps.map_y).all()


def test_the_csv_holds_the_same_table_with_wkt_and_nothing_half_written(batch_dir):
    out, archive = batch_dir
    _, paths = build_results_table(out, list(archive.catalog), crs=archive.crs)
    csv = pd.read_csv(paths.csv, keep_default_na=False)
    feet = gpd.read_file(paths.gpkg, layer="footprints")
    assert list(csv.columns) == [*FOOTPRINT_COLUMNS, "geometry_wkt"]
    assert list(csv.photo_id) == list(feet.photo_id) and list(csv.status) == list(feet.status)
    assert wkt.loads(csv.geometry_wkt[0]).equals_exact(feet.geometry[0], 1e-6)
    assert csv.geometry_wkt[2] == ""
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files


def test_a_photo_never_run_is_a_pending_row_without_geometry(batch_dir, tmp_path):
    out, archive = batch_dir
    records = list(archive.catalog)
    shutil.rmtree(out / records[1].photo_id)
    table, _ = build_results_table(out, records, crs=archive.crs)
    row = table.footprints[1]
    assert row.status == "pending" and row.geometry is None and math.isnan(row.p_correct)
    assert row.n_gcps == 0 and row.result_file is None
    assert table.counts()["pending"] == 1
