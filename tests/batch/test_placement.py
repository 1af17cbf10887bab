"""Known answer: on the tiny archive, one photo searched, its neighbours placed along the line."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Polygon, shape

from aeroloc.batch.config import BatchConfig, BatchInputs, LinesConfig
from aeroloc.batch.placement import ATTEMPTS_DIR, LineHint
from aeroloc.batch.run import batch_jobs, run_batch
from aeroloc.batch.worker import LocateSpec
from aeroloc.evaluation.methods import method_summary
from aeroloc.io.archive import read_truth
from aeroloc.io.results import read_result
from aeroloc.lines.track import Prediction
from aeroloc.verify.walk import VerifyConfig


def test_a_hint_travels_as_plain_numbers_and_gives_its_prediction_back():
    from rasterio.crs import CRS as RCRS

    from aeroloc.lines.track import rectangle
    from lines_helpers import CRS

    pred = Prediction(
        photo_id="P",
        frame=4,
        x=1000.0,
        y=-2000.0,
        heading_deg=80.0,
        gsd_m=2.0,
        ground_width_m=2000.0,
        ground_height_m=1900.0,
        sigma_m=35.0,
        frame_gap=1,
        anchor_frames=(3,),
        footprint=rectangle(1000.0, -2000.0, 2000.0, 1900.0, 80.0),
        crs=RCRS.from_user_input(CRS),
    )
    hint = LineHint.from_prediction(pred, line_id="L", neighbour_id="Q", neighbour_dir=Path("q"))
    assert all(isinstance(v, (str, int, float, tuple, Path)) for v in vars(hint).values())
    back = hint.prediction("P")
    assert back.footprint.equals_exact(pred.footprint, 1e-6) and back.crs == pred.crs
    assert (back.x, back.sigma_m, back.anchor_frames) == (1000.0, 35.0, (3,))


@pytest.mark.slow
def test_the_neighbours_of_the_searched_photo_are_placed_by_the_line(
    located_tiny: Path, tiny_archive: Path, tmp_path: Path
) -> None:
    truth = read_truth(tiny_archive)
    ids = sorted(truth.photos, key=lambda i: truth.photos[i].frame or 0)
    middle = ids[1]
    out = tmp_path / "run"
    out.mkdir()
    # the batch found the middle frame by a full search; its two neighbours are pending
    shutil.copytree(located_tiny / middle, out / middle)
    jobs, crs = batch_jobs(BatchInputs(catalog=tiny_archive), out)
    spec = LocateSpec(buffer_m=1500.0, verify=VerifyConfig(max_candidates=1))
    summary = run_batch(
        jobs,
        spec,
        BatchConfig(out_dir=out, workers=0),
        crs=crs,
        lines=LinesConfig(),
    )
    assert summary.n_run == 2 and summary.n_skipped == 1
    assert summary.counts == {"accepted": 3}
    assert summary.n_without_full_search == 2
    feet = gpd.read_file(out / "results.gpkg", layer="footprints").set_index("photo_id")
    for pid in (ids[0], ids[2]):
        record = read_result(out / pid)
        assert record.status == "accepted"
        assert record.method in ("neighbour", "propagated")
        assert record.placement is not None and not record.placement.full_search
        if record.method == "neighbour":
            assert record.placement.neighbour_id == middle
        assert record.best.footprint is not None
        found = shape(dict(record.best.footprint))
        true = Polygon(truth.photos[pid].footprint)
        assert found.intersection(true).area / found.union(true).area >= 0.5
        assert feet.loc[pid, "method"] == record.method and feet.loc[pid, "full_search"] == 0
        assert (out / pid / "footprint.gpkg").is_file()
        assert not (out / pid / ATTEMPTS_DIR).exists()
    assert feet.loc[middle, "method"] == "search"
    assert (out / "lines" / f"{truth.photos[middle].flight_line}.png").is_file()
    rows = {r.method: r for r in method_summary(tiny_archive, [out / pid for pid in ids])}
    assert rows["search"].photos == 1 and rows["search"].without_full_search == 0
    assert (rows["all"].photos, rows["all"].correct, rows["all"].false_accepts) == (3, 3, 0)
    assert rows["all"].without_full_search == 2 and rows["all"].mean_seconds > 0
