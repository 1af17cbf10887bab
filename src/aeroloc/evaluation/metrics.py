"""The evaluation metrics, defined once (docs/pipeline.md, "Evaluation").

- **true score**: mean of the finite scores of the heatmap cell nearest the
  true centre and its 4-neighbours;
- **confidence level** (seed thesis): percentile rank (0–100) of the true
  score among all finite window scores;
- **rank of the truth**: 1-based rank of the first candidate within a hit
  radius of the true centre (None when none is);
- **recall@k**: the rank of the truth is at most k.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from aeroloc.heatmap.grid import Heatmap, percentile_rank

_CROSS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


def true_score(scores: np.ndarray, row: int, col: int) -> float:
    """Mean of the finite ``scores [R x C]`` at ``(row, col)`` and its 4-neighbours (NaN: none)."""
    vals = [
        float(scores[r, c])
        for r, c in ((row + dr, col + dc) for dr, dc in _CROSS)
        if 0 <= r < scores.shape[0] and 0 <= c < scores.shape[1] and np.isfinite(scores[r, c])
    ]
    return float(np.mean(vals)) if vals else math.nan


def confidence_level(scores: np.ndarray, row: int, col: int) -> float:
    """Percentile rank (0–100) of the true score among all finite window scores (NaN if none)."""
    t = true_score(scores, row, col)
    if not math.isfinite(t):
        return math.nan
    return percentile_rank(scores, t)


def heatmap_truth(heatmap: Heatmap, center: tuple[float, float]) -> tuple[float, float]:
    """``(true score, confidence level)`` of a true centre in map units (NaN, NaN off the grid)."""
    cell = heatmap.nearest_cell(*center)
    if cell is None:
        return math.nan, math.nan
    return true_score(heatmap.scores, *cell), confidence_level(heatmap.scores, *cell)


def rank_of_truth(distances: Iterable[float], radius: float) -> int | None:
    """1-based rank of the first candidate whose distance to the truth is ≤ ``radius``, or None."""
    return next((i + 1 for i, d in enumerate(distances) if d <= radius), None)


def recall_at(rank: int | None, ks: Sequence[int]) -> dict[int, bool]:
    """k → the truth is among the top-k candidates."""
    return {k: rank is not None and rank <= k for k in ks}


__all__ = ["confidence_level", "heatmap_truth", "rank_of_truth", "recall_at", "true_score"]
