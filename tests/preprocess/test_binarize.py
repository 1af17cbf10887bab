"""Tests of aeroloc.preprocess.binarize: the averaged-histogram threshold."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm
from skimage.filters import threshold_otsu

from aeroloc.errors import (
    ConfigError,
    DataQualityError,
    InvalidInputError,
    MissingFileError,
)
from aeroloc.preprocess import (
    SEED_STUDY_THRESHOLD,
    AveragedHistogramThreshold,
    first_valley,
    gray_histogram,
)
from preprocess_helpers import mixture_photos


def test_averaged_histogram_finds_first_valley_where_otsu_does_not() -> None:
    photos = mixture_photos(np.random.default_rng(4))
    x = np.arange(256)
    pdf = 0.12 * norm.pdf(x, 55, 8) + 0.25 * norm.pdf(x, 110, 12) + 0.63 * norm.pdf(x, 180, 15)
    true_valley = 55 + int(np.argmin(pdf[55:111]))  # 77: between rock and shadow

    result = AveragedHistogramThreshold.from_photos(photos)
    otsu = threshold_otsu(np.concatenate([p.ravel() for p in photos]))

    assert abs(result.threshold - true_valley) <= 3
    assert result.peak_bins[0] == pytest.approx(55, abs=3)
    assert result.peak_bins[1] == pytest.approx(110, abs=3)
    assert result.n_photos == 4
    # Otsu splits shadow from snow (~135), far from the rock/shadow valley.
    assert otsu > 110 and abs(otsu - true_valley) > 30
    # Binarisation keeps shadows white: the black share is the rock share (12 %).
    black = 1.0 - np.mean([result.binarize(p).mean() for p in photos])
    assert black == pytest.approx(0.12, abs=0.02)
    otsu_black = np.mean([(p <= otsu).mean() for p in photos])
    assert otsu_black > 0.3


def test_threshold_save_load_roundtrip(tmp_path) -> None:
    result = AveragedHistogramThreshold.from_photos(mixture_photos(np.random.default_rng(5)))
    path = result.save(tmp_path / "sub" / "threshold.json")
    loaded = AveragedHistogramThreshold.load(path)
    assert loaded.threshold == result.threshold
    assert loaded.peak_bins == result.peak_bins
    np.testing.assert_allclose(loaded.mean_histogram, result.mean_histogram)
    np.testing.assert_allclose(loaded.smoothed_histogram, result.smoothed_histogram)
    assert not list(tmp_path.glob("sub/.*"))  # no temporary file left behind


def test_threshold_load_errors(tmp_path) -> None:
    with pytest.raises(MissingFileError, match="threshold file not found"):
        AveragedHistogramThreshold.load(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        AveragedHistogramThreshold.load(bad)
    bad.write_text(json.dumps({"kind": "something"}))
    with pytest.raises(ConfigError, match="expected kind"):
        AveragedHistogramThreshold.load(bad)
    data = AveragedHistogramThreshold.fixed().to_dict()
    data["extra"] = 1
    bad.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="expected keys"):
        AveragedHistogramThreshold.load(bad)
    data = AveragedHistogramThreshold.fixed().to_dict()
    data["threshold"] = 300
    bad.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="invalid value"):
        AveragedHistogramThreshold.load(bad)


def test_binarize_errors_and_fixed_threshold() -> None:
    fixed = AveragedHistogramThreshold.fixed()
    assert fixed.threshold == SEED_STUDY_THRESHOLD == 79
    out = fixed.binarize(np.array([[79, 80]], dtype=np.uint8))
    assert out.tolist() == [[False, True]]
    with pytest.raises(InvalidInputError, match="must not contain NaN"):
        fixed.binarize(np.array([[1.0, np.nan]]))
    with pytest.raises(InvalidInputError, match="expected at least one photo"):
        AveragedHistogramThreshold.from_photos([])
    unimodal = np.random.default_rng(6).normal(170, 10, size=(100, 100)).clip(1, 254)
    with pytest.raises(DataQualityError, match="significant peak"):
        AveragedHistogramThreshold.from_photos([unimodal])
    with pytest.raises(DataQualityError, match="only black/saturated"):
        gray_histogram(np.array([[0, 255]], dtype=np.uint8))
    with pytest.raises(InvalidInputError, match=r"shape \(256,\), found \(10,\)"):
        first_valley(np.ones(10))
    with pytest.raises(InvalidInputError, match="threshold must be an int"):
        AveragedHistogramThreshold.fixed(255)


def test_gray_histogram_ignores_nan_and_clipped() -> None:
    photo = np.array([[0.0, 10.0, np.nan], [255.0, 10.4, 20.0]])
    hist = gray_histogram(photo)
    assert hist.sum() == pytest.approx(1.0)
    assert hist[10] == pytest.approx(2 / 3) and hist[20] == pytest.approx(1 / 3)
    assert hist[0] == hist[255] == 0
