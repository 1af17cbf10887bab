"""IML-Net: config, shapes, checkpoints, the three loss terms (DRCL, IRN, MUML) and their steps."""

from __future__ import annotations

import math

import pytest
import torch

from aeroloc.errors import ConfigError, InvalidInputError
from aeroloc.models import get_model, load_checkpoint, model_entry, model_spec, save_checkpoint
from aeroloc.models.imlnet import (
    IMLNet,
    cam_box,
    class_activation_map,
    crop_resize,
    hardest_negative_triplet_loss,
    imlnet_batch_loss,
    reconstruction_loss,
)
from model_inputs import smooth_images

SMALL = {"input_size": 64, "recon_size": 32}


def small_model(seed: int = 0, **kw: object) -> IMLNet:
    """A 64-px IML-Net with a random trunk (fast; the losses need no ImageNet weights)."""
    torch.manual_seed(seed)
    model = get_model("imlnet", weights=None, **{**SMALL, **kw})
    assert isinstance(model, IMLNet)
    return model


def a_batch(seed: int = 0, b: int = 3, k: int = 2, size: int = 64) -> dict[str, torch.Tensor]:
    """Image triplets: positives half the anchors, half other images (another "view"),
    negatives other images."""
    anchor = smooth_images(b, size, size, seed)
    positive = 0.5 * anchor + 0.5 * smooth_images(b, size, size, seed + 1)
    negatives = smooth_images(b * k, size, size, seed + 2).view(b, k, 1, size, size)
    return {
        "anchor": anchor,
        "positive": positive,
        "negatives": negatives,
        "sample": torch.arange(b),
    }


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"input_size": 72}, "multiple of 16"),
        ({"trunk_stage": 0}, "trunk_stage must be one of"),
        ({"train_stages": 6}, "train_stages must be 0-5"),
        ({"recon_size": 48}, "8-cell window map times a power of 2"),
        ({"recon_size": 8}, "8-cell window map times a power of 2"),
        ({"margin": 2.5}, r"margin must lie in \(0, 2 · radius\]"),
        ({"radius": 2.0, "margin": 2.5}, None),
        ({"cam_threshold": 1.0}, "cam_threshold"),
        ({"w_drcl": 0, "w_irn": 0, "w_muml": 0}, "not all 0"),
        ({"w_irn": -1.0}, "must be ≥ 0"),
    ],
)
def test_imlnet_config_validated(kw, match):
    if match is None:
        assert model_spec("imlnet", **kw).margin == pytest.approx(kw["margin"] / kw["radius"])
        return
    with pytest.raises(ConfigError, match=match):
        model_spec("imlnet", **kw)


def test_imlnet_shapes_and_spec():
    model = small_model().eval()
    spec = model.spec
    # The effnet-lite0-siamese head on the 112-channel stage-4 map of 4 x 4 cells.
    assert (spec.input_size, spec.desc_dim, spec.stride_px, spec.normalized) == (
        (64, 64),
        112 * 16,
        16,
        True,
    )
    assert model.window_map_size == (4, 4)
    x = smooth_images(2, 64, 64, 0)
    with torch.inference_mode():
        e = model.embed(x)
        assert e.shape == (2, 112 * 16)
        torch.testing.assert_close(e.norm(dim=1), torch.ones(2))
        assert model.reconstruct(e).shape == (2, 1, 32, 32)
        dense = model.embed_dense(smooth_images(1, 96, 128, 1))
        assert dense.shape == (1, 112 * 16, 3, 5)
        cams = model.unit_cams(x)
    # The four MUML units: ends of EfficientNet stages 1-4 (strides 4, 8, 16, 16).
    assert {u: tuple(c.shape) for u, c in cams.items()} == {
        1: (2, 16, 16),
        2: (2, 8, 8),
        3: (2, 4, 4),
        4: (2, 4, 4),
    }
    with pytest.raises(InvalidInputError, match="imlnet: expected images of exactly 64 x 64"):
        model.embed(smooth_images(1, 48, 48, 0))
    # The encoder's frozen stages are a cacheable prefix; stage 4 trains.
    split = model.trunk_split()
    assert split is not None
    with torch.inference_mode():
        torch.testing.assert_close(split.suffix(split.prefix(x)), model.trunk(x))
    assert model_entry("imlnet").training is not None


def test_imlnet_checkpoint_round_trip(tmp_path):
    model = small_model(3, margin=0.3).eval()
    path = save_checkpoint(model, tmp_path / "imlnet.pt")
    again = load_checkpoint(path)
    assert isinstance(again, IMLNet)
    assert again.config == model.config
    x = smooth_images(2, 64, 64, 5)
    with torch.inference_mode():
        torch.testing.assert_close(again.embed(x), model.embed(x))
        e = model.embed(x)
        torch.testing.assert_close(again.reconstruct(e), model.reconstruct(e))


def test_drcl_hardest_negative_on_a_hand_made_batch():
    """Known answer: on the unit circle the candidate nearest to the anchor is the negative."""
    anchor = torch.tensor([[1.0, 0.0]])
    positive = torch.tensor([[0.8, 0.6]])
    # Not normalised on purpose: the loss puts everything on the sphere first.
    candidates = torch.tensor([[0.0, 3.0], [-2.0, 0.0], [0.6, 0.8]])
    d_pos = math.sqrt(0.2**2 + 0.6**2)  # 0.632
    d_hard = math.sqrt(0.4**2 + 0.8**2)  # (0.6, 0.8) is the hardest: 0.894
    loss = hardest_negative_triplet_loss(anchor, positive, candidates, margin=0.5)
    assert float(loss) == pytest.approx(d_pos - d_hard + 0.5, abs=1e-6)
    # Excluding the hardest leaves (0, 1) at √2: no loss.
    excl = torch.tensor([[False, False, True]])
    assert (
        float(hardest_negative_triplet_loss(anchor, positive, candidates, margin=0.5, exclude=excl))
        == 0.0
    )
    # Radius 2 doubles every distance; the margin stays.
    loss2 = hardest_negative_triplet_loss(anchor, positive, candidates, margin=0.6, radius=2.0)
    assert float(loss2) == pytest.approx(2 * d_pos - 2 * d_hard + 0.6, abs=1e-6)
    # Two anchors: the mean of their terms; one without any candidate left costs 0.
    a2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p2 = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
    all_out = torch.tensor([[False, False, False], [True, True, True]])
    got = hardest_negative_triplet_loss(a2, p2, candidates, margin=0.5, exclude=all_out)
    assert float(got) == pytest.approx((d_pos - d_hard + 0.5) / 2, abs=1e-6)
    with pytest.raises(InvalidInputError, match="candidates"):
        hardest_negative_triplet_loss(anchor, positive, candidates[:, :1], margin=0.5)


def test_reconstruction_loss_by_hand():
    recon = torch.full((1, 1, 2, 2), 0.5)
    target = torch.zeros(1, 1, 4, 4)
    target[..., :2, :2] = 1.0  # its 2 x 2 area means: [[1, 0], [0, 0]]
    # (0.5² + 3 · 0.5²) / 4
    assert float(reconstruction_loss(recon, target)) == pytest.approx(0.25)
    with pytest.raises(InvalidInputError, match="equal B and C"):
        reconstruction_loss(recon, torch.zeros(2, 1, 4, 4))


def test_muml_crop_box_on_a_known_cam():
    """A CAM of ones on cells 2-3 (rows) x 4-5 (cols) of 8 x 8, upsampled × 8 bilinearly.

    Between cell centres the map ramps linearly, so it exceeds 0.5 for input
    coordinates in (1.5, 3.5) along rows, i.e. output pixels 16-31
    (pixel y samples (y + 0.5) / 8 - 0.5), and 32-47 along columns.
    """
    cam = torch.zeros(1, 8, 8)
    cam[0, 2:4, 4:6] = 1.0
    assert cam_box(cam, 64, threshold=0.5, min_side=8) == [(16, 32, 32, 48)]
    # Scaling and offsetting the CAM changes nothing (min-max normalisation).
    assert cam_box(3 * cam + 2, 64, threshold=0.5, min_side=8) == [(16, 32, 32, 48)]
    # A small box is widened about its centre, and kept inside the image.
    assert cam_box(cam, 64, threshold=0.5, min_side=24) == [(12, 36, 28, 52)]
    corner = torch.zeros(1, 8, 8)
    corner[0, 0, 0] = 1.0
    ((r0, r1, c0, c1),) = cam_box(corner, 64, threshold=0.5, min_side=24)
    assert (r0, r1, c0, c1) == (0, 24, 0, 24)
    # A flat CAM has no region of interest: the whole image.
    assert cam_box(torch.ones(1, 4, 4), 64, threshold=0.5, min_side=8) == [(0, 64, 0, 64)]
    # The crop is resized back to the input size.
    img = torch.zeros(1, 1, 64, 64)
    img[..., 16:32, 32:48] = 1.0
    crop = crop_resize(img, [(16, 32, 32, 48)], 64)
    assert crop.shape == (1, 1, 64, 64)
    torch.testing.assert_close(crop, torch.ones(1, 1, 64, 64))


def test_class_activation_map_weights_channels_by_their_mean():
    fmap = torch.zeros(1, 2, 2, 2)
    fmap[0, 0] = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # mean 0.25
    fmap[0, 1] = torch.tensor([[0.0, 2.0], [2.0, 2.0]])  # mean 1.5
    expected = (0.25 * fmap[0, 0] + 1.5 * fmap[0, 1]) / 1.75
    torch.testing.assert_close(class_activation_map(fmap)[0], expected)
    # Negative activations (stage 4 ends without ReLU) do not count.
    torch.testing.assert_close(class_activation_map(-fmap), torch.zeros(1, 2, 2))


def test_muml_pairs_crop_the_same_box_from_photo_and_view():
    model = small_model().eval()
    x = smooth_images(2, 64, 64, 4)
    gen = torch.Generator().manual_seed(0)
    crop_a, crop_p = model.muml_pairs(x, x.clone(), gen)
    assert crop_a.shape == crop_p.shape == (2, 1, 64, 64)
    torch.testing.assert_close(crop_a, crop_p)


@pytest.mark.parametrize("term", ["drcl", "irn", "muml"])
def test_one_step_lowers_each_loss_term(term):
    """One Adam step on a fixed batch lowers that term (same MUML unit draws both times)."""
    model = small_model(1).train()
    batch = a_batch(2)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def value() -> torch.Tensor:
        return model.loss_terms(batch, torch.Generator().manual_seed(7))[term]

    before = value()
    assert before.item() > 0
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = value()
    assert after.item() < before.item()


def test_batch_loss_is_the_weighted_sum():
    model = small_model(2, w_drcl=1.0, w_irn=2.0, w_muml=0.5).train()
    batch = a_batch(3)
    torch.manual_seed(11)
    with torch.no_grad():
        total = imlnet_batch_loss(model, batch, None)
    torch.manual_seed(11)
    with torch.no_grad():
        terms = model.loss_terms(batch)
    expected = terms["drcl"] + 2.0 * terms["irn"] + 0.5 * terms["muml"]
    torch.testing.assert_close(total, expected)
    no_muml = small_model(2, w_muml=0.0)
    with torch.no_grad():
        assert float(no_muml.loss_terms(batch)["muml"]) == 0.0
