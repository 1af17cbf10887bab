"""Robust geometric fit of matched points: similarity → affine → homography.

Each model is estimated robustly (MAGSAC++ for the homography where OpenCV has
it, RANSAC with least-squares refinement for the similarity and the affine),
then scored the same way on all matches: inliers are the matches that the
model reprojects within ``threshold_px``, and its cost is the truncated
quadratic (MSAC) cost ``sum(min(r², t²)) / t²``. The simplest model wins unless
a richer one lowers that cost significantly: fitting ``k`` extra parameters to
Gaussian noise of variance ``σ²`` lowers ``sum(r²)`` by a ``σ² χ²(k)`` amount,
so the richer model must gain more than the 99.9 % quantile of that (with
``σ`` estimated from its own inliers), and at least ``_MIN_COST_GAIN``.

Degenerate input never raises: fewer than 4 matches, collinear or coincident
points, or a singular model give ``kind="none"`` with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from scipy.stats import chi2

from aeroloc.errors import InvalidInputError
from aeroloc.verify.matching.base import MODEL_KINDS, Matches

Kind = Literal["similarity", "affine", "homography", "none"]
MIN_MATCHES = 4
#: A richer model must lower the MSAC cost by at least this much ...
_MIN_COST_GAIN = 0.25
#: ... and by more than this quantile of the gain expected from fitting noise.
_NOISE_QUANTILE = 0.999
_DOF = {"similarity": 4, "affine": 6, "homography": 8}
_MAX_ITERS = 5000
_CONFIDENCE = 0.999


@dataclass(frozen=True, kw_only=True)
class FitResult:
    """A transform from image a (photo) pixels to image b (target) pixels.

    Attributes:
        kind: "similarity", "affine", "homography", or "none" when no model fits.
        matrix: ``[3 x 3]`` homogeneous matrix, a ``(col, row, 1)`` → b; all NaN
            when ``kind == "none"``.
        inliers: ``[N]`` bool, matches the model reprojects within the threshold.
        n_inliers: number of inliers.
        inlier_ratio: ``n_inliers / N`` (0 for no matches).
        rmse_px: reprojection RMSE of the inliers in b pixels (NaN for "none").
        reason: why ``kind == "none"``; "" when a model was fitted.
        bbox_a: ``(col0, row0, col1, row1)`` of the inliers in image a (NaN for "none").
        threshold_px: the inlier threshold used.
    """

    kind: Kind
    matrix: np.ndarray
    inliers: np.ndarray
    n_inliers: int
    inlier_ratio: float
    rmse_px: float
    reason: str = ""
    bbox_a: tuple[float, float, float, float] = (np.nan, np.nan, np.nan, np.nan)
    threshold_px: float = 3.0

    @property
    def ok(self) -> bool:
        """True when a model was fitted."""
        return self.kind != "none"

    @classmethod
    def none(cls, reason: str, n: int = 0, threshold_px: float = 3.0) -> FitResult:
        """The failed fit of ``n`` matches, with ``reason``."""
        return cls(
            kind="none",
            matrix=np.full((3, 3), np.nan),
            inliers=np.zeros(n, bool),
            n_inliers=0,
            inlier_ratio=0.0,
            rmse_px=float("nan"),
            reason=reason,
            threshold_px=threshold_px,
        )


def project(matrix: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Apply a ``[3 x 3]`` homogeneous transform to points ``[N x 2]`` → ``[N x 2]``.

    Points that map to infinity come back as NaN.
    """
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    hom = np.hstack([pts, np.ones((len(pts), 1))]) @ np.asarray(matrix, dtype=np.float64).T
    w = hom[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = hom[:, :2] / np.where(np.abs(w) > 1e-12, w, np.nan)
    return out


def _residuals(matrix: np.ndarray, xy_a: np.ndarray, xy_b: np.ndarray) -> np.ndarray:
    err = np.linalg.norm(project(matrix, xy_a) - xy_b, axis=1)
    return np.where(np.isfinite(err), err, np.inf)


def _spread_ok(xy: np.ndarray) -> bool:
    """False when points are (nearly) coincident or collinear."""
    centred = xy - xy.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    if sv[0] < 1e-6:
        return False
    # Smallest spread below 1 % of the largest, or below ~1 px RMS: a line.
    return bool(sv[1] / sv[0] > 0.01 and sv[1] / np.sqrt(len(xy)) > 0.5)


def _estimate(kind: Kind, a: np.ndarray, b: np.ndarray, threshold_px: float) -> np.ndarray | None:
    """Robust estimate of one model, or None when OpenCV finds none."""
    src = a.astype(np.float64).reshape(-1, 1, 2)
    dst = b.astype(np.float64).reshape(-1, 1, 2)
    if kind == "homography":
        method = getattr(cv2, "USAC_MAGSAC", cv2.RANSAC)
        h, _ = cv2.findHomography(
            src, dst, method, threshold_px, maxIters=_MAX_ITERS, confidence=_CONFIDENCE
        )
        return None if h is None else np.asarray(h, dtype=np.float64)
    estimator = cv2.estimateAffinePartial2D if kind == "similarity" else cv2.estimateAffine2D
    m, _ = estimator(
        src,
        dst,
        method=cv2.RANSAC,
        ransacReprojThreshold=threshold_px,
        maxIters=_MAX_ITERS,
        confidence=_CONFIDENCE,
        refineIters=10,
    )
    if m is None:
        return None
    return np.vstack([np.asarray(m, dtype=np.float64), [0.0, 0.0, 1.0]])


def _refine(kind: Kind, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Least-squares model on inliers ``a`` → ``b`` (``[K x 2]`` each)."""
    if kind == "homography":
        h, _ = cv2.findHomography(a.reshape(-1, 1, 2), b.reshape(-1, 1, 2), 0)
        return None if h is None else np.asarray(h, dtype=np.float64)
    if kind == "affine":
        design = np.hstack([a, np.ones((len(a), 1))])
        sol, *_ = np.linalg.lstsq(design, b, rcond=None)
        return np.vstack([sol.T, [0.0, 0.0, 1.0]])
    # Similarity: x' = s*cos*x - s*sin*y + tx, y' = s*sin*x + s*cos*y + ty.
    rows = np.zeros((2 * len(a), 4))
    rows[0::2] = np.column_stack([a[:, 0], -a[:, 1], np.ones(len(a)), np.zeros(len(a))])
    rows[1::2] = np.column_stack([a[:, 1], a[:, 0], np.zeros(len(a)), np.ones(len(a))])
    sol, *_ = np.linalg.lstsq(rows, b.reshape(-1), rcond=None)
    p, q, tx, ty = sol
    return np.array([[p, -q, tx], [q, p, ty], [0.0, 0.0, 1.0]])


def _well_conditioned(matrix: np.ndarray) -> bool:
    if not np.all(np.isfinite(matrix)) or abs(matrix[2, 2]) < 1e-12:
        return False
    m = matrix / matrix[2, 2]
    det = float(np.linalg.det(m[:2, :2]))
    return abs(det) > 1e-8 and float(np.linalg.cond(m)) < 1e12


@dataclass(frozen=True)
class _Candidate:
    kind: Kind
    matrix: np.ndarray
    inliers: np.ndarray
    rmse: float
    cost: float

    @property
    def n(self) -> int:
        return int(self.inliers.sum())


def _fit_one(kind: Kind, a: np.ndarray, b: np.ndarray, threshold_px: float) -> _Candidate | None:
    matrix = _estimate(kind, a, b, threshold_px)
    if matrix is None or not _well_conditioned(matrix):
        return None
    inliers = _residuals(matrix, a, b) <= threshold_px
    # Two rounds of least squares on the inliers, re-selecting inliers each time.
    for _ in range(2):
        if inliers.sum() < MIN_MATCHES or not _spread_ok(a[inliers]):
            break
        refined = _refine(kind, a[inliers], b[inliers])
        if refined is None or not _well_conditioned(refined):
            break
        new_inliers = _residuals(refined, a, b) <= threshold_px
        if new_inliers.sum() < inliers.sum():
            break
        matrix, inliers = refined, new_inliers
    matrix = matrix / matrix[2, 2]
    if inliers.sum() == 0:
        return None
    res = _residuals(matrix, a, b)
    rmse = float(np.sqrt(np.mean(res[inliers] ** 2)))
    cost = float(np.sum(np.minimum(res, threshold_px) ** 2) / threshold_px**2)
    return _Candidate(kind, matrix, inliers, rmse, cost)


def _richer_wins(rich: _Candidate, simple: _Candidate, threshold_px: float) -> bool:
    extra = _DOF[rich.kind] - _DOF[simple.kind]
    noise_gain = float(chi2.ppf(_NOISE_QUANTILE, extra)) * rich.rmse**2 / threshold_px**2
    return simple.cost - rich.cost > max(_MIN_COST_GAIN, noise_gain)


def fit_transform(
    matches: Matches,
    *,
    threshold_px: float = 3.0,
    seed: int = 0,
    kinds: tuple[str, ...] = MODEL_KINDS,
) -> FitResult:
    """Fit the transform a → b that the matches support best.

    Args:
        matches: tentative correspondences.
        threshold_px: inlier threshold, in b pixels.
        seed: seeds OpenCV's random generator, so a call is deterministic.
        kinds: models tried, simplest first (a subset of :data:`MODEL_KINDS`).

    Returns:
        The chosen model; ``kind == "none"`` with a reason on degenerate input.

    Raises:
        InvalidInputError: ``threshold_px`` is not a positive number.
    """
    if not (np.isfinite(threshold_px) and threshold_px > 0):
        raise InvalidInputError(f"threshold_px must be > 0, got {threshold_px}")
    if not kinds or any(k not in MODEL_KINDS for k in kinds):
        raise InvalidInputError(f"kinds must be a subset of {MODEL_KINDS}, got {kinds}")
    n = len(matches)
    a, b = matches.xy_a, matches.xy_b
    finite = np.all(np.isfinite(a), axis=1) & np.all(np.isfinite(b), axis=1)
    if n < MIN_MATCHES:
        return FitResult.none(f"only {n} matches; need at least {MIN_MATCHES}", n, threshold_px)
    if finite.sum() < MIN_MATCHES:
        return FitResult.none("fewer than 4 matches have finite coordinates", n, threshold_px)
    if not (_spread_ok(a[finite]) and _spread_ok(b[finite])):
        return FitResult.none("matched points are collinear or coincident", n, threshold_px)
    cv2.setRNGSeed(int(seed))
    best: _Candidate | None = None
    for kind in (k for k in MODEL_KINDS if k in kinds):
        cand = _fit_one(kind, a[finite], b[finite], threshold_px)
        if cand is None or cand.n < MIN_MATCHES:
            continue
        if best is None or _richer_wins(cand, best, threshold_px):
            best = cand
    if best is None:
        reason = f"no {' / '.join(kinds)} transform fits the matches"
        return FitResult.none(reason, n, threshold_px)
    if not _spread_ok(a[finite][best.inliers]):
        return FitResult.none("inlier points are collinear or coincident", n, threshold_px)
    inliers = np.zeros(n, bool)
    inliers[np.flatnonzero(finite)[best.inliers]] = True
    ia = a[inliers]
    bbox = (
        float(ia[:, 0].min()),
        float(ia[:, 1].min()),
        float(ia[:, 0].max()),
        float(ia[:, 1].max()),
    )
    return FitResult(
        kind=best.kind,
        matrix=best.matrix,
        inliers=inliers,
        n_inliers=int(inliers.sum()),
        inlier_ratio=float(inliers.sum() / n),
        rmse_px=best.rmse,
        bbox_a=bbox,
        threshold_px=float(threshold_px),
    )
