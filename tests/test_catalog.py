"""Tests for aeroloc.catalog: reading, column mapping, reprojection, validation."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from pyproj import Transformer
from rasterio.crs import CRS
from shapely.geometry import Point

from aeroloc.catalog import Catalog, PhotoRecord, parse_column_map, read_catalog
from aeroloc.errors import CatalogError, ConfigError, CRSError, MissingFileError
from aeroloc.geometry import Camera

HEADER = "photo_id,path,flight_line,frame,lon,lat,altitude_m,focal_length_mm,azimuth_deg,view"
ROWS = [
    "CA001,photos/CA001.tif,L1,1,-62.5,-64.8,6096,152.4,90,nadir",
    "CA002,photos/CA002.tif,L1,2,-62.4,-64.8,6100.5,,450,V",
    "CA003,,L2,,-62.3,-64.9,,,,left",
]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _to_3031(lon: float, lat: float) -> tuple[float, float]:
    t = Transformer.from_crs("EPSG:4326", "EPSG:3031", always_xy=True)
    x, y = t.transform(lon, lat)
    return float(x), float(y)


def test_csv_lonlat_is_reprojected_to_3031_like_pyproj(tmp_path: Path) -> None:
    cat = read_catalog(_write(tmp_path / "catalog.csv", [HEADER, *ROWS]))
    assert isinstance(cat, Catalog)
    assert len(cat) == 3
    assert cat.photo_ids == ("CA001", "CA002", "CA003")
    assert cat.crs.to_epsg() == 3031
    for rec, (lon, lat) in zip(cat, [(-62.5, -64.8), (-62.4, -64.8), (-62.3, -64.9)], strict=True):
        ex, ey = _to_3031(lon, lat)
        assert rec.x == pytest.approx(ex, abs=1e-6)
        assert rec.y == pytest.approx(ey, abs=1e-6)
        assert rec.crs.to_epsg() == 3031


def test_csv_fields_are_typed_and_paths_resolved(tmp_path: Path) -> None:
    cat = read_catalog(_write(tmp_path / "catalog.csv", [HEADER, *ROWS]))
    a, b, c = cat.get("CA001"), cat.get("CA002"), cat.get("CA003")
    assert a.path == (tmp_path / "photos" / "CA001.tif").resolve()
    assert a.flight_line == "L1" and a.frame == 1
    assert a.altitude_m == 6096.0 and a.focal_length_mm == 152.4
    assert a.azimuth_deg == 90.0 and a.view == "nadir"
    assert b.azimuth_deg == 90.0  # 450° normalised into [0, 360)
    assert b.view == "nadir" and b.focal_length_mm is None
    assert c.path is None and c.frame is None and c.altitude_m is None
    assert c.azimuth_deg is None and c.view == "left"
    assert "CA002" in cat and "nope" not in cat


def test_record_camera_uses_record_focal_length_and_default_film() -> None:
    rec = PhotoRecord(photo_id="p", x=0.0, y=0.0, crs=_crs(), focal_length_mm=304.8)
    cam = rec.camera(Camera(film_width_mm=100.0, film_height_mm=100.0))
    assert cam.focal_length_mm == 304.8 and cam.film_width_mm == 100.0
    assert PhotoRecord(photo_id="q", x=0.0, y=0.0, crs=_crs()).camera() == Camera()


def _crs() -> CRS:
    return CRS.from_epsg(3031)


def test_parse_column_map() -> None:
    assert parse_column_map("photo_id=ENTITY_ID, x=LON ,y=LAT") == {
        "photo_id": "ENTITY_ID",
        "x": "LON",
        "y": "LAT",
    }
    assert parse_column_map("") == {}
    assert parse_column_map(None) == {}


def test_parse_column_map_unknown_field_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown catalog field 'altitude'.*altitude_m"):
        parse_column_map("photo_id=ENTITY_ID,altitude=ALT")
    with pytest.raises(ConfigError, match="expected FIELD=COLUMN"):
        parse_column_map("photo_id")
    with pytest.raises(ConfigError, match="twice"):
        parse_column_map("x=A,x=B")


def test_column_mapping_reads_renamed_columns(tmp_path: Path) -> None:
    csv = _write(
        tmp_path / "usgs.csv",
        ["ENTITY_ID,Center_Lon,Center_Lat,ALT_M,HEADING", "CA1,-62.5,-64.8,6096,10"],
    )
    cols = parse_column_map("photo_id=ENTITY_ID,lon=Center_Lon,lat=center_lat,altitude_m=ALT_M")
    cols["azimuth_deg"] = "HEADING"
    rec = read_catalog(csv, columns=cols).get("CA1")
    ex, ey = _to_3031(-62.5, -64.8)
    assert (rec.x, rec.y) == pytest.approx((ex, ey))
    assert rec.altitude_m == 6096.0 and rec.azimuth_deg == 10.0


def test_mapping_to_absent_column_names_it(tmp_path: Path) -> None:
    csv = _write(tmp_path / "c.csv", [HEADER, *ROWS])
    with pytest.raises(CatalogError, match=r"photo_id=ENTITY_ID.*no column 'ENTITY_ID'.*lon, lat"):
        read_catalog(csv, columns={"photo_id": "ENTITY_ID"})
    with pytest.raises(ConfigError, match="unknown catalog field"):
        read_catalog(csv, columns={"heading": "azimuth_deg"})


def test_missing_required_column_names_it_and_lists_columns(tmp_path: Path) -> None:
    csv = _write(tmp_path / "c.csv", ["id,lon,lat", "A,-62,-64"])
    with pytest.raises(
        CatalogError, match=r"no required column 'photo_id': columns are id, lon, lat"
    ):
        read_catalog(csv)
    csv2 = _write(tmp_path / "d.csv", ["photo_id,x,altitude_m", "A,100,5000"])
    with pytest.raises(CatalogError, match=r"no camera-centre column 'y'"):
        read_catalog(csv2)


def test_bad_number_names_row_photo_and_column(tmp_path: Path) -> None:
    rows = [*ROWS[:1], "CA002,,L1,2,-62.4,-64.8,abc,,,"]
    with pytest.raises(
        CatalogError, match=r"^row 2 \(photo_id CA002\): column altitude_m: 'abc' is not a number$"
    ):
        read_catalog(_write(tmp_path / "c.csv", [HEADER, *rows]))


@pytest.mark.parametrize(
    ("value", "message"), [("0", "must be > 0"), ("-5", "must be > 0"), ("30000", "absurd")]
)
def test_bad_altitude_names_row_and_column(tmp_path: Path, value: str, message: str) -> None:
    rows = [*ROWS[:2], f"CA003,,L2,3,-62.3,-64.9,{value},,,"]
    with pytest.raises(
        CatalogError, match=rf"row 3 \(photo_id CA003\): column altitude_m: .*{message}"
    ):
        read_catalog(_write(tmp_path / "c.csv", [HEADER, *rows]))


def test_mapped_column_is_named_in_value_errors(tmp_path: Path) -> None:
    csv = _write(tmp_path / "c.csv", ["ID,LON,LAT,ALT", "A,-62,-64,12x"])
    cols = parse_column_map("photo_id=ID,lon=LON,lat=LAT,altitude_m=ALT")
    with pytest.raises(CatalogError, match=r"row 1 \(photo_id A\): column altitude_m \(ALT\)"):
        read_catalog(csv, columns=cols)


def test_other_bad_values(tmp_path: Path) -> None:
    def bad(row: str, match: str) -> None:
        with pytest.raises(CatalogError, match=match):
            read_catalog(_write(tmp_path / "c.csv", [HEADER, row]))

    bad("A,,L,1.5,-62,-64,5000,,,", r"row 1 \(photo_id A\): column frame: 1.5 is not a whole")
    bad("A,,L,1,-62,-64,5000,,,up", r"column view: 'up' is not one of nadir")
    bad("A,,L,1,-62,-64,5000,0.1,,", r"column focal_length_mm: 0.1 mm is outside")
    bad("A,,L,1,-62,-95,5000,,,", r"row 1 \(photo_id A\): column lat: -95 is not a latitude")
    bad("A,,L,1,,-64,5000,,,", r"column lon: value is empty")
    bad(",,L,1,-62,-64,5000,,,", r"row 1: column photo_id: photo id is empty")


def test_duplicate_photo_id_is_refused(tmp_path: Path) -> None:
    rows = [ROWS[0], ROWS[1], ROWS[0]]
    with pytest.raises(CatalogError, match=r"row 3: column photo_id: 'CA001' duplicates row 1"):
        read_catalog(_write(tmp_path / "c.csv", [HEADER, *rows]))


def test_xy_in_degrees_without_crs_suggests_epsg4326(tmp_path: Path) -> None:
    csv = _write(tmp_path / "c.csv", ["photo_id,x,y", "A,-62.5,-64.8"])
    with pytest.raises(CatalogError, match=r"look like degrees.*--crs EPSG:4326"):
        read_catalog(csv)
    rec = read_catalog(csv, crs="EPSG:4326").get("A")
    assert (rec.x, rec.y) == pytest.approx(_to_3031(-62.5, -64.8))


def test_xy_without_crs_are_taken_in_target_crs(tmp_path: Path) -> None:
    csv = _write(tmp_path / "c.csv", ["photo_id,x,y", "A,-2500000.5,1200000"])
    rec = read_catalog(csv).get("A")
    assert (rec.x, rec.y) == (-2500000.5, 1200000.0)


def test_xy_in_another_crs_is_reprojected(tmp_path: Path) -> None:
    t = Transformer.from_crs("EPSG:4326", "EPSG:3976", always_xy=True)
    x, y = t.transform(-62.5, -64.8)
    csv = _write(tmp_path / "c.csv", ["photo_id,x,y", f"A,{x!r},{y!r}"])
    rec = read_catalog(csv, crs="3976").get("A")
    assert (rec.x, rec.y) == pytest.approx(_to_3031(-62.5, -64.8), abs=1e-3)


def test_unknown_crs_string_raises_crs_error(tmp_path: Path) -> None:
    csv = _write(tmp_path / "c.csv", [HEADER, *ROWS])
    with pytest.raises(CRSError, match=r"unknown CRS 'EPSG:999999'"):
        read_catalog(csv, crs="EPSG:999999")
    with pytest.raises(CRSError, match="unknown CRS 'antarctica'"):
        read_catalog(csv, target_crs="antarctica")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="photo catalog not found"):
        read_catalog(tmp_path / "nope.csv")


def test_unreadable_and_unsupported_files(tmp_path: Path) -> None:
    gpkg = tmp_path / "broken.gpkg"
    gpkg.write_bytes(b"this is not a geopackage at all" * 10)
    with pytest.raises(CatalogError, match=r"cannot read catalog .*broken.gpkg"):
        read_catalog(gpkg)
    xls = tmp_path / "c.xlsx"
    xls.write_bytes(b"PK")
    with pytest.raises(CatalogError, match=r"unsupported format '.xlsx'"):
        read_catalog(xls)
    empty = _write(tmp_path / "e.csv", [HEADER])
    with pytest.raises(CatalogError, match="has no rows"):
        read_catalog(empty)


def _gdf(crs: str, points: list[tuple[float, float]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "photo_id": [f"P{i}" for i in range(len(points))],
            "path": [f"photos/P{i}.tif" for i in range(len(points))],
            "flight_line": ["L1"] * len(points),
            "frame": list(range(1, len(points) + 1)),
            "altitude_m": [6000.0] * len(points),
            "azimuth_deg": [45.0] * len(points),
        },
        geometry=[Point(p) for p in points],
        crs=crs,
    )


def test_geopackage_points_in_3031(tmp_path: Path) -> None:
    pts = [(-2_400_000.0, 1_100_000.0), (-2_395_000.0, 1_101_000.0)]
    gdf = _gdf("EPSG:3031", pts)
    gdf["x"] = [p[0] + 1.0 for p in pts]  # columns are ignored when geometry exists
    gdf["y"] = [p[1] for p in pts]
    path = tmp_path / "catalog.gpkg"
    gdf.to_file(path, driver="GPKG")
    cat = read_catalog(path)
    assert [(r.x, r.y) for r in cat] == pts
    assert cat.get("P1").frame == 2 and cat.get("P0").azimuth_deg == 45.0
    assert cat.get("P0").path == (tmp_path / "photos" / "P0.tif").resolve()


@pytest.mark.filterwarnings("ignore:Column names longer:UserWarning")
@pytest.mark.filterwarnings("ignore:Normalized/laundered:RuntimeWarning")
def test_shapefile_in_wgs84_uses_layer_crs_and_truncated_names(tmp_path: Path) -> None:
    path = tmp_path / "catalog.shp"
    _gdf("EPSG:4326", [(-62.5, -64.8)]).to_file(path)  # azimuth_deg -> azimuth_de
    rec = read_catalog(path).get("P0")
    assert (rec.x, rec.y) == pytest.approx(_to_3031(-62.5, -64.8), abs=1e-6)
    assert rec.azimuth_deg == 45.0 and rec.flight_line == "L1"


def test_vector_with_polygons_needs_coordinate_columns(tmp_path: Path) -> None:
    gdf = _gdf("EPSG:3031", [(0.0, 0.0)])
    gdf["geometry"] = [Point(0, 0).buffer(10)]
    path = tmp_path / "poly.gpkg"
    gdf.to_file(path, driver="GPKG")
    with pytest.raises(CatalogError, match="geometry is Polygon, expected points"):
        read_catalog(path)


def test_get_unknown_photo_lists_known_ids(tmp_path: Path) -> None:
    cat = read_catalog(_write(tmp_path / "c.csv", [HEADER, *ROWS]))
    with pytest.raises(CatalogError, match=r"'CA00X' is not in the catalog.*3 photos.*CA00"):
        cat.get("CA00X")


def test_all_records_share_target_crs(tmp_path: Path) -> None:
    cat = read_catalog(_write(tmp_path / "c.csv", [HEADER, *ROWS]), target_crs="EPSG:3976")
    assert cat.crs.to_epsg() == 3976
    t = Transformer.from_crs("EPSG:4326", "EPSG:3976", always_xy=True)
    assert np.allclose([cat.records[0].x, cat.records[0].y], t.transform(-62.5, -64.8))


def test_synthetic_archive_csv_and_gpkg_agree(tmp_path: Path) -> None:
    """The synth archive writes catalog.csv (lon/lat) and catalog.gpkg (x/y + points, 3031)."""
    csv_cat = read_catalog(_write(tmp_path / "catalog.csv", [HEADER, *ROWS]))
    gdf = gpd.GeoDataFrame(
        {
            "photo_id": list(csv_cat.photo_ids),
            "path": ["photos/CA001.tif", "photos/CA002.tif", None],
            "flight_line": ["L1", "L1", "L2"],
            "frame": [1.0, 2.0, np.nan],  # GeoPackage stores a column with gaps as REAL
            "x": [r.x for r in csv_cat],
            "y": [r.y for r in csv_cat],
            "altitude_m": [6096.0, 6100.5, np.nan],
            "focal_length_mm": [152.4, np.nan, np.nan],
            "azimuth_deg": [90.0, 90.0, np.nan],
            "view": ["nadir", "nadir", "left"],
        },
        geometry=[Point(r.x, r.y) for r in csv_cat],
        crs="EPSG:3031",
    )
    gdf.to_file(tmp_path / "catalog.gpkg", driver="GPKG")
    gpkg_cat = read_catalog(tmp_path / "catalog.gpkg")
    assert gpkg_cat.records == csv_cat.records
