"""ResNet-50 Siamese: trunk, frozen layers, torchvision weights, folded batch norms."""

from __future__ import annotations

import pytest
import torch
import torchvision

from aeroloc.errors import ModelError
from aeroloc.models import get_model
from aeroloc.models.resnet import imagenet_weight_files
from model_inputs import built, images_for


def test_resnet_trunk_gives_7x7_at_200px():
    model = built("resnet50-siamese")
    with torch.inference_mode():
        fmap = model.trunk(torch.rand(1, 1, 200, 200))
    assert fmap.shape == (1, 2048, 7, 7)
    assert model.fc1.in_features == 7 * 7 * 2048


def test_resnet_frozen_up_to_conv5_block1():
    model = built("resnet50-siamese")
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


def test_resnet_for_inference_folds_batch_norms_without_changing_outputs():
    model = built("resnet50-siamese").eval()
    folded = model.for_inference()
    images = images_for(model, 2, seed=21)
    with torch.inference_mode():
        want, got = model.embed(images), folded.embed(images)
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-3 * float(want.abs().max()))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.backbone.modules())
    assert isinstance(model.backbone.bn1, torch.nn.BatchNorm2d)  # the original is untouched
    assert built("signet").for_inference() is built("signet")
    with pytest.raises(ModelError, match="eval mode"):
        model.train().for_inference()
    model.eval()


def test_resnet_trunk_split_composes_to_the_trunk():
    """Prefix = everything up to conv5_block1 (frozen); suffix = the two trainable bottlenecks."""
    model = built("resnet50-siamese")
    split = model.trunk_split()
    assert split is not None and split.margin == 2
    x = images_for(model, 1, extra_px=(32, 0))
    with torch.inference_mode():
        torch.testing.assert_close(split.suffix(split.prefix(x)), model.trunk(x))
