"""Shared by the training tests: a small, fast training config and a fixed-batch loss."""

from __future__ import annotations

from dataclasses import replace

import torch

from aeroloc.training.config import TrainConfig, preset
from aeroloc.training.dataset import DatasetManifest, load_samples
from aeroloc.training.sampling import AugmentConfig, TripletDataset
from aeroloc.training.sources import batch_loss

SMALL = {"input_size": 64}


def small_config(**kw: object) -> TrainConfig:
    """``effnet-lite0-siamese`` at 64 px, one epoch of the metric loss, seed 5."""
    base = preset(
        "effnet-lite0-siamese",
        model_options=SMALL,
        epochs=1,
        batch_size=4,
        items_per_sample=6,
        lr=1e-3,
        val_fraction=0.2,
        test_fraction=0.2,
        hard_start_epoch=1,
        seed=5,
        loss="metric",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def fixed_loss(model: torch.nn.Module, manifest: DatasetManifest, idx: tuple[int, ...]) -> float:
    """The metric loss of ``model`` on one fixed, unaugmented batch of samples ``idx``."""
    ds = TripletDataset(
        load_samples(manifest, idx),
        mode="gray",
        input_hw=(64, 64),
        augment=AugmentConfig.none(),
        items_per_sample=4,
        seed=99,
    )
    items = [ds[i] for i in range(len(ds))]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("anchor", "positive", "negatives")}
    model.eval()
    with torch.no_grad():
        return float(batch_loss(model, batch, None))  # type: ignore[arg-type]
