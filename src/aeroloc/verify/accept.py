"""Acceptance: is a fitted photo → window transform a real location?

:func:`assess` turns a :class:`~aeroloc.verify.fit.FitResult` into features
(inlier support, reprojection RMSE, scale against the scale expected from
altitude and GSD, anisotropy/shear, perspective strength), applies readable
rules (:class:`AcceptanceRules`) and a logistic :class:`Calibration` that gives
``p_correct``.

``p_correct`` is the estimated probability that the transform is *correct*:
that the photo footprint it implies overlaps the true footprint with IoU ≥ 0.5
(the criterion ``aeroloc.evaluation.evaluate`` uses for "accepted and correct"). It is a
logistic regression on :data:`CALIBRATION_FEATURES`. The packaged
``calibration.json`` (fitted on synthetic archives with
:func:`fit_calibration`) is used when present; otherwise
:data:`DEFAULT_CALIBRATION`, a hand-set model that only ranks fits sensibly
and is not calibrated on data.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize

from aeroloc.errors import ConfigError, InvalidInputError
from aeroloc.files import require_file, write_json
from aeroloc.verify.fit import FitResult

Status = Literal["accepted", "review", "rejected"]
#: Statuses from worst to best: a higher rank is a better outcome.
STATUS_ORDER: dict[str, int] = {"rejected": 0, "review": 1, "accepted": 2}

#: Features :func:`assess` computes, in the order they appear in ``Assessment.features``.
FEATURE_NAMES = (
    "n_inliers",
    "log_n_inliers",
    "inlier_ratio",
    "rmse_px",
    "scale",
    "scale_ratio",
    "log_scale_error",
    "anisotropy",
    "perspective",
    "mirrored",
    "alignment_contrast",
    "inlier_hull_share",
    "prior_rotation_error_deg",
    "prior_log_scale_error",
)
#: Measures from outside the fit (``evidence``): the matcher's alignment contrast,
#: and the share of the photo inside the convex hull of the inliers
#: (:func:`aeroloc.verify.check.verify_candidate` measures it); 0 when not measured.
EVIDENCE_NAMES = ("alignment_contrast", "inlier_hull_share")
#: Features the logistic calibration uses by default.
CALIBRATION_FEATURES = (
    "log_n_inliers",
    "inlier_ratio",
    "rmse_px",
    "log_scale_error",
    "anisotropy",
    "perspective",
)
#: Feature values are clipped to this magnitude so that a wild fit stays finite.
_FEATURE_CAP = 50.0
CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """Logistic model ``p = 1 / (1 + exp(-(intercept + sum_i c_i (f_i - mean_i) / scale_i)))``.

    Attributes:
        feature_names: names from :data:`FEATURE_NAMES`.
        coefficients: one per feature (on standardised features).
        intercept: bias term.
        means: per-feature centring (zeros when empty).
        scales: per-feature scaling (ones when empty).
        description: how it was made (data set, date, l2).
    """

    feature_names: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float
    means: tuple[float, ...] = ()
    scales: tuple[float, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.feature_names)
        unknown = [n for n in names if n not in FEATURE_NAMES]
        if unknown:
            raise ConfigError(
                f"calibration uses unknown features {unknown}; known: {', '.join(FEATURE_NAMES)}"
            )
        k = len(names)
        means = tuple(float(v) for v in self.means) or (0.0,) * k
        scales = tuple(float(v) for v in self.scales) or (1.0,) * k
        coefs = tuple(float(v) for v in self.coefficients)
        if not (len(coefs) == len(means) == len(scales) == k):
            raise ConfigError(
                f"calibration needs one coefficient, mean and scale per feature ({k}); got "
                f"{len(coefs)}, {len(means)}, {len(scales)}"
            )
        values = (*coefs, *means, *scales, float(self.intercept))
        if not all(math.isfinite(v) for v in values) or any(s <= 0 for s in scales):
            raise ConfigError("calibration values must be finite and scales > 0")
        object.__setattr__(self, "feature_names", names)
        object.__setattr__(self, "coefficients", coefs)
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "scales", scales)
        object.__setattr__(self, "intercept", float(self.intercept))

    def predict(self, features: Mapping[str, float]) -> float:
        """Probability in [0, 1] for one feature mapping (must hold every feature name)."""
        missing = [n for n in self.feature_names if n not in features]
        if missing:
            raise InvalidInputError(f"features lack {missing} needed by the calibration")
        x = np.array([_clean(features[n]) for n in self.feature_names])
        z = self.intercept + float(
            np.dot(self.coefficients, (x - np.array(self.means)) / np.array(self.scales))
        )
        return float(1.0 / (1.0 + math.exp(-min(max(z, -500.0), 500.0))))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "kind": "logistic",
            "feature_names": list(self.feature_names),
            "coefficients": list(self.coefficients),
            "intercept": self.intercept,
            "means": list(self.means),
            "scales": list(self.scales),
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise ConfigError."""
        required = {"feature_names", "coefficients", "intercept"}
        allowed = required | {"kind", "means", "scales", "description"}
        keys = set(data)
        if not required <= keys or not keys <= allowed:
            raise ConfigError(
                f"calibration keys must include {sorted(required)} and be among "
                f"{sorted(allowed)}; got {sorted(keys)}"
            )
        if data.get("kind", "logistic") != "logistic":
            raise ConfigError(f"calibration kind must be 'logistic', got {data['kind']!r}")
        try:
            return cls(
                feature_names=tuple(data["feature_names"]),
                coefficients=tuple(data["coefficients"]),
                intercept=float(data["intercept"]),
                means=tuple(data.get("means", ())),
                scales=tuple(data.get("scales", ())),
                description=str(data.get("description", "")),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"malformed calibration: {exc}") from exc

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write as JSON (atomically)."""
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibration:
        """Read a file written by :meth:`save`.

        Raises:
            MissingFileError: no such file.
            ConfigError: not a calibration JSON.
        """
        p = require_file(path, "calibration file")
        try:
            data = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"calibration file {p} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"calibration file {p} must hold a JSON object")
        return cls.from_dict(data)


#: Hand-set until a calibration is fitted on synthetic archives: 50 % at about
#: 10 inliers with ratio 0.3 and 1 px RMSE at the expected scale; each halving
#: of the scale, 10 % anisotropy or strong perspective costs confidence.
DEFAULT_CALIBRATION = Calibration(
    feature_names=CALIBRATION_FEATURES,
    coefficients=(2.0, 3.0, -1.0, -3.0, -8.0, -3.0),
    intercept=-4.7,
    description="hand-set default (not fitted on data)",
)


@functools.lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    """The packaged ``aeroloc/verify/calibration.json`` if present, else DEFAULT_CALIBRATION."""
    ref = resources.files("aeroloc.verify").joinpath(CALIBRATION_FILE)
    if not ref.is_file():
        return DEFAULT_CALIBRATION
    with resources.as_file(ref) as path:
        return Calibration.load(path)


def fit_calibration(
    features: Sequence[Mapping[str, float]],
    labels: Sequence[bool],
    *,
    feature_names: Sequence[str] = CALIBRATION_FEATURES,
    l2: float = 1.0,
    description: str = "",
) -> Calibration:
    """Fit an L2-regularised logistic regression ``features → P(label)``.

    Args:
        features: one mapping per example (e.g. ``Assessment.features``).
        labels: True where the fit was correct.
        feature_names: which features to use.
        l2: penalty on the (standardised) coefficients; the intercept is free.
        description: stored with the calibration.

    Raises:
        InvalidInputError: lengths differ, a feature is missing or not finite,
            or the labels hold only one class.
    """
    names = tuple(feature_names)
    if len(features) != len(labels):
        raise InvalidInputError(
            f"need one label per feature row: {len(features)} rows, {len(labels)} labels"
        )
    y = np.asarray([bool(v) for v in labels], dtype=np.float64)
    if len(y) < 2 or y.min() == y.max():
        raise InvalidInputError("fit_calibration needs both correct and incorrect examples")
    if not (math.isfinite(l2) and l2 >= 0):
        raise InvalidInputError(f"l2 must be >= 0, got {l2}")
    rows = []
    for i, row in enumerate(features):
        missing = [n for n in names if n not in row]
        if missing:
            raise InvalidInputError(f"feature row {i} lacks {missing}")
        rows.append([_clean(row[n]) for n in names])
    x = np.asarray(rows, dtype=np.float64)
    means = x.mean(axis=0)
    scales = x.std(axis=0)
    scales[scales < 1e-9] = 1.0
    z = (x - means) / scales

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        logits = w[0] + z @ w[1:]
        # log(1 + exp(t)) computed stably; y*t subtracted for the positive class.
        nll = np.sum(np.logaddexp(0.0, logits) - y * logits)
        p = 1.0 / (1.0 + np.exp(-logits))
        grad = np.concatenate([[np.sum(p - y)], z.T @ (p - y)])
        grad[1:] += l2 * w[1:]
        return float(nll + 0.5 * l2 * np.dot(w[1:], w[1:])), grad

    w0 = np.zeros(len(names) + 1)
    result = minimize(loss, w0, jac=True, method="L-BFGS-B")
    w = result.x
    return Calibration(
        feature_names=names,
        coefficients=tuple(float(v) for v in w[1:]),
        intercept=float(w[0]),
        means=tuple(float(v) for v in means),
        scales=tuple(float(v) for v in scales),
        description=description or f"logistic fit on {len(y)} examples, l2={l2}",
    )


@dataclass(frozen=True, kw_only=True)
class AcceptanceRules:
    """Thresholds of the readable acceptance rules (defaults suit 10 m references).

    A fit needs ``accept_inliers`` inliers to be accepted, or only
    ``contrast_inliers`` when the matcher measured an ``alignment_contrast`` of
    at least ``accept_contrast`` (the whole photo correlates sharply at the
    fitted place; ``effnet-dense`` measures it, keypoint matchers do not).
    When the matcher measured the contrast and it is below ``min_contrast``
    (the whole photo correlates better somewhere else), the fit is left for
    review however many inliers it has. When the inliers' convex hull was
    measured and covers less than ``min_inlier_hull_share`` of the photo, the
    fit is left for review too (inliers clustered in one corner say little about
    the rest of the photo). The default, 5 %, was chosen on the synthetic
    calibration archives (seeds 600–601), where it leaves none of the 100
    accepted correct fits for review (their smallest share is 2.3 %, the
    tenth percentile 22 %); 0 turns the rule off.

    Agreement with the prior (:func:`check_prior`): a fit whose rotation is more
    than ``max_prior_rotation_deg`` off the catalog heading, or whose scale is
    more than ``max_prior_scale`` times larger or smaller than the catalog's
    altitude and GSD imply, is left for review. The defaults allow the errors
    of a rough catalog (the ``hard`` synthetic preset: heading ±20°, altitude
    ±20 %) with a margin; a fit beyond them contradicts the metadata.

    Against the photo's own wrong places (:mod:`aeroloc.verify.decoys`): an
    accepted fit needs ``min_decoy_ratio`` times the inliers of the best
    decoy (another candidate, matched with this footprint blanked), else it is left
    for review; 0 turns the test off. The default, 2, was set before any
    measurement ("twice what a wrong place gets"); on the synthetic
    calibration archives it leaves no accepted correct fit for review.
    """

    min_inliers: int = 8
    accept_inliers: int = 15
    min_inlier_ratio: float = 0.05
    max_rmse_px: float = 2.0
    review_anisotropy: float = 0.2
    max_anisotropy: float = 0.5
    review_perspective: float = math.log(1.8)
    max_perspective: float = math.log(3.0)
    min_p_correct: float = 0.5
    contrast_inliers: int = 10
    accept_contrast: float = 0.025
    min_contrast: float = 0.01
    min_inlier_hull_share: float = 0.05
    max_prior_rotation_deg: float = 25.0
    max_prior_scale: float = 1.3
    min_decoy_ratio: float = 2.0

    def __post_init__(self) -> None:
        if not (0 < self.min_inliers <= self.accept_inliers):
            raise InvalidInputError("need 0 < min_inliers <= accept_inliers")
        if not (self.min_inliers <= self.contrast_inliers <= self.accept_inliers):
            raise InvalidInputError("need min_inliers <= contrast_inliers <= accept_inliers")
        if not (math.isfinite(self.accept_contrast) and self.accept_contrast > 0):
            raise InvalidInputError("accept_contrast must be > 0")
        if not (math.isfinite(self.min_contrast) and self.min_contrast <= self.accept_contrast):
            raise InvalidInputError("need min_contrast <= accept_contrast")
        if not (0 <= self.review_anisotropy <= self.max_anisotropy):
            raise InvalidInputError("need 0 <= review_anisotropy <= max_anisotropy")
        if not (0 <= self.review_perspective <= self.max_perspective):
            raise InvalidInputError("need 0 <= review_perspective <= max_perspective")
        if not (0.0 <= self.min_p_correct <= 1.0):
            raise InvalidInputError("min_p_correct must lie in [0, 1]")
        if not (0.0 <= self.min_inlier_hull_share <= 1.0):
            raise InvalidInputError("min_inlier_hull_share must lie in [0, 1]")
        if not (math.isfinite(self.max_prior_rotation_deg) and self.max_prior_rotation_deg > 0):
            raise InvalidInputError("max_prior_rotation_deg must be > 0")
        if not (math.isfinite(self.max_prior_scale) and self.max_prior_scale > 1.0):
            raise InvalidInputError("max_prior_scale must be > 1")
        if not (math.isfinite(self.min_decoy_ratio) and self.min_decoy_ratio >= 0.0):
            raise InvalidInputError("min_decoy_ratio must be ≥ 0 (0 turns the decoy test off)")


@dataclass(frozen=True, kw_only=True)
class Assessment:
    """Verdict on one fitted transform.

    Attributes:
        status: "accepted", "review" (plausible, a human should look) or "rejected".
        reasons: human-readable reasons for anything but a clean accept.
        p_correct: calibrated probability that the transform is correct (module docstring).
        features: the values the verdict used (see :data:`FEATURE_NAMES`).
    """

    status: Status
    reasons: tuple[str, ...]
    p_correct: float
    features: dict[str, float] = field(default_factory=dict)


def _clean(value: float) -> float:
    v = float(value)
    if math.isnan(v):
        return _FEATURE_CAP
    return min(max(v, -_FEATURE_CAP), _FEATURE_CAP)


def jacobian(matrix: np.ndarray, x: float, y: float) -> np.ndarray:
    """``[2 x 2]`` derivative of the homogeneous transform ``matrix`` at ``(x, y)``."""
    h = np.asarray(matrix, dtype=np.float64)
    w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    u = (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / w
    v = (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / w
    return (h[:2, :2] - np.outer([u, v], h[2, :2])) / w


def _denominator(matrix: np.ndarray, x: float, y: float) -> float:
    return float(matrix[2, 0] * x + matrix[2, 1] * y + matrix[2, 2])


def fit_features(
    fit: FitResult,
    *,
    expected_scale: float | None,
    evidence: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The features of :data:`FEATURE_NAMES` for one fit (caps keep them finite).

    ``evidence`` supplies the matcher's own measures (:data:`EVIDENCE_NAMES`);
    a missing or non-finite one counts as 0 (no evidence either way).
    """
    feats = dict.fromkeys(FEATURE_NAMES, 0.0)
    for name in EVIDENCE_NAMES:
        value = float((evidence or {}).get(name, 0.0))
        feats[name] = _clean(value) if math.isfinite(value) else 0.0
    feats["n_inliers"] = float(fit.n_inliers)
    feats["log_n_inliers"] = math.log1p(fit.n_inliers)
    feats["inlier_ratio"] = float(fit.inlier_ratio)
    feats["rmse_px"] = _clean(fit.rmse_px) if fit.ok else float(fit.threshold_px)
    if not fit.ok:
        feats.update(scale_ratio=1.0, anisotropy=_FEATURE_CAP, perspective=_FEATURE_CAP)
        return feats
    x0, y0, x1, y1 = fit.bbox_a
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    m = fit.matrix
    if any(_denominator(m, x, y) * _denominator(m, cx, cy) <= 0 for x, y in corners):
        # The horizon of the homography crosses the inliers: it folds the photo.
        feats.update(scale_ratio=1.0, anisotropy=_FEATURE_CAP, perspective=_FEATURE_CAP)
        return feats
    jac = jacobian(m, cx, cy)
    det = float(np.linalg.det(jac))
    sv = np.linalg.svd(jac, compute_uv=False)
    scale = math.sqrt(abs(det))
    feats["scale"] = _clean(scale)
    feats["mirrored"] = 1.0 if det < 0 else 0.0
    feats["anisotropy"] = _clean(sv[0] / sv[1] - 1.0) if sv[1] > 0 else _FEATURE_CAP
    local = [math.sqrt(abs(float(np.linalg.det(jacobian(m, x, y))))) for x, y in corners]
    low, high = min(local), max(local)
    feats["perspective"] = _clean(math.log(high / low)) if low > 0 else _FEATURE_CAP
    if expected_scale is not None and scale > 0:
        ratio = scale / expected_scale
        feats["scale_ratio"] = _clean(ratio)
        feats["log_scale_error"] = _clean(abs(math.log(ratio)))
    else:
        feats["scale_ratio"] = 1.0
    return feats


def assess(
    fit: FitResult,
    *,
    expected_scale: float | None,
    scale_tolerance: float = 2.0,
    calibration: Calibration | None = None,
    rules: AcceptanceRules | None = None,
    evidence: Mapping[str, float] | None = None,
) -> Assessment:
    """Decide whether ``fit`` locates the photo: accepted, review or rejected.

    Args:
        fit: transform photo (a) → target (b) pixels.
        expected_scale: expected b pixels per a pixel (photo GSD / target GSD),
            None to skip the scale check.
        scale_tolerance: factor by which the fitted scale may differ from the
            expected one before the fit is rejected.
        calibration: logistic model for ``p_correct``; None uses
            :func:`default_calibration`.
        rules: thresholds; None uses the defaults of :class:`AcceptanceRules`.
        evidence: the matcher's own measures (``Matches.evidence``).

    Raises:
        InvalidInputError: ``expected_scale`` <= 0 or ``scale_tolerance`` <= 1.
    """
    if expected_scale is not None and not (math.isfinite(expected_scale) and expected_scale > 0):
        raise InvalidInputError(f"expected_scale must be > 0 or None, got {expected_scale}")
    if not (math.isfinite(scale_tolerance) and scale_tolerance > 1.0):
        raise InvalidInputError(f"scale_tolerance must be > 1, got {scale_tolerance}")
    rules = rules or AcceptanceRules()
    calibration = calibration or default_calibration()
    feats = fit_features(fit, expected_scale=expected_scale, evidence=evidence)
    if not fit.ok:
        return Assessment(
            status="rejected",
            reasons=(fit.reason or "no transform",),
            p_correct=0.0,
            features=feats,
        )
    p = calibration.predict(feats)
    reject: list[str] = []
    review: list[str] = []
    n = fit.n_inliers
    if n < rules.min_inliers:
        reject.append(f"only {n} inliers; need at least {rules.min_inliers}")
    elif n < rules.accept_inliers:
        contrast = feats["alignment_contrast"]
        if n < rules.contrast_inliers or contrast < rules.accept_contrast:
            review.append(
                f"only {n} inliers; {rules.accept_inliers} needed to accept (or "
                f"{rules.contrast_inliers} with an alignment contrast of "
                f"{rules.accept_contrast:g}; measured {contrast:.3f})"
            )
    measured = math.isfinite(float((evidence or {}).get("alignment_contrast", math.nan)))
    if measured and n >= rules.min_inliers and feats["alignment_contrast"] < rules.min_contrast:
        review.append(
            f"alignment contrast {feats['alignment_contrast']:.3f} below "
            f"{rules.min_contrast:g}: the whole photo does not correlate best at the fitted place"
        )
    hull = float((evidence or {}).get("inlier_hull_share", math.nan))
    if math.isfinite(hull) and n >= rules.min_inliers and hull < rules.min_inlier_hull_share:
        review.append(
            f"the inliers' convex hull covers {hull:.0%} of the photo; "
            f"{rules.min_inlier_hull_share:.0%} needed to accept"
        )
    if fit.inlier_ratio < rules.min_inlier_ratio:
        review.append(f"inlier ratio {fit.inlier_ratio:.2f} below {rules.min_inlier_ratio:.2f}")
    if fit.rmse_px > rules.max_rmse_px:
        review.append(f"reprojection RMSE {fit.rmse_px:.2f} px above {rules.max_rmse_px:.1f} px")
    if feats["perspective"] >= _FEATURE_CAP:
        reject.append("the transform folds the photo (its horizon crosses the matched area)")
    elif feats["perspective"] > rules.max_perspective:
        reject.append(
            f"perspective too strong: local scale varies {math.exp(feats['perspective']):.1f}x "
            "across the matched area"
        )
    elif feats["perspective"] > rules.review_perspective:
        review.append(
            f"strong perspective: local scale varies {math.exp(feats['perspective']):.1f}x"
        )
    if feats["mirrored"]:
        reject.append("the transform mirrors the photo")
    aniso = feats["anisotropy"]
    if aniso > rules.max_anisotropy:
        reject.append(f"strong shear/anisotropy: axes scaled {1 + aniso:.2f}:1")
    elif aniso > rules.review_anisotropy:
        review.append(f"shear/anisotropy: axes scaled {1 + aniso:.2f}:1")
    if expected_scale is not None:
        ratio = feats["scale_ratio"]
        if not (1.0 / scale_tolerance <= ratio <= scale_tolerance):
            reject.append(
                f"scale {feats['scale']:.3g} target px per photo px is {ratio:.2g}x the "
                f"expected {expected_scale:.3g} (tolerance {scale_tolerance:g}x)"
            )
    if p < rules.min_p_correct:
        review.append(f"p_correct {p:.2f} below {rules.min_p_correct:.2f}")
    if reject:
        status: Status = "rejected"
    elif review:
        status = "review"
    else:
        status = "accepted"
    return Assessment(status=status, reasons=tuple(reject + review), p_correct=p, features=feats)


def fit_rotation_deg(fit: FitResult) -> float:
    """Clockwise rotation (degrees, in (-180, 180]) of the fit at the centre of its inliers."""
    x0, y0, x1, y1 = fit.bbox_a
    jac = jacobian(fit.matrix, (x0 + x1) / 2, (y0 + y1) / 2)
    return float(math.degrees(math.atan2(jac[1, 0], jac[0, 0])))


def check_prior(
    assessment: Assessment,
    fit: FitResult,
    *,
    prior_rotation_deg: float,
    prior_scale: float,
    rules: AcceptanceRules | None = None,
) -> Assessment:
    """Leave for review a fit that contradicts the catalog's heading or scale.

    Args:
        assessment: the verdict of :func:`assess` on ``fit``.
        fit: transform photo → target pixels, in the frame the prior refers to.
        prior_rotation_deg: clockwise rotation the catalog heading implies
            (0 when the target is already rotated to it).
        prior_scale: target pixels per photo pixel the catalog implies.
        rules: ``max_prior_rotation_deg`` and ``max_prior_scale``.

    Returns:
        The assessment with ``prior_rotation_error_deg`` and
        ``prior_log_scale_error`` among its features, and ``accepted`` turned
        into ``review`` (with the reason) when either is beyond its tolerance.
    """
    if not fit.ok or not (math.isfinite(prior_scale) and prior_scale > 0):
        return assessment
    rules = rules or AcceptanceRules()
    feats = dict(assessment.features)
    turn = (fit_rotation_deg(fit) - prior_rotation_deg + 180.0) % 360.0 - 180.0
    scale = feats.get("scale", 0.0)
    log_err = abs(math.log(scale / prior_scale)) if scale > 0 else _FEATURE_CAP
    feats["prior_rotation_error_deg"] = abs(turn)
    feats["prior_log_scale_error"] = _clean(log_err)
    reasons: list[str] = []
    if abs(turn) > rules.max_prior_rotation_deg:
        reasons.append(
            f"the fit turns the photo {turn:+.0f}° from the catalog heading "
            f"(tolerance ±{rules.max_prior_rotation_deg:g}°)"
        )
    if log_err > math.log(rules.max_prior_scale):
        reasons.append(
            f"the fit scales the photo {math.exp(log_err):.2f}x off what its altitude says "
            f"(tolerance {rules.max_prior_scale:g}x)"
        )
    status = assessment.status
    if reasons and status == "accepted":
        status = "review"
    return Assessment(
        status=status,
        reasons=(*assessment.reasons, *reasons),
        p_correct=assessment.p_correct,
        features=feats,
    )
