"""Histogram matching of the photo to the (enhanced) AoI, ignoring nodata.

``skimage.exposure.match_histograms`` lets NaN poison the reference CDF, so
this module matches through the empirical CDFs of the valid pixels only, the
same construction as scikit-image: every distinct source value ``s`` with
cumulative share ``q(s)`` maps to the reference value at quantile ``q(s)``
(linear interpolation between the reference's distinct values).
"""

from __future__ import annotations

import numpy as np

from aeroloc.errors import InvalidInputError
from aeroloc.preprocess._checks import as_array, check_finite, image_2d

_MAX_INT_RANGE = 1 << 16


def match_histogram(
    source: np.ndarray, reference: np.ndarray, *, max_reference_samples: int = 4_000_000
) -> np.ndarray:
    """Remap ``source`` so that its histogram matches that of ``reference``.

    Args:
        source: photo ``[H x W]``, any numeric dtype; NaN stays NaN.
        reference: AoI of any shape (e.g. ``[H' x W']``); NaN pixels are ignored.
        max_reference_samples: above this many valid reference pixels, a regular
            subsample is used (quantiles change by well under one gray level).

    Returns:
        float32 ``[H x W]`` in the value range of ``reference``.
    """
    src = image_2d(source, name="source photo")
    ref = as_array(reference, name="reference")
    check_finite(ref, name="reference", allow_nan=True)
    if not isinstance(max_reference_samples, int) or max_reference_samples < 2:
        raise InvalidInputError(
            f"max_reference_samples must be an int >= 2, found {max_reference_samples!r}"
        )
    ref_values = ref.ravel()
    if np.issubdtype(ref_values.dtype, np.floating):
        ref_values = ref_values[np.isfinite(ref_values)]
    if ref_values.size > max_reference_samples:
        step = -(-ref_values.size // max_reference_samples)
        ref_values = ref_values[::step]
    r_vals, r_counts = np.unique(ref_values, return_counts=True)
    r_quant = np.cumsum(r_counts) / ref_values.size

    if np.issubdtype(src.dtype, np.integer) and _int_range(src) <= _MAX_INT_RANGE:
        # Integer photos (uint8 scans): one lookup table, no sort of the photo.
        lo = int(src.min())
        counts = np.bincount((src.astype(np.int64) - lo).ravel())
        s_quant = np.cumsum(counts) / src.size
        lut = np.interp(s_quant, r_quant, r_vals).astype(np.float32)
        return lut[src.astype(np.int64) - lo]

    src_f = src.astype(np.float64)
    valid = np.isfinite(src_f)
    _, s_inverse, s_counts = np.unique(src_f[valid], return_inverse=True, return_counts=True)
    s_quant = np.cumsum(s_counts) / s_inverse.size
    out = np.full(src.shape, np.nan, dtype=np.float32)
    out[valid] = np.interp(s_quant, r_quant, r_vals)[s_inverse]
    return out


def _int_range(arr: np.ndarray) -> int:
    return int(arr.max()) - int(arr.min()) + 1
