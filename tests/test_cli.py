"""The command line: exit codes, every output file, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio
from click.testing import CliRunner

from aeroloc import __version__
from aeroloc.cli import cli
from cli_helpers import LOCATE_OUTPUTS, run, synth_tiny

FAST = ["--buffer-m", "1500", "--stride", "0.5"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return synth_tiny(tmp_path_factory.mktemp("archive"), seed=7)


@pytest.fixture(scope="module")
def first_id(archive) -> str:
    return json.loads((archive / "truth.json").read_text())["photos"][0]["photo_id"]


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_aoi_writes_raster_and_polygons(archive, first_id, tmp_path):
    result = run(
        "aoi",
        "--reference",
        archive / "reference.tif",
        "--catalog",
        archive / "catalog.csv",
        "--photo-id",
        first_id,
        "--buffer-m",
        "1000",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "aoi.tif") as ds:
        assert ds.crs.to_epsg() == 3031 and ds.count == 3
    assert (tmp_path / "aoi.gpkg").is_file()


def test_preprocess_writes_rasters_and_preview(archive, first_id, tmp_path):
    result = run(
        "preprocess",
        "--reference",
        archive / "reference.tif",
        "--catalog",
        archive / "catalog.gpkg",
        "--photo-id",
        first_id,
        "--buffer-m",
        "1000",
        "--rock-mask",
        archive / "rock_outcrop.gpkg",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "preview.png").stat().st_size > 1000
    assert (tmp_path / "aoi_rotated.tif").is_file()
    assert (tmp_path / "photo_matched.tif").is_file()


def test_locate_from_catalog_writes_every_file_and_evaluates(archive, first_id, tmp_path):
    out = tmp_path / "loc"
    result = run(
        "locate",
        "--reference",
        archive / "reference.tif",
        "--catalog",
        archive / "catalog.gpkg",
        "--photo-id",
        first_id,
        "--rock-mask",
        archive / "rock_outcrop.gpkg",
        "--model",
        "effnet-lite0-siamese",
        *FAST,
        "--no-verify",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    assert not (out / "footprint.gpkg").exists()
    for name in LOCATE_OUTPUTS:
        assert (out / name).is_file(), name
    res = json.loads((out / "result.json").read_text())
    assert res["best"]["status"] == "unverified"
    assert {"rank", "score", "percentile", "x", "y", "grid_row", "grid_col"} <= set(
        res["candidates"][0]
    )
    with rasterio.open(out / "heatmap.tif") as ds:
        assert ds.dtypes[0] == "float32" and ds.crs.to_epsg() == 3031
    ev = tmp_path / "ev"
    result = run("evaluate", "--truth", archive / "truth.json", "--results", out, "--out", ev)
    assert result.exit_code == 0, result.output
    assert "confidence level" in (ev / "evaluation.md").read_text()
    assert (ev / "histograms" / f"{first_id}.png").is_file()


def test_locate_without_catalog(archive, first_id, tmp_path):
    truth = json.loads((archive / "truth.json").read_text())["photos"][0]
    cx, cy = truth["center_x"], truth["center_y"]
    bounds = f"{cx - 3000},{cy - 3000},{cx + 3000},{cy + 3000}"
    photo = archive / "photos" / f"{first_id}.tif"
    result = run(
        "locate",
        photo,
        "--reference",
        archive / "reference.tif",
        "--aoi",
        bounds,
        "--gsd-m",
        truth["gsd_m"],
        "--azimuth-deg",
        truth["azimuth_deg"],
        "--model",
        "effnet-lite0-siamese",
        "--stride",
        "0.5",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "result.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "locate",
                "missing.tif",
                "--reference",
                "nope.tif",
                "--aoi",
                "0,0,1,1",
                "--gsd-m",
                "2",
                "--azimuth-deg",
                "0",
                "--out",
                "x",
            ],
            "not found",
        ),
        (
            [
                "locate",
                "--reference",
                "{ref}",
                "--catalog",
                "{cat}",
                "--photo-id",
                "{pid}",
                "--model",
                "vgg",
                "--out",
                "{tmp}",
            ],
            "unknown model",
        ),
        (
            [
                "aoi",
                "--reference",
                "{ref}",
                "--catalog",
                "{cat}",
                "--photo-id",
                "{pid}",
                "--columns",
                "photo_id=ENTITY",
                "--out",
                "{tmp}",
            ],
            "ENTITY",
        ),
        (
            [
                "aoi",
                "--reference",
                "{ref}",
                "--catalog",
                "{cat}",
                "--photo-id",
                "nobody",
                "--out",
                "{tmp}",
            ],
            "nobody",
        ),
        (
            [
                "aoi",
                "--reference",
                "{corrupt}",
                "--catalog",
                "{cat}",
                "--photo-id",
                "{pid}",
                "--out",
                "{tmp}",
            ],
            "cannot read",
        ),
        (["synth", "--out", "{tmp}", "--preset", "tiny", "--dem", "nope.tif"], "not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(archive, first_id, tmp_path, args, message):
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00garbage" * 10)
    values = {
        "ref": archive / "reference.tif",
        "cat": archive / "catalog.gpkg",
        "pid": first_id,
        "tmp": tmp_path / "out",
        "corrupt": corrupt,
    }
    argv = [a.format(**values) for a in args]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line]
    assert lines[-1].startswith("aeroloc: error:") or "Error" in lines[-1]
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "result.json").exists()
