"""aeroloc.georef.warp: photo_warped.tif as GDAL warps it, a Cloud-Optimised GeoTIFF."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import tifffile
from affine import Affine
from shapely.geometry import Point

from aeroloc.errors import ConfigError, CRSError
from aeroloc.files import write_geotiff
from aeroloc.geometry import photo_to_map
from aeroloc.georef import PhotoTransform, WarpConfig, write_warped_cog
from georef_helpers import CRS

SIDE = 600  # image area side (px): big enough for overviews of 256 px tiles
MARGIN = 20


def big_scan(tmp_path, values=(10, 200)):
    """A scan of squares of 8 px alternating between two ``values`` (a margin of 0 around)."""
    rows, cols = np.indices((SIDE + 2 * MARGIN, SIDE + 2 * MARGIN))
    scan = np.where(((rows // 8) + (cols // 8)) % 2 == 0, *values).astype(np.uint8)
    return write_geotiff(tmp_path / "big.tif", scan), scan


BIG_BOX = (MARGIN, MARGIN, MARGIN + SIDE, MARGIN + SIDE)


def rotated(azimuth_deg: float = 30.0) -> PhotoTransform:
    """The image area BIG_BOX at 2 m, centred on (1000, -2000), heading ``azimuth_deg``."""
    t = photo_to_map(
        center_x=1000.0, center_y=-2000.0, gsd_m=2.0, azimuth_deg=azimuth_deg,
        width_px=SIDE, height_px=SIDE,
    )  # fmt: skip
    return PhotoTransform.from_affine(t @ Affine.translation(-MARGIN, -MARGIN), CRS)


def test_warp_is_a_cloud_optimised_geotiff_with_alpha_and_overviews(tmp_path):
    photo, _ = big_scan(tmp_path)
    path = write_warped_cog(photo, tmp_path / "w.tif", rotated(), BIG_BOX)
    with rasterio.open(path) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.count == 2 and [c.name for c in ds.colorinterp] == ["gray", "alpha"]
        assert ds.block_shapes == [(256, 256)] * 2 and ds.compression is not None
        assert ds.overviews(1) == [2, 4] and ds.overviews(2) == [2, 4]
        alpha = ds.read(2)
        # clipped to the footprint: its rotated square is opaque, the grid's corners are not
        assert alpha[ds.index(1000.0, -2000.0)] == 255
        assert alpha[0, 0] == alpha[-1, -1] == 0
        share = (alpha == 255).mean()
        grid_area = ds.width * ds.height * ds.res[0] ** 2
        assert share == pytest.approx(rotated().footprint(BIG_BOX).area / grid_area, abs=0.01)
        assert (ds.read(1)[alpha == 0] == 0).all()
    # COG layout: every IFD (full resolution first, then the overviews) before the tiles
    with tifffile.TiffFile(path) as tif:
        pages = list(tif.pages)
        sizes = [p.shape[:2] for p in pages]
        assert sizes[0][0] > sizes[1][0] > sizes[2][0]
        assert all(p.is_tiled for p in pages)
        offsets = [zip(p.dataoffsets, p.databytecounts, strict=True) for p in pages]
        first_tile = min(o for page in offsets for o, n in page if n)
        assert max(p.offset for p in pages) < first_tile


def test_warp_puts_pixels_where_the_transform_maps_them(tmp_path):
    photo, scan = big_scan(tmp_path)
    t = rotated(30.0)
    nearest = WarpConfig(resampling="nearest")
    path = write_warped_cog(photo, tmp_path / "w.tif", t, BIG_BOX, config=nearest)
    rng = np.random.default_rng(1)
    with rasterio.open(path) as ds:
        data = ds.read(1)
        hits = 0
        for col, row in rng.uniform(MARGIN + 20, MARGIN + SIDE - 20, size=(50, 2)):
            if abs((col % 8) - 4) > 3 or abs((row % 8) - 4) > 3:
                continue  # too near a square's edge to be sure of the value
            x, y = t.apply(col, row)
            r, c = ds.index(float(x), float(y))
            assert data[r, c] == scan[int(row), int(col)]
            hits += 1
    assert hits >= 3


def test_homography_is_warped_through_a_thin_plate_spline_to_sub_pixel_accuracy(tmp_path):
    # a scan whose values encode their column: the warp must land each one where H says
    cols = np.tile(np.arange(SIDE + 2 * MARGIN, dtype=np.uint16) * 50, (SIDE + 2 * MARGIN, 1))
    photo = write_geotiff(tmp_path / "ramp.tif", cols)
    m = rotated(10.0).matrix.copy()
    m[2, :2] = (1e-4, 5e-5)  # perspective: about 9 % scale change across the photo
    t = PhotoTransform(matrix=m, kind="homography", crs=CRS)
    path = write_warped_cog(photo, tmp_path / "h.tif", t, BIG_BOX)
    with rasterio.open(path) as ds:
        assert ds.tags()["AEROLOC_TRANSFORM_KIND"] == "homography"
        data, alpha = ds.read(1).astype(float), ds.read(2)
        errs = []
        for col, row in np.random.default_rng(2).uniform(MARGIN + 30, MARGIN + SIDE - 30, (40, 2)):
            x, y = t.apply(col, row)
            r, c = ds.index(float(x), float(y))
            cx, cy = ds.xy(r, c)  # the output pixel centre, back into the photo
            back_col, _ = t.to_pixel(cx, cy)
            assert alpha[r, c] == 65535  # uint16 scan: opaque is the type's maximum
            errs.append(abs(data[r, c] / 50 - (float(back_col) - 0.5)))
    assert max(errs) < 0.3


def test_t_srs_gives_the_output_crs_and_keeps_the_footprint(tmp_path):
    photo, _ = big_scan(tmp_path)
    t = rotated()
    path = write_warped_cog(
        photo, tmp_path / "ll.tif", t, BIG_BOX, config=WarpConfig(t_srs="EPSG:4326")
    )
    from rasterio.warp import transform as reproject_points

    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == 4326
        lon, lat = reproject_points(CRS, "EPSG:4326", [1000.0], [-2000.0])
        b = ds.bounds
        assert b.left < lon[0] < b.right and b.bottom < lat[0] < b.top
        assert ds.read(2)[ds.index(lon[0], lat[0])] == 255
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"


def test_resampling_option_is_honoured(tmp_path):
    photo, _ = big_scan(tmp_path)
    found = {}
    for method in ("nearest", "bilinear"):
        cfg = WarpConfig(resampling=method)
        path = write_warped_cog(photo, tmp_path / f"{method}.tif", rotated(), BIG_BOX, config=cfg)
        with rasterio.open(path) as ds:
            data, alpha = ds.read(1), ds.read(2)
            assert ds.tags()["AEROLOC_RESAMPLING"] == method
        found[method] = set(np.unique(data[alpha == 255]).tolist())
    assert found["nearest"] == {10, 200}  # only the scan's own values
    assert len(found["bilinear"] - {10, 200}) > 10  # edges blended


def test_warp_config_is_validated():
    with pytest.raises(CRSError, match="unknown CRS"):
        WarpConfig(t_srs="EPSG:not-a-code")
    with pytest.raises(ConfigError, match="unknown resampling 'sinc'"):
        WarpConfig(resampling="sinc")
    with pytest.raises(ConfigError, match="multiple of 16"):
        WarpConfig(block_px=100)
    assert WarpConfig(t_srs="3031").target_crs(None).to_epsg() == 3031  # type: ignore[arg-type]


def test_centre_of_a_rotated_warp_is_the_footprint_centre(tmp_path):
    photo, _ = big_scan(tmp_path)
    t = rotated(45.0)
    path = write_warped_cog(photo, tmp_path / "w.tif", t, BIG_BOX)
    with rasterio.open(path) as ds:
        box = ds.bounds
    assert (
        Point((box.left + box.right) / 2, (box.top + box.bottom) / 2).distance(
            t.footprint(BIG_BOX).centroid
        )
        < 2 * 2.0
    )
