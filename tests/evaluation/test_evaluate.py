"""Evaluation of verified results against hand-made truth: IoU, centre error, GCP residuals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from shapely.geometry import box, mapping

from aeroloc.errors import InvalidInputError, MissingFileError
from aeroloc.evaluation.evaluate import (
    evaluate,
    footprint_iou,
    gcp_truth_rmse,
    verification_metrics,
    write_evaluation,
)
from aeroloc.georef import GroundControlPoints, write_points
from aeroloc.io.archive import TruthRecord, read_truth
from aeroloc.io.results import LocateRecord

# A 100 x 100 m photo of 100 x 100 scan pixels at (0..100, 0..100): pixel (c, r) → (c, 100 - r).
PIXEL_TO_MAP = [1.0, 0.0, 0.0, 0.0, -1.0, 100.0]
TRUE_FOOTPRINT = [[0.0, 100.0], [100.0, 100.0], [100.0, 0.0], [0.0, 0.0]]


def truth_record(pid: str) -> dict:
    return {
        "photo_id": pid,
        "flight_line": "L1",
        "center_x": 50.0,
        "center_y": 50.0,
        "footprint": TRUE_FOOTPRINT,
        "pixel_to_map": PIXEL_TO_MAP,
    }


def result_json(pid: str, best: dict, **extra) -> dict:
    """A minimal hand-made (schema version 1) result.json around the photo."""
    return {
        "photo_id": pid,
        "inputs": {"crs": "EPSG:3031"},
        "model": "m",
        "engine": "batched",
        "window_px": 10,
        "stride_px": 5,
        # window (row 1, col 1) is centred at pixel (10, 10) → map (50, 50)
        "grid": {"pixel_to_map": [5.0, 0, 0, 0, -5.0, 100.0], "cells_file": "heatmap_cells.npy"},
        "candidates": [{"rank": 1, "x": 50.0, "y": 50.0}],
        "best": best,
        **extra,
    }


def write_result(folder, pid: str, best: dict, **extra) -> None:
    """A minimal locate folder: result.json and a 3 x 3 heatmap around the photo."""
    folder.mkdir(parents=True)
    np.save(folder / "heatmap_cells.npy", np.linspace(0, 1, 9, dtype=np.float32).reshape(3, 3))
    (folder / "result.json").write_text(json.dumps(result_json(pid, best, **extra)))


def record(best: dict, **extra) -> LocateRecord:
    return LocateRecord.from_json(result_json("a", best, **extra))


def verified_best(poly, status="accepted", gcps=True) -> dict:
    return {
        "status": status,
        "p_correct": 0.9,
        "transform": {"kind": "affine", "matrix": np.eye(3).tolist(), "crs": "EPSG:3031"},
        "footprint": mapping(poly),
        "files": {"gcps": "gcps.points"} if gcps else {},
    }


def test_iou_and_centre_error_by_hand():
    # shifted by (20, 10): intersection 80 x 90 = 7200, union 20000 - 7200 = 12800
    got = verification_metrics(
        record(verified_best(box(20, 10, 120, 110), gcps=False), windows_tried=2),
        TruthRecord.from_json(truth_record("a")),
    )
    assert got["iou"] == pytest.approx(7200 / 12800)
    assert got["centre_error_m"] == pytest.approx(math.hypot(20, 10))
    assert got["status"] == "accepted" and got["windows_tried"] == 2
    assert footprint_iou(box(0, 0, 1, 1), box(5, 5, 6, 6)) == 0.0


def test_gcp_residuals_against_truth_by_hand(tmp_path):
    gcps = GroundControlPoints(
        pixel_xy=[[10.0, 10.0], [50.0, 50.0]],
        map_xy=[[13.0, 94.0], [50.0, 50.0]],  # truth: (10, 90) and (50, 50)
        crs="EPSG:3031",
    )
    p = write_points(tmp_path / "gcps.points", gcps)
    rmse, n = gcp_truth_rmse(p, PIXEL_TO_MAP)
    assert n == 2 and rmse == pytest.approx(math.sqrt((25 + 0) / 2))


def test_evaluate_reports_accepted_correct_and_false_accepts(tmp_path):
    (tmp_path / "truth.json").write_text(
        json.dumps({"photos": [truth_record(p) for p in ("a", "b", "c", "d")]})
    )
    res = tmp_path / "res"
    write_result(
        res / "a", "a", verified_best(box(20, 10, 120, 110)), windows_tried=1, search_reduction=0.9
    )
    write_points(
        res / "a" / "gcps.points",
        GroundControlPoints(pixel_xy=[[10.0, 10.0]], map_xy=[[13.0, 94.0]], crs="EPSG:3031"),
    )
    write_result(
        res / "b", "b", verified_best(box(500, 500, 600, 600), gcps=False), windows_tried=3
    )
    write_result(
        res / "c",
        "c",
        {"status": "rejected", "reasons": ["no matches"], "footprint": mapping(box(0, 0, 1, 1))},
        windows_tried=10,
        search_reduction=0.0,
    )
    write_result(res / "d", "d", {"status": "unverified", "footprint": mapping(box(0, 0, 9, 9))})
    ev, heatmaps = evaluate(tmp_path, [res / k for k in "abcd"])
    rows = {r.photo_id: r for r in ev.rows}
    assert rows["a"].correct and not rows["a"].false_accept
    assert rows["a"].gcp_rmse_m == pytest.approx(5.0) and rows["a"].n_gcps == 1
    assert rows["b"].false_accept and rows["b"].iou == 0.0
    assert rows["c"].status == "rejected" and math.isnan(rows["c"].iou)
    assert not rows["d"].verified and math.isnan(rows["d"].centre_error_m)
    s = ev.summary()
    assert s["verified"] == 3
    assert s["accepted_and_correct"] == pytest.approx(1 / 3)
    assert s["false_accept_rate"] == pytest.approx(1 / 3) and s["false_accepts"] == 1
    assert s["median_centre_error_m"] == pytest.approx(
        np.median([math.hypot(20, 10), math.hypot(500, 500)])
    )
    assert s["mean_search_reduction"] == pytest.approx(0.45)
    md = ev.to_markdown()
    assert "accepted ✓" in md and "accepted ✗" in md and "false-accept rate" in md
    paths = write_evaluation(ev, heatmaps, tmp_path / "ev")
    header = paths["table (CSV)"].read_text().splitlines()[0].split(",")
    assert {"status", "iou", "centre_error_m", "gcp_rmse_m", "false_accept"} <= set(header)


def test_unverified_results_keep_the_thesis_table(tmp_path):
    (tmp_path / "truth.json").write_text(json.dumps({"photos": [truth_record("d")]}))
    write_result(tmp_path / "d", "d", {"status": "unverified"})
    ev, _ = evaluate(tmp_path / "truth.json", [tmp_path / "d"])
    assert not ev.verified and "IoU" not in ev.to_markdown()
    assert "accepted_and_correct" not in ev.summary()


def test_bad_truth_and_footprint_raise(tmp_path):
    with pytest.raises(MissingFileError, match="truth file not found"):
        read_truth(tmp_path / "none.json")
    (tmp_path / "truth.json").write_text(json.dumps({"nope": []}))
    with pytest.raises(InvalidInputError, match="not a truth file"):
        read_truth(tmp_path)
    bad = verified_best(box(0, 0, 1, 1), gcps=False)
    with pytest.raises(InvalidInputError, match="bad footprint"):
        verification_metrics(record(bad), TruthRecord(photo_id="x", center_x=0.0, center_y=0.0))
