"""Shared embedder behaviour of every registered model: specs, shapes, similarity, dense heads."""

from __future__ import annotations

import pytest
import torch
import torchvision

from aeroloc.errors import InvalidInputError, MissingFileError, ModelError
from aeroloc.models import get_model, model_spec, similarity_from_distance
from aeroloc.models.base import load_state_dict_checked
from model_inputs import NAMES, built, images_for


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


@pytest.mark.parametrize("name", NAMES)
def test_embedding_shapes_and_ranges(name):
    model = built(name)
    x = images_for(model, 2)
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


def test_similarity_monotone_in_distance():
    d = torch.linspace(0, 2, 50)
    for normalized in (True, False):
        s = similarity_from_distance(d, normalized=normalized, scale=1.0)
        assert ((s >= 0) & (s <= 1)).all()
        assert (s.diff() < 0).all()
    assert float(similarity_from_distance(torch.tensor(1.0), normalized=False)) == 0.5
    assert float(similarity_from_distance(torch.tensor(2.0), normalized=True)) == 0.0


def test_similarity_ranks_a_closer_window_higher():
    model = built("effnet-lite0-siamese")
    x = images_for(model, 1, seed=1)
    near = (x + 0.02 * torch.randn_like(x)).clamp(0, 1)
    other = images_for(model, 1, seed=2)
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
def test_bad_input_is_rejected(x, match):
    with pytest.raises(InvalidInputError, match=match):
        built("effnet-lite0-siamese").embed(x)


@pytest.mark.parametrize("name", NAMES)
def test_head_from_map_equals_embed(name):
    """Dense-engine contract, checked numerically for one window (BN in eval mode).

    1. On one window's own feature map the dense head returns a 1 x 1 map
       equal to ``embed`` (same arithmetic, tolerance 1e-5 relative).
    2. On a larger map, output ``[i, j]`` equals the head on the map cut at
       ``(i, j)`` (FC as convolution / pooling per window; tolerance 1e-4
       relative, float32 summation order).
    """
    model = built(name)
    s = model.stride_px
    big = images_for(model, 1, seed=3, extra_px=(2 * s, 3 * s))
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


@pytest.mark.parametrize("name", NAMES)
def test_similarity_at_equals_the_full_map(name):
    """The dense engine's gathered head scores what the whole similarity map scores there."""
    model = built(name)
    images = images_for(model, 1, seed=11, extra_px=(70, 90))
    anchor_image = images_for(model, 1, seed=12)
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
    with pytest.raises(ModelError, match="not a PyTorch file"):
        get_model("signet", weights=path)
    with pytest.raises(MissingFileError, match="SigNet weights file not found"):
        get_model("signet", weights=tmp_path / "absent.pth")
