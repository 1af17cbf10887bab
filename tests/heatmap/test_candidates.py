"""Candidate peaks with non-maximum suppression."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from aeroloc.errors import DataQualityError, InvalidInputError
from aeroloc.heatmap.candidates import find_candidates, search_box
from aeroloc.heatmap.grid import Heatmap


def _heatmap(scores: np.ndarray) -> Heatmap:
    # 10 m pixels, window 40 px, stride 10 px: cells 100 m apart, windows 400 m wide
    return Heatmap(
        scores=scores.astype(np.float32),
        window_px=40,
        stride_px=10,
        pixel_to_map=Affine(10, 0, 0, 0, -10, 0),
        crs=CRS.from_epsg(3031),
    )


def test_nms_keeps_separated_peaks_in_rank_order():
    s = np.zeros((10, 10))
    s[2, 2], s[2, 3], s[7, 7], s[2, 5] = 0.9, 0.85, 0.8, 0.7
    cands = find_candidates(_heatmap(s), max_candidates=3)
    assert [(c.row, c.col) for c in cands] == [(2, 2), (7, 7), (2, 5)]
    assert [c.rank for c in cands] == [1, 2, 3]
    # (2, 3) lies one cell (100 m) from (2, 2): inside the half-window radius (200 m)
    assert cands[0].x == pytest.approx(10 * (2 * 10 + 20))
    assert cands[0].percentile > cands[1].percentile


def test_nan_cells_are_never_candidates():
    s = np.full((4, 4), np.nan)
    s[1, 1] = 0.2
    cands = find_candidates(_heatmap(s))
    assert len(cands) == 1 and (cands[0].row, cands[0].col) == (1, 1)
    with pytest.raises(DataQualityError, match="nodata"):
        find_candidates(_heatmap(np.full((3, 3), np.nan)))
    with pytest.raises(InvalidInputError, match="max_candidates"):
        find_candidates(_heatmap(s), max_candidates=0)


def test_search_box_grows_the_window_and_clips_to_the_aoi():
    s = np.zeros((10, 10))
    s[2, 3] = 0.9
    hm = _heatmap(s)
    cand = find_candidates(hm, max_candidates=1)[0]
    # window (2, 3): pixels [30, 70) x [20, 60); half a window (20 px) more on each side
    assert search_box(hm, cand, margin_frac=0.5, shape=(200, 200)) == (10, 0, 90, 80)
    assert search_box(hm, cand, margin_frac=0.0, shape=(200, 200)) == (30, 20, 70, 60)
    assert search_box(hm, cand, margin_frac=0.5, shape=(50, 60)) == (10, 0, 60, 50)
    with pytest.raises(InvalidInputError, match="margin_frac"):
        search_box(hm, cand, margin_frac=-0.1, shape=(200, 200))
    with pytest.raises(InvalidInputError, match="outside the AoI"):
        search_box(hm, cand, margin_frac=0.0, shape=(10, 10))
