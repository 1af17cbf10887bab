"""Metric-learning losses of the thesis: contrastive (SigNet) and triplet (ResNet-50).

Both work on Euclidean distances between embeddings ``[B x D]`` and return the
batch mean.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aeroloc.errors import InvalidInputError
from aeroloc.models.base import ModelSpec


def _pair_distance(a: Tensor, b: Tensor) -> Tensor:
    if a.shape != b.shape or a.ndim != 2:
        raise InvalidInputError(
            f"expected two embedding batches [B x D] of the same shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    return torch.linalg.vector_norm(a - b, dim=1)


def _check_margin(margin: float) -> None:
    if not margin > 0:
        raise InvalidInputError(f"loss margin must be > 0, got {margin}")


def contrastive_loss(a: Tensor, b: Tensor, same: Tensor, *, margin: float = 1.0) -> Tensor:
    """Contrastive loss (thesis eq. 4.1): ``½ (y d² + (1 - y) max(0, m - d)²)``.

    Args:
        a: ``[B x D]`` embeddings of the first images.
        b: ``[B x D]`` embeddings of the second images.
        same: ``[B]`` 1 for similar pairs, 0 for dissimilar ones.
        margin: distance beyond which dissimilar pairs cost nothing (thesis: 1).

    Returns:
        Scalar mean loss.
    """
    _check_margin(margin)
    d = _pair_distance(a, b)
    if same.shape != d.shape:
        raise InvalidInputError(f"expected labels [B] = {tuple(d.shape)}, got {tuple(same.shape)}")
    y = same.to(d.dtype)
    loss = 0.5 * (y * d.square() + (1 - y) * torch.clamp(margin - d, min=0).square())
    return loss.mean()


def triplet_loss(
    anchor: Tensor, positive: Tensor, negative: Tensor, *, margin: float = 1.0
) -> Tensor:
    """Triplet loss (thesis eq. 4.2): ``max(d(a, p) - d(a, n) + m, 0)``.

    Args:
        anchor: ``[B x D]`` embeddings of the photos.
        positive: ``[B x D]`` embeddings of the true windows.
        negative: ``[B x D]`` embeddings of other windows.
        margin: required gap between the two distances.

    Returns:
        Scalar mean loss.
    """
    _check_margin(margin)
    d_pos = _pair_distance(anchor, positive)
    d_neg = _pair_distance(anchor, negative)
    return torch.clamp(d_pos - d_neg + margin, min=0).mean()


def loss_for_triplets(
    spec: ModelSpec,
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    margin: float | None = None,
) -> Tensor:
    """The model's own loss on a triplet batch ``[B x D]`` each.

    A contrastive model sees the triplet as one similar pair (anchor,
    positive) and one dissimilar pair (anchor, negative).

    Args:
        spec: the model's :class:`ModelSpec` (``loss`` and default ``margin``).
        anchor: ``[B x D]``.
        positive: ``[B x D]``.
        negative: ``[B x D]``.
        margin: overrides ``spec.margin``.
    """
    m = spec.margin if margin is None else margin
    if spec.loss == "triplet":
        return triplet_loss(anchor, positive, negative, margin=m)
    n = anchor.shape[0]
    ones = torch.ones(n, device=anchor.device)
    pos = contrastive_loss(anchor, positive, ones, margin=m)
    neg = contrastive_loss(anchor, negative, torch.zeros_like(ones), margin=m)
    return 0.5 * (pos + neg)
