"""Tests of aeroloc.preprocess.frame: the fiducial frame crop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aeroloc.errors import (
    DataQualityError,
    InvalidInputError,
)
from aeroloc.preprocess import (
    FrameConfig,
    FrameCrop,
    crop_frame,
    detect_frame,
)
from preprocess_helpers import make_scan, terrain


@pytest.mark.parametrize("work_size_px", [1024, 128, 100])
def test_detect_frame_finds_image_area(work_size_px: int) -> None:
    scan, truth = make_scan(np.random.default_rng(0))
    crop = detect_frame(scan, FrameConfig(inset_frac=0.0, work_size_px=work_size_px))
    assert crop.detected
    found = (crop.col0, crop.row0, crop.col1, crop.row1)
    assert np.abs(np.subtract(found, truth)).max() <= 1, (found, truth)


@pytest.mark.parametrize("side", ["left", "top", "right", "bottom"])
def test_detect_frame_stops_at_film_black_when_shadow_touches_the_border(side: str) -> None:
    """Deep shadow (darker than the film) and dark rock along one edge of the image."""
    rng = np.random.default_rng(3)
    scan, truth = make_scan(rng)
    col0, row0, col1, row1 = truth
    strip = 120  # px of shadow/rock inside the image along that edge
    area = {
        "left": (slice(row0, row1), slice(col0, col0 + strip)),
        "right": (slice(row0, row1), slice(col1 - strip, col1)),
        "top": (slice(row0, row0 + strip), slice(col0, col1)),
        "bottom": (slice(row1 - strip, row1), slice(col0, col1)),
    }[side]
    shape = scan[area].shape
    shadow = rng.choice([4, 30, 45], size=shape, p=[0.4, 0.3, 0.3]) + rng.normal(0, 2, shape)
    scan[area] = np.clip(shadow, 0, 255).astype(np.uint8)
    crop = detect_frame(scan, FrameConfig(inset_frac=0.0))
    assert crop.detected
    found = (crop.col0, crop.row0, crop.col1, crop.row1)
    assert np.abs(np.subtract(found, truth)).max() <= 2, (side, found, truth)


def test_detect_frame_skips_bright_scanner_margin() -> None:
    scan, truth = make_scan(np.random.default_rng(1), scanner_margin=12)
    crop = detect_frame(scan, FrameConfig(inset_frac=0.0))
    assert crop.detected
    assert np.abs(np.subtract((crop.col0, crop.row0, crop.col1, crop.row1), truth)).max() <= 1


def test_crop_frame_inset_and_mapping_back() -> None:
    scan, (c0, r0, c1, r1) = make_scan(np.random.default_rng(2))
    image, crop = crop_frame(scan, FrameConfig(inset_frac=0.01))
    inset_c, inset_r = math.ceil(0.01 * scan.shape[1]), math.ceil(0.01 * scan.shape[0])
    expected = (c0 + inset_c, r0 + inset_r, c1 - inset_c, r1 - inset_r)
    found = (crop.col0, crop.row0, crop.col1, crop.row1)
    assert np.abs(np.subtract(found, expected)).max() <= 1
    assert image.shape == (crop.height, crop.width)
    # No frame black left inside the crop.
    assert image.min() > 25
    cols, rows = crop.to_scan([0, 10], [0, 5])
    assert scan[int(rows[1]), int(cols[1])] == image[5, 10]
    assert crop.to_dict()["detected"] is True


def test_detect_frame_falls_back_to_margin_with_warning() -> None:
    photo = terrain(np.random.default_rng(3), 300, 400)  # already cropped: no frame
    with pytest.warns(UserWarning, match="frame detection failed"):
        crop = detect_frame(photo, FrameConfig(fallback_margin_frac=0.1))
    assert not crop.detected and crop.reason
    assert (crop.col0, crop.row0, crop.col1, crop.row1) == (40, 30, 360, 270)


def test_detect_frame_fallback_on_flat_scan() -> None:
    with pytest.warns(UserWarning, match="no contrast"):
        crop = detect_frame(np.full((100, 100), 128, dtype=np.uint8))
    assert not crop.detected


def test_frame_errors() -> None:
    with pytest.raises(InvalidInputError, match=r"one band \[H x W\], found shape \(2, 50, 50\)"):
        detect_frame(np.zeros((2, 50, 50), dtype=np.uint8))
    with pytest.raises(InvalidInputError, match="is empty"):
        detect_frame(np.zeros((0, 50), dtype=np.uint8))
    with pytest.raises(InvalidInputError, match="at least 16 px"):
        detect_frame(np.zeros((8, 50), dtype=np.uint8))
    with pytest.raises(DataQualityError, match="all nodata"):
        detect_frame(np.full((50, 50), np.nan, dtype=np.float32))
    with pytest.raises(InvalidInputError, match="must be a numpy array"):
        detect_frame([[1, 2], [3, 4]])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="dark_fraction"):
        FrameConfig(dark_fraction=1.5)
    with pytest.raises(InvalidInputError, match="work_size_px"):
        FrameConfig(work_size_px=10)
    with pytest.raises(InvalidInputError, match="crop columns"):
        FrameCrop(col0=5, row0=0, col1=5, row1=10, scan_width=10, scan_height=10, detected=True)
    crop = FrameCrop(col0=0, row0=0, col1=5, row1=5, scan_width=10, scan_height=10, detected=True)
    with pytest.raises(InvalidInputError, match="10 x 10 px"):
        crop.apply(np.zeros((12, 10)))
