"""Preprocessing of scanned photos and reference AoIs (pipeline stage 3).

Pure functions on arrays, one module per step, the one composition of the
steps, and what ``aeroloc preprocess`` writes:

* :mod:`~aeroloc.preprocess.frame` — crop the fiducial/data frame of a scan;
* :mod:`~aeroloc.preprocess.binarize` — averaged-histogram binarisation;
* :mod:`~aeroloc.preprocess.enhance` — RGB → gray, rock mask, shadow lift;
* :mod:`~aeroloc.preprocess.histmatch` — photo → AoI histogram matching;
* :mod:`~aeroloc.preprocess.rotate` — AoI rotated to the heading, with its
  pixel ↔ map affines;
* :mod:`~aeroloc.preprocess.prepare` — :func:`prepare_pair`, the steps in
  order, as ``locate`` and training use them;
* :mod:`~aeroloc.preprocess.run` — :func:`preprocess_photo`, the
  composition's arrays written as rasters and a preview.
"""

from aeroloc.preprocess.binarize import (
    SEED_STUDY_THRESHOLD,
    AveragedHistogramThreshold,
    first_valley,
    gray_histogram,
)
from aeroloc.preprocess.enhance import (
    EnhanceConfig,
    clean_mask,
    enhance_reference,
    rasterize_rock_mask,
    rgb_to_gray,
)
from aeroloc.preprocess.frame import FrameConfig, FrameCrop, crop_frame, detect_frame
from aeroloc.preprocess.histmatch import match_histogram
from aeroloc.preprocess.prepare import (
    CroppedPhoto,
    PhotoRequest,
    PreparationSteps,
    PreparedPair,
    crop_photo,
    enhance_aoi,
    enhance_aoi_preview,
    gray_aoi,
    prepare_pair,
    prepare_request,
    prepare_steps,
)
from aeroloc.preprocess.rotate import RotatedAoI, rotate_aoi, rotated_grid
from aeroloc.preprocess.run import PreprocessOutputs, preprocess_photo, run_preprocess

__all__ = [
    "SEED_STUDY_THRESHOLD",
    "AveragedHistogramThreshold",
    "CroppedPhoto",
    "EnhanceConfig",
    "FrameConfig",
    "FrameCrop",
    "PhotoRequest",
    "PreparationSteps",
    "PreparedPair",
    "PreprocessOutputs",
    "RotatedAoI",
    "clean_mask",
    "crop_frame",
    "crop_photo",
    "detect_frame",
    "enhance_aoi",
    "enhance_aoi_preview",
    "enhance_reference",
    "first_valley",
    "gray_aoi",
    "gray_histogram",
    "match_histogram",
    "prepare_pair",
    "prepare_request",
    "prepare_steps",
    "preprocess_photo",
    "rasterize_rock_mask",
    "rgb_to_gray",
    "rotate_aoi",
    "rotated_grid",
    "run_preprocess",
]
