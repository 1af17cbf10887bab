"""The real-raster benchmark runner's bookkeeping (``bench/real/run.py``): subsets and summaries."""

from __future__ import annotations

import math

import pytest

from script_loader import load_script

run = load_script("bench/real/run.py", "bench_real_run")


def _row(source: str, group: str, status: str, **kw: object) -> dict[str, object]:
    return {"source": source, "group": group, "status": status, **kw}


ROWS = [
    _row("s2", "easy", "accepted", correct=True, false_accept=False, recall_at_1=True,
         recall_at_5=True, rank_of_truth=1, p_correct=0.95, iou=0.8, centre_error_m=10.0,
         centre_error_ref_px=1.0, total_s=20.0),
    _row("s2", "hard", "accepted", correct=False, false_accept=True, recall_at_1=False,
         recall_at_5=True, rank_of_truth=3, p_correct=0.62, iou=0.0, centre_error_m=700.0,
         centre_error_ref_px=70.0, total_s=40.0),
    _row("landsat", "hard", "review", correct=False, false_accept=False, recall_at_1=True,
         recall_at_5=True, rank_of_truth=1, p_correct=0.66, iou=0.7, total_s=60.0),
    _row("landsat", "easy", "rejected", correct=False, false_accept=False, recall_at_1=False,
         recall_at_5=False, p_correct=0.01, total_s=80.0),
    _row("landsat", "easy", "error", error="NoOverlapError: ..."),
]  # fmt: skip


def test_a_limit_takes_cases_round_robin_over_the_archives():
    per = [["a1", "a2", "a3"], ["b1"], ["c1", "c2"]]
    assert run.stratified(per, None) == per
    assert run.stratified(per, 4) == [["a1", "a2"], ["b1"], ["c1"]]
    assert run.stratified(per, 100) == per


def test_summaries_count_false_accepts_and_take_medians_over_accepted():
    s = run.summarise(ROWS)
    assert (s["n"], s["accepted"], s["accepted_and_correct"], s["false_accepts"]) == (5, 2, 1, 1)
    assert (s["review"], s["rejected"], s["errors"]) == (1, 1, 1)
    assert s["recall_at_1"] == pytest.approx(2 / 5) and s["recall_at_5"] == pytest.approx(3 / 5)
    assert s["median_centre_error_m"] == pytest.approx(355.0)
    assert s["median_centre_error_ref_px"] == pytest.approx(35.5)
    assert s["median_seconds"] == pytest.approx(50.0)
    labels = [label for label, _ in run.subsets(ROWS)]
    assert labels[:3] == ["easy", "hard", "all"] and "landsat easy" in labels
    assert math.isnan(run.summarise([])["recall_at_1"])


def test_reliability_bins_the_located_photos():
    bins = run.reliability(ROWS)
    assert len(bins) == run.RELIABILITY_BINS
    got = {(b["lo"], b["n"], b["share_correct"]) for b in bins if b["n"]}
    # accepted 0.95 (IoU 0.8) in the top bin; 0.62 (IoU 0) and review 0.66 (IoU 0.7) in 0.6-0.7
    assert got == {(0.9, 1, 1.0), (0.6, 2, 0.5)}


def test_results_round_trip_through_the_csv_and_the_markdown(tmp_path):
    rows = [dict.fromkeys(run.COLUMNS) | r for r in ROWS]
    run.write_outputs(tmp_path, rows, {"model": "m", "engine": "dense", "limit": 5})
    typed = run.read_rows(tmp_path / "results.csv")
    assert [r["status"] for r in typed] == [r["status"] for r in ROWS]
    assert typed[1]["false_accept"] is True and typed[0]["centre_error_m"] == 10.0
    md = (tmp_path / "summary.md").read_text()
    assert "| easy | 3 |" in md and "| hard | 2 |" in md and "--limit 5" in md
    assert (tmp_path / "reliability.png").stat().st_size > 0
