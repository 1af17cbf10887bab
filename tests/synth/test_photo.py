"""The scans of a synthetic archive: frame, image area, agreement with the truth epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from scipy.ndimage import map_coordinates

from aeroloc.synth import get_preset
from aeroloc.synth.photo import frame_layout


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def test_photos_are_unreferenced_scans_with_a_frame(archive: Path, truth: dict) -> None:
    n = get_preset("tiny").image_px
    border, strip = frame_layout(n)
    for photo in truth["photos"]:
        path = archive / photo["path"]
        with rasterio.open(path) as ds:
            assert ds.crs is None and ds.transform == Affine.identity()
            assert (ds.count, ds.dtypes[0]) == (1, "uint8")
            scan = ds.read(1)
        col0, row0, col1, row1 = photo["image_box_px"]
        assert (col0, row0, col1 - col0, row1 - row0) == (strip, border, n, n)
        assert scan.shape == (n + 2 * border, strip + n + border)
        assert list(photo["scan_size_px"]) == [scan.shape[1], scan.shape[0]]
        # dark film border around a brighter image area, bright marks inside the border
        assert np.median(scan[: border // 3, col0:col1]) < 40
        assert np.percentile(scan[row0:row1, col0:col1], 95) > 150
        assert scan[:border, :].max() > 180


def _photo_vs_epoch(archive: Path, photo: dict, shift_m: float = 0.0) -> float:
    """Pearson r between the photo's image area at ~10 m and truth_epoch.tif through the truth."""
    scan = _read(archive / photo["path"])[0].astype(np.float64)
    col0, row0, col1, _ = photo["image_box_px"]
    k = round(10.0 / photo["gsd_m"])
    n = (col1 - col0) // k
    blocks = scan[row0 : row0 + n * k, col0 : col0 + n * k].reshape(n, k, n, k).mean(axis=(1, 3))
    to_map = Affine(*photo["pixel_to_map"])
    cc, rr = np.meshgrid(col0 + (np.arange(n) + 0.5) * k, row0 + (np.arange(n) + 0.5) * k)
    x, y = to_map @ (cc.ravel(), rr.ravel())
    with rasterio.open(archive / "truth_epoch.tif") as ds:
        epoch = ds.read(1).astype(np.float64)
        inv = ~ds.transform
    cols, rows = inv @ (np.asarray(x) + shift_m, np.asarray(y) + shift_m)
    sampled = map_coordinates(epoch, [rows - 0.5, cols - 0.5], order=1, mode="nearest")
    return float(np.corrcoef(blocks.ravel(), sampled)[0, 1])


def test_photo_matches_truth_epoch_through_the_truth(archive: Path, truth: dict) -> None:
    for photo in truth["photos"]:
        r_true = _photo_vs_epoch(archive, photo)
        r_shifted = _photo_vs_epoch(archive, photo, shift_m=700.0)
        assert r_true > 0.85, (photo["photo_id"], r_true)
        assert r_shifted < r_true - 0.3, (photo["photo_id"], r_true, r_shifted)


# --------------------------------------------------------------------------- determinism
