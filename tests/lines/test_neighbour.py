"""Known-answer tests of placing a photo through a located neighbour."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from affine import Affine
from shapely.geometry import Polygon

from aeroloc.errors import ConfigError, InvalidInputError
from aeroloc.georef.transform import PhotoTransform, affine_matrix
from aeroloc.io.archive import Truth
from aeroloc.lines.neighbour import (
    NeighbourConfig,
    expected_window,
    match_neighbour,
    match_neighbour_files,
)
from aeroloc.verify.matching import get_matcher
from lines_helpers import iou, truth_transform

CRS = "EPSG:3031"
BORDER = 20  # dark film border around each image area
SIDE = 600


def _texture(size: int = 1400) -> np.ndarray:
    """``[size x size]`` uint8 multi-scale noise (a terrain-like texture)."""
    rng = np.random.default_rng(7)
    out = np.zeros((size, size), np.float32)
    for octave in (4, 8, 16, 32, 64):
        small = rng.normal(0, 1, (size // octave + 2, size // octave + 2)).astype(np.float32)
        out += octave**0.6 * cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    out = (out - out.min()) / (out.max() - out.min())
    return (40 + 200 * out).astype(np.uint8)


def _scan(texture: np.ndarray, scan_to_texture: np.ndarray) -> np.ndarray:
    """A scan: the image area (scan px → texture px: ``scan_to_texture``) in a dark border."""
    image_to_texture = scan_to_texture @ affine_matrix(Affine.translation(BORDER, BORDER))
    inv = np.linalg.inv(image_to_texture)
    half = np.array([[1.0, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    centred = np.linalg.inv(half) @ inv @ half
    image = cv2.warpAffine(texture, centred[:2], (SIDE, SIDE), flags=cv2.INTER_LINEAR)
    scan = np.full((SIDE + 2 * BORDER, SIDE + 2 * BORDER), 5, np.uint8)
    scan[BORDER:-BORDER, BORDER:-BORDER] = image
    return scan


BOX = (BORDER, BORDER, BORDER + SIDE, BORDER + SIDE)
# texture px -> map: 2 m pixels, north-up
TEXTURE_TO_MAP = affine_matrix(Affine(2.0, 0, 400_000.0, 0, -2.0, -990_000.0))


def _pose(col: float, row: float, angle_deg: float) -> np.ndarray:
    """Scan px → texture px: image area at ``(col, row)`` of the texture, turned by ``angle``."""
    to_image = affine_matrix(Affine.translation(-BORDER, -BORDER))
    turn = affine_matrix(Affine.translation(col, row) @ Affine.rotation(angle_deg))
    return turn @ to_image


def _transform(scan_to_texture: np.ndarray) -> PhotoTransform:
    return PhotoTransform(matrix=TEXTURE_TO_MAP @ scan_to_texture, kind="similarity", crs=CRS)


def test_two_overlapping_crops_chain_to_the_true_footprint() -> None:
    texture = _texture()
    nb_pose = _pose(300.0, 100.0, 0.0)
    ph_pose = _pose(540.0, 120.0, 4.0)  # 240 px (40 %) along, turned 4°: ~60 % overlap
    result = match_neighbour(
        _scan(texture, ph_pose),
        BOX,
        _scan(texture, nb_pose),
        BOX,
        _transform(nb_pose),
        neighbour_sigma_m=12.0,
        photo_id="b",
        neighbour_id="a",
    )
    assert result.status == "accepted", result.reasons
    assert result.method == "neighbour"
    truth = _transform(ph_pose).footprint(BOX)
    assert result.footprint is not None
    assert iou(result.footprint, truth) > 0.99
    assert result.footprint.centroid.distance(truth.centroid) < 1.0
    assert 0.5 < result.overlap < 0.65
    assert result.rotation_deg == pytest.approx(4.0, abs=0.1)
    assert result.scale_ratio == pytest.approx(1.0, abs=0.01)
    assert result.n_inliers >= 100
    assert result.sigma_m == pytest.approx(12.0, abs=2.0)
    located = result.located()
    assert located.method == "neighbour" and located.gsd_m == pytest.approx(2.0, abs=0.02)
    window = expected_window(result.transform, BOX, margin_m=50.0)  # type: ignore[arg-type]
    tx0, ty0, tx1, ty1 = truth.bounds
    assert window[0] < tx0 and window[1] < ty0 and window[2] > tx1 and window[3] > ty1
    assert window[2] - window[0] == pytest.approx(tx1 - tx0 + 100.0, abs=2.0)


def test_a_far_frame_is_rejected_for_its_overlap_and_no_overlap_gives_no_fit() -> None:
    texture = _texture()
    nb_pose = _pose(100.0, 200.0, 0.0)
    far = _pose(580.0, 200.0, 0.0)  # 80 % along: 20 % overlap
    result = match_neighbour(
        _scan(texture, far),
        BOX,
        _scan(texture, nb_pose),
        BOX,
        _transform(nb_pose),
        neighbour_sigma_m=10.0,
    )
    assert result.status == "rejected"
    assert any("overlap with the neighbour 20%" in r for r in result.reasons), result.reasons
    with pytest.raises(InvalidInputError, match="not placed by its neighbour"):
        result.located()
    # a photo from elsewhere: nothing matches
    other = np.random.default_rng(1).integers(0, 255, (SIDE + 2 * BORDER,) * 2, dtype=np.uint8)
    none = match_neighbour(
        other, BOX, _scan(texture, nb_pose), BOX, _transform(nb_pose), neighbour_sigma_m=10.0
    )
    assert none.status == "rejected" and none.footprint is None
    assert none.reasons[0].startswith("no photo-to-neighbour fit") or "inliers" in none.reasons[0]


def test_consecutive_synthetic_frames_chain_within_metres_of_the_truth(
    line_archive: Path, line_truth: Truth
) -> None:
    """Frame 2 through frame 1's true transform, then frame 3 through frame 2's chained one."""
    recs = sorted(line_truth.photos.values(), key=lambda r: r.frame or 0)
    sift = get_matcher("sift")
    config = NeighbourConfig(work_px=600)  # the 1000 px image areas at half size: 4x faster
    previous = recs[0]
    transform = truth_transform(previous, line_truth.crs)
    sigma = 10.0
    for rec in recs[1:]:
        assert rec.image_box_px is not None and rec.footprint is not None
        result = match_neighbour_files(
            line_archive / f"photos/{rec.photo_id}.tif",
            line_archive / f"photos/{previous.photo_id}.tif",
            transform,
            neighbour_sigma_m=sigma,
            neighbour_box=previous.image_box_px,
            photo_box=rec.image_box_px,  # the truth's box, to compare like with like
            config=config,
            matcher=sift,
        )
        assert result.status == "accepted", result.reasons
        assert result.photo_id == rec.photo_id and result.neighbour_id == previous.photo_id
        truth = Polygon(rec.footprint)
        assert result.footprint is not None
        assert iou(result.footprint, truth) > 0.99
        centre_err = result.footprint.centroid.distance(truth.centroid)
        assert centre_err < 5.0
        assert 0.5 < result.overlap < 0.7  # the archive's 60 % forward overlap
        assert result.sigma_m > sigma
        assert result.transform is not None
        previous, transform, sigma = rec, result.transform, result.sigma_m


def test_config_and_input_errors() -> None:
    with pytest.raises(ConfigError, match="unknown matcher"):
        NeighbourConfig(matcher="nope")
    with pytest.raises(ConfigError, match="overlap_range"):
        NeighbourConfig(overlap_range=(0.8, 0.2))
    with pytest.raises(ConfigError, match="kinds"):
        NeighbourConfig(kinds=("projective",))
    scan = np.zeros((100, 100), np.uint8)
    t = _transform(_pose(0, 0, 0))
    with pytest.raises(InvalidInputError, match="does not fit"):
        match_neighbour(scan, (0, 0, 200, 50), scan, (0, 0, 50, 50), t, neighbour_sigma_m=1.0)
    with pytest.raises(InvalidInputError, match="neighbour_sigma_m"):
        match_neighbour(scan, (0, 0, 50, 50), scan, (0, 0, 50, 50), t, neighbour_sigma_m=0.0)
    with pytest.raises(InvalidInputError, match="margin_m"):
        expected_window(t, BOX, margin_m=-1.0)
    assert math.isfinite(expected_window(t, BOX)[0])
