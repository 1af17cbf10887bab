"""Rock-outcrop polygons of a synthetic archive against the true rock."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import rasterio


def test_rock_outcrops_have_add_like_agreement(archive: Path, truth: dict) -> None:
    rocks = gpd.read_file(archive / "rock_outcrop.gpkg")
    assert rocks.crs.to_epsg() == 3031 and len(rocks) > 5
    assert rocks.geometry.is_valid.all()
    with rasterio.open(archive / "reference.tif") as ref:
        bounds = ref.bounds
    minx, miny, maxx, maxy = rocks.total_bounds
    assert minx >= bounds.left - 50 and maxx <= bounds.right + 50
    assert miny >= bounds.bottom - 50 and maxy <= bounds.top + 50
    agreement = truth["rock_outcrop_agreement"]
    assert agreement["f1"] == pytest.approx(0.74, abs=0.06)
    assert agreement["precision"] < 0.9 and agreement["recall"] < 0.9


# --------------------------------------------------------------------------- truth consistency
