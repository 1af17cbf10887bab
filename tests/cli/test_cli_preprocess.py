"""``aeroloc preprocess``: prepared rasters and the before/after preview."""

from __future__ import annotations

from cli_helpers import run


def test_preprocess_writes_rasters_and_preview(archive, catalog_args, tmp_path):
    result = run(
        "preprocess",
        *catalog_args(),
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
