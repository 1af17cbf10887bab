"""Scoring a stored sample's heatmap against its truth."""

from __future__ import annotations

import math

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from aeroloc.heatmap.grid import Heatmap
from aeroloc.training.scoring import score_heatmap


def _heatmap(scores: np.ndarray) -> Heatmap:
    return Heatmap(
        scores=scores,
        window_px=64,
        stride_px=16,
        pixel_to_map=Affine.identity(),
        crs=CRS.from_epsg(3031),
        model="toy",
        engine="dense",
    )


def test_a_peak_at_the_truth_is_found_first() -> None:
    """A heatmap peaking at the true window ranks it first with a high confidence level."""
    rr, cc = np.mgrid[0:12, 0:12]
    scores = np.exp(-((rr - 5) ** 2 + (cc - 7) ** 2) / 4.0).astype(np.float32)
    # Cell (r, c) is the window centred on pixel (c, r) × stride + window / 2.
    truth = (7 * 16 + 32.0, 5 * 16 + 32.0)
    sc = score_heatmap(_heatmap(scores), truth, sample_id="s", ks=(1, 5))
    assert sc.sample_id == "s" and sc.rank == 1
    assert sc.hits == {1: True, 5: True}
    assert sc.confidence > 95.0 and sc.error_windows < 0.5


def test_a_peak_far_from_the_truth_is_a_miss() -> None:
    rr, cc = np.mgrid[0:12, 0:12]
    scores = np.exp(-((rr - 1) ** 2 + (cc - 1) ** 2) / 2.0).astype(np.float32)
    truth = (10 * 16 + 32.0, 10 * 16 + 32.0)
    sc = score_heatmap(_heatmap(scores), truth, ks=(1,))
    assert sc.hits == {1: False} and sc.confidence < 50.0
    assert math.isfinite(sc.error_windows) and sc.error_windows > 2.0
