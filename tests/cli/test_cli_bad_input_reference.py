"""A float reference with NaN/Inf holes: nodata, and the photo is still found (known answer)."""

from __future__ import annotations

import json

import numpy as np
import rasterio

from aeroloc.files import write_geotiff
from cli_helpers import run


def test_a_reference_sprinkled_with_nan_and_inf_still_locates_the_photo(
    archive, first_id, tmp_path
):
    with rasterio.open(archive / "reference.tif") as ds:
        data = ds.read().astype(np.float32)
        transform, crs = ds.transform, ds.crs
    rng = np.random.default_rng(1)
    data[:, rng.random(data.shape[1:]) < 0.01] = np.nan
    data[:, rng.random(data.shape[1:]) < 0.01] = np.inf
    data[:, 5, 5] = -np.inf
    holes = tmp_path / "holes.tif"
    write_geotiff(holes, data, transform=transform, crs=crs)
    out = tmp_path / "out"
    result = run(
        "-q", "locate", "--reference", holes, "--catalog", archive / "catalog.gpkg",
        "--photo-id", first_id, "--buffer-m", 1500, "--max-candidates", 3, "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    best = json.loads((out / "result.json").read_text())["best"]
    truth = {p["photo_id"]: p for p in json.loads((archive / "truth.json").read_text())["photos"]}
    true = truth[first_id]
    assert best["status"] == "accepted", best.get("reasons")
    assert np.hypot(best["x"] - true["center_x"], best["y"] - true["center_y"]) < 30.0
