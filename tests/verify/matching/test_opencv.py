"""OpenCV matchers: nodata is ignored, flat images give nothing, target features are cached."""

from __future__ import annotations

import numpy as np
import pytest

from aeroloc.errors import InvalidInputError
from aeroloc.verify import Matches, fit_transform, get_matcher
from aeroloc.verify.matching import MODEL_KINDS, to_uint8
from aeroloc.verify.matching.opencv import OpenCVMatcher, akaze_available
from matching_images import H_TRUE, grid_rmse, photo, warp


def test_nan_in_target_is_ignored() -> None:
    a = photo()
    b = warp(a, H_TRUE, (300, 300)).astype(np.float32)
    b[:, 150:170] = np.nan  # a nodata stripe through the middle
    matches = get_matcher("sift").match(a, b)
    # No keypoint on or next to nodata.
    assert not np.any((matches.xy_b[:, 0] > 146) & (matches.xy_b[:, 0] < 174))
    fit = fit_transform(matches)
    assert grid_rmse(fit.matrix, H_TRUE) < 1.0


def test_flat_and_all_nodata_images_give_no_matches() -> None:
    flat = np.full((128, 128), 90, np.uint8)
    assert len(get_matcher("sift").match(flat, photo())) == 0
    assert len(get_matcher("orb").match(photo(), np.full((64, 64), np.nan))) == 0
    gray, mask = to_uint8(np.full((8, 8), np.nan))
    assert gray.dtype == np.uint8 and not mask.any()


def test_matches_validate_lengths_and_images_must_be_2d() -> None:
    with pytest.raises(InvalidInputError, match="equal lengths"):
        Matches(xy_a=np.zeros((3, 2)), xy_b=np.zeros((2, 2)), scores=np.zeros(3), matcher="x")
    with pytest.raises(InvalidInputError, match=r"2-D gray image \[H x W\], got shape \(4, 4, 3\)"):
        get_matcher("sift").match(np.zeros((4, 4, 3)), photo())


@pytest.mark.parametrize("name", ["sift", "orb", "akaze"])
def test_keypoint_matchers_may_fit_every_model(name: str) -> None:
    if name == "akaze" and not akaze_available():
        pytest.skip("this OpenCV build has no AKAZE")
    matcher = get_matcher(name)
    assert isinstance(matcher, OpenCVMatcher)
    assert matcher.fit_kinds == MODEL_KINDS


def test_target_features_are_computed_once_for_repeated_targets() -> None:
    matcher = get_matcher("orb")
    calls: list[tuple[int, ...]] = []
    detect = matcher._detect  # type: ignore[attr-defined]

    def counting(gray: np.ndarray, mask: np.ndarray) -> object:
        calls.append(gray.shape)
        return detect(gray, mask)

    matcher._detect = counting  # type: ignore[attr-defined]
    target = warp(photo(), H_TRUE, (300, 300)).astype(np.float32)
    first = matcher.match(photo(), target)
    second = matcher.match(np.rot90(photo()).copy(), target)
    assert calls == [(256, 256), (300, 300), (256, 256)]
    assert len(first) > 0 and len(second) > 0
