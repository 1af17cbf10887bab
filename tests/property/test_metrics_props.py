"""Properties of the evaluation metrics: bounded in [0, 100] and monotone in the true score."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aeroloc.errors import DataQualityError
from aeroloc.evaluation.metrics import confidence_level, rank_of_truth, recall_at, true_score
from aeroloc.heatmap.grid import percentile_rank
from property_helpers import bounded

# Integer-valued scores keep the sums exact, so a shift by d moves every
# comparison by exactly d (no rounding can break a tie one way or the other).
cell = st.one_of(st.integers(-50, 50).map(float), st.just(math.nan), st.just(math.inf))
grids = arrays(np.float64, st.tuples(st.integers(1, 7), st.integers(1, 7)), elements=cell)
finite_value = st.floats(-100.0, 100.0)


@bounded(100)
@given(scores=grids, a=finite_value, b=finite_value)
def test_percentile_rank_is_bounded_and_monotone(scores, a, b):
    scores = np.where(np.isinf(scores), np.nan, scores)
    if not np.isfinite(scores).any():
        with pytest.raises(DataQualityError, match="no valid window"):
            percentile_rank(scores, a)
        return
    lo, hi = sorted((a, b))
    p_lo, p_hi = percentile_rank(scores, lo), percentile_rank(scores, hi)
    assert 0.0 <= p_lo <= p_hi <= 100.0
    finite = scores[np.isfinite(scores)]
    assert percentile_rank(scores, float(finite.max()) + 1) == 100.0
    assert percentile_rank(scores, float(finite.min()) - 1) == 0.0


@bounded(100)
@given(
    scores=grids,
    at=st.tuples(st.integers(0, 6), st.integers(0, 6)),
    shift=st.integers(0, 200).map(float),
)
def test_confidence_level_is_bounded_and_rises_with_the_true_score(scores, at, shift):
    scores = np.where(np.isinf(scores), np.nan, scores)
    row, col = at[0] % scores.shape[0], at[1] % scores.shape[1]
    t = true_score(scores, row, col)
    level = confidence_level(scores, row, col)
    if math.isnan(t):
        assert math.isnan(level)
        return
    assert 0.0 <= level <= 100.0
    assert level == percentile_rank(scores, t)
    # Raise the true cell and its 4-neighbours by ``shift``: the true score rises
    # by exactly that, and the confidence level cannot fall.
    raised = scores.copy()
    for dr, dc in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)):
        r, c = row + dr, col + dc
        if 0 <= r < scores.shape[0] and 0 <= c < scores.shape[1]:
            raised[r, c] += shift
    assert true_score(raised, row, col) == pytest.approx(t + shift)
    assert level <= confidence_level(raised, row, col) <= 100.0


@bounded(100)
@given(
    scores=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=cell),
    row=st.integers(-3, 9),
    col=st.integers(-3, 9),
)
def test_the_true_score_is_a_mean_of_finite_scores_or_nan(scores, row, col):
    scores = np.where(np.isinf(scores), np.nan, scores)
    t = true_score(scores, row, col)
    finite = scores[np.isfinite(scores)]
    if math.isnan(t):
        inside = [
            (r, c)
            for r, c in ((row, col), (row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1))
            if 0 <= r < scores.shape[0] and 0 <= c < scores.shape[1]
        ]
        assert all(not np.isfinite(scores[r, c]) for r, c in inside)
    else:
        assert finite.min() <= t <= finite.max()


@bounded(100)
@given(
    distances=st.lists(st.floats(0.0, 1e5), max_size=20),
    radius=st.floats(0.0, 1e5),
    ks=st.lists(st.integers(1, 25), min_size=1, max_size=5, unique=True),
)
def test_recall_rises_with_k_and_the_rank_points_at_a_hit(distances, radius, ks):
    rank = rank_of_truth(distances, radius)
    if rank is None:
        assert all(d > radius for d in distances)
    else:
        assert distances[rank - 1] <= radius and all(d > radius for d in distances[: rank - 1])
    recall = recall_at(rank, sorted(ks))
    hits = [recall[k] for k in sorted(ks)]
    assume(len(hits) > 1)
    assert hits == sorted(hits)  # False ... False True ... True
