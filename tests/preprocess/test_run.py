"""Tests of aeroloc.preprocess.run: what ``aeroloc preprocess`` writes."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import rasterio
from affine import Affine
from scipy import ndimage
from shapely.geometry import box

from aeroloc.aoi import AoIRaster, read_aoi
from aeroloc.errors import ConfigError, CRSError, InvalidInputError, MissingFileError
from aeroloc.files import write_geotiff
from aeroloc.preprocess import AveragedHistogramThreshold, prepare_pair, run_preprocess
from preprocess_helpers import CRS_3031, aoi_grid, make_scan, rock_gdf

GROUND_M = 320.0  # 32 AoI pixels of 10 m


def _aoi_arrays() -> AoIRaster:
    transform, shape = aoi_grid()
    rng = np.random.default_rng(12)
    base = ndimage.gaussian_filter(rng.normal(size=shape), 3)
    base = (base - base.min()) / np.ptp(base) * 200 + 40
    rgb = np.stack([base, base * 0.98, base * 1.02]).astype(np.float32)
    rgb[:, :3, :5] = np.nan  # a nodata corner
    left, top = transform.c, transform.f
    return AoIRaster(
        data=rgb,
        transform=transform,
        crs=rasterio.crs.CRS.from_string(CRS_3031),
        polygon=box(left, top - 10 * shape[0], left + 10 * shape[1], top),
        resolution_m=10.0,
    )


def test_run_preprocess_writes_everything(tmp_path) -> None:
    scan, _ = make_scan(np.random.default_rng(13))
    photo_path = write_geotiff(tmp_path / "photo.tif", scan)
    rock_path = tmp_path / "rock.gpkg"
    rock_gdf().to_file(rock_path)
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="threshold computed from this photo alone"):
        outputs = run_preprocess(
            photo_path=photo_path,
            aoi=_aoi_arrays(),
            azimuth_deg=30.0,
            ground_size_m=GROUND_M,
            out_dir=out,
            rock_mask_path=rock_path,
            binarize=True,
        )
    paths = outputs.paths()
    assert set(paths) == {
        "photo_cropped",
        "photo_matched",
        "photo_binary",
        "threshold",
        "aoi_enhanced",
        "aoi_rotated",
        "rock_mask",
        "rock_mask_rotated",
        "metadata",
        "preview",
    }
    assert all(p.is_file() for p in paths.values())
    assert not list(out.glob(".*"))  # no temporary files

    meta = json.loads(outputs.metadata.read_text())
    box = meta["frame"]
    assert box["detected"]
    with rasterio.open(outputs.photo_cropped) as ds:
        assert ds.crs is None and ds.dtypes[0] == "uint8"
        assert (ds.height, ds.width) == (box["row1"] - box["row0"], box["col1"] - box["col0"])
        np.testing.assert_array_equal(
            ds.read(1), scan[box["row0"] : box["row1"], box["col0"] : box["col1"]]
        )
    with rasterio.open(outputs.photo_binary) as ds:
        assert set(np.unique(ds.read(1)).tolist()) <= {0, 255}
    # The rotated AoI carries its rotated geotransform: each pixel maps back to the map.
    with rasterio.open(outputs.aoi_rotated) as ds:
        inverse = Affine(*meta["rotation"]["inverse_pixel_to_map"])
        assert ds.crs.to_epsg() == 3031
        np.testing.assert_allclose(tuple(ds.transform)[:6], tuple(inverse)[:6], atol=1e-6)
        rotated = ds.read(1)
        assert np.isnan(rotated[0, 0])
    # The files hold exactly what locate scores (prepare_pair, the one composition).
    threshold = AveragedHistogramThreshold.load(outputs.threshold)
    pair = prepare_pair(
        photo_path,
        _aoi_arrays(),
        azimuth_deg=30.0,
        ground_size_m=GROUND_M,
        rock_mask_path=rock_path,
        threshold=threshold,
    )
    np.testing.assert_array_equal(rotated, pair.aoi_gray)
    with rasterio.open(outputs.photo_matched) as ds:
        np.testing.assert_array_equal(ds.read(1), pair.photo)
    with rasterio.open(outputs.photo_binary) as ds:
        assert pair.photo_binary is not None
        np.testing.assert_array_equal(ds.read(1) == 255, pair.photo_binary == 1)
    assert meta["window_px"] == pair.window_px == 32
    with rasterio.open(outputs.rock_mask_rotated) as ds:
        assert ds.nodata == 255 and set(np.unique(ds.read(1)).tolist()) <= {0, 1, 255}
    assert meta["aoi"]["rock_fraction"] == pytest.approx(300 / 4800)
    assert outputs.preview.read_bytes()[:4] == b"\x89PNG"


def test_run_preprocess_with_threshold_file_and_read_reference(tmp_path) -> None:
    scan, _ = make_scan(np.random.default_rng(14))
    photo_path = write_geotiff(tmp_path / "photo.tif", scan)
    aoi = _aoi_arrays()
    aoi_path = write_geotiff(
        tmp_path / "aoi.tif", aoi.data, transform=aoi.transform, crs=aoi.crs, nodata=float("nan")
    )
    loaded = read_aoi(aoi_path)
    np.testing.assert_array_equal(np.isnan(loaded.data), np.isnan(aoi.data))
    assert loaded.resolution_m == 10.0 and loaded.polygon.equals(aoi.polygon)
    threshold = AveragedHistogramThreshold.fixed(79).save(tmp_path / "t.json")
    outputs = run_preprocess(
        photo_path=photo_path,
        aoi=loaded,
        azimuth_deg=-45.0,
        gsd_m=0.8,
        out_dir=tmp_path / "out",
        threshold_path=threshold,
    )
    assert outputs.photo_binary is not None and outputs.threshold is None
    assert outputs.rock_mask is None
    meta = json.loads(outputs.metadata.read_text())
    assert meta["threshold"] == 79 and meta["azimuth_deg"] == pytest.approx(315.0)


def test_run_preprocess_errors_leave_no_output(tmp_path) -> None:
    scan, _ = make_scan(np.random.default_rng(15))
    photo_path = write_geotiff(tmp_path / "photo.tif", scan)
    out = tmp_path / "out"
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    kw = {"photo_path": photo_path, "aoi": _aoi_arrays(), "ground_size_m": GROUND_M}
    with pytest.raises(ConfigError, match="expected kind"):
        run_preprocess(**kw, azimuth_deg=0, out_dir=out, threshold_path=bad)
    assert not out.exists()
    with pytest.raises(MissingFileError, match="photo not found"):
        run_preprocess(**{**kw, "photo_path": tmp_path / "none.tif"}, azimuth_deg=0, out_dir=out)
    no_crs = replace(_aoi_arrays(), crs=None)
    with pytest.raises(CRSError, match="AoI has no CRS"):
        run_preprocess(**{**kw, "aoi": no_crs}, azimuth_deg=0, out_dir=out)
    with pytest.raises(InvalidInputError, match="exactly one of ground_size_m and gsd_m"):
        run_preprocess(**kw, gsd_m=1.0, azimuth_deg=0, out_dir=out)
    with pytest.raises(InvalidInputError, match="azimuth_deg must be finite"):
        run_preprocess(**kw, azimuth_deg=math.inf, out_dir=out)
    assert not out.exists()
    with pytest.raises(CRSError, match="has no CRS"):
        read_aoi(photo_path)
