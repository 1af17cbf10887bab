"""A known photo transform and a scan file shared by the tests of aeroloc.georef."""

from __future__ import annotations

import numpy as np
from affine import Affine

from aeroloc.files import write_geotiff
from aeroloc.geometry import photo_to_map
from aeroloc.georef import (
    PhotoTransform,
)

CRS = "EPSG:3031"
BOX = (10, 20, 110, 120)  # image area inside a 130 x 140 scan


def nadir(azimuth_deg: float = 30.0) -> PhotoTransform:
    """Photo whose 100 px image area (scan box BOX) covers 200 m around (1000, -2000)."""
    image_to_map = photo_to_map(
        center_x=1000.0, center_y=-2000.0, gsd_m=2.0, azimuth_deg=azimuth_deg,
        width_px=100, height_px=100,
    )  # fmt: skip
    return PhotoTransform.from_affine(image_to_map @ Affine.translation(-10, -20), CRS)


def scan_file(tmp_path):
    rng = np.random.default_rng(0)
    scan = rng.integers(0, 256, size=(140, 130), dtype=np.uint8)
    return write_geotiff(tmp_path / "photo.tif", scan), scan
