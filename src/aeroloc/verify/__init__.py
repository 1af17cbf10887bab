"""Verify a candidate location: local-feature matching, robust fit, acceptance.

Data flow: :mod:`~aeroloc.verify.matchers` (and :mod:`~aeroloc.verify.learned`)
match the photo against a candidate window → :mod:`~aeroloc.verify.fit` fits a
similarity/affine/homography robustly → :mod:`~aeroloc.verify.accept` decides
accepted/review/rejected with a calibrated ``p_correct`` →
:mod:`~aeroloc.verify.check` runs all of it over several photo rotations.
"""

from aeroloc.verify.accept import (
    CALIBRATION_FEATURES,
    DEFAULT_CALIBRATION,
    FEATURE_NAMES,
    AcceptanceRules,
    Assessment,
    Calibration,
    assess,
    default_calibration,
    fit_calibration,
    fit_features,
)
from aeroloc.verify.check import CandidateCheck, rotate_image, rotation_matrix, verify_candidate
from aeroloc.verify.fit import FitResult, fit_transform, project
from aeroloc.verify.matchers import (
    DEFAULT_MATCHER,
    Matcher,
    Matches,
    get_matcher,
    list_matchers,
)

__all__ = [
    "CALIBRATION_FEATURES",
    "DEFAULT_CALIBRATION",
    "DEFAULT_MATCHER",
    "FEATURE_NAMES",
    "AcceptanceRules",
    "Assessment",
    "Calibration",
    "CandidateCheck",
    "FitResult",
    "Matcher",
    "Matches",
    "assess",
    "default_calibration",
    "fit_calibration",
    "fit_features",
    "fit_transform",
    "get_matcher",
    "list_matchers",
    "project",
    "rotate_image",
    "rotation_matrix",
    "verify_candidate",
]
