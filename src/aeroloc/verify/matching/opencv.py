"""OpenCV matchers: ``sift``, ``orb`` and ``akaze``.

Each detects keypoints off nodata (see :func:`~aeroloc.verify.matching.base.to_uint8`),
matches descriptors by brute force with Lowe's ratio test and a mutual
nearest-neighbour check. AKAZE needs OpenCV 4, or OpenCV 5 with the contrib
module; without it its builder raises ImportError (the registry then falls
back to SIFT).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from aeroloc.verify.matching.base import (
    MODEL_KINDS,
    FeatureCache,
    MatcherEntry,
    Matches,
    to_uint8,
)

# OpenCV 5's type stubs omit the detector factories; reach them untyped.
_cv2: Any = cv2


def _mutual_ratio_matches(
    desc_a: np.ndarray, desc_b: np.ndarray, *, norm: int, ratio: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``(ia, ib)`` and scores of mutual nearest neighbours passing the ratio test."""
    empty = (np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    if len(desc_a) < 2 or len(desc_b) < 2:
        return empty
    bf = cv2.BFMatcher(norm, crossCheck=False)
    knn_ab = bf.knnMatch(desc_a, desc_b, k=2)
    best_ba = {m[0].queryIdx: m[0].trainIdx for m in bf.knnMatch(desc_b, desc_a, k=2) if m}
    ia, ib, score = [], [], []
    for pair in knn_ab:
        if len(pair) < 2:
            continue
        first, second = pair
        if first.distance >= ratio * second.distance:
            continue
        if best_ba.get(first.trainIdx) != first.queryIdx:
            continue
        ia.append(first.queryIdx)
        ib.append(first.trainIdx)
        score.append(1.0 - first.distance / max(second.distance, 1e-9))
    if not ia:
        return empty
    return np.asarray(ia), np.asarray(ib), np.asarray(score, dtype=np.float64)


@dataclass(kw_only=True)
class OpenCVMatcher:
    """Detector/descriptor from OpenCV, brute-force matching, ratio test and mutual check.

    Attributes:
        name: registry name.
        create: builds the OpenCV ``Feature2D`` (called once per ``match``; they are cheap).
        norm: descriptor distance (``cv2.NORM_L2`` or ``cv2.NORM_HAMMING``).
        ratio: Lowe ratio; a match is kept when best < ratio x second best.
        fit_kinds: models the fit may try (all: keypoints are measured in the
            images as given).
    """

    name: str
    create: Callable[[], Any] = field(repr=False)
    norm: int = cv2.NORM_L2
    ratio: float = 0.8
    fit_kinds: tuple[str, ...] = MODEL_KINDS
    cache: FeatureCache = field(default_factory=FeatureCache, repr=False, compare=False)

    def match(self, a: np.ndarray, b: np.ndarray) -> Matches:
        """Match image a ``[Ha x Wa]`` against image b ``[Hb x Wb]``; NaN is nodata."""
        gray_a, mask_a = to_uint8(a, "image a")
        gray_b, mask_b = to_uint8(b, "image b")
        kp_a, desc_a = self._detect(gray_a, mask_a)
        kp_b, desc_b = self.cache.get(
            FeatureCache.key(gray_b, mask_b), lambda: self._detect(gray_b, mask_b)
        )
        if desc_a is None or desc_b is None:
            return Matches.empty(self.name)
        ia, ib, score = _mutual_ratio_matches(desc_a, desc_b, norm=self.norm, ratio=self.ratio)
        if len(ia) == 0:
            return Matches.empty(self.name)
        pts_a = np.array([kp_a[i].pt for i in ia], dtype=np.float64) + 0.5
        pts_b = np.array([kp_b[i].pt for i in ib], dtype=np.float64) + 0.5
        return Matches(xy_a=pts_a, xy_b=pts_b, scores=score, matcher=self.name)

    def _detect(self, gray: np.ndarray, mask: np.ndarray) -> tuple[Any, Any]:
        return self.create().detectAndCompute(gray, mask)


def _akaze_create() -> Any:
    # OpenCV 5 moved AKAZE to the contrib module xfeatures2d.
    if hasattr(cv2, "AKAZE_create"):
        return _cv2.AKAZE_create(threshold=0.0005)
    return _cv2.xfeatures2d.AKAZE_create(threshold=0.0005)


def akaze_available() -> bool:
    """True when this OpenCV build has AKAZE (OpenCV 4, or OpenCV 5 with contrib)."""
    contrib = getattr(cv2, "xfeatures2d", None)
    return hasattr(cv2, "AKAZE_create") or hasattr(contrib, "AKAZE_create")


def _sift() -> OpenCVMatcher:
    # Precise upscaling removes a quarter-pixel bias of the doubled first octave.
    return OpenCVMatcher(
        name="sift", create=lambda: _cv2.SIFT_create(nfeatures=4000, enable_precise_upscale=True)
    )


def _orb() -> OpenCVMatcher:
    return OpenCVMatcher(
        name="orb",
        create=lambda: _cv2.ORB_create(nfeatures=5000, fastThreshold=10),
        norm=cv2.NORM_HAMMING,
        ratio=0.85,
    )


def _akaze() -> OpenCVMatcher:
    if not akaze_available():
        raise ImportError("AKAZE needs opencv-contrib-python-headless with OpenCV 5")
    return OpenCVMatcher(name="akaze", create=_akaze_create, norm=cv2.NORM_HAMMING, ratio=0.85)


_OPENCV_PIP = "pip install opencv-python-headless"

#: Registry entries of this module (see :mod:`aeroloc.verify.matching`).
MATCHERS: dict[str, MatcherEntry] = {
    "sift": MatcherEntry(build=_sift, install=_OPENCV_PIP),
    "orb": MatcherEntry(build=_orb, install=_OPENCV_PIP),
    "akaze": MatcherEntry(
        build=_akaze,
        install="pip install opencv-contrib-python-headless (in place of opencv-python-headless)",
    ),
}
