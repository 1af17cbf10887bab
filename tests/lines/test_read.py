"""Flight-line inputs from a catalog and a folder of result.json files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from shapely.geometry import Polygon

from aeroloc.catalog import read_catalog
from aeroloc.errors import InvalidInputError
from aeroloc.georef.transform import PhotoTransform
from aeroloc.io.archive import Truth, TruthRecord
from aeroloc.io.results import BestRecord, InputsRecord, LocateRecord, write_result
from aeroloc.lines.read import located_from_record, read_lines
from aeroloc.lines.solve import solve_line
from lines_helpers import iou, truth_transform


def _record(
    rec: TruthRecord, crs: str, status: str, transform: PhotoTransform | None
) -> LocateRecord:
    assert rec.image_box_px is not None
    return LocateRecord(
        photo_id=rec.photo_id,
        photo=f"photos/{rec.photo_id}.tif",
        inputs=InputsRecord(crs=crs, frame_box_px=tuple(rec.image_box_px)),
        model="m",
        engine="dense",
        window_px=64,
        stride_px=16,
        grid_shape=(1, 1),
        grid_pixel_to_map=(1.0, 0.0, 0.0, 0.0, -1.0, 0.0),
        cells_file="heatmap_cells.npy",
        aoi_pixel_m=10.0,
        n_windows=1,
        n_valid_windows=1,
        timings_s={},
        candidates=(),
        best=BestRecord(
            status=status,
            x=rec.center_x,
            y=rec.center_y,
            rmse_px=3.5,
            transform=None if transform is None else transform.to_json(),
        ),
    )


def test_lines_from_catalog_and_results(
    line_archive: Path, line_truth: Truth, tmp_path: Path
) -> None:
    recs = sorted(line_truth.photos.values(), key=lambda r: r.frame or 0)
    crs = line_truth.crs
    write_result(
        _record(recs[0], crs, "accepted", truth_transform(recs[0], crs)),
        tmp_path / recs[0].photo_id,
    )
    write_result(_record(recs[1], crs, "rejected", None), tmp_path / recs[1].photo_id)
    write_result(
        _record(recs[2], crs, "accepted", truth_transform(recs[2], crs)),
        tmp_path / recs[2].photo_id,
    )
    catalog = read_catalog(line_archive / "catalog.csv", target_crs=crs)
    lines = read_lines(catalog, tmp_path, methods={recs[2].photo_id: "neighbour"})
    assert lines.singles == ()
    (line,) = lines.lines
    assert line.line_id == recs[0].flight_line
    assert line.frames == tuple(r.frame for r in recs)
    first, middle, last = line.photos
    assert first.located is not None and last.located is not None and middle.located is None
    assert middle.status == "rejected"
    assert last.located.method == "neighbour" and first.located.method == "search"
    # sigma = max(20 m, rmse 3.5 px x 10 m AoI pixels)
    assert first.located.sigma_m == pytest.approx(35.0)
    assert iou(first.located.footprint, Polygon(recs[0].footprint)) > 0.999
    assert first.located.gsd_m == pytest.approx(recs[0].gsd_m, rel=1e-6)
    assert first.located.heading_deg == pytest.approx(recs[0].azimuth_deg, abs=1e-6)
    # the catalog's altitude gives the ground size (within the catalog's altitude error)
    assert middle.ground_size_m == pytest.approx(1000 * recs[1].gsd_m, rel=0.15)  # type: ignore[operator]
    # and the line solve runs on it: the middle photo is placed by the line
    solution = solve_line(line)
    assert solution.placed_by_line == (recs[1].photo_id,)
    # no results folder at all: every photo pending
    empty = read_lines(catalog, tmp_path / "nothing").lines[0]
    assert {p.status for p in empty.photos} == {"pending"}


def test_singles_and_bad_results(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    csv = tmp_path / "cat.csv"
    csv.write_text(
        "photo_id,flight_line,frame,x,y,altitude_m\n"
        "a,L1,1,1000,2000,3000\n"
        "b,L1,2,1800,2000,3000\n"
        "c,,,5000,5000,3000\n"
    )
    catalog = read_catalog(csv, target_crs="EPSG:3031")
    (tmp_path / "res" / "b").mkdir(parents=True)
    (tmp_path / "res" / "b" / "result.json").write_text("{")
    with caplog.at_level(logging.WARNING, logger="aeroloc.lines.read"):
        lines = read_lines(catalog, tmp_path / "res")
    assert lines.singles == ("c",)
    assert lines.line("L1").photo("b").status == "failed"
    assert "single photos: c" in caplog.text and "unreadable result" in caplog.text
    with pytest.raises(InvalidInputError, match="no flight line 'L9'"):
        lines.line("L9")


def test_located_from_record_skips_unverified(line_truth: Truth) -> None:
    rec = next(iter(line_truth.photos.values()))
    assert located_from_record(_record(rec, line_truth.crs, "rejected", None)) is None
    with pytest.raises(InvalidInputError, match="method"):
        located_from_record(
            _record(rec, line_truth.crs, "accepted", truth_transform(rec, line_truth.crs)),
            method="magic",
        )
