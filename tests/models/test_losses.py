"""Losses: contrastive, triplet, the heatmap rank loss; a few training steps lower them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aeroloc.errors import InvalidInputError
from aeroloc.models import (
    contrastive_loss,
    get_model,
    heatmap_rank_loss,
    loss_for_triplets,
    model_spec,
    triplet_loss,
)
from model_inputs import HAVE_EFFNET_WEIGHTS, smooth_images


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
    anchors = smooth_images(4, 64, 64, seed=5)
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
