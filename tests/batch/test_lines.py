"""Flight lines in the batch: the order photos run in, resume, and the joint solve's records.

The photos here are placed by a toy per-photo function that writes the
result a search would write at a known position, so the scheduling and the
solve are checked exactly and fast; ``test_placement.py`` places real photos.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import geopandas as gpd
import pytest
from rasterio.crs import CRS

from aeroloc.batch.config import LinesConfig
from aeroloc.batch.lines import apply_placement, run_line_batch, solve_lines
from aeroloc.batch.loop import InProcessRunner, PhotoJob
from aeroloc.batch.placement import LineJob
from aeroloc.catalog import PhotoRecord
from aeroloc.errors import ConfigError
from aeroloc.georef import FOOTPRINT_FILE
from aeroloc.io.results import (
    BestRecord,
    InputsRecord,
    LocateRecord,
    PlacementRecord,
    geojson,
    read_result,
    write_result,
)
from aeroloc.io.table import build_results_table
from lines_helpers import BOX, true_centres, true_transform
from lines_helpers import CRS as LINE_CRS

HEADING = 80.0
INTERVAL = 840.0
N = 8


def centres() -> list[tuple[float, float]]:
    return [
        (float(x), float(y)) for x, y in true_centres(N, interval_m=INTERVAL, direction_deg=HEADING)
    ]


def line_jobs(root: Path, *, n: int = N) -> tuple[PhotoJob, ...]:
    """One line of ``n`` photos, frames 10.., the catalog 600 m off the truth."""
    out = []
    for k, (x, y) in enumerate(centres()[:n]):
        pid = f"P{10 + k:04d}"
        out.append(
            PhotoJob(
                index=k + 1,
                total=n,
                archive_root=root,
                record=PhotoRecord(
                    photo_id=pid,
                    x=x + 600.0,
                    y=y - 300.0,
                    crs=CRS.from_user_input(LINE_CRS),
                    flight_line="L1",
                    frame=10 + k,
                    azimuth_deg=HEADING,
                    altitude_m=4000.0,
                ),
                references=(),
                out_dir=root / "out" / pid,
            )
        )
    return tuple(out)


def record_at(
    pid: str, x: float, y: float, *, status: str = "accepted", method: str = "search"
) -> LocateRecord:
    """The result.json a search writes for a photo found at ``(x, y)`` (status ``status``)."""
    t = true_transform(x, y, HEADING)
    footprint = t.footprint(BOX)
    verified = status in ("accepted", "review")
    return LocateRecord(
        photo_id=pid,
        photo=f"{pid}.tif",
        inputs=InputsRecord(crs=LINE_CRS, frame_box_px=BOX),
        model="toy",
        engine="toy",
        window_px=8,
        stride_px=4,
        grid_shape=(1, 1),
        grid_pixel_to_map=(10.0, 0.0, x, 0.0, -10.0, y),
        cells_file="heatmap_cells.npy",
        aoi_pixel_m=10.0,
        n_windows=1,
        n_valid_windows=1,
        timings_s={"total": 1.0},
        candidates=(),
        best=BestRecord(
            status=status,
            x=float(footprint.centroid.x) if verified else x,
            y=float(footprint.centroid.y) if verified else y,
            footprint=geojson(footprint),
            rmse_px=1.0 if verified else None,
            transform=t.to_json() if verified else None,
            reasons=() if status == "accepted" else ("rank 1: too few inliers",),
        ),
        method=method,
        placement=PlacementRecord(full_search=method == "search"),
    )


def toy_place(job: PhotoJob, *, calls: list[str], rejected: frozenset[str] = frozenset()) -> str:
    """Writes each photo's result at its true position (``rejected`` ones rejected)."""
    calls.append(job.photo_id)
    assert job.out_dir is not None
    k = int(job.photo_id[1:]) - 10
    x, y = centres()[k]
    hint = job.hint if isinstance(job, LineJob) else None
    method = "search" if hint is None else ("neighbour" if hint.neighbour_dir else "propagated")
    status = "rejected" if job.photo_id in rejected else "accepted"
    write_result(record_at(job.photo_id, x, y, status=status, method=method), job.out_dir)
    return f"{method}:{'' if hint is None else hint.neighbour_id}"


def run(jobs, calls, *, rejected=frozenset(), scores=None, retry_failed=False):
    fn = functools.partial(toy_place, calls=calls, rejected=rejected)
    return run_line_batch(
        jobs,
        InProcessRunner(fn),
        crs=LINE_CRS,
        config=LinesConfig(),
        scores=scores or {"P0013": 5.0},
        retry_failed=retry_failed,
    )


def test_the_seed_goes_first_and_the_line_grows_outwards_through_neighbours(tmp_path):
    jobs = line_jobs(tmp_path)
    calls: list[str] = []
    outcomes = run(jobs, calls)
    assert calls[0] == "P0013"  # the most promising photo, searched over the full AoI
    assert sorted(calls) == [j.photo_id for j in jobs]  # each photo exactly once
    values = {o.job.photo_id: o.value for o in outcomes}
    assert values["P0013"] == "search:"
    # every other photo is one frame from an accepted one when it runs: a neighbour job
    for pid in ("P0012", "P0014", "P0010", "P0017"):
        assert values[pid] is not None and values[pid].startswith("neighbour:")
    assert values["P0012"] == "neighbour:P0013" and values["P0014"] == "neighbour:P0013"
    # outwards: frame 12 before 11 before 10; 14 before 15
    assert calls.index("P0012") < calls.index("P0011") < calls.index("P0010")
    assert calls.index("P0014") < calls.index("P0015") < calls.index("P0017")


def test_a_rejected_photo_is_stepped_over_by_the_shrunken_search(tmp_path):
    jobs = line_jobs(tmp_path)
    calls: list[str] = []
    outcomes = run(jobs, calls, rejected=frozenset({"P0014"}))
    values = {o.job.photo_id: o.value for o in outcomes}
    assert values["P0014"] == "neighbour:P0013"
    # two frames from the seed: no neighbour, a prediction (and then neighbours again)
    assert values["P0015"] == "propagated:None"
    assert values["P0016"] == "neighbour:P0015"
    assert sorted(calls) == [j.photo_id for j in jobs]


def test_a_line_whose_seed_is_rejected_gets_its_next_best_seed(tmp_path):
    jobs = line_jobs(tmp_path)
    calls: list[str] = []
    outcomes = run(jobs, calls, rejected=frozenset({"P0013"}), scores={"P0013": 5.0, "P0016": 4.0})
    assert calls[:2] == ["P0013", "P0016"]
    values = {o.job.photo_id: o.value for o in outcomes}
    assert values["P0016"] == "search:" and values["P0015"] == "neighbour:P0016"
    assert sorted(calls) == [j.photo_id for j in jobs]


def test_a_resumed_line_runs_only_what_is_missing_and_ends_the_same(tmp_path):
    jobs = line_jobs(tmp_path)
    first: list[str] = []
    run(jobs[:1] + jobs[2:], first)  # a first run that never saw P0011 ...
    folder = jobs[4].out_dir
    assert folder is not None
    (folder / "result.json").unlink()  # ... and was killed before P0014 was written
    again: list[str] = []
    outcomes = run(jobs, again)
    assert sorted(again) == ["P0011", "P0014"]
    assert sum(o.skipped for o in outcomes) == N - 2
    values = {o.job.photo_id: o.value for o in outcomes if not o.skipped}
    assert values == {"P0011": "neighbour:P0010", "P0014": "neighbour:P0013"}


def planted_line(tmp_path: Path) -> tuple[PhotoJob, ...]:
    """Eight accepted photos at the truth but P0015 2.3 km off; P0017 rejected."""
    jobs = line_jobs(tmp_path)
    for job, (x, y) in zip(jobs, centres(), strict=True):
        assert job.out_dir is not None
        if job.photo_id == "P0015":
            write_result(record_at(job.photo_id, x + 2300.0, y), job.out_dir)
        elif job.photo_id == "P0017":
            write_result(record_at(job.photo_id, x - 900, y, status="rejected"), job.out_dir)
        else:
            write_result(record_at(job.photo_id, x, y), job.out_dir)
    return jobs


def test_the_solve_flags_a_planted_wrong_accept_and_places_a_rejected_photo(tmp_path):
    jobs = planted_line(tmp_path)
    out = tmp_path / "out"
    summary = solve_lines(jobs, out, crs=LINE_CRS, config=LinesConfig())
    assert summary.contradicted == ("P0015",) and summary.placed_by_line == ("P0017",)
    assert sorted(summary.rewritten) == ["P0015", "P0017"]
    wrong = read_result(out / "P0015")
    assert wrong.status == "review" and wrong.method == "search"
    assert wrong.best.reasons[0].startswith("centre 2.3 km off its flight line")
    assert wrong.placement is not None and wrong.placement.original_status == "accepted"
    placed = read_result(out / "P0017")
    assert placed.method == "line" and placed.status == "unverified"
    assert placed.placement is not None and placed.placement.original_status == "rejected"
    x, y = centres()[7]
    assert placed.best.x is not None and placed.best.y is not None
    assert abs(placed.best.x - x) < 30 and abs(placed.best.y - y) < 30
    assert (out / "P0017" / FOOTPRINT_FILE).is_file()
    assert summary.plots == (out / "lines" / "L1.png",) and summary.plots[0].stat().st_size > 0
    table, paths = build_results_table(out, [j.record for j in jobs], crs=LINE_CRS)
    rows = {r.photo_id: r for r in table.footprints}
    assert rows["P0015"].status == "review" and "2.3 km" in rows["P0015"].reasons
    assert rows["P0017"].method == "line" and 0 < rows["P0017"].sigma_m < 100
    feet = gpd.read_file(paths.gpkg, layer="footprints").set_index("photo_id")
    assert feet.loc["P0017", "geometry"] is not None and feet.loc["P0017", "method"] == "line"
    # a second solve (a resumed batch) changes nothing
    before = {j.photo_id: (out / j.photo_id / "result.json").read_text() for j in jobs}
    assert solve_lines(jobs, out, crs=LINE_CRS, config=LinesConfig()).rewritten == ()
    assert {j.photo_id: (out / j.photo_id / "result.json").read_text() for j in jobs} == before


def test_a_photo_the_solve_no_longer_contradicts_gets_its_record_back(tmp_path):
    jobs = planted_line(tmp_path)
    out = tmp_path / "out"
    original = (out / "P0017" / "result.json").read_text()
    solve_lines(jobs, out, crs=LINE_CRS, config=LinesConfig())
    # with one accepted photo left there is no solve: both records come back
    for job in jobs[:5] + jobs[6:7]:
        assert job.out_dir is not None
        (job.out_dir / "result.json").unlink()
    summary = solve_lines(jobs, out, crs=LINE_CRS, config=LinesConfig())
    assert sorted(summary.rewritten) == ["P0015", "P0017"]
    assert read_result(out / "P0015").status == "accepted"
    assert json.loads((out / "P0017" / "result.json").read_text()) == json.loads(original)
    assert not (out / "P0017" / FOOTPRINT_FILE).exists()


def test_apply_placement_leaves_a_folder_without_result_alone(tmp_path):
    from aeroloc.lines.solve import PhotoPlacement

    placement = PhotoPlacement(
        photo_id="P", frame=1, method="none", status="pending", previous_status="pending"
    )
    assert apply_placement(placement, tmp_path / "P") is False
    assert not (tmp_path / "P").exists()


def test_lines_config_is_validated_at_the_edge():
    with pytest.raises(ConfigError, match="max_gap_frames"):
        LinesConfig(max_gap_frames=0)
    with pytest.raises(ConfigError, match="neighbour_margin_m"):
        LinesConfig(neighbour_margin_m=-1.0)
    with pytest.raises(ConfigError, match="search_k_sigma"):
        LinesConfig(search_k_sigma=0.0)
