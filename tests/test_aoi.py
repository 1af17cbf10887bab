"""Tests for aeroloc.aoi: footprint size and rotation, windowed crops, warping, errors."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.transform import from_origin
from shapely.geometry import box

from aeroloc.aoi import (
    AoI,
    AoIConfig,
    AoIRaster,
    PartialOverlapWarning,
    aoi_polygon_to_gpkg,
    build_aoi,
    check_center_in_reference,
    crop_reference,
    rough_footprint,
    save_aoi,
)
from aeroloc.catalog import PhotoRecord
from aeroloc.errors import (
    ConfigError,
    CRSError,
    DataQualityError,
    InvalidInputError,
    MissingFileError,
    NoOverlapError,
    RasterReadError,
)
from aeroloc.files import write_geotiff
from aeroloc.geometry import Camera

EPSG3031 = CRS.from_epsg(3031)
# Reference grid used by most tests: 100 x 100 px of 10 m, upper-left (1000, 2000).
ORIGIN_X, ORIGIN_Y, RES = 1000.0, 2000.0, 10.0


def _record(**kw: object) -> PhotoRecord:
    args: dict[str, object] = {
        "photo_id": "CA001",
        "x": 0.0,
        "y": 0.0,
        "crs": EPSG3031,
        "altitude_m": 6096.0,
        "azimuth_deg": 0.0,
    }
    args.update(kw)
    return PhotoRecord(**args)  # type: ignore[arg-type]


def _aoi(minx: float, miny: float, maxx: float, maxy: float, crs: CRS = EPSG3031) -> AoI:
    poly = box(minx, miny, maxx, maxy)
    return AoI(
        polygon=poly,
        bounds=(minx, miny, maxx, maxy),
        crs=crs,
        footprint=poly,
        buffer_m=0.0,
        center_x=(minx + maxx) / 2,
        center_y=(miny + maxy) / 2,
        ground_width_m=maxx - minx,
        ground_height_m=maxy - miny,
    )


def _reference(path: Path, *, bands: int = 1, nodata: float | None = None) -> np.ndarray:
    """Write the 100 x 100 reference; returns its ``[B x H x W]`` uint16 pixels."""
    base = np.arange(100 * 100, dtype=np.uint16).reshape(100, 100) + 1
    arr = np.stack([base + 10_000 * b for b in range(bands)])
    write_geotiff(
        path, arr, transform=from_origin(ORIGIN_X, ORIGIN_Y, RES, RES), crs=EPSG3031, nodata=nodata
    )
    return arr


# --- footprint and AoI size ------------------------------------------------------------------


def test_aoi_size_equals_hand_computed_value() -> None:
    # 6096 m × 228.6 mm / 152.4 mm = 9144 m; plus 10 km on each side.
    aoi = build_aoi(_record(x=-2_400_000.0, y=1_100_000.0))
    assert aoi.ground_width_m == pytest.approx(9144.0)
    assert aoi.ground_height_m == pytest.approx(9144.0)
    fx0, fy0, fx1, fy1 = aoi.footprint.bounds
    assert (fx1 - fx0, fy1 - fy0) == pytest.approx((9144.0, 9144.0))
    assert aoi.width_m == pytest.approx(9144.0 + 2 * 10_000.0)
    assert aoi.height_m == pytest.approx(29_144.0)
    assert aoi.polygon.area == pytest.approx(29_144.0**2)
    assert aoi.bounds == pytest.approx(
        (-2_400_000 - 14_572, 1_100_000 - 14_572, -2_400_000 + 14_572, 1_100_000 + 14_572)
    )


def test_record_focal_length_and_config_film_format() -> None:
    # 3048 m × 228.6 mm / 304.8 mm = 2286 m; film 114.3 mm along track -> 1143 m.
    cam = Camera(film_width_mm=228.6, film_height_mm=114.3)
    aoi = build_aoi(
        _record(altitude_m=3048.0, focal_length_mm=304.8, azimuth_deg=90.0),
        AoIConfig(buffer_m=500.0, camera=cam),
    )
    assert (aoi.ground_width_m, aoi.ground_height_m) == pytest.approx((2286.0, 1143.0))
    # Heading east: along-track (height) runs along x.
    assert aoi.width_m == pytest.approx(1143.0 + 1000.0)
    assert aoi.height_m == pytest.approx(2286.0 + 1000.0)


def test_footprint_corners_rotate_with_azimuth() -> None:
    w = h = 9144.0
    north = rough_footprint((100.0, 200.0), altitude_m=6096.0, azimuth_deg=0.0)
    corners = np.array(north.exterior.coords)[:4]
    expected = [(100 - w / 2, 200 + h / 2), (100 + w / 2, 200 + h / 2)]
    assert corners[:2] == pytest.approx(np.array(expected))
    # Heading east: the top edge faces east, its left corner lies to the north.
    east = rough_footprint((100.0, 200.0), altitude_m=6096.0, azimuth_deg=90.0)
    tl, tr, _br, bl = np.array(east.exterior.coords)[:4]
    assert tl == pytest.approx((100 + h / 2, 200 + w / 2))
    assert tr == pytest.approx((100 + h / 2, 200 - w / 2))
    assert bl == pytest.approx((100 - h / 2, 200 + w / 2))
    # 45°: the bounds grow by √2, the area does not.
    diag = rough_footprint((0.0, 0.0), altitude_m=6096.0, azimuth_deg=45.0)
    x0, _, x1, _ = diag.bounds
    assert x1 - x0 == pytest.approx(9144.0 * math.sqrt(2))
    assert diag.area == pytest.approx(9144.0**2)
    aoi = build_aoi(_record(azimuth_deg=45.0))
    assert aoi.width_m == pytest.approx(29_144.0 * math.sqrt(2))


def test_rough_footprint_takes_values_from_record() -> None:
    rec = _record(x=10.0, y=20.0, altitude_m=1524.0, azimuth_deg=180.0, focal_length_mm=152.4)
    fp = rough_footprint(rec)
    assert fp.centroid.x == pytest.approx(10.0) and fp.centroid.y == pytest.approx(20.0)
    assert fp.area == pytest.approx(2286.0**2)
    # Heading south: the top-left corner is to the south-east.
    assert np.array(fp.exterior.coords)[0] == pytest.approx((10.0 + 1143.0, 20.0 - 1143.0))


def test_unknown_heading_covers_every_rotation() -> None:
    aoi = build_aoi(_record(azimuth_deg=None), AoIConfig(buffer_m=1000.0))
    radius = 9144.0 * math.sqrt(2) / 2 + 1000.0
    assert aoi.width_m == pytest.approx(2 * radius, rel=1e-6)
    for angle in (0.0, 30.0, 45.0, 77.0):
        assert aoi.polygon.contains(
            rough_footprint((0.0, 0.0), altitude_m=6096.0, azimuth_deg=angle)
        )


def test_missing_and_bad_altitude() -> None:
    with pytest.raises(InvalidInputError, match="photo CA001 has no altitude_m"):
        build_aoi(_record(altitude_m=None))
    aoi = build_aoi(_record(altitude_m=None), AoIConfig(default_altitude_m=3048.0, buffer_m=0.0))
    assert aoi.width_m == pytest.approx(4572.0)
    with pytest.raises(InvalidInputError, match=r"altitude must be > 0 m"):
        rough_footprint((0.0, 0.0), altitude_m=0.0)
    with pytest.raises(InvalidInputError, match="absurd"):
        rough_footprint((0.0, 0.0), altitude_m=60_000.0)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="buffer_m must be between 0 and"):
        AoIConfig(buffer_m=-1.0)
    with pytest.raises(ConfigError, match="buffer_m"):
        AoIConfig(buffer_m=float("nan"))
    with pytest.raises(ConfigError, match=r"camera must be an aeroloc\.geometry\.Camera"):
        AoIConfig(camera="TMA")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="default_altitude_m: altitude must be > 0"):
        AoIConfig(default_altitude_m=-100.0)
    assert AoIConfig().buffer_m == 10_000.0 and AoIConfig().camera == Camera()


def test_oblique_view_warns() -> None:
    with pytest.warns(UserWarning, match=r"oblique \(left\)"):
        build_aoi(_record(view="left"))


# --- cropping ---------------------------------------------------------------------------------


def test_crop_known_window_returns_exact_pixels(tmp_path: Path) -> None:
    ref = tmp_path / "ref.tif"
    arr = _reference(ref, bands=2)
    # Columns 20..49, rows 10..29 of the reference.
    aoi = _aoi(ORIGIN_X + 200, ORIGIN_Y - 300, ORIGIN_X + 500, ORIGIN_Y - 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = crop_reference([ref], aoi)
    assert isinstance(out, AoIRaster)
    assert out.data.dtype == np.float32 and out.data.shape == (2, 20, 30)
    np.testing.assert_array_equal(out.data, arr[:, 10:30, 20:50].astype(np.float32))
    assert out.transform == Affine(10.0, 0.0, ORIGIN_X + 200, 0.0, -10.0, ORIGIN_Y - 100)
    assert out.resolution_m == 10.0 and out.valid_fraction == 1.0
    assert out.crs == EPSG3031 and out.sources == (ref,)


def test_crop_snaps_outward_to_reference_pixels(tmp_path: Path) -> None:
    ref = tmp_path / "ref.tif"
    arr = _reference(ref)
    aoi = _aoi(ORIGIN_X + 203, ORIGIN_Y - 296, ORIGIN_X + 497, ORIGIN_Y - 104)
    out = crop_reference(ref, aoi)
    np.testing.assert_array_equal(out.data[0], arr[0, 10:30, 20:50])


def test_crop_from_build_aoi_covers_the_aoi(tmp_path: Path) -> None:
    ref = tmp_path / "ref.tif"
    arr = _reference(ref)
    # 133.35 m × 1.5 = 200.025 m footprint; +100 m buffer on each side.
    rec = _record(x=ORIGIN_X + 500.0, y=ORIGIN_Y - 500.0, altitude_m=133.35)
    aoi = build_aoi(rec, AoIConfig(buffer_m=100.0))
    assert aoi.width_m == pytest.approx(400.025)
    out = crop_reference([ref], aoi)
    x0, y0, x1, y1 = out.bounds
    assert x0 <= aoi.bounds[0] and y0 <= aoi.bounds[1]
    assert x1 >= aoi.bounds[2] and y1 >= aoi.bounds[3]
    col0, row0 = int((x0 - ORIGIN_X) / RES), int((ORIGIN_Y - y1) / RES)
    h, w = out.data.shape[1:]
    np.testing.assert_array_equal(out.data[0], arr[0, row0 : row0 + h, col0 : col0 + w])


def test_reference_in_another_crs_is_warped(tmp_path: Path) -> None:
    """A reference in EPSG:3976 holding a linear ramp of EPSG:3031 x is read on the 3031 grid."""
    to3031 = Transformer.from_crs("EPSG:3976", "EPSG:3031", always_xy=True)
    to3976 = Transformer.from_crs("EPSG:3031", "EPSG:3976", always_xy=True)
    cx, cy = to3976.transform(-2_400_000.0, 1_100_000.0)
    res, n = 20.0, 120
    t = from_origin(cx - n * res / 2, cy + n * res / 2, res, res)
    cols, rows = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5)
    px, py = t @ (cols, rows)
    x31, y31 = to3031.transform(px, py)
    ramp = ((x31 + 2_400_000.0) + 2 * (y31 - 1_100_000.0)).astype(np.float32)
    ref = tmp_path / "ref3976.tif"
    write_geotiff(ref, ramp, transform=t, crs="EPSG:3976")

    aoi = _aoi(-2_400_500.0, 1_099_500.0, -2_399_500.0, 1_100_500.0)
    out = crop_reference([ref], aoi, resolution_m=10.0)
    assert out.crs == EPSG3031 and out.data.shape == (1, 100, 100)
    assert out.valid_fraction == 1.0
    gc, gr = np.meshgrid(np.arange(100) + 0.5, np.arange(100) + 0.5)
    gx, gy = out.transform @ (gc, gr)
    expected = (gx + 2_400_000.0) + 2 * (gy - 1_100_000.0)
    # Bilinear interpolation of a linear ramp is exact: the warp lands where pyproj says.
    np.testing.assert_allclose(out.data[0], expected, atol=0.01)
    # Default resolution comes from the reference (about 20 m after reprojection).
    assert crop_reference([ref], aoi).resolution_m == pytest.approx(20.0, rel=0.05)


def test_offgrid_resolution_is_resampled(tmp_path: Path) -> None:
    ref = tmp_path / "ref.tif"
    _reference(ref)
    aoi = _aoi(ORIGIN_X + 200, ORIGIN_Y - 400, ORIGIN_X + 400, ORIGIN_Y - 200)
    out = crop_reference([ref], aoi, resolution_m=20.0, resampling="average")
    assert out.data.shape == (1, 10, 10)
    # Mean of the 2 x 2 block at rows 20-21, cols 20-21: values 2021, 2022, 2121, 2122.
    assert out.data[0, 0, 0] == pytest.approx(2071.5)


def test_mosaic_first_valid_pixel_wins(tmp_path: Path) -> None:
    first = tmp_path / "first.tif"
    second = tmp_path / "second.tif"
    # First: left half of the area only, value 1. Second: whole area, value 2.
    write_geotiff(
        first, np.ones((10, 5), np.uint8), transform=from_origin(0, 100, 10, 10), crs=EPSG3031
    )
    write_geotiff(
        second, np.full((10, 10), 2, np.uint8), transform=from_origin(0, 100, 10, 10), crs=EPSG3031
    )
    out = crop_reference([first, second], _aoi(0, 0, 100, 100))
    assert np.all(out.data[0, :, :5] == 1) and np.all(out.data[0, :, 5:] == 2)
    assert out.valid_fraction == 1.0
    out = crop_reference([second, first], _aoi(0, 0, 100, 100))
    assert np.all(out.data == 2)


def test_mosaic_of_an_aligned_and_a_warped_reference_fills_in_order(tmp_path: Path) -> None:
    """merge's "first" mosaic equals the two crops combined by hand (first valid pixel)."""
    first = tmp_path / "first.tif"
    data = np.arange(100 * 100, dtype=np.float32).reshape(100, 100)
    data[:, 60:] = -1  # the first reference's nodata on its east side
    write_geotiff(first, data, transform=from_origin(0, 1000, 10, 10), crs=EPSG3031, nodata=-1)
    to3976 = Transformer.from_crs("EPSG:3031", "EPSG:3976", always_xy=True)
    x0, y0 = to3976.transform(0.0, 1000.0)
    second = tmp_path / "second.tif"
    write_geotiff(
        second,
        np.full((60, 60), 7.0, np.float32),
        transform=from_origin(x0 - 100, y0 + 100, 20, 20),
        crs="EPSG:3976",
    )
    aoi = _aoi(0, 0, 1000, 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mosaic = crop_reference([first, second], aoi, resolution_m=10.0).data
        a = crop_reference([first], aoi, resolution_m=10.0).data
        b = crop_reference([second], aoi, resolution_m=10.0).data
    expected = np.where(np.isfinite(a), a, b)
    np.testing.assert_array_equal(np.isfinite(mosaic), np.isfinite(expected))
    np.testing.assert_allclose(mosaic, expected, atol=1e-4)
    assert (mosaic[0, :, :60] == data[:, :60]).all()  # aligned pixels copied exactly
    east = mosaic[0, :, 60:]
    assert np.isfinite(east).any() and (east[np.isfinite(east)] == 7).all()


def test_mosaic_needs_the_bands_in_the_same_order(tmp_path: Path) -> None:
    plain, alpha_first = tmp_path / "plain.tif", tmp_path / "alpha.tif"
    t = from_origin(0, 100, 10, 10)
    gray, alpha = rasterio.enums.ColorInterp.gray, rasterio.enums.ColorInterp.alpha
    for path, order in ((plain, [gray, gray, alpha]), (alpha_first, [alpha, gray, gray])):
        write_geotiff(path, np.ones((3, 10, 10), np.uint8), transform=t, crs=EPSG3031)
        with rasterio.open(path, "r+") as ds:
            ds.colorinterp = order
    with pytest.raises(InvalidInputError, match=r"bands .* in the same order"):
        crop_reference([plain, alpha_first], _aoi(0, 0, 100, 100))


def test_partly_outside_warns_and_is_nan(tmp_path: Path) -> None:
    ref = tmp_path / "ref.tif"
    arr = _reference(ref)
    # 20 columns, the left 10 of which lie west of the reference.
    aoi = _aoi(ORIGIN_X - 100, ORIGIN_Y - 200, ORIGIN_X + 100, ORIGIN_Y)
    with pytest.warns(
        PartialOverlapWarning, match=r"50.0% of AoI .* lies outside reference ref.tif"
    ):
        out = crop_reference([ref], aoi)
    assert out.data.shape == (1, 20, 20)
    assert np.isnan(out.data[0, :, :10]).all()
    np.testing.assert_array_equal(out.data[0, :, 10:], arr[0, :20, :10])
    assert out.valid_fraction == pytest.approx(0.5)
    assert out.valid_mask[:, 10:].all() and not out.valid_mask[:, :10].any()


def test_reference_nodata_becomes_nan(tmp_path: Path) -> None:
    ref = tmp_path / "ref.tif"
    arr = np.full((10, 10), 7, np.uint8)
    arr[0, 0] = 0
    write_geotiff(ref, arr, transform=from_origin(0, 100, 10, 10), crs=EPSG3031, nodata=0)
    with pytest.warns(PartialOverlapWarning, match="1.0%"):
        out = crop_reference([ref], _aoi(0, 0, 100, 100))
    assert np.isnan(out.data[0, 0, 0]) and out.data[0, 0, 1] == 7.0
    with pytest.raises(DataQualityError, match="only where it has no data"):
        crop_reference([ref], _aoi(0, 90, 10, 100))


def test_fully_outside_raises_no_overlap(tmp_path: Path) -> None:
    ref = tmp_path / "ref.tif"
    _reference(ref)
    aoi = _aoi(50_000, 50_000, 60_000, 60_000)
    with pytest.raises(
        NoOverlapError,
        match=r"AoI \(50000..60000, 50000..60000\) EPSG:3031 does not overlap reference "
        r"ref.tif \(bounds \(1000..2000, 1000..2000\)\)",
    ):
        crop_reference([ref], aoi)


def test_corrupt_tiff_raises_raster_read_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage" + bytes(range(256)) * 4)
    aoi = _aoi(0, 0, 100, 100)
    with pytest.raises(RasterReadError, match=r"cannot read reference raster .*bad.tif"):
        crop_reference([bad], aoi)


def test_truncated_tiff_raises_raster_read_error(tmp_path: Path) -> None:
    ref = tmp_path / "trunc.tif"
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (512, 512), dtype=np.uint8)  # incompressible
    write_geotiff(ref, noise, transform=from_origin(0, 5120, 10, 10), crs=EPSG3031)
    ref.write_bytes(ref.read_bytes()[: ref.stat().st_size // 3])
    with pytest.raises(RasterReadError, match=r"trunc\.tif"):
        crop_reference([ref], _aoi(0, 0, 5120, 5120))


def test_raster_without_crs_raises_crs_error(tmp_path: Path) -> None:
    ref = tmp_path / "nocrs.tif"
    write_geotiff(ref, np.ones((10, 10), np.uint8))
    with pytest.raises(CRSError, match=r"nocrs.tif has no CRS"):
        crop_reference([ref], _aoi(0, 0, 10, 10))
    with pytest.raises(CRSError, match="has no CRS"):
        check_center_in_reference(_record(), [ref])


def test_missing_reference_and_bad_arguments(tmp_path: Path) -> None:
    aoi = _aoi(0, 0, 10, 10)
    with pytest.raises(MissingFileError, match="reference raster not found"):
        crop_reference([tmp_path / "none.tif"], aoi)
    with pytest.raises(InvalidInputError, match="no reference raster given"):
        crop_reference([], aoi)
    ref = tmp_path / "ref.tif"
    _reference(ref)
    with pytest.raises(ConfigError, match="unknown resampling 'cubic_magic'"):
        crop_reference([ref], aoi, resampling="cubic_magic")
    with pytest.raises(InvalidInputError, match="resolution_m must be > 0"):
        crop_reference([ref], aoi, resolution_m=0.0)
    with pytest.raises(InvalidInputError, match="use a coarser reference or a smaller AoI"):
        crop_reference(
            [ref], _aoi(ORIGIN_X, ORIGIN_Y - 1000, ORIGIN_X + 1000, ORIGIN_Y), resolution_m=0.01
        )
    rgb = tmp_path / "rgb.tif"
    _reference(rgb, bands=3)
    with pytest.raises(InvalidInputError, match="same bands"):
        crop_reference([ref, rgb], _aoi(ORIGIN_X, ORIGIN_Y - 100, ORIGIN_X + 100, ORIGIN_Y))


def test_check_center_in_reference(tmp_path: Path) -> None:
    ref = tmp_path / "ref.tif"
    _reference(ref)
    inside = _record(x=ORIGIN_X + 500, y=ORIGIN_Y - 500)
    assert check_center_in_reference(inside, [ref]) == (ref,)
    outside = _record(x=-5000.0, y=7000.0)
    with pytest.raises(
        NoOverlapError,
        match=r"camera centre \(-5000, 7000\) EPSG:3031 of photo CA001 lies outside reference",
    ):
        check_center_in_reference(outside, ref)


def test_save_aoi_and_polygon_gpkg(tmp_path: Path) -> None:
    ref = tmp_path / "ref.tif"
    arr = _reference(ref)
    aoi = _aoi(ORIGIN_X - 100, ORIGIN_Y - 200, ORIGIN_X + 100, ORIGIN_Y)
    with pytest.warns(PartialOverlapWarning):
        out = crop_reference([ref], aoi)
    tif = save_aoi(out, tmp_path / "out" / "aoi.tif")
    with rasterio.open(tif) as ds:
        assert ds.crs == EPSG3031 and ds.transform == out.transform
        assert ds.dtypes[0] == "float32" and math.isnan(ds.nodata)
        back = ds.read(1)
    assert np.isnan(back[:, :10]).all()
    np.testing.assert_array_equal(back[:, 10:], arr[0, :20, :10])

    built = build_aoi(_record(x=ORIGIN_X, y=ORIGIN_Y, azimuth_deg=30.0))
    gpkg = aoi_polygon_to_gpkg(built, tmp_path / "out" / "aoi.gpkg")
    gdf = pyogrio.read_dataframe(gpkg, layer="aoi")
    assert list(gdf["kind"]) == ["aoi", "footprint"]
    assert list(gdf["photo_id"]) == ["CA001", "CA001"]
    assert CRS.from_user_input(gdf.crs) == EPSG3031
    assert gdf.geometry.iloc[0].area == pytest.approx(built.polygon.area)
    assert gdf.geometry.iloc[1].area == pytest.approx(9144.0**2)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["aoi.gpkg", "aoi.tif"]


def test_catalog_to_aoi_raster_end_to_end(tmp_path: Path) -> None:
    from aeroloc.catalog import read_catalog

    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3031", always_xy=True).transform(-62.5, -64.8)
    # 30 km reference at 100 m centred 1 km east of the camera centre.
    ref = tmp_path / "reference.tif"
    ramp = np.add.outer(np.arange(300.0), np.arange(300.0)).astype(np.float32)
    write_geotiff(ref, ramp, transform=from_origin(x - 14_000, y + 15_000, 100, 100), crs=EPSG3031)
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("photo_id,lon,lat,altitude_m,azimuth_deg\nCA9,-62.5,-64.8,3048,0\n")
    rec = read_catalog(catalog).get("CA9")
    assert check_center_in_reference(rec, [ref]) == (ref,)
    aoi = build_aoi(rec, AoIConfig(buffer_m=5000.0))  # 4572 m + 2 × 5 km = 14572 m
    out = crop_reference([ref], aoi)
    assert out.valid_fraction == 1.0
    assert out.data.shape[1] * out.resolution_m >= aoi.height_m
    assert out.data.shape[1] * out.resolution_m < aoi.height_m + 2 * out.resolution_m
    written = save_aoi(out, tmp_path / "aoi.tif")
    with rasterio.open(written) as ds:
        np.testing.assert_array_equal(ds.read(1), out.data[0])
