"""Synthetic scans, AoI grids and rock polygons shared by the tests of aeroloc.preprocess."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from scipy import ndimage

CRS_3031 = "EPSG:3031"


def terrain(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Snow (~175) with rock (~55) and shadow (~110) patches, uint8 ``[H x W]``."""
    field = ndimage.gaussian_filter(rng.normal(size=(height, width)), 6)
    field /= field.std()
    img = np.full((height, width), 175.0)
    img[field < -1.0] = 110.0
    img[field < -1.6] = 55.0
    img += rng.normal(0, 6, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _cross(img: np.ndarray, col: int, row: int, arm: int = 10, value: int = 235) -> None:
    img[row - 1 : row + 1, col - arm : col + arm + 1] = value
    img[row - arm : row + arm + 1, col - 1 : col + 1] = value


def make_scan(
    rng: np.random.Generator, *, scanner_margin: int = 0
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A synthetic TMA scan: dark frame, fiducial crosses, data strip with a dial.

    Returns the scan (uint8) and the true image box (col0, row0, col1, row1).
    """
    height, width = 520, 560
    left, top, right, bottom = 80, 30, 30, 36  # the data strip is on the left
    scan = np.clip(rng.normal(12, 3, size=(height, width)), 0, 255).astype(np.uint8)
    col0, row0, col1, row1 = left, top, width - right, height - bottom
    scan[row0:row1, col0:col1] = terrain(rng, row1 - row0, col1 - col0)
    # Fiducial crosses at the corners and mid-sides, in the frame.
    for col, row in [
        (col0 - 15, row0 - 15),
        (col1 + 15, row0 - 15),
        (col0 - 15, row1 + 18),
        (col1 + 15, row1 + 18),
        ((col0 + col1) // 2, row0 // 2),
        ((col0 + col1) // 2, (row1 + height) // 2),
        (col1 + 15, (row0 + row1) // 2),
        (col0 - 15, (row0 + row1) // 2),
    ]:
        _cross(scan, col, row)
    # Data strip: an altimeter dial (bright face, dark needle) and frame-number digits.
    yy, xx = np.mgrid[0:height, 0:width]
    face = (xx - 38) ** 2 + (yy - 150) ** 2 <= 26**2
    scan[face] = 220
    scan[150:152, 38:60] = 20
    for k in range(4):
        scan[300:318, 14 + 12 * k : 22 + 12 * k] = 230
    if scanner_margin:
        scan = np.pad(scan, scanner_margin, constant_values=200)
        m = scanner_margin
        return scan, (col0 + m, row0 + m, col1 + m, row1 + m)
    return scan, (col0, row0, col1, row1)


def mixture_photos(rng: np.random.Generator, n: int = 4) -> list[np.ndarray]:
    """Photos drawn from rock (55) / shadow (110) / snow (180) with unequal weights."""
    means, sds, weights = np.array([55, 110, 180]), np.array([8, 12, 15]), [0.12, 0.25, 0.63]
    photos = []
    for _ in range(n):
        k = rng.choice(3, size=(200, 200), p=weights)
        photos.append(np.clip(np.rint(rng.normal(means[k], sds[k])), 0, 255).astype(np.uint8))
    return photos


def aoi_grid() -> tuple[Affine, tuple[int, int]]:
    return Affine(10.0, 0.0, 100_000.0, 0.0, -10.0, -1_200_000.0), (60, 80)


def rock_gdf(crs: str = CRS_3031) -> gpd.GeoDataFrame:
    transform, _ = aoi_grid()
    x0, y0 = transform.c, transform.f
    big = shapely.box(x0 + 200, y0 - 300, x0 + 400, y0 - 150)  # cols 20-40, rows 15-30
    speck = shapely.box(x0 + 600, y0 - 100, x0 + 610, y0 - 90)  # one pixel: opened away
    return gpd.GeoDataFrame({"id": [1, 2]}, geometry=[big, speck], crs=crs)
