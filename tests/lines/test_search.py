"""The shrunken search area around a line prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from shapely.geometry import Polygon, box

from aeroloc.catalog import read_catalog
from aeroloc.errors import ConfigError, CRSError, NoOverlapError
from aeroloc.files import write_geotiff
from aeroloc.io.archive import Truth
from aeroloc.lines.search import SearchConfig, search_bounds, search_margin_m, shrunken_request
from aeroloc.lines.track import fit_track
from aeroloc.pipeline import request_from_record
from lines_helpers import CRS, line_from_truth, make_line, true_centres


def _prediction():
    centres = true_centres(6, interval_m=800.0, direction_deg=30.0)
    track = fit_track(make_line(centres, heading_deg=32.0, located=[0, 1, 2]))
    pred = track.predict(14, photo_id="P0014")
    assert pred is not None
    return pred


def test_bounds_grow_by_k_sigma_and_clip() -> None:
    pred = _prediction()
    fx0, fy0, fx1, fy1 = pred.footprint.bounds
    margin = search_margin_m(pred, SearchConfig(k_sigma=3.0, min_margin_m=10.0))
    assert margin == pytest.approx(3.0 * pred.sigma_m)
    b = search_bounds(pred, SearchConfig(k_sigma=3.0, min_margin_m=10.0))
    assert b == pytest.approx((fx0 - margin, fy0 - margin, fx1 + margin, fy1 + margin))
    # the floor wins for a precise prediction
    assert search_margin_m(pred, SearchConfig(min_margin_m=5000.0)) == 5000.0
    clipped = search_bounds(pred, within=(fx0, fy0, fx1 + 1e6, fy1 + 1e6))
    assert clipped[:2] == (fx0, fy0)
    with pytest.raises(NoOverlapError, match="outside the area of interest"):
        search_bounds(pred, within=(0.0, 0.0, 1.0, 1.0))
    with pytest.raises(ConfigError, match="k_sigma"):
        SearchConfig(k_sigma=0.0)


def test_shrunken_request_uses_the_line_heading_and_gsd(tmp_path: Path) -> None:
    pred = _prediction()
    ref = write_geotiff(
        tmp_path / "ref.tif",
        np.zeros((10, 10), np.uint8),
        transform=Affine(1000.0, 0, 390_000.0, 0, -1000.0, -980_000.0),
        crs=CRS,
    )
    photo = write_geotiff(  # a request checks that its photo reads (a textured scan)
        tmp_path / "P0014.tif",
        np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8),
    )
    req = shrunken_request(pred, photo_path=photo, references=[ref])
    assert req.photo_id == "P0014"
    assert req.azimuth_deg == pytest.approx(32.0)
    assert req.gsd_m == pytest.approx(2.0) and req.ground_size_m is None
    assert req.aoi.bounds == pytest.approx(search_bounds(pred))
    assert req.aoi.polygon.contains(pred.footprint)
    other = write_geotiff(
        tmp_path / "utm.tif",
        np.zeros((10, 10), np.uint8),
        transform=Affine(1000.0, 0, 390_000.0, 0, -1000.0, 4_000_000.0),
        crs="EPSG:32719",
    )
    with pytest.raises(CRSError, match="flight line in EPSG:3031"):
        shrunken_request(pred, photo_path=photo, references=[other])


def test_shrunken_aoi_on_the_synthetic_line_holds_the_truth(
    line_archive: Path, line_truth: Truth
) -> None:
    ids = sorted(line_truth.photos, key=lambda i: line_truth.photos[i].frame or 0)
    first, middle, last = ids
    line = line_from_truth(line_truth, located={first, last})
    pred = fit_track(line).predict(line.photo(middle).frame, photo_id=middle)
    assert pred is not None and pred.anchor_frames == (line.photos[0].frame, line.photos[2].frame)
    ref = line_archive / "reference.tif"
    req = shrunken_request(pred, photo_path=line_archive / f"photos/{middle}.tif", references=[ref])
    true_fp = Polygon(line_truth.photos[middle].footprint)
    assert box(*req.aoi.bounds).contains(true_fp)
    catalog = read_catalog(line_archive / "catalog.csv", target_crs=line_truth.crs)
    full = request_from_record(catalog.get(middle), [ref])
    # the 10 km buffer around the catalog footprint against a few hundred metres
    assert box(*req.aoi.bounds).area < 0.1 * box(*full.aoi.bounds).area
