"""Tests of aeroloc.preprocess.histmatch: photo to AoI histogram matching."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.exposure import match_histograms

from aeroloc.errors import (
    DataQualityError,
    InvalidInputError,
)
from aeroloc.preprocess import (
    match_histogram,
)


def test_match_histogram_ignores_nan_in_reference() -> None:
    rng = np.random.default_rng(7)
    source = rng.normal(90, 20, size=(120, 120)).clip(0, 255).astype(np.uint8)
    reference = rng.normal(170, 30, size=(150, 150)).astype(np.float32)
    with_nan = reference.copy()
    with_nan[:, :40] = np.nan
    out = match_histogram(source, with_nan)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    valid = with_nan[np.isfinite(with_nan)]
    for q in (5, 25, 50, 75, 95):
        assert np.percentile(out, q) == pytest.approx(np.percentile(valid, q), abs=2.0)
    # Without NaN it agrees with scikit-image; the uint8 lookup path agrees with the float path.
    ours = match_histogram(source, reference)
    theirs = match_histograms(source.astype(np.float64), reference.astype(np.float64))
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    np.testing.assert_allclose(ours, match_histogram(source.astype(np.float32), reference))
    # Float source: NaN stays NaN, order is preserved.
    src_f = source.astype(np.float32)
    src_f[0, 0] = np.nan
    out_f = match_histogram(src_f, with_nan)
    assert np.isnan(out_f[0, 0]) and np.isfinite(out_f[1:]).all()
    flat_src, flat_out = src_f[1:].ravel(), out_f[1:].ravel()
    order = np.argsort(flat_src, kind="stable")
    assert (np.diff(flat_out[order]) >= 0).all()


def test_match_histogram_errors() -> None:
    src = np.zeros((4, 4), dtype=np.uint8)
    with pytest.raises(DataQualityError, match="reference is all nodata"):
        match_histogram(src, np.full((4, 4), np.nan))
    with pytest.raises(InvalidInputError, match="reference is empty"):
        match_histogram(src, np.zeros((0,)))
    with pytest.raises(InvalidInputError, match=r"one band \[H x W\]"):
        match_histogram(np.zeros((2, 4, 4)), np.ones((4, 4)))
    with pytest.raises(InvalidInputError, match="max_reference_samples"):
        match_histogram(src, np.ones((4, 4)), max_reference_samples=1)
