"""Similarity models: one registry, every model an embedder or a pair scorer.

>>> from aeroloc.models import get_model, list_models
>>> list_models()
['signet', 'resnet50-siamese', 'effnet-lite0-siamese']
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
model name and config, so they rebuild through this registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aeroloc.errors import ModelError
from aeroloc.models.base import (
    PREPROCESSING_MODES,
    Embedder,
    ModelSpec,
    PairScorer,
    make_config,
    similarity_from_distance,
)
from aeroloc.models.checkpoint import (
    Checkpoint,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from aeroloc.models.effnet import EffNetLite0Siamese
from aeroloc.models.losses import (
    contrastive_loss,
    heatmap_rank_loss,
    loss_for_triplets,
    triplet_loss,
)
from aeroloc.models.resnet import ResNet50Siamese
from aeroloc.models.signet import SigNet

#: Registry: model name → model class (its ``build`` is the builder).
MODELS: dict[str, type[Embedder]] = {
    SigNet.name: SigNet,
    ResNet50Siamese.name: ResNet50Siamese,
    EffNetLite0Siamese.name: EffNetLite0Siamese,
}

#: The model for CPU users: ImageNet-pretrained offline, about 100 windows/s.
DEFAULT_MODEL = EffNetLite0Siamese.name

#: The shipped, adaptively trained ``effnet-lite0-siamese`` (``make model`` rebuilds it).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "weights" / "effnet-lite0-siamese.pt"


def default_model() -> tuple[Embedder, str]:
    """The shipped checkpoint, or the ImageNet ``effnet-lite0-siamese`` without one; and a label."""
    if DEFAULT_CHECKPOINT.is_file():
        return load_checkpoint(DEFAULT_CHECKPOINT), f"{DEFAULT_MODEL} (shipped checkpoint)"
    return get_model(DEFAULT_MODEL), f"{DEFAULT_MODEL} (ImageNet)"


def list_models() -> list[str]:
    """Names of all registered models."""
    return list(MODELS)


def _model_class(name: str) -> type[Embedder]:
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ModelError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}") from None


def get_model(name: str, **kw: Any) -> Embedder:
    """Build a registered model.

    Args:
        name: one of :func:`list_models`.
        **kw: ``weights`` (``"imagenet"``, a path, or None for random
            weights; defaults differ per model) and the model's config fields.

    Raises:
        ModelError: unknown name, missing or mismatching weights.
        ConfigError: unknown or invalid config option.
    """
    return _model_class(name).build(**kw)


def model_spec(name: str, **config: Any) -> ModelSpec:
    """The :class:`ModelSpec` of ``name`` built with ``config``, without building it."""
    cls = _model_class(name)
    return cls.spec_for(make_config(name, cls.config_class, config))


__all__ = [
    "DEFAULT_CHECKPOINT",
    "DEFAULT_MODEL",
    "MODELS",
    "PREPROCESSING_MODES",
    "Checkpoint",
    "EffNetLite0Siamese",
    "Embedder",
    "ModelSpec",
    "PairScorer",
    "ResNet50Siamese",
    "SigNet",
    "contrastive_loss",
    "default_model",
    "get_model",
    "heatmap_rank_loss",
    "list_models",
    "load_checkpoint",
    "loss_for_triplets",
    "model_spec",
    "read_checkpoint",
    "save_checkpoint",
    "similarity_from_distance",
    "triplet_loss",
]
