"""The evaluation metrics: known answers on hand-made heatmaps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from aeroloc.evaluation.metrics import (
    confidence_level,
    heatmap_truth,
    rank_of_truth,
    recall_at,
    true_score,
)
from aeroloc.heatmap.grid import Heatmap


def _heatmap() -> Heatmap:
    scores = np.arange(25, dtype=np.float32).reshape(5, 5) / 24.0
    scores[0, 0] = np.nan
    return Heatmap(
        scores=scores,
        window_px=256,
        stride_px=64,
        pixel_to_map=Affine.identity(),
        crs=CRS.from_epsg(3031),
    )


def test_confidence_level_known_answer() -> None:
    hm = _heatmap()
    # Cell (2, 2) has centre (2·64 + 128) = 256 px; mean of 12, 7, 17, 11, 13 = 12 → /24.
    score, level = heatmap_truth(hm, (256.0, 256.0))
    below = np.count_nonzero(hm.scores[np.isfinite(hm.scores)] < 0.5)
    assert score == pytest.approx(0.5)
    assert level == pytest.approx(100.0 * (below + 0.5) / 24)
    assert level == confidence_level(hm.scores, 2, 2)
    assert all(math.isnan(v) for v in heatmap_truth(hm, (5000.0, 5000.0)))


def test_true_score_skips_nodata_and_edges() -> None:
    scores = _heatmap().scores
    # (0, 1): itself 1, below 6, right 2; (0, 0) is NaN and (-1, 1) is off the grid.
    assert true_score(scores, 0, 1) == pytest.approx((1 + 6 + 2) / 3 / 24)
    assert math.isnan(true_score(np.full((2, 2), np.nan), 0, 0))
    assert math.isnan(confidence_level(np.full((2, 2), np.nan), 0, 0))


def test_rank_of_truth_and_recall() -> None:
    assert rank_of_truth([900.0, 40.0, 10.0], 50.0) == 2
    assert rank_of_truth([900.0, 400.0], 50.0) is None
    assert recall_at(2, (1, 5)) == {1: False, 5: True}
    assert recall_at(None, (1,)) == {1: False}


def test_confidence_level_on_hand_computed_heatmap():
    s = np.array(
        [
            [0.1, 0.2, 0.3],
            [0.4, 0.9, 0.5],
            [0.6, 0.7, 0.8],
        ]
    )
    # true score at (1, 1): mean of 0.9, 0.2, 0.7, 0.4, 0.5 = 0.54
    assert true_score(s, 1, 1) == pytest.approx(0.54)
    # 5 of 9 scores lie below 0.54 → 55.6 %
    assert confidence_level(s, 1, 1) == pytest.approx(100 * 5 / 9)
    # corner: (0, 0), (1, 0), (0, 1) → mean 0.2333; 0.1 and 0.2 lower → 22.2 %
    assert confidence_level(s, 0, 0) == pytest.approx(100 * 2 / 9)
    s[0, 1] = np.nan
    assert true_score(s, 0, 0) == pytest.approx(0.25)
