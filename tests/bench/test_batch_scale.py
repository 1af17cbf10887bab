"""The batch scale benchmark (bench/batch_scale.py): seeds, the reported numbers, a tiny run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from script_loader import load_script

bs = load_script("bench/batch_scale.py", "bench_batch_scale")


def _row(pid: str, status: str, method: str | None, **kw: Any) -> dict[str, Any]:
    row = {
        "photo_id": pid,
        "status": status,
        "method": method,
        "full_search": None if method is None else method == "search",
        "seed": None if method is None else method == "search",
        "seconds": math.nan,
        "attempts": [],
        "iou": math.nan,
        "centre_error_m": math.nan,
    }
    return row | kw


ROWS = [
    _row("a", "accepted", "search", seconds=30.0, iou=0.9, centre_error_m=10.0),
    _row("b", "accepted", "neighbour", seconds=6.0, iou=0.2, centre_error_m=900.0),
    _row("c", "accepted", "neighbour", seconds=4.0, iou=0.7, centre_error_m=20.0),
    # a line photo whose shrunken search failed: the full-AoI fallback placed it
    _row("d", "review", "search", seed=False, seconds=50.0, iou=0.6, centre_error_m=15.0),
    _row("e", "unverified", "line", seconds=8.0, iou=0.55, centre_error_m=40.0),
    _row("f", "rejected", "propagated", seconds=12.0),
    _row("g", "failed", None, seconds=1.0),
    _row("h", "pending", None),
]


def test_calibration_and_training_seeds_are_refused():
    for seed in (600, 650, 699, 1000, 1017):
        with pytest.raises(SystemExit):
            bs.parse_args(["--seed", str(seed)])
    args = bs.parse_args(["--preset", "tiny", "--seed", "160", "--work", "w"])
    assert (args.seed, args.buffer_m, args.out, args.workers) == (
        160,
        1500.0,
        Path("w/report"),
        [1, 2],
    )
    assert bs.parse_args([]).buffer_m == 10_000.0
    with pytest.raises(SystemExit):
        bs.parse_args(["--workers", "1", "1"])


def test_the_summary_counts_every_photo_once_and_false_accepts_apart():
    s = bs.summarise(ROWS, wall_s=120.0, n_run=7)
    assert sum(s[status] for status in bs.STATUSES) == s["photos"] == len(ROWS)
    assert (s["accepted"], s["accepted_and_correct"], s["false_accepts"]) == (3, 2, 1)
    assert (s["review"], s["rejected"], s["unverified"], s["failed"], s["pending"]) == (
        1,
        1,
        1,
        1,
        1,
    )
    assert s["placed_by_line_correct"] == 1
    # six photos have a result; b, c, e and f were placed without a full-AoI search
    assert s["without_full_search"] == 4 and s["share_without_full_search"] == pytest.approx(4 / 6)
    assert s["median_centre_error_m"] == pytest.approx(20.0)  # accepted: 10, 900, 20
    assert s["mean_s_per_photo"] == pytest.approx((30 + 6 + 4 + 50 + 8 + 12) / 6)
    bm = s["by_method"]
    assert bm["search"] == {"photos": 2, "accepted": 1, "mean_s": pytest.approx(40.0)}
    assert bm["neighbour"]["mean_s"] == pytest.approx(5.0) and bm["line"]["photos"] == 1
    assert {k: v["photos"] for k, v in s["by_class"].items()} == {
        "seed": 1,
        "fallback": 1,
        "line": 4,
    }
    assert s["photos_per_min"] == pytest.approx(60 * 7 / 120.0)
    md = bs.to_markdown(_report([_run("lines-1w", 1, True, s)]))
    assert "| **1** |" in md  # false accepts, always shown, bold


def _run(name: str, workers: int, lines: bool, summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "workers": workers,
        "lines": lines,
        "where": "here",
        "n_lines": 2,
        "n_skipped": 0,
        "load_before": [1.0, 1.0, 1.0],
        "load_after": [2.0, 2.0, 2.0],
        "summary": summary,
        "photos": [],
    }


def _report(runs: list[dict[str, Any]]) -> dict[str, Any]:
    args = {"preset": "tiny", "seed": 160, "buffer_m": 1500.0, "engine": "dense",
            "matcher": None, "max_candidates": 10}  # fmt: skip
    return {"date": "d", "archive": "a", "cpus": 2, "args": args, "runs": runs,
            "comparison": bs.compare(runs)}  # fmt: skip


def test_the_comparison_takes_its_ratios_from_the_measured_times():
    one = bs.summarise(ROWS, wall_s=120.0, n_run=7)
    two = bs.summarise(ROWS, wall_s=70.0, n_run=7)
    full_rows = [_row(r["photo_id"], "accepted", "search", seconds=60.0, iou=0.9) for r in ROWS]
    full = bs.summarise(full_rows, wall_s=500.0, n_run=8)
    runs = [_run("lines-1w", 1, True, one), _run("lines-2w", 2, True, two),
            _run("full-1w", 1, False, full)]  # fmt: skip
    c = bs.compare(runs)
    assert c["speedup_over_1_worker"] == {"2": pytest.approx(120.0 / 70.0)}
    assert c["cost_ratio_run"] == "lines-1w"
    assert c["cost_ratio"] == pytest.approx(one["mean_s_per_photo"] / 60.0)
    assert c["wall_ratio"] == pytest.approx((120.0 / 7) / (500.0 / 8))
    assert c["photos_per_hour_wall"] == pytest.approx(3600 * 7 / 70.0)
    assert c["photos_per_hour_per_photo_cost"] == pytest.approx(2 * 3600 / two["mean_s_per_photo"])
    est = c["estimate"]
    assert est["basis"] == "lines-2w"
    m = est["measured_mix"]
    assert m["worker_hours"] == pytest.approx(330_000 * two["mean_s_per_photo"] / 3600)
    assert m["hours_on_machines"]["10"] == pytest.approx(m["worker_hours"] / 20)
    # archive mix: 1 seed on 2 lines -> 2143 / 2 seeds at 30 s; the rest 1/5 fallbacks (50 s)
    # and 4/5 line photos (mean 7.5 s)
    seeds = 2143 / 2
    per_other = 0.2 * 50.0 + 0.8 * 7.5
    expect = (seeds * 30.0 + (330_000 - seeds) * per_other) / 330_000
    assert est["archive_mix"]["s_per_photo"] == pytest.approx(expect)
    md = bs.to_markdown(_report(runs))
    assert "**1.71×**" in md and "archive_mix" in md


@pytest.mark.slow
def test_a_tiny_benchmark_reports_what_its_result_files_say(tmp_path: Path, capsys):
    work = tmp_path / "work"
    argv = ["--work", str(work), "--preset", "tiny", "--seed", "160", "--workers", "1",
            "--baseline-workers", "0", "--matcher", "sift", "--max-candidates", "1"]  # fmt: skip
    assert bs.main(argv) == 0
    out = work / "report"
    report = json.loads((out / "results.json").read_text(), parse_constant=pytest.fail)
    assert (out / "summary.md").read_text() in capsys.readouterr().out
    runs = {r["name"]: r for r in report["runs"]}
    assert list(runs) == ["lines-1w", "full-0w"]
    assert "Dask" in runs["lines-1w"]["where"] and "no Dask" in runs["full-0w"]["where"]
    for name, run in runs.items():
        s = run["summary"]
        folder = work / "runs" / "tiny-160" / name
        assert s["photos"] == s["n_run"] == 3 and len(run["photos"]) == 3
        assert sum(s[status] for status in bs.STATUSES) == 3
        assert s["false_accepts"] == s["accepted"] - s["accepted_and_correct"]
        assert s["photos_per_min"] == pytest.approx(60 * 3 / s["wall_s"])
        seconds = []
        for row in run["photos"]:
            rec = json.loads((folder / row["photo_id"] / "result.json").read_text())
            placement = rec.get("placement")
            seconds.append(
                sum(a["seconds"] for a in placement["attempts"])
                if placement
                else rec["timings_s"]["total"]
            )
            assert row["method"] == rec["method"] and row["status"] == rec["best"]["status"]
        assert s["mean_s_per_photo"] == pytest.approx(sum(seconds) / 3)
        assert 0 < s["mean_s_per_photo"] < s["wall_s"]
    assert runs["full-0w"]["summary"]["without_full_search"] == 0
    c = report["comparison"]
    assert c["cost_ratio"] == pytest.approx(
        runs["lines-1w"]["summary"]["mean_s_per_photo"]
        / runs["full-0w"]["summary"]["mean_s_per_photo"]
    )
    # a second call reuses the archive
    before = (work / "archives" / "tiny-160" / "truth.json").stat().st_mtime_ns
    bs.ensure_archive(work, preset="tiny", seed=160)
    assert (work / "archives" / "tiny-160" / "truth.json").stat().st_mtime_ns == before
