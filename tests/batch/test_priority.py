"""Which photos go first: known textures score in order; every line's best photo leads."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from rasterio.crs import CRS
from shapely.geometry import box

from aeroloc.aoi import rough_footprint
from aeroloc.batch.loop import PhotoJob
from aeroloc.batch.priority import job_priority, order_by_line, rock_share, texture_score
from aeroloc.catalog import PhotoRecord
from aeroloc.errors import InvalidInputError
from aeroloc.files import write_geotiff

CRS_3031 = CRS.from_epsg(3031)


def scan(path: Path, kind: str, size: int = 600) -> Path:
    """A uint8 scan with known texture: flat, a smooth ramp, or 30-pixel blocks of noise."""
    rng = np.random.default_rng(3)
    if kind == "flat":
        img = np.full((size, size), 128, dtype=np.uint8)
    elif kind == "ramp":
        img = np.tile(np.linspace(60, 200, size), (size, 1)).astype(np.uint8)
    elif kind == "blocks":
        coarse = rng.integers(0, 255, (size // 30, size // 30))
        img = np.kron(coarse, np.ones((30, 30))).astype(np.uint8)
    else:
        raise ValueError(kind)
    return write_geotiff(path, img)


def record(photo_id: str, line: str | None, frame: int | None, path: Path) -> PhotoRecord:
    return PhotoRecord(
        photo_id=photo_id,
        path=path,
        flight_line=line,
        frame=frame,
        x=0.0,
        y=-1_000_000.0,
        crs=CRS_3031,
        altitude_m=2000.0,
        azimuth_deg=0.0,
    )


def job(rec: PhotoRecord, index: int, root: Path, rock: Path | None = None) -> PhotoJob:
    return PhotoJob(
        index=index, total=6, archive_root=root, record=rec, references=(), rock_mask=rock
    )


def test_texture_scores_follow_the_known_texture(tmp_path):
    flat, ramp, blocks = (scan(tmp_path / f"{k}.tif", k) for k in ("flat", "ramp", "blocks"))
    scores = [texture_score(p) for p in (flat, ramp, blocks)]
    assert scores[0] == 0.0
    assert 0.0 < scores[1] < scores[2]
    # the ramp climbs 140 grey levels over the 256 decimated columns, in units of 255
    assert scores[1] == pytest.approx(140 / 256 / 255, rel=0.05)
    with pytest.raises(InvalidInputError, match="max_side must be ≥ 8"):
        texture_score(flat, max_side=4)


def test_every_line_s_most_textured_photo_goes_first(tmp_path):
    kinds = {"a1": "flat", "a2": "blocks", "a3": "ramp", "b1": "ramp", "b2": "blocks"}
    paths = {pid: scan(tmp_path / f"{pid}.tif", k) for pid, k in kinds.items()}
    recs = [record(pid, pid[0].upper(), int(pid[1]), paths[pid]) for pid in kinds]
    recs.append(record("single", None, None, paths["a1"]))
    jobs = [job(r, i, tmp_path) for i, r in enumerate(recs, 1)]
    scores = {j.photo_id: job_priority(j) for j in jobs}
    ordered = [j.photo_id for j in order_by_line(jobs, scores)]
    # round one: each line's best (line A, line B, the photo without a line), then the rest
    assert ordered == ["a2", "b2", "single", "a3", "b1", "a1"]


def test_rock_share_of_a_footprint_half_covered_and_its_priority(tmp_path):
    path = scan(tmp_path / "p.tif", "ramp")
    rec = record("p", "L", 1, path)
    x0, y0, x1, y1 = rough_footprint(rec).bounds
    rock = tmp_path / "rock.gpkg"
    gpd.GeoDataFrame(geometry=[box(x0 - 500, y0 - 500, (x0 + x1) / 2, y1 + 500)], crs=3031).to_file(
        rock, driver="GPKG"
    )
    assert rock_share(rec, rock) == pytest.approx(0.5, abs=1e-6)
    plain, rocky = job(rec, 1, tmp_path), job(rec, 1, tmp_path, rock)
    assert job_priority(rocky) == pytest.approx(1.5 * job_priority(plain))


def test_an_unreadable_scan_scores_zero(tmp_path):
    assert job_priority(job(record("gone", "L", 1, tmp_path / "missing.tif"), 1, tmp_path)) == 0.0
