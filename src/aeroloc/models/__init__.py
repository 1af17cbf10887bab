"""Similarity models: one registry, every model an embedder or a pair scorer.

>>> from aeroloc.models import get_model, list_models
>>> list_models()
['signet', 'resnet50-siamese', 'effnet-lite0-siamese', 'imlnet', 'olr']
>>> model = get_model("signet")            # random init; see each model for weights
>>> model.spec.input_size, model.spec.desc_dim
((155, 220), 128)

An *embedder* maps a window ``[B x C x H x W]`` (float in [0, 1]) to vectors
``[B x D]``; :meth:`Embedder.similarity` maps their Euclidean distance ``d``
monotonically into [0, 1]: ``1 - d²/4`` for L2-normalised embeddings
(``effnet-lite0-siamese``), ``1 / (1 + d / margin)`` otherwise (``signet``,
``resnet50-siamese``). A *pair scorer* computes features once per image and a
small head per pair (:class:`PairScorer`).

Every model has a convolutional ``trunk`` and a ``head_from_map`` that embeds
every window of a larger feature map, for dense heatmaps.

Checkpoints (:func:`save_checkpoint`, :func:`load_checkpoint`) record the
model name and config, so they rebuild through the registry
(:mod:`aeroloc.models.registry`; a model is one file that registers itself).
"""

from __future__ import annotations

from aeroloc.models.base import (
    PREPROCESSING_MODES,
    Embedder,
    ModelSpec,
    PairScorer,
    TrunkSplit,
    similarity_from_distance,
)
from aeroloc.models.checkpoint import (
    DEFAULT_CHECKPOINT,
    Checkpoint,
    default_model,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from aeroloc.models.losses import (
    contrastive_loss,
    heatmap_rank_loss,
    loss_for_triplets,
    triplet_loss,
)
from aeroloc.models.registry import (
    DEFAULT_MODEL,
    ModelEntry,
    WeightsCard,
    get_model,
    list_models,
    model_entry,
    model_spec,
    register,
    unregister,
)

# Importing a model module registers it (one register() call at its end); the
# registration order is the order list_models() and the CLI's help show.
# isort: off
from aeroloc.models.signet import SigNet
from aeroloc.models.resnet import ResNet50Siamese
from aeroloc.models.effnet import EffNetLite0Siamese
from aeroloc.models.imlnet import IMLNet
from aeroloc.models.olr import OLR

# isort: on

__all__ = [
    "DEFAULT_CHECKPOINT",
    "DEFAULT_MODEL",
    "OLR",
    "PREPROCESSING_MODES",
    "Checkpoint",
    "EffNetLite0Siamese",
    "Embedder",
    "IMLNet",
    "ModelEntry",
    "ModelSpec",
    "PairScorer",
    "ResNet50Siamese",
    "SigNet",
    "TrunkSplit",
    "WeightsCard",
    "contrastive_loss",
    "default_model",
    "get_model",
    "heatmap_rank_loss",
    "list_models",
    "load_checkpoint",
    "loss_for_triplets",
    "model_entry",
    "model_spec",
    "read_checkpoint",
    "register",
    "save_checkpoint",
    "similarity_from_distance",
    "triplet_loss",
    "unregister",
]
