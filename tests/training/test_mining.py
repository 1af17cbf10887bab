"""Hard negatives: the one picker, the grid picks and the mining pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aeroloc.errors import DataQualityError
from aeroloc.models import get_model
from aeroloc.training.dataset import STORE_WINDOW_PX, DatasetManifest, load_samples
from aeroloc.training.features import FeatureBank
from aeroloc.training.mining import hard_cells, mine_hard_negatives, pick_hard
from aeroloc.training.sampling import SamplerConfig, window_grid


def test_pick_hard_known_answer() -> None:
    """Best first, only allowed finite cells, each pick apart from the earlier ones."""
    scores = np.array(
        [
            [0.9, 0.8, 0.1, 0.7],
            [0.2, np.nan, 0.3, 0.6],
            [0.95, 0.5, 0.4, 0.0],
        ]
    )
    allowed = np.ones_like(scores, dtype=bool)
    allowed[2, 0] = False  # the best score, but too close to the truth
    picks = pick_hard(scores, allowed, pool=3, spacing=1.0, min_separation=1.5)
    # (0, 1) is next to (0, 0) and (1, 3) next to (0, 3): both skipped.
    np.testing.assert_array_equal(picks, [[0, 0], [0, 3], [2, 1]])
    assert pick_hard(scores, allowed, pool=3, spacing=0.5, min_separation=0.5).tolist() == [
        [0, 0],
        [0, 1],
        [0, 3],
    ]
    none = pick_hard(scores, np.zeros_like(allowed), pool=3, spacing=1.0, min_separation=0.0)
    assert none.shape == (0, 2) and none.dtype == np.int64


def test_grid_picks_are_far_from_the_truth_and_apart(manifest: DatasetManifest) -> None:
    torch.manual_seed(0)
    model = get_model("effnet-lite0-siamese", weights=None, input_size=64).eval()
    samples = load_samples(manifest, (0, 1))
    grids = [window_grid(s, SamplerConfig()) for s in samples]
    hard = mine_hard_negatives(model, samples, grids, pool=4, min_distance=0.75)
    assert set(hard) == {0, 1}
    for i, picks in hard.items():
        grid = grids[i]
        assert 1 <= len(picks) <= 4
        assert all(grid.distance[r, c] >= 0.75 for r, c in picks)
        frac = grid.stride_px / STORE_WINDOW_PX
        for a in range(len(picks)):
            for b in range(a):
                assert np.hypot(*(picks[a] - picks[b])) * frac >= 0.5
    with pytest.raises(DataQualityError, match="differs from the window grid"):
        hard_cells(np.zeros((2, 2)), grids[0])


def test_bank_picks_use_the_same_picker(manifest: DatasetManifest) -> None:
    """FeatureBank.hard_cells is pick_hard over its dense windows, half a window apart."""
    torch.manual_seed(0)
    model = get_model("effnet-lite0-siamese", weights=None, input_size=64, train_stages=0)
    bank = FeatureBank(model, load_samples(manifest, (0,)), sampler=SamplerConfig())
    e = bank.entry(0, 2)
    far = e.usable & (e.distance >= bank.sampler.min_distance)
    want = pick_hard(
        bank.window_scores(0, 2), far, pool=6, spacing=1.0, min_separation=0.5 * bank.n
    )
    got = bank.hard_cells(0, 2, 6)
    np.testing.assert_array_equal(got, want)
    assert len(got) == 6 and all(far[r, c] for r, c in got)
