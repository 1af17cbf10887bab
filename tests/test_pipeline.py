"""locate with verification: outputs written, result.json last, GCPs where the truth puts them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from shapely.geometry import Polygon, shape

from aeroloc.georef import read_gcp_geotiff, read_points
from aeroloc.heatmap.candidates import search_box
from aeroloc.heatmap.engines import HeatmapConfig
from aeroloc.io.results import SCHEMA_VERSION, BestRecord, read_result
from aeroloc.pipeline import locate_photo, prepare_request
from aeroloc.verify.walk import VerifyConfig
from verify_helpers import OracleMatcher, request_for, tiny_archive

REF_PX_M = 10.0


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return tiny_archive(tmp_path_factory)


@pytest.fixture(scope="module")
def truth(archive) -> dict:
    return {p["photo_id"]: p for p in json.loads((archive / "truth.json").read_text())["photos"]}


@pytest.fixture(scope="module")
def model():
    from aeroloc.models import get_model

    return get_model("effnet-lite0-siamese")


def test_locate_writes_georef_outputs_last_result_json(archive, truth, model, tmp_path):
    pid = sorted(truth)[1]  # its frame is detected to within 3 px
    req = request_for(archive, pid, buffer_m=700.0)
    _, pair = prepare_request(req)

    class Oracle(OracleMatcher):
        """Finds the window box from the target it is given."""

        def match(self, a, b):
            # every candidate box is tried; the oracle only needs its offset
            self.box = self.boxes.pop(0)
            return super().match(a, b)

    out = tmp_path / "loc"
    hm_cfg = HeatmapConfig(stride_fraction=0.5)
    first = locate_photo(req, out, model=model, heatmap_config=hm_cfg, verify=None)
    assert first is not None and first.status == "unverified"
    boxes = [
        search_box(first.heatmap, c, margin_frac=0.5, shape=pair.aoi_gray.shape)
        for c in first.candidates
    ]
    oracle = Oracle(pair, truth[pid], boxes[0])
    oracle.boxes = list(boxes)
    # decoys=0: the oracle finds the truth in whatever window it is given, so the
    # decoy test (tests/verify/test_decoys.py) would only measure the oracle
    verify = VerifyConfig(matcher=oracle, warp=True, decoys=0)
    res = locate_photo(req, out, model=model, heatmap_config=hm_cfg, verify=verify)
    assert res is not None and res.status == "accepted"
    data = json.loads((out / "result.json").read_text())
    best = data["best"]
    assert best["status"] == "accepted" and best["matcher"] == "oracle"
    assert best["reasons"] == [] and 0.5 <= best["p_correct"] <= 1
    assert data["windows_tried"] == 1
    assert data["search_reduction"] == pytest.approx(1 - 1 / data["n_valid_windows"], abs=1e-6)
    fp = shape(best["footprint"])
    assert fp.centroid.distance(Polygon(truth[pid]["footprint"]).centroid) < 2 * REF_PX_M
    # schema 2: best.x/y is the located photo centre, the window centre has its own name
    assert data["schema_version"] == SCHEMA_VERSION == 2
    assert (best["x"], best["y"]) == pytest.approx((fp.centroid.x, fp.centroid.y), abs=1e-3)
    window = data["candidates"][best["rank"] - 1]
    assert (best["window_x"], best["window_y"]) == (window["x"], window["y"])
    assert (best["grid_row"], best["grid_col"]) == (window["grid_row"], window["grid_col"])
    assert read_result(out).best == BestRecord.from_json(best, SCHEMA_VERSION)
    for name in ("footprint.gpkg", "gcps.points", "photo_gcps.tif", "photo_warped.tif"):
        assert (out / name).is_file(), name
        # written before result.json
        assert (out / name).stat().st_mtime_ns <= (out / "result.json").stat().st_mtime_ns
    assert best["files"]["gcps"] == "gcps.points"
    points = read_points(out / "gcps.points")
    tif = read_gcp_geotiff(out / "photo_gcps.tif")
    np.testing.assert_allclose(points.map_xy, tif.map_xy, atol=1e-6)
    # the GCPs lie where the truth puts their photo pixels
    t = Affine(*truth[pid]["pixel_to_map"])
    mapped = np.array([t @ tuple(p) for p in points.pixel_xy])
    assert np.hypot(*(mapped - points.map_xy).T).max() < 2 * REF_PX_M
    # a rerun without verification leaves no stale georeferenced file behind
    again = locate_photo(req, out, model=model, heatmap_config=hm_cfg, verify=None)
    assert again is not None and again.status == "unverified"
    unverified = read_result(out)
    assert unverified.verification is None and unverified.best.status == "unverified"
    assert (unverified.best.x, unverified.best.y) == (
        unverified.candidates[0].x,
        unverified.candidates[0].y,
    )
    assert not any((out / n).exists() for n in ("footprint.gpkg", "gcps.points", "photo_gcps.tif"))
