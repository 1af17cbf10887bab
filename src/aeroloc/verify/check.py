"""Verify one candidate: match the photo against a target window at several rotations.

The photo is first resampled to about the target's pixel size (matchers need
similar scales), then rotated by each angle tried (learned matchers fail past
about 45° of relative rotation), matched and fitted. The rotation with the best
supported fit wins, and its transform is mapped back to the pixels of the
photo as given, so :attr:`CandidateCheck.photo_to_target` already includes the
resampling and the rotation.

Angles are clockwise as displayed (rows pointing down): a photo whose top edge
points along azimuth ``az`` in a north-up target is aligned by ``az``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from aeroloc.errors import InvalidInputError
from aeroloc.verify.accept import (
    STATUS_ORDER,
    AcceptanceRules,
    Assessment,
    Calibration,
    assess,
    check_prior,
)
from aeroloc.verify.fit import FitResult, fit_transform, project
from aeroloc.verify.matching.base import Matcher, check_gray

#: Resample the photo when the expected scale differs from 1 by more than this factor.
RESAMPLE_ABOVE = 1.5


@dataclass(frozen=True, kw_only=True)
class CandidateCheck:
    """Outcome of verifying one candidate window.

    Attributes:
        fit: the winning fit; its ``matrix`` and ``bbox_a`` are in photo pixels
            as given (``fit.matrix`` equals ``photo_to_target``), its
            ``inliers`` index the matches made at ``rotation_deg``.
        assessment: verdict on ``fit`` against the caller's ``expected_scale``.
        rotation_deg: clockwise rotation of the photo that won.
        photo_to_target: ``[3 x 3]`` photo pixels (as given) → target pixels,
            rotation and resampling included; all NaN when no fit. Both in
            pixel-corner coordinates, so the target window's affine transform
            composed with it maps photo pixels to map coordinates.
        n_matches: tentative matches at the winning rotation.
        seconds: wall time of the whole check.
        photo_resample: scale factor applied to the photo before matching.
        rotations_tried: angles tried, in order (early stop may skip some).
        inliers_photo: ``[K x 2]`` inlier positions in photo pixels (as given).
        inliers_target: ``[K x 2]`` matching positions in target pixels.
        matcher: name of the matcher used.
    """

    fit: FitResult
    assessment: Assessment
    rotation_deg: float
    photo_to_target: np.ndarray
    n_matches: int
    seconds: float
    photo_resample: float = 1.0
    rotations_tried: tuple[float, ...] = ()
    inliers_photo: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    inliers_target: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    matcher: str = ""

    @property
    def status(self) -> str:
        """Shortcut for ``assessment.status``."""
        return self.assessment.status


@dataclass(frozen=True, kw_only=True)
class _Try:
    angle: float
    fit: FitResult
    verdict: Assessment
    photo_to_matched: np.ndarray
    xy_a: np.ndarray
    xy_b: np.ndarray
    n_matches: int
    evidence: dict[str, float]

    def rank(self) -> tuple[int, int, float]:
        # A plausible fit beats a rejected one with more inliers (e.g. absurd scale).
        rmse = self.fit.rmse_px if self.fit.ok else math.inf
        return (STATUS_ORDER[self.verdict.status], self.fit.n_inliers, -rmse)


def rotation_matrix(angle_deg: float, shape: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Clockwise rotation about the image centre onto a canvas that holds the whole image.

    Args:
        angle_deg: clockwise angle as displayed.
        shape: ``(H, W)`` of the image.

    Returns:
        ``[3 x 3]`` matrix (pixel-corner coordinates, old → new) and the new ``(H, W)``.
    """
    h, w = shape
    theta = math.radians(angle_deg)
    c, s = math.cos(theta), math.sin(theta)
    quarter = angle_deg / 90.0
    if abs(quarter - round(quarter)) < 1e-9:
        c, s = round(c), round(s)
        new_w, new_h = (h, w) if round(quarter) % 2 else (w, h)
    else:
        new_w = math.ceil(abs(c) * w + abs(s) * h - 1e-6)
        new_h = math.ceil(abs(s) * w + abs(c) * h - 1e-6)
    to_origin = np.array([[1.0, 0.0, -w / 2], [0.0, 1.0, -h / 2], [0.0, 0.0, 1.0]])
    rotate = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    to_centre = np.array([[1.0, 0.0, new_w / 2], [0.0, 1.0, new_h / 2], [0.0, 0.0, 1.0]])
    return to_centre @ rotate @ to_origin, (new_h, new_w)


def rotate_image(image: np.ndarray, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate ``image`` ``[H x W]`` clockwise; padding is NaN.

    Returns:
        The rotated float32 image and the ``[3 x 3]`` matrix old → new pixels.
    """
    matrix, (new_h, new_w) = rotation_matrix(angle_deg, image.shape[:2])
    quarter = angle_deg / 90.0
    data = image.astype(np.float32, copy=False)
    if abs(quarter - round(quarter)) < 1e-9:
        return np.ascontiguousarray(np.rot90(data, k=-round(quarter) % 4)), matrix
    # OpenCV places pixel centres at integers; shift the corner-based matrix.
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    centred = np.linalg.inv(shift) @ matrix @ shift
    out = cv2.warpAffine(
        data,
        centred[:2],
        (new_w, new_h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float("nan"),
    )
    return out, matrix


def resample(image: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Resize ``image`` ``[H x W]`` by ``factor``; return it and the old → new ``[3 x 3]``."""
    h, w = image.shape
    new_w, new_h = max(8, round(w * factor)), max(8, round(h * factor))
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    out = cv2.resize(image.astype(np.float32, copy=False), (new_w, new_h), interpolation=interp)
    return out, np.diag([new_w / w, new_h / h, 1.0])


def _angles(rotations_deg: Sequence[float], extra: float | None) -> tuple[float, ...]:
    out: list[float] = []
    for angle in ([extra] if extra is not None else []) + [float(a) for a in rotations_deg]:
        if not math.isfinite(angle):
            raise InvalidInputError(f"rotation angles must be finite, got {angle}")
        norm = angle % 360.0
        if not any(min(abs(norm - o), 360 - abs(norm - o)) < 1e-6 for o in out):
            out.append(norm)
    if not out:
        raise InvalidInputError("give at least one rotation angle to try")
    return tuple(out)


def inlier_hull_share(points_xy: np.ndarray, shape_hw: tuple[int, ...]) -> float:
    """Share (0–1) of an ``[H x W]`` photo inside the convex hull of ``[N x 2]`` points.

    Fewer than three points, or points on one line, cover nothing (0).
    """
    pts = np.asarray(points_xy, dtype=np.float32).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    area_px = float(shape_hw[0]) * float(shape_hw[1])
    if len(pts) < 3 or area_px <= 0:
        return 0.0
    hull = cv2.convexHull(pts)
    return min(1.0, float(cv2.contourArea(hull)) / area_px)


def _scaled_photo(
    photo: np.ndarray, expected_scale: float | None
) -> tuple[np.ndarray, np.ndarray, float, float | None]:
    """The photo resampled to about the target's pixel size when the expected
    scale is far from 1: ``(image, [3 x 3] photo → image, factor, scale left)``."""
    factor = 1.0
    scaled = photo.astype(np.float32, copy=False)
    to_scaled = np.eye(3)
    if expected_scale is not None and max(expected_scale, 1 / expected_scale) > RESAMPLE_ABOVE:
        factor = float(expected_scale)
        scaled, to_scaled = resample(scaled, factor)
    residual_scale = None
    if expected_scale is not None:
        residual_scale = expected_scale / math.sqrt(to_scaled[0, 0] * to_scaled[1, 1])
    return scaled, to_scaled, factor, residual_scale


def _in_photo_pixels(best: _Try) -> tuple[FitResult, np.ndarray, np.ndarray]:
    """The winning fit in the pixels of the photo as given: ``(fit, [3 x 3] photo →
    target, [K x 2] inliers)``."""
    photo_to_target = best.fit.matrix @ best.photo_to_matched
    photo_to_target = photo_to_target / photo_to_target[2, 2]
    inliers_photo = project(np.linalg.inv(best.photo_to_matched), best.xy_a)
    bbox = (
        float(inliers_photo[:, 0].min()),
        float(inliers_photo[:, 1].min()),
        float(inliers_photo[:, 0].max()),
        float(inliers_photo[:, 1].max()),
    )
    return replace(best.fit, matrix=photo_to_target, bbox_a=bbox), photo_to_target, inliers_photo


def verify_candidate(
    photo: np.ndarray,
    target: np.ndarray,
    *,
    matcher: Matcher,
    expected_scale: float | None,
    rotations_deg: Sequence[float] = (0, 90, 180, 270),
    extra_rotation_deg: float | None = None,
    calibration: Calibration | None = None,
    scale_tolerance: float = 2.0,
    threshold_px: float = 3.0,
    early_stop_p: float | None = 0.9,
    seed: int = 0,
    rules: AcceptanceRules | None = None,
    prior_rotation_deg: float | None = None,
    prior_scale: float | None = None,
) -> CandidateCheck:
    """Match ``photo`` against ``target`` at several rotations and keep the best fit.

    Args:
        photo: ``[Hp x Wp]`` gray photo (uint8 or float; NaN = nodata).
        target: ``[Ht x Wt]`` gray candidate window (NaN = nodata).
        matcher: from :func:`aeroloc.verify.get_matcher`.
        expected_scale: expected target pixels per photo pixel; when far from 1
            the photo is resampled to about the target's pixel size first.
        rotations_deg: clockwise angles to try.
        extra_rotation_deg: tried first (e.g. the catalog heading).
        calibration: for ``p_correct`` (None: the packaged or default one).
        scale_tolerance: see :func:`aeroloc.verify.assess`.
        threshold_px: inlier threshold in target pixels.
        early_stop_p: stop trying angles once one is accepted with at least this
            ``p_correct`` (None: always try all).
        seed: for the robust fit.
        rules: acceptance thresholds (None: :class:`~aeroloc.verify.AcceptanceRules`
            defaults, which expect a near-vertical photo against an orthoimage).
        prior_rotation_deg, prior_scale: the rotation (clockwise) and scale
            (target px per photo px) the catalog implies; when given, the
            winning fit must agree with them (:func:`~aeroloc.verify.accept.check_prior`).

    Raises:
        InvalidInputError: an image is not 2-D, or an argument is out of range.
    """
    start = time.perf_counter()
    photo = check_gray(photo, "photo")
    target = check_gray(target, "target")
    if expected_scale is not None and not (math.isfinite(expected_scale) and expected_scale > 0):
        raise InvalidInputError(f"expected_scale must be > 0 or None, got {expected_scale}")
    angles = _angles(rotations_deg, extra_rotation_deg)
    scaled, to_scaled, factor, residual_scale = _scaled_photo(photo, expected_scale)

    # A matcher may limit the models (effnet-dense measures its ties in a
    # frame already warped by a similarity: a homography would fit its noise).
    kinds = tuple(matcher.fit_kinds)

    def judge(fit: FitResult, scale: float | None, evidence: Mapping[str, float]) -> Assessment:
        return assess(
            fit,
            expected_scale=scale,
            scale_tolerance=scale_tolerance,
            calibration=calibration,
            rules=rules,
            evidence=evidence,
        )

    tries: list[_Try] = []
    for angle in angles:
        rotated, to_rotated = rotate_image(scaled, angle)
        matches = matcher.match(rotated, target)
        fit = fit_transform(matches, threshold_px=threshold_px, seed=seed, kinds=kinds)
        photo_to_matched = to_rotated @ to_scaled
        evidence = {
            **matches.evidence,
            "inlier_hull_share": inlier_hull_share(
                project(np.linalg.inv(photo_to_matched), matches.xy_a[fit.inliers]), photo.shape
            ),
        }
        verdict = judge(fit, residual_scale, evidence)
        tries.append(
            _Try(
                angle=angle,
                fit=fit,
                verdict=verdict,
                photo_to_matched=photo_to_matched,
                xy_a=matches.xy_a[fit.inliers],
                xy_b=matches.xy_b[fit.inliers],
                n_matches=len(matches),
                evidence=evidence,
            )
        )
        if (
            early_stop_p is not None
            and verdict.status == "accepted"
            and verdict.p_correct >= early_stop_p
        ):
            break
    best = max(tries, key=_Try.rank)
    fit, verdict = best.fit, best.verdict
    if fit.ok:
        # Judge the scale against the caller's expected_scale (shape features
        # are unchanged by the similarity that resampling and rotation add).
        fit, photo_to_target, inliers_photo = _in_photo_pixels(best)
        verdict = judge(fit, expected_scale, best.evidence)
        if prior_rotation_deg is not None or prior_scale is not None:
            verdict = check_prior(
                verdict,
                fit,
                prior_rotation_deg=prior_rotation_deg or 0.0,
                prior_scale=1.0 if prior_scale is None else prior_scale,
                rules=rules,
            )
    else:
        photo_to_target = np.full((3, 3), np.nan)
        inliers_photo = np.zeros((0, 2))
    return CandidateCheck(
        fit=fit,
        assessment=verdict,
        rotation_deg=best.angle,
        photo_to_target=photo_to_target,
        n_matches=best.n_matches,
        seconds=time.perf_counter() - start,
        photo_resample=factor,
        rotations_tried=tuple(t.angle for t in tries),
        inliers_photo=inliers_photo,
        inliers_target=best.xy_b if fit.ok else np.zeros((0, 2)),
        matcher=matcher.name,
    )
