"""result.json: the typed record, schema version 2, and reading version-1 files."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import Polygon, box

from aeroloc.errors import InvalidInputError, MissingFileError
from aeroloc.georef import PhotoTransform
from aeroloc.heatmap.candidates import Candidate
from aeroloc.heatmap.grid import Heatmap
from aeroloc.io.results import (
    CELLS_FILE,
    RESULT_FILE,
    SCHEMA_VERSION,
    LocateRecord,
    has_result,
    heatmap_from_result,
    locate_record,
    read_result,
    save_cells,
    write_candidates_gpkg,
    write_result,
)
from aeroloc.verify.walk import TriedCandidate, Verification

# 3 x 4 grid of 10 px windows every 5 px; AoI pixel (c, r) → map (1000 + 2c, 2000 - 2r).
PIXEL_TO_MAP = Affine(2.0, 0.0, 1000.0, 0.0, -2.0, 2000.0)


def heatmap() -> Heatmap:
    scores = np.arange(12, dtype=np.float32).reshape(3, 4) / 12
    return Heatmap(
        scores=scores,
        window_px=10,
        stride_px=5,
        pixel_to_map=PIXEL_TO_MAP,
        crs=CRS.from_epsg(3031),
        model="m",
        engine="batched",
    )


def candidate(rank: int, row: int, col: int) -> Candidate:
    hm = heatmap()
    x, y = hm.center_map(row, col)
    return Candidate(
        rank=rank,
        score=0.9 / rank,
        percentile=99.0,
        row=row,
        col=col,
        x=x,
        y=y,
        polygon=hm.window_polygon(row, col),
    )


REQUEST = SimpleNamespace(
    photo_id="p1",
    photo_path="photos/p1.tif",
    references=("reference.tif",),
    rock_mask_path=None,
    aoi=SimpleNamespace(bounds=(1000.0, 1960.0, 1040.0, 2000.0)),
    azimuth_deg=12.0,
)
PREPARED = SimpleNamespace(
    frame=SimpleNamespace(col0=1, row0=2, col1=99, row1=98), ground_size_m=20.0
)


def tried(cand: Candidate, status: str, footprint: Polygon | None) -> TriedCandidate:
    transform = None
    if footprint is not None:
        transform = PhotoTransform(matrix=np.eye(3), kind="affine", crs=CRS.from_epsg(3031))
    return TriedCandidate(
        candidate=cand,
        status=status,
        reasons=() if status == "accepted" else ("too few inliers",),
        p_correct=0.9 if status == "accepted" else 0.1,
        features={"log_n_inliers": 3.0},
        transform=transform,
        footprint=footprint,
        box_px=(0, 0, 10, 10),
        kind="affine",
        n_matches=40,
        n_inliers=30,
        inlier_ratio=0.75,
        rmse_px=0.5,
    )


def verified_record(status: str = "accepted") -> LocateRecord:
    cands = (candidate(1, 0, 0), candidate(2, 2, 3))
    # the photo sits 3 m east of the second window's centre: its footprint is off-centre
    cx, cy = cands[1].x + 3.0, cands[1].y
    fp = box(cx - 8, cy - 8, cx + 8, cy + 8)
    first, second = tried(cands[0], "rejected", None), tried(cands[1], status, fp)
    ver = Verification(
        tried=(first, second),
        chosen=second,
        matcher="oracle",
        n_windows=12,
        area_searched=0.5,
    )
    return locate_record(
        REQUEST,  # type: ignore[arg-type]
        PREPARED,  # type: ignore[arg-type]
        heatmap(),
        cands,
        {"heatmap": 1.23456},
        verification=ver,
    )


def test_verified_best_is_the_photo_centre_and_keeps_the_window_centre():
    rec = verified_record()
    best, window = rec.best, rec.candidates[1]
    assert rec.schema_version == SCHEMA_VERSION == 2
    assert best.status == "accepted" and best.rank == 2 and best.verified
    assert (best.x, best.y) == pytest.approx((window.x + 3.0, window.y))
    assert (best.window_x, best.window_y) == (window.x, window.y)
    assert (best.grid_row, best.grid_col) == (2, 3) == (window.grid_row, window.grid_col)
    assert best.p_correct == 0.9 and best.n_inliers == 30 and best.transform is not None
    assert rec.verification is not None and rec.verification.windows_tried == 2
    assert rec.verification.search_reduction == pytest.approx(1 - 2 / 12)
    assert [t.rank for t in rec.verification.tried] == [1, 2]


def test_review_is_located_too():
    best = verified_record("review").best
    assert best.status == "review" and best.x == pytest.approx(best.window_x + 3.0)


def test_unverified_and_rejected_best_is_the_top_window_centre():
    cands = (candidate(1, 1, 2), candidate(2, 0, 0))
    rec = locate_record(REQUEST, PREPARED, heatmap(), cands, {})  # type: ignore[arg-type]
    assert rec.best.status == "unverified" and rec.verification is None
    assert (rec.best.x, rec.best.y) == (rec.best.window_x, rec.best.window_y)
    assert (rec.best.x, rec.best.y) == (round(cands[0].x, 3), round(cands[0].y, 3))
    none = Verification(
        tried=(tried(cands[0], "rejected", None),),
        chosen=None,
        matcher="sift",
        n_windows=12,
        area_searched=0.1,
    )
    rej = locate_record(REQUEST, PREPARED, heatmap(), cands, {}, verification=none)  # type: ignore[arg-type]
    assert rej.best.status == "rejected" and rej.best.rank == 1
    assert (rej.best.x, rej.best.y) == (rec.best.x, rec.best.y)
    assert rej.best.reasons[0] == "none of the 1 candidates verified"
    assert rej.best.reasons[1] == "rank 1: too few inliers" and rej.best.p_correct == 0.1


def test_write_read_round_trip_and_json_fields(tmp_path):
    rec = verified_record()
    write_result(rec, tmp_path)
    assert has_result(tmp_path) and not has_result(tmp_path / "nope")
    assert read_result(tmp_path) == rec
    data = json.loads((tmp_path / RESULT_FILE).read_text())
    assert data["schema_version"] == 2 and data["timings_s"] == {"heatmap": 1.2346}
    assert {"grid_row", "grid_col"} <= set(data["candidates"][0])
    assert not {"row", "col"} & set(data["candidates"][0])
    assert data["best"]["window_x"] == data["candidates"][1]["x"]
    assert data["grid"] == {
        "shape": [3, 4],
        "pixel_to_map": [2.0, 0.0, 1000.0, 0.0, -2.0, 2000.0],
        "cells_file": CELLS_FILE,
        "poses": [[0.0, 1.0]],
    }
    assert data["candidates"][0]["heading_offset_deg"] == 0.0


def test_heatmap_comes_back_from_the_record_and_cells(tmp_path):
    hm = heatmap()
    save_cells(hm, tmp_path / CELLS_FILE)
    back = heatmap_from_result(verified_record(), tmp_path)
    np.testing.assert_array_equal(back.scores, hm.scores)
    assert back.pixel_to_map == hm.pixel_to_map and back.crs == hm.crs
    assert (back.window_px, back.stride_px, back.model, back.engine) == (10, 5, "m", "batched")


def test_candidates_gpkg_names_the_grid_cells(tmp_path):
    import geopandas as gpd

    cands = (candidate(1, 2, 3),)
    frame = gpd.read_file(write_candidates_gpkg(cands, heatmap(), tmp_path / "c.gpkg"))
    assert list(frame["grid_row"]) == [2] and list(frame["grid_col"]) == [3]
    assert "row" not in frame.columns and list(frame["rank"]) == [1]


def v1_json() -> dict:
    """A version-1 result.json (no schema_version; row/col; best.x/y = window centre)."""
    rec = verified_record().to_json()
    for c in rec["candidates"]:
        c["row"], c["col"] = c.pop("grid_row"), c.pop("grid_col")
    best = rec["best"]
    best["row"], best["col"] = best.pop("grid_row"), best.pop("grid_col")
    best["x"], best["y"] = best.pop("window_x"), best.pop("window_y")
    del rec["schema_version"]
    return rec


def test_version_1_reads_into_the_version_2_record(tmp_path):
    (tmp_path / RESULT_FILE).write_text(json.dumps(v1_json()))
    old, new = read_result(tmp_path), verified_record()
    assert old.schema_version == 1
    assert old.candidates == new.candidates
    assert old.best.x == pytest.approx(new.best.x) and old.best.y == pytest.approx(new.best.y)
    assert (old.best.window_x, old.best.grid_col) == (new.best.window_x, new.best.grid_col)


def test_version_1_unverified_keeps_its_window_centre():
    data = v1_json()
    data["best"].update(status="unverified", transform=None)
    best = LocateRecord.from_json(data).best
    assert (best.x, best.y) == (best.window_x, best.window_y)


def test_bad_results_raise_one_line_errors(tmp_path):
    with pytest.raises(MissingFileError, match=r"no result\.json in .*: run aeroloc locate first"):
        read_result(tmp_path)
    (tmp_path / RESULT_FILE).write_text("{")
    with pytest.raises(InvalidInputError, match="is not valid JSON"):
        read_result(tmp_path)
    (tmp_path / RESULT_FILE).write_text(json.dumps({"photo_id": "x"}))
    with pytest.raises(InvalidInputError, match="is not a locate result: bad or missing 'grid'"):
        read_result(tmp_path / RESULT_FILE)
    (tmp_path / RESULT_FILE).write_text(json.dumps({**v1_json(), "schema_version": 3}))
    with pytest.raises(InvalidInputError, match="schema_version 3 is newer"):
        read_result(tmp_path)
