"""``aeroloc locate``: every output file, from a catalog or from bounds, then evaluated."""

from __future__ import annotations

import json

import rasterio

from cli_helpers import LOCATE_OUTPUTS, run

FAST = ["--buffer-m", "1500", "--stride", "0.5"]


def test_locate_from_catalog_writes_every_file_and_evaluates(
    archive, first_id, catalog_args, tmp_path
):
    out = tmp_path / "loc"
    result = run(
        "locate",
        *catalog_args(),
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
        "-v",
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
    assert f"aeroloc: locate {first_id}: AoI (" in result.stderr
