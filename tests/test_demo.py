"""The demo report: verified footprints and the new columns."""

from __future__ import annotations

import math

from aeroloc.demo import write_report
from aeroloc.evaluation.evaluate import Evaluation, PhotoEvaluation
from aeroloc.evaluation.methods import MethodRow


def row(pid: str, **kw) -> PhotoEvaluation:
    base = {
        "flight_line": "L1",
        "photo_id": pid,
        "true_score": 0.8,
        "confidence_level": 97.0,
        "rank_of_truth": 1,
        "recall_at_1": True,
        "recall_at_5": True,
        "recall_at_10": True,
        "error_m": 120.0,
        "n_windows": 100,
    }
    return PhotoEvaluation(**{**base, **kw})


def test_report_shows_verified_footprints_and_columns(tmp_path):
    ev = Evaluation(
        rows=(
            row(
                "a",
                status="accepted",
                p_correct=0.93,
                centre_error_m=8.5,
                iou=0.91,
                gcp_rmse_m=6.2,
                n_gcps=40,
                windows_tried=1,
                search_reduction=0.99,
            ),
            row("b", status="rejected", windows_tried=10, search_reduction=0.9),
        ),
        hit_radius_m=None,
    )
    text = write_report(tmp_path, ev, "model-x", 12.0, 5000.0).read_text()
    assert "| status |" in text and "IoU" in text and "search reduction" in text
    assert "accepted ✓" in text and "green" in text
    assert "**accepted** (correct: footprint IoU 0.91, centre error 8.5 m" in text
    assert "**rejected** after 10 candidate(s)" in text
    assert "![heatmap](results/a/heatmap.png)" in text
    assert math.isclose(ev.summary()["accepted_and_correct"], 0.5)


def test_report_without_verification_says_so(tmp_path):
    ev = Evaluation(rows=(row("c"),), hit_radius_m=None)
    text = write_report(tmp_path, ev, "model-x", 1.0, 5000.0).read_text()
    assert "not verified" in text and "IoU" not in text


def method_row(method: str, photos: int, correct: int, **kw) -> MethodRow:
    base = dict.fromkeys(
        ("review", "unverified", "rejected", "footprint_correct", "false_accepts"), 0
    )
    return MethodRow(
        **{
            **base,
            "method": method,
            "photos": photos,
            "accepted": correct,
            "correct": correct,
            "without_full_search": 0 if method == "search" else photos,
            "mean_seconds": 4.0,
            "median_error_m": 9.0,
            **kw,
        }
    )


def test_report_shows_the_methods_and_their_accuracy(tmp_path):
    ev = Evaluation(rows=(row("a", status="accepted", iou=0.9),), hit_radius_m=None)
    methods = (
        method_row("search", 3, 3),
        method_row("neighbour", 5, 4, review=1),
        method_row("line", 1, 0, unverified=1, footprint_correct=1),
        method_row("all", 9, 7, without_full_search=6),
    )
    text = write_report(tmp_path, ev, "model-x", 1.0, 5000.0, methods=methods).read_text()
    assert "## Flight lines: how each photo was placed" in text
    assert "6 of 9 photos were placed without a full-AoI search" in text
    assert "| accepted and correct | false accepts |" in text
    assert "| neighbour | 5 | 4 | 4 | 0 | 1 | 0 | 0 | 0 | 5 | 4.0 | 9.0 |" in text
    assert "| **all** | 9 | 7 | 7 | 0 |" in text


def test_confidence_is_also_given_over_the_photos_searched_over_their_full_aoi(
    tmp_path, monkeypatch
):
    import types

    import aeroloc.demo as demo

    methods = {"a": "search", "b": "neighbour", "c": "search"}
    monkeypatch.setattr(demo, "has_result", lambda folder: True)
    monkeypatch.setattr(
        demo,
        "read_result",
        lambda folder: types.SimpleNamespace(photo_id=folder.name, method=methods[folder.name]),
    )
    ev = Evaluation(
        rows=(
            row("a", confidence_level=96.0),
            row("b", confidence_level=40.0, recall_at_1=False),
            row("c", confidence_level=98.0),
        ),
        hit_radius_m=None,
    )
    text = demo.full_aoi_sentence(ev, [tmp_path / p for p in methods])
    assert "Only the 2 photos placed by a full-AoI search" in text
    assert "**97.0 %**" in text and "recall@1 100%" in text and "The other 1 " in text
    report = write_report(tmp_path, ev, "m", 1.0, 5000.0, full_aoi=text).read_text()
    assert text in report
    methods["b"] = "search"
    assert demo.full_aoi_sentence(ev, [tmp_path / p for p in methods]) == ""
