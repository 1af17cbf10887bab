"""DenseScorer and FeatureBank: the dense engine's scores, with cached trunk prefixes."""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr

from aeroloc.models import DEFAULT_CHECKPOINT, get_model, load_checkpoint
from aeroloc.training.dataset import DatasetManifest, load_samples
from aeroloc.training.features import DenseScorer
from aeroloc.training.scoring import sample_heatmap


def test_dense_scorer_matches_the_dense_engine(manifest: DatasetManifest) -> None:
    """Validation and mining during training rank windows as locate does (a trained model).

    Exactly so without context padding; with locate's default one cell of
    context only windows at the AoI's border see different padding.
    """
    model = load_checkpoint(DEFAULT_CHECKPOINT).eval()
    samples = load_samples(manifest, (0, 1))
    scorer = DenseScorer(model, samples)
    for i, sample in enumerate(samples):
        got = scorer.heatmap(i).scores
        exact = sample_heatmap(model, sample, context_cells=0).scores
        default = sample_heatmap(model, sample).scores
        assert got.shape == exact.shape == default.shape
        np.testing.assert_array_equal(np.isnan(got), np.isnan(exact))
        np.testing.assert_allclose(got, exact, atol=1e-4, equal_nan=True)
        ok = np.isfinite(got)
        assert spearmanr(got[ok], default[ok]).statistic > 0.95


def test_dense_scorer_runs_a_heavy_head_only_on_heatmap_cells(manifest: DatasetManifest) -> None:
    """SigNet (a head over a 17 × 25-cell window) scores as the dense engine does."""
    torch.manual_seed(0)
    model = get_model("signet").eval()
    sample = load_samples(manifest, (0,))[0]
    got = DenseScorer(model, [sample]).heatmap(0).scores
    want = sample_heatmap(model, sample, context_cells=0).scores
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isfinite(got).sum() > 10
    np.testing.assert_allclose(got, want, atol=1e-4, equal_nan=True)
