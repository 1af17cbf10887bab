"""The model registry: name → :class:`ModelEntry`; each model module registers itself once.

A model is one file: it defines its :class:`~aeroloc.models.base.Embedder`
subclass (with :meth:`~aeroloc.models.base.Embedder.trunk_split` when part of
its trunk stays frozen in training) and ends with one :func:`register` call
holding its builder, its training preset, its feature-cache precision and its
weights card. Training, engines and the CLI ask this registry; none of them
tests a model's name or class.

>>> from aeroloc.models import model_entry
>>> model_entry("signet").train_preset["optimizer"]
'rmsprop'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from aeroloc.errors import ConfigError, ModelError
from aeroloc.models.base import PREPROCESSING_MODES, Embedder, ModelSpec, make_config

#: The model for CPU users: ImageNet-pretrained offline, about 100 windows/s.
DEFAULT_MODEL = "effnet-lite0-siamese"


@dataclass(frozen=True, kw_only=True)
class WeightsCard:
    """Where a model's weights come from (in the spirit of torchgeo's ``Weights.meta``).

    Attributes:
        source: where the initial weights come from (a package, a URL, "random init").
        licence: licence of those weights.
        input_size: (H, W) in pixels of one window at the default config.
        preprocessing: ``"binary"`` or ``"gray"``.
        trained_on: for a trained checkpoint, the data it was trained on.
        seed: for a trained checkpoint, the training seed.
    """

    source: str
    licence: str
    input_size: tuple[int, int]
    preprocessing: str
    trained_on: str | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.preprocessing not in PREPROCESSING_MODES:
            raise ConfigError(
                f"weights card: preprocessing must be one of {', '.join(PREPROCESSING_MODES)}, "
                f"got {self.preprocessing!r}"
            )


#: ``(model, batch, margin) -> loss``: a model's own loss on an image-triplet batch
#: (``anchor [B x 1 x h x w]``, ``positive [B x 1 x h x w]``, ``negatives [B x K x 1 x h x w]``,
#: ``sample [B]``), with gradients.
BatchLoss = Callable[[Embedder, Mapping[str, Tensor], float | None], Tensor]
#: ``(model, train samples, validation samples, training config, output file) -> report``:
#: a step before or after the metric training; the report (plain values) goes into the
#: run's history.
TrainStep = Callable[[Embedder, Sequence[Any], Sequence[Any], Any, Path], dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class TrainingHooks:
    """Training steps of a model whose training is not the thesis's metric loss alone.

    The training loop asks the registry for these; a model without hooks trains
    with its :class:`ModelSpec` loss (contrastive or triplet) or the rank loss.

    Attributes:
        batch_loss: replaces the metric loss on image-triplet batches (the loop
            then cuts image triplets, never dense feature-bank items).
        prepare: runs once before the first epoch of a new run (not on resume),
            e.g. to pre-train a part of the model the loss depends on.
        finish: runs once on the best model after training (figures, reports);
            files it writes sit next to the output checkpoint.
    """

    batch_loss: BatchLoss | None = None
    prepare: TrainStep | None = None
    finish: TrainStep | None = None


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """Everything aeroloc needs to know about one model.

    Attributes:
        model_class: the :class:`Embedder` subclass; its ``build`` is the builder
            and its ``trunk_split`` says how the trunk splits for frozen-trunk training.
        train_preset: the training recipe, as plain :class:`~aeroloc.training.config.TrainConfig`
            field values (``augment``/``sampler`` as dicts of the fields to change).
        half_feature_cache: training caches the frozen-prefix feature maps in
            half precision (keeps large maps, e.g. ResNet-50's 2048 channels, affordable).
        weights: the card of the model's default initial weights.
        checkpoint_weights: cards of trained checkpoints shipped with aeroloc, by file name.
        training: model-specific training steps (:class:`TrainingHooks`), or None.
    """

    model_class: type[Embedder]
    train_preset: Mapping[str, Any] = field(default_factory=dict)
    half_feature_cache: bool = False
    weights: WeightsCard
    checkpoint_weights: Mapping[str, WeightsCard] = field(default_factory=dict)
    training: TrainingHooks | None = None

    @property
    def name(self) -> str:
        """The registry name (the model class's ``name``)."""
        return self.model_class.name


_REGISTRY: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    """Add a model to the registry.

    Raises:
        ModelError: a model of that name is registered already.
    """
    if entry.name in _REGISTRY:
        raise ModelError(f"model {entry.name!r} is registered already")
    _REGISTRY[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    """Remove a model from the registry (tests that register a toy model).

    Raises:
        ModelError: unknown name.
    """
    model_entry(name)
    del _REGISTRY[name]


def list_models() -> list[str]:
    """Names of all registered models, in registration order."""
    return list(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    """The :class:`ModelEntry` of ``name``.

    Raises:
        ModelError: unknown name.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ModelError(f"unknown model {name!r}; valid names: {', '.join(_REGISTRY)}") from None


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
    return model_entry(name).model_class.build(**kw)


def model_spec(name: str, **config: Any) -> ModelSpec:
    """The :class:`ModelSpec` of ``name`` built with ``config``, without building it."""
    cls = model_entry(name).model_class
    return cls.spec_for(make_config(name, cls.config_class, config))


__all__ = [
    "DEFAULT_MODEL",
    "BatchLoss",
    "ModelEntry",
    "TrainStep",
    "TrainingHooks",
    "WeightsCard",
    "get_model",
    "list_models",
    "model_entry",
    "model_spec",
    "register",
    "unregister",
]
