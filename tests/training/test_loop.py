"""The training loop: smoke run, checkpoints, resume, determinism, bad input."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from aeroloc.errors import ConfigError, DataQualityError, InvalidInputError
from aeroloc.files import write_json
from aeroloc.models import get_model, load_checkpoint, read_checkpoint, save_checkpoint
from aeroloc.training.config import TrainConfig, preset
from aeroloc.training.dataset import DatasetManifest, load_samples
from aeroloc.training.loop import train
from aeroloc.training.sampling import AugmentConfig, augment_photo, crop_window
from aeroloc.training.sources import BankSource
from training_inputs import SMALL, fixed_loss, small_config


@pytest.fixture(scope="module")
def trained(manifest: DatasetManifest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One epoch of training on the tiny dataset, with its progress events."""
    out = tmp_path_factory.mktemp("train") / "model.pt"
    cfg = small_config(epochs=1)
    events: list = []
    result = train(cfg, manifest.root, out, progress=events.append)
    return {"result": result, "config": cfg, "out": out, "events": events}


def test_one_epoch_lowers_the_loss(trained: dict, manifest: DatasetManifest) -> None:
    result, cfg = trained["result"], trained["config"]
    torch.manual_seed(cfg.seed)
    before_model = get_model("effnet-lite0-siamese", **SMALL)
    after_model = load_checkpoint(result.checkpoint)
    idx = result.split.train
    assert fixed_loss(after_model, manifest, idx) < fixed_loss(before_model, manifest, idx)
    phases = {e.phase for e in trained["events"]}
    assert {"step", "validate", "epoch", "done"} <= phases
    assert result.before is not None and result.test is not None
    assert result.loss_curve.is_file() and result.loss_curve.read_bytes()[:4] == b"\x89PNG"
    history = json.loads(result.history_path.read_text())
    assert history["data_hash"] == manifest.data_hash
    assert [h["epoch"] for h in history["history"]] == [-1, 0]


def test_checkpoint_records_and_reloads_identically(
    trained: dict, manifest: DatasetManifest
) -> None:
    result = trained["result"]
    ckpt = read_checkpoint(result.checkpoint)
    assert ckpt.model == "effnet-lite0-siamese"
    assert ckpt.preprocessing == "gray" and ckpt.input_size == (64, 64)
    assert ckpt.data_hash == manifest.data_hash
    assert ckpt.model_config["input_size"] == 64
    assert ckpt.config["model"] == "effnet-lite0-siamese" and ckpt.config["seed"] == 5
    assert set(ckpt.config["split"]) >= {"train_groups", "val_groups", "test_groups"}
    a = load_checkpoint(result.checkpoint)
    b = load_checkpoint(result.checkpoint)
    x = torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(a.embed(x), b.embed(x))
    # Re-saving the loaded model and loading again changes nothing.
    again = save_checkpoint(a, trained["out"].with_name("again.pt"))
    c = load_checkpoint(again)
    with torch.inference_mode():
        assert torch.equal(a.embed(x), c.embed(x))


def test_training_is_deterministic_and_resumes(
    trained: dict, manifest: DatasetManifest, tmp_path: Path
) -> None:
    cfg, first = trained["config"], trained["result"]
    again = train(cfg, manifest.root, tmp_path / "a.pt")
    assert again.history[1]["train_loss"] == first.history[1]["train_loss"]
    sd_first = read_checkpoint(first.checkpoint).state_dict
    for k, v in read_checkpoint(again.checkpoint).state_dict.items():
        assert torch.equal(v, sd_first[k]), k
    last = read_checkpoint(first.last_checkpoint)
    assert last.extra["epoch"] == 1 and "optimizer" in last.extra
    resumed = train(
        replace(cfg, epochs=2), manifest.root, tmp_path / "b.pt", resume=first.last_checkpoint
    )
    assert [h["epoch"] for h in resumed.history] == [-1, 0, 1]
    assert resumed.history[1] == first.history[1]
    assert resumed.before is None and resumed.history[2]["mined"]
    assert read_checkpoint(resumed.last_checkpoint).extra["epoch"] == 2
    # Nothing left to train: the last checkpoint's best model is written again.
    done = train(cfg, manifest.root, tmp_path / "c.pt", resume=first.last_checkpoint)
    assert [h["epoch"] for h in done.history] == [-1, 0] and done.best_epoch == 0
    # A plain model checkpoint at its last epoch holds no training state to finish from.
    with pytest.raises(DataQualityError, match="raise --epochs"):
        train(cfg, manifest.root, tmp_path / "d.pt", resume=first.checkpoint)


def test_too_small_or_wrong_input(manifest: DatasetManifest, tmp_path: Path) -> None:
    small = tmp_path / "small"
    (small / "samples").mkdir(parents=True)
    rec = manifest.samples[0]
    dst = small / rec.file
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(manifest.root / rec.file, dst)
    one = replace(manifest, root=small, samples=(rec,))
    write_json(small / "manifest.json", one.to_dict())
    with pytest.raises(InvalidInputError, match="flight line"):
        train(small_config(), small, tmp_path / "m.pt")
    with pytest.raises(DataQualityError, match="at least 2"):
        train(small_config(val_fraction=0.0, test_fraction=0.0), small, tmp_path / "m.pt")
    with pytest.raises(ConfigError, match="unknown model"):
        preset("alexnet")
    with pytest.raises(ConfigError, match="unknown training option"):
        preset("signet", learning_rate=1.0)
    with pytest.raises(ConfigError, match="lr"):
        TrainConfig(lr=-1.0)
    with pytest.raises(ConfigError, match="optimizer"):
        TrainConfig(optimizer="sgd")
    signet = save_checkpoint(get_model("signet"), tmp_path / "signet.pt")
    with pytest.raises(ConfigError, match="holds model 'signet'"):
        train(small_config(), manifest.root, tmp_path / "m.pt", resume=signet)


def test_rank_loss_training_lowers_the_rank_loss(manifest: DatasetManifest, tmp_path: Path) -> None:
    """The listwise loss trains in the dense feature domain, without mining."""
    cfg = small_config(loss="rank", epochs=2, rank_tau=0.02)
    events: list = []
    result = train(cfg, manifest.root, tmp_path / "rank.pt", progress=events.append)
    assert "mine" not in {e.phase for e in events}
    assert not any(h["mined"] or h["hard_negatives"] for h in result.history)
    # Each row's val_loss is the mean rank loss of the validation photos: a smoothed
    # share of windows scoring above the truth, in (0, 1).
    losses = [h["val_loss"] for h in result.history]
    assert all(0 < v < 1 for v in losses)
    # On the training photos (without augmentation) the loss falls.
    samples = load_samples(manifest, result.split.train)
    torch.manual_seed(cfg.seed)
    before = get_model("effnet-lite0-siamese", **SMALL)
    after = load_checkpoint(result.checkpoint)

    def rank_loss(model: torch.nn.Module) -> float:
        source = BankSource(model, samples, [], cfg, False, None)  # type: ignore[arg-type]
        items = [(0, i, j) for i in range(len(samples)) for j in range(3)]
        model.eval()
        with torch.no_grad():
            return float(source.items_loss(source.bank, items, AugmentConfig.none(), {}))

    assert rank_loss(after) < rank_loss(before)
    ckpt = read_checkpoint(result.checkpoint)
    assert ckpt.config["loss"] == "rank" and ckpt.config["training_windows"] == "dense features"


def test_rank_loss_needs_the_dense_feature_domain(
    manifest: DatasetManifest, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="needs dense_training=True"):
        train(small_config(loss="rank", dense_training=False), manifest.root, tmp_path / "m.pt")
    signet = preset("signet", loss="rank", epochs=1, val_fraction=0.2, test_fraction=0.2)
    with pytest.raises(ConfigError, match="no frozen trunk prefix"):
        train(signet, manifest.root, tmp_path / "s.pt")
    with pytest.raises(ConfigError, match="loss must be"):
        TrainConfig(loss="hinge")
    with pytest.raises(ConfigError, match="rank_tau"):
        TrainConfig(rank_tau=0.0)


def test_trained_model_scores_an_augmented_window_above_other_windows(
    trained: dict, manifest: DatasetManifest
) -> None:
    """A window of the AoI, augmented as training augments photos, is closest to itself."""
    model = load_checkpoint(trained["result"].checkpoint).eval()
    hw = model.spec.input_size
    rng = np.random.default_rng(0)
    for sample in load_samples(manifest, (0, 2)):
        aoi, valid = sample.aoi, sample.valid
        h, w = aoi.shape
        centres = [(w * fx, h * fy) for fx in (0.3, 0.5, 0.7) for fy in (0.3, 0.5, 0.7)]
        windows = np.stack([crop_window(aoi, valid, c, out_hw=hw) for c in centres])
        for i in (0, 4, 8):
            view = augment_photo(windows[i], rng, AugmentConfig())
            with torch.inference_mode():
                a = model.embed(torch.from_numpy(view)[None, None])
                e = model.embed(torch.from_numpy(windows)[:, None])
                sims = model.similarity(a, e).numpy()
            assert int(np.argmax(sims)) == i, (sample.record.sample_id, i, sims.round(3))


def test_training_that_never_beats_the_start_is_flagged(trained: dict) -> None:
    """A run whose best epoch validates below the untrained model says so."""
    result = trained["result"]
    worse = replace(result, before={"mean_confidence": 61.1}, best={"val_confidence": 50.2})
    assert worse.regression() == (
        "no epoch beat the untrained model: validation confidence 50.2 % at best, "
        "61.1 % before training"
    )
    better = replace(result, before={"mean_confidence": 61.1}, best={"val_confidence": 70.0})
    assert better.regression() is None
    assert replace(result, before=None).regression() is None  # resumed: no "before"
