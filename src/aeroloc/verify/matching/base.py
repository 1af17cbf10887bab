"""What every matcher shares: the :class:`Matches` it returns, the :class:`Matcher` protocol.

A matcher takes two 2-D gray arrays, photo (image a) and one candidate window
(image b), and returns :class:`Matches`, tentative point correspondences that
:func:`aeroloc.verify.fit.fit_transform` then filters geometrically. NaN marks
nodata in either image; no keypoint is detected on or next to it, so the
border of a rotated or clipped window never produces matches.

Coordinates follow the project convention: ``(col, row)`` with the origin at
the top-left *corner* of the top-left pixel, so the centre of pixel ``(r, c)``
is ``(c + 0.5, r + 0.5)``.

Each matcher module declares its registry entries (:class:`MatcherEntry`) in
a ``MATCHERS`` table; :mod:`aeroloc.verify.matching` gathers them.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import cv2
import numpy as np

from aeroloc.errors import InvalidInputError

FitKind = Literal["similarity", "affine", "homography"]
#: Transform models :func:`aeroloc.verify.fit.fit_transform` knows, simplest first.
MODEL_KINDS: tuple[FitKind, ...] = ("similarity", "affine", "homography")

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
            rules (``alignment_contrast``: see :mod:`aeroloc.verify.matching.dense`).
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
    """Anything with a ``name``, the ``fit_kinds`` it supports and ``match(a, b) -> Matches``.

    ``fit_kinds`` are the models (a subset of :data:`MODEL_KINDS`, simplest
    first) that :func:`aeroloc.verify.verify_candidate` may fit to the
    matcher's correspondences: keypoint matchers allow all of them; a matcher
    whose points are measured in a frame it has already warped may exclude
    the homography, which would fit their noise.
    """

    @property
    def name(self) -> str:
        """Registry name (reported in results)."""
        ...

    @property
    def fit_kinds(self) -> tuple[str, ...]:
        """Models the fit may try on these matches."""
        ...

    def match(self, a: np.ndarray, b: np.ndarray) -> Matches:
        """Match gray image a ``[Ha x Wa]`` against gray image b ``[Hb x Wb]``."""
        ...


@dataclass(frozen=True, kw_only=True)
class MatcherEntry:
    """How the registry builds one matcher.

    Attributes:
        build: returns the matcher; raises ImportError when its package (or
            its weights) is missing.
        install: the command shown when ``build`` raises ImportError.
    """

    build: Callable[[], Matcher]
    install: str


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
