"""Adaptive training: smoke run, checkpoints, resume, determinism, evaluation, bad input."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from aeroloc.errors import ConfigError, DataQualityError, InvalidInputError
from aeroloc.files import write_json
from aeroloc.models import (
    DEFAULT_CHECKPOINT,
    get_model,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from aeroloc.pipeline import load_model
from aeroloc.train import (
    DenseScorer,
    FeatureBank,
    TrainConfig,
    _BankSource,
    _batch_loss,
    preset,
    train,
)
from aeroloc.triplets import (
    AugmentConfig,
    DatasetManifest,
    Sample,
    TripletDataset,
    augment_photo,
    crop_window,
    load_samples,
    sample_heatmap,
)
from cli_helpers import run

SMALL = {"input_size": 64}


def small_config(**kw: object) -> TrainConfig:
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


def _fixed_loss(model: torch.nn.Module, manifest: DatasetManifest, idx: tuple[int, ...]) -> float:
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
        return float(_batch_loss(model, batch, None))  # type: ignore[arg-type]


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
    assert _fixed_loss(after_model, manifest, idx) < _fixed_loss(before_model, manifest, idx)
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
        source = _BankSource(model, samples, [], cfg, False, None)  # type: ignore[arg-type]
        items = [(0, i, j) for i in range(len(samples)) for j in range(3)]
        model.eval()
        with torch.no_grad():
            return float(source._items_loss(source.bank, items, AugmentConfig.none(), {}))

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


def test_presets_follow_the_thesis() -> None:
    s = preset("signet")
    assert (s.optimizer, s.lr, s.rho, s.eps, s.weight_decay, s.batch_size) == (
        "rmsprop",
        1e-4,
        0.9,
        1e-8,
        5e-4,
        128,
    )
    assert s.plateau_factor == 0.1 and s.weights is None
    r = preset("resnet50-siamese")
    assert (r.optimizer, r.lr) == ("adam", 1e-4)
    assert s.loss == r.loss == "metric" and preset("effnet-lite0-siamese").loss == "rank"
    assert TrainConfig.from_dict(s.to_dict()) == s


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


def test_dense_scorer_matches_the_dense_engine(trained: dict, manifest: DatasetManifest) -> None:
    """Validation and mining during training rank windows as locate does.

    Exactly so without context padding; with locate's default one cell of
    context only windows at the AoI's border see different padding.
    """
    model = load_checkpoint(trained["result"].checkpoint).eval()
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
    import aeroloc.train as train_module

    samples = load_samples(manifest, (0, 1))
    real = train_module.score_sample

    def flat_first(model: object, sample: Sample, **kw: object) -> object:
        if sample is samples[0]:
            raise DataQualityError("the photo has no texture (constant gray)")
        return real(model, sample, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(train_module, "score_sample", flat_first)
    model = get_model("effnet-lite0-siamese", weights=None, **SMALL).eval()
    ev = train_module.evaluate(model, samples, ks=(1,), engine="dense")
    assert ev.n == 2 and ev.unscorable == 1
    first = ev.per_sample[0]
    assert first["confidence"] == 50.0 and first["hit@1"] is False
    assert "no texture" in first["unscorable"]
    assert "unscorable" not in ev.per_sample[1]
    assert ev.to_dict()["unscorable"] == 1


def test_train_command_line(manifest: DatasetManifest, tmp_path: Path) -> None:
    """``aeroloc train`` writes the checkpoint and its side files, or exits 2 with one line."""
    out = tmp_path / "cli.pt"
    result = run(
        "train", "--model", "effnet-lite0-siamese", "--data", manifest.root, "--out", out,
        "--epochs", 1, "--batch-size", 4, "--loss", "rank", "--seed", 3,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ckpt = read_checkpoint(out)
    assert ckpt.config["loss"] == "rank" and ckpt.config["epochs"] == 1
    assert out.with_suffix(".loss.png").is_file() and out.with_suffix(".history.json").is_file()
    for args, message in (
        (("--model", "alexnet", "--data", manifest.root), "unknown model 'alexnet'"),
        (("--model", "signet", "--data", tmp_path / "missing"), "missing"),
        (("--model", "signet", "--data", manifest.root, "--loss", "rank"), "rank loss"),
    ):
        bad = run("train", *args, "--out", tmp_path / "bad.pt", "--epochs", 1)
        assert bad.exit_code == 2, bad.output
        lines = bad.output.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], bad.output
        assert not (tmp_path / "bad.pt").exists()


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
