"""A minimal archive on disk (one photo, tiny reference) for tests of the archive contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine

from aeroloc.files import write_geotiff
from aeroloc.io.archive import (
    CATALOG_CSV_FILE,
    REFERENCE_FILE,
    TruthRecord,
    photo_file,
    write_truth,
)

CRS = "EPSG:32719"


def write_minimal_archive(root: Path, *, test_only: bool = False) -> Path:
    """Write a one-photo archive (reference, scan, catalog.csv, truth.json) into ``root``."""
    rng = np.random.default_rng(0)
    x0, y0 = 600_000.0, 4_700_000.0
    write_geotiff(
        root / REFERENCE_FILE,
        rng.integers(0, 255, (64, 64), dtype=np.uint8),
        transform=Affine(10.0, 0.0, x0, 0.0, -10.0, y0),
        crs=CRS,
    )
    write_geotiff(root / photo_file("p1"), rng.integers(0, 255, (40, 40), dtype=np.uint8))
    cx, cy = x0 + 320.0, y0 - 320.0
    (root / CATALOG_CSV_FILE).write_text(
        "photo_id,path,x,y,altitude_m,focal_length_mm,azimuth_deg\n"
        f"p1,{photo_file('p1')},{cx + 20},{cy - 10},200.0,152.4,5.0\n"
    )
    write_truth(
        root,
        [TruthRecord(photo_id="p1", center_x=cx, center_y=cy, path=photo_file("p1"))],
        crs=CRS,
        test_only=test_only,
    )
    return root
