"""Metric-learning losses: contrastive (SigNet) and triplet (ResNet-50) of the thesis,
and a listwise rank loss over whole heatmaps.

The thesis's two work on Euclidean distances between embeddings ``[B x D]`` and
return the batch mean; :func:`heatmap_rank_loss` works on one photo's scores of
every window of its AoI.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

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


def heatmap_rank_loss(
    scores: Tensor,
    true_cell: tuple[float, float],
    negatives: Tensor,
    *,
    tau: float,
    stencil_step: float = 0.0,
) -> Tensor:
    """Smoothed share of a heatmap's windows that outrank the truth (a listwise loss).

    The confidence level (DESIGN.md) is the share of windows scoring below the
    true score, the mean over the true window and its 4-neighbours. With a
    step in place of the rank comparison this loss would be ``1 − confidence
    / 100`` over ``negatives``; a sigmoid of temperature ``tau`` makes it
    differentiable. Unlike a triplet loss it sees every window of the AoI at
    once, so it optimises the ranking that ``locate`` and the confidence level
    use.

    Args:
        scores: ``[R x C]`` similarity of one photo to every window (with gradients).
        true_cell: fractional (row, col) of the truth on that grid.
        negatives: ``[R x C]`` bool, the windows that should score below the truth.
        tau: sigmoid temperature, in score units (> 0).
        stencil_step: distance in cells of the 4-neighbours averaged into the
            true score (the heatmap stride); 0 = the true cell alone. Scores
            between cells are interpolated bilinearly.

    Returns:
        Scalar loss in (0, 1).
    """
    if scores.ndim != 2 or negatives.shape != scores.shape:
        raise InvalidInputError(
            f"expected scores [R x C] and a negatives mask of the same shape, got "
            f"{tuple(scores.shape)} and {tuple(negatives.shape)}"
        )
    if not tau > 0:
        raise InvalidInputError(f"tau must be > 0, got {tau}")
    if not bool(negatives.any()):
        raise InvalidInputError("the heatmap has no negative window")
    rows, cols = scores.shape
    r, c = true_cell
    s = stencil_step
    pts = [(r, c), (r - s, c), (r + s, c), (r, c - s), (r, c + s)] if s > 0 else [(r, c)]
    # grid_sample's normalised (x, y) with the corners on the outer cell centres.
    grid = torch.tensor(
        [[2 * x / max(cols - 1, 1) - 1, 2 * y / max(rows - 1, 1) - 1] for y, x in pts],
        dtype=scores.dtype,
        device=scores.device,
    )
    true = F.grid_sample(
        scores[None, None], grid[None, None], align_corners=True, padding_mode="border"
    ).mean()
    return torch.sigmoid((scores[negatives] - true) / tau).mean()
