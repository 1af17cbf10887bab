"""Model evaluation on stored samples; the shipped checkpoint."""

from __future__ import annotations

import pytest
import torch

from aeroloc.errors import DataQualityError
from aeroloc.models import DEFAULT_CHECKPOINT, get_model, read_checkpoint
from aeroloc.pipeline import load_model
from aeroloc.training import evaluate as evaluate_module
from aeroloc.training.dataset import DatasetManifest, Sample, load_samples
from training_inputs import SMALL


def test_shipped_checkpoint_loads_offline() -> None:
    """The default model is the trained checkpoint inside the package (≤ 20 MB)."""
    assert DEFAULT_CHECKPOINT.is_file(), f"{DEFAULT_CHECKPOINT} missing: run make model"
    assert DEFAULT_CHECKPOINT.stat().st_size <= 20 * 1024 * 1024
    ckpt = read_checkpoint(DEFAULT_CHECKPOINT)
    assert ckpt.model == "effnet-lite0-siamese" and ckpt.preprocessing == "gray"
    assert ckpt.data_hash and ckpt.config["seed"] == 0
    # Trained on archives whose seeds are disjoint from the tests' (0-99).
    archives = {g.split("/")[0] for g in ckpt.config["split"]["train_groups"]}
    assert archives and all(int(a.rsplit("-", 1)[1]) >= 1000 for a in archives)
    model, label = load_model(None)
    assert "shipped checkpoint" in label
    x = torch.rand(2, 1, *model.spec.input_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        e = model.eval().embed(x)
    assert e.shape == (2, model.spec.desc_dim) and torch.isfinite(e).all()


def test_evaluate_counts_an_unscorable_photo_as_chance(
    manifest: DatasetManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A photo the model cannot compare (a binary photo without rock) scores 50 %, not found."""
    samples = load_samples(manifest, (0, 1))
    real = evaluate_module.score_sample

    def flat_first(model: object, sample: Sample, **kw: object) -> object:
        if sample is samples[0]:
            raise DataQualityError("the photo has no texture (constant gray)")
        return real(model, sample, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(evaluate_module, "score_sample", flat_first)
    model = get_model("effnet-lite0-siamese", weights=None, **SMALL).eval()
    ev = evaluate_module.evaluate(model, samples, ks=(1,), engine="dense")
    assert ev.n == 2 and ev.unscorable == 1
    first = ev.per_sample[0]
    assert first["confidence"] == 50.0 and first["hit@1"] is False
    assert "no texture" in first["unscorable"]
    assert "unscorable" not in ev.per_sample[1]
    assert ev.to_dict()["unscorable"] == 1
