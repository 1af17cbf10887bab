"""Preprocessing of scanned photos and reference AoIs (pipeline stage 3).

Pure functions on arrays, one module per step, and a raster-level entry point:

* :mod:`~aeroloc.preprocess.frame` — crop the fiducial/data frame of a scan;
* :mod:`~aeroloc.preprocess.binarize` — averaged-histogram binarisation;
* :mod:`~aeroloc.preprocess.enhance` — RGB → gray, rock mask, shadow lift;
* :mod:`~aeroloc.preprocess.histmatch` — photo → AoI histogram matching;
* :mod:`~aeroloc.preprocess.rotate` — AoI rotated to the heading, with its
  pixel ↔ map affines;
* :mod:`~aeroloc.preprocess.run` — :func:`run_preprocess`, what the CLI calls.
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
from aeroloc.preprocess.rotate import RotatedAoI, rotate_aoi, rotated_grid
from aeroloc.preprocess.run import (
    AoIRasterLike,
    PreprocessOutputs,
    ReferenceArrays,
    read_reference,
    run_preprocess,
)

__all__ = [
    "SEED_STUDY_THRESHOLD",
    "AoIRasterLike",
    "AveragedHistogramThreshold",
    "EnhanceConfig",
    "FrameConfig",
    "FrameCrop",
    "PreprocessOutputs",
    "ReferenceArrays",
    "RotatedAoI",
    "clean_mask",
    "crop_frame",
    "detect_frame",
    "enhance_reference",
    "first_valley",
    "gray_histogram",
    "match_histogram",
    "rasterize_rock_mask",
    "read_reference",
    "rgb_to_gray",
    "rotate_aoi",
    "rotated_grid",
    "run_preprocess",
]
