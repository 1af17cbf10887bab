"""Verify candidate locations: local-feature matching, robust fit, acceptance, the walk.

Data flow: :mod:`~aeroloc.verify.matching` (a registry of matchers) matches
the photo against a candidate window → :mod:`~aeroloc.verify.fit` fits a
similarity/affine/homography robustly → :mod:`~aeroloc.verify.accept` decides
accepted/review/rejected with a calibrated ``p_correct`` →
:mod:`~aeroloc.verify.check` runs all of it over several photo rotations →
:mod:`~aeroloc.verify.walk` does that for a photo's candidates best-first and
chooses one.
"""

from aeroloc.verify.accept import (
    CALIBRATION_FEATURES,
    DEFAULT_CALIBRATION,
    FEATURE_NAMES,
    STATUS_ORDER,
    AcceptanceRules,
    Assessment,
    Calibration,
    assess,
    check_prior,
    default_calibration,
    fit_calibration,
    fit_features,
)
from aeroloc.verify.check import CandidateCheck, rotate_image, rotation_matrix, verify_candidate
from aeroloc.verify.fit import FitResult, fit_transform, project
from aeroloc.verify.matching import (
    DEFAULT_MATCHER,
    Matcher,
    Matches,
    get_matcher,
    list_matchers,
)
from aeroloc.verify.walk import (
    TriedCandidate,
    Verification,
    VerifyConfig,
    frame_box,
    photo_scan_to_matched,
    verify_candidates,
)

__all__ = [
    "CALIBRATION_FEATURES",
    "DEFAULT_CALIBRATION",
    "DEFAULT_MATCHER",
    "FEATURE_NAMES",
    "STATUS_ORDER",
    "AcceptanceRules",
    "Assessment",
    "Calibration",
    "CandidateCheck",
    "FitResult",
    "Matcher",
    "Matches",
    "TriedCandidate",
    "Verification",
    "VerifyConfig",
    "assess",
    "check_prior",
    "default_calibration",
    "fit_calibration",
    "fit_features",
    "fit_transform",
    "frame_box",
    "get_matcher",
    "list_matchers",
    "photo_scan_to_matched",
    "project",
    "rotate_image",
    "rotation_matrix",
    "verify_candidate",
    "verify_candidates",
]
