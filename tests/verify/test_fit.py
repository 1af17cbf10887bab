"""Robust fit: known transforms with outliers are recovered; degenerate input gives "none"."""

from __future__ import annotations

import numpy as np
import pytest

from aeroloc.errors import InvalidInputError
from aeroloc.verify import FitResult, Matches, fit_transform, project


def _matches(
    matrix: np.ndarray, *, n: int = 120, outliers: int = 30, noise: float = 0.3
) -> Matches:
    rng = np.random.default_rng(7)
    xy_a = rng.uniform(0, 400, (n, 2))
    xy_b = project(matrix, xy_a) + rng.normal(0, noise, (n, 2))
    xy_b[:outliers] = rng.uniform(0, 400, (outliers, 2))
    return Matches(xy_a=xy_a, xy_b=xy_b, scores=np.ones(n), matcher="test")


SIMILARITY = np.array(
    [
        [0.5 * np.cos(0.3), -0.5 * np.sin(0.3), 40.0],
        [0.5 * np.sin(0.3), 0.5 * np.cos(0.3), -12.0],
        [0, 0, 1],
    ]
)
AFFINE = np.array([[0.8, 0.25, 5.0], [-0.1, 1.1, 7.0], [0.0, 0.0, 1.0]])
HOMOGRAPHY = np.array([[0.9, 0.1, 20.0], [-0.08, 0.95, 10.0], [6e-4, 3e-4, 1.0]])


@pytest.mark.parametrize(
    ("matrix", "kind"),
    [(SIMILARITY, "similarity"), (AFFINE, "affine"), (HOMOGRAPHY, "homography")],
)
def test_known_transform_with_outliers_is_recovered_by_the_simplest_model(
    matrix: np.ndarray, kind: str
) -> None:
    fit = fit_transform(_matches(matrix))
    assert fit.kind == kind
    assert fit.reason == ""
    assert fit.n_inliers == 90
    assert not fit.inliers[:30].any() and fit.inliers[30:].all()
    assert fit.inlier_ratio == pytest.approx(0.75)
    assert fit.rmse_px < 0.6
    pts = np.array([[0.0, 0.0], [400.0, 0.0], [400.0, 400.0], [0.0, 400.0]])
    np.testing.assert_allclose(project(fit.matrix, pts), project(matrix, pts), atol=0.5)


def test_fit_is_deterministic_for_a_seed() -> None:
    m = _matches(HOMOGRAPHY, outliers=60)
    first, second = fit_transform(m, seed=3), fit_transform(m, seed=3)
    np.testing.assert_array_equal(first.matrix, second.matrix)
    np.testing.assert_array_equal(first.inliers, second.inliers)


def test_too_few_matches_give_none() -> None:
    m = _matches(AFFINE, n=3, outliers=0)
    fit = fit_transform(m)
    assert fit.kind == "none" and not fit.ok
    assert fit.reason == "only 3 matches; need at least 4"
    assert np.isnan(fit.matrix).all() and fit.inliers.shape == (3,)


def test_collinear_points_give_none() -> None:
    t = np.linspace(0, 100, 20)
    xy_a = np.column_stack([t, 2 * t + 1])
    m = Matches(xy_a=xy_a, xy_b=xy_a + 5.0, scores=np.ones(20), matcher="test")
    fit = fit_transform(m)
    assert fit.kind == "none"
    assert "collinear" in fit.reason


def test_random_matches_give_none_or_few_inliers() -> None:
    rng = np.random.default_rng(0)
    m = Matches(
        xy_a=rng.uniform(0, 300, (40, 2)),
        xy_b=rng.uniform(0, 300, (40, 2)),
        scores=np.ones(40),
        matcher="test",
    )
    fit = fit_transform(m)
    assert isinstance(fit, FitResult)
    assert fit.n_inliers < 12


def test_non_positive_threshold_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="threshold_px must be > 0"):
        fit_transform(_matches(AFFINE), threshold_px=0)


def test_project_maps_points_at_infinity_to_nan() -> None:
    h = np.array([[1.0, 0, 0], [0, 1.0, 0], [0.01, 0, 1.0]])
    out = project(h, np.array([[-100.0, 5.0], [0.0, 5.0]]))
    assert np.isnan(out[0]).all()
    np.testing.assert_allclose(out[1], [0.0, 5.0])
