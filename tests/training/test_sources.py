"""The batch sources of the training loop."""

from __future__ import annotations

import math

import numpy as np
import torch

from aeroloc.models import get_model
from aeroloc.training.config import preset
from aeroloc.training.dataset import DatasetManifest, load_samples
from aeroloc.training.features import FeatureBank
from aeroloc.training.sources import BankSource, ImageSource
from training_inputs import SMALL, small_config


def test_dense_positives_spread_over_the_allowed_shift(manifest: DatasetManifest) -> None:
    """A positive lies within ``max_shift`` windows of the truth, and uses that room."""
    model = get_model("effnet-lite0-siamese", weights=None, input_size=64, train_stages=0)
    bank = FeatureBank(model, load_samples(manifest, (0,)), sampler=preset(model.name).sampler)
    e = bank.entry(0)
    rng = np.random.default_rng(0)
    for max_shift in (0.125, 0.375):
        reach = max_shift * bank.n  # in head cells (n = 4 cells per window here)
        cells = np.array([bank.positive_cell(e, rng, max_shift) for _ in range(300)])
        for axis in (0, 1):
            off = cells[:, axis] - e.true_cell[axis]
            assert np.all(np.abs(off) <= reach + 1e-9), (max_shift, off.min(), off.max())
            # every whole cell within reach is drawn (the truth is far from the map border)
            t = e.true_cell[axis]
            within = range(math.ceil(t - reach), math.floor(t + reach) + 1)
            assert len(np.unique(cells[:, axis])) == len(within)


def test_image_source_batches_losses_and_hard_negatives(manifest: DatasetManifest) -> None:
    """Image triplets: equal seeds give equal batches; mined negatives survive a resume."""
    cfg = small_config(dense_training=False, items_per_sample=2)
    torch.manual_seed(0)
    model = get_model("effnet-lite0-siamese", weights=None, **SMALL)
    train_s, val_s = load_samples(manifest, (0, 1, 2)), load_samples(manifest, (3,))
    source = ImageSource(model, train_s, val_s, cfg, None)
    steps, batches = source.batches(0)
    first = next(batches)
    assert steps == 2 and first["anchor"].shape == (4, 1, 64, 64)
    again = next(ImageSource(model, train_s, val_s, cfg, None).batches(0)[1])
    assert torch.equal(first["negatives"], again["negatives"])
    loss, n = source.loss(model, first)
    assert n == 4 and torch.isfinite(loss)
    val = source.val_loss(model)
    assert val is not None and math.isfinite(val)
    source.mine(model, 1)
    assert source.hard
    resumed = ImageSource(model, train_s, val_s, cfg, None)
    resumed.load_hard_state(source.hard_state())
    assert resumed.hard.keys() == source.hard.keys()
    for i, cells in source.hard.items():
        np.testing.assert_array_equal(resumed.hard[i], cells)


def test_bank_source_batches_and_hard_state(manifest: DatasetManifest) -> None:
    """Feature-bank items: batches of (epoch, sample, item), finite losses, resumable mining."""
    cfg = small_config(items_per_sample=3)
    model = get_model("effnet-lite0-siamese", weights=None, input_size=64, train_stages=0)
    source = BankSource(model, load_samples(manifest, (0, 1)), [], cfg, False, None)
    steps, batches = source.batches(2)
    chunks = list(batches)
    assert steps == len(chunks) == 2 and sum(len(c) for c in chunks) == 6
    assert {item[0] for c in chunks for item in c} == {2}
    loss, n = source.loss(model, chunks[0])
    assert n == 4 and torch.isfinite(loss)
    assert source.mines and source.val_loss(model) is None
    source.mine(model, 1)
    other = BankSource(model, source.bank.samples, [], cfg, False, None)
    other.load_hard_state(source.hard_state())
    for i, (k, cells) in source.hard.items():
        assert other.hard[i][0] == k
        np.testing.assert_array_equal(other.hard[i][1], cells)
