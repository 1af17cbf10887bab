"""The ``effnet-dense`` matcher: CNN feature correlation, coarse to fine."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from aeroloc.errors import InvalidInputError
from aeroloc.models import get_model
from aeroloc.models.effnet import stage_stride
from aeroloc.verify import fit_transform, get_matcher, list_matchers, verify_candidate
from aeroloc.verify.matching.dense import DenseMatcher


def _terrain(size: int, seed: int) -> np.ndarray:
    """Smooth random relief with sharp-edged 'outcrops': texture at many scales."""
    rng = np.random.default_rng(seed)
    out = np.zeros((size, size), np.float32)
    for cells, weight in ((4, 1.0), (12, 0.6), (40, 0.35), (120, 0.2)):
        noise = rng.standard_normal((cells, cells)).astype(np.float32)
        out += weight * cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    rock = (out > np.percentile(out, 70)).astype(np.float32)
    out = 0.6 * (out - out.min()) / (out.max() - out.min()) + 0.4 * rock
    return out


def _similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, -s, tx], [s, c, ty], [0.0, 0.0, 1.0]])


def _cut(target: np.ndarray, photo_to_target: np.ndarray, side: int) -> np.ndarray:
    """The photo whose pixel p lies at target pixel ``photo_to_target @ p`` (corner convention)."""
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    centred = np.linalg.inv(shift) @ photo_to_target @ shift
    return cv2.warpAffine(
        target, centred[:2], (side, side), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR
    )


@pytest.fixture(scope="module")
def matcher() -> DenseMatcher:
    return DenseMatcher()


def test_registered_and_the_default():
    from aeroloc.verify import DEFAULT_MATCHER

    assert "effnet-dense" in list_matchers() and DEFAULT_MATCHER == "effnet-dense"
    assert get_matcher("effnet-dense").name == "effnet-dense"


@pytest.mark.parametrize("blur", [0, 3])
def test_stage_outputs_have_the_stage_strides(blur):
    net = get_model("effnet-lite0-siamese", weights=None, blur_cells=blur).eval()
    x = torch.rand(1, 1, 128, 160)
    with torch.inference_mode():
        out = net.stage_outputs(x, (2, 3, 4))
        projected = net.proj(net.trunk(x))
    for stage, y in out.items():
        assert y.shape[2:] == (128 // stage_stride(stage), 160 // stage_stride(stage))
    # the last stage is the one the heatmap sees, projection included, blur not
    torch.testing.assert_close(out[4], projected)
    with pytest.raises(InvalidInputError, match="stages must be within"):
        net.stage_outputs(x, (5,))


def test_a_known_similarity_is_recovered_within_a_pixel(matcher):
    target = _terrain(600, seed=3)
    true = _similarity(1.04, 3.0, 131.3, 97.6)
    photo = _cut(target, true, 360)
    matches = matcher.match(photo, target)
    fit = fit_transform(matches)
    assert fit.ok and fit.n_inliers >= 30
    corners = np.array([[0, 0, 1], [360, 0, 1], [360, 360, 1], [0, 360, 1], [180, 180, 1]]).T
    err = np.hypot(*((fit.matrix @ corners) - (true @ corners))[:2])
    assert err.max() < 1.0, err


def test_a_rectangular_photo_is_recovered(matcher):
    target = _terrain(600, seed=4)
    true = _similarity(0.98, -1.5, 90.0, 160.0)
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    centred = np.linalg.inv(shift) @ true @ shift
    photo = cv2.warpAffine(
        target, centred[:2], (400, 260), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR
    )
    fit = fit_transform(matcher.match(photo, target))
    assert fit.ok
    centre = np.array([200.0, 130.0, 1.0])
    assert np.hypot(*(fit.matrix @ centre - true @ centre)[:2]) < 1.0


def test_inverted_shading_is_still_found(matcher):
    """The photo is the target's negative: keypoint descriptors disagree, features correlate."""
    target = _terrain(560, seed=5)
    true = _similarity(1.0, -2.0, 120.0, 140.0)
    photo = 1.0 - _cut(target, true, 320)
    check = verify_candidate(photo, target, matcher=matcher, expected_scale=1.0, rotations_deg=(0,))
    assert np.isfinite(check.photo_to_target).all()
    centre = np.array([160.0, 160.0, 1.0])
    err = np.hypot(*(check.photo_to_target @ centre - true @ centre)[:2])
    assert err < 2.0 and check.fit.n_inliers >= 15


def test_a_wrong_place_gives_few_inliers(matcher):
    target = _terrain(560, seed=5)
    elsewhere = _terrain(320, seed=99)
    check = verify_candidate(
        elsewhere, target, matcher=matcher, expected_scale=1.0, rotations_deg=(0,)
    )
    assert check.status != "accepted"


@pytest.mark.parametrize(
    "photo, target",
    [
        (np.full((300, 300), 0.5, np.float32), _terrain(500, 1)),  # no texture
        (_terrain(300, 1), np.full((500, 500), np.nan, np.float32)),  # all nodata
        (_terrain(40, 1), _terrain(500, 1)),  # photo far smaller than the target
    ],
)
def test_degenerate_input_gives_no_matches_or_a_rejection(matcher, photo, target):
    matches = matcher.match(photo, target)
    fit = fit_transform(matches)
    assert len(matches) == 0 or not fit.ok or fit.n_inliers < 15


def test_alignment_contrast_is_sharp_at_the_right_place_only(matcher):
    """The whole-photo correlation peaks at the true place and is flat elsewhere."""
    target = _terrain(600, seed=6)
    right = matcher.match(_cut(target, _similarity(1.0, 2.0, 140.0, 120.0), 340), target)
    wrong = matcher.match(_terrain(340, seed=98), target)
    assert right.evidence["alignment_contrast"] > 0.1
    assert wrong.evidence.get("alignment_contrast", 0.0) < 0.025
