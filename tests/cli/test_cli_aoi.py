"""``aeroloc aoi``: the cropped reference and its polygons."""

from __future__ import annotations

import rasterio

from cli_helpers import run


def test_aoi_writes_raster_and_polygons(catalog_args, tmp_path):
    result = run("aoi", *catalog_args("catalog.csv"), "--buffer-m", "1000", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "aoi.tif") as ds:
        assert ds.crs.to_epsg() == 3031 and ds.count == 3
    assert (tmp_path / "aoi.gpkg").is_file()
