"""Training configuration and the per-model presets (read from the model registry).

Presets follow the thesis: SigNet RMSprop (lr 1e-4, ρ 0.9, ε 1e-8, weight
decay 5e-4, LR × 0.1 on plateau, batch 128); ResNet-50 Adam 1e-4; the
EfficientNet-Lite0 default Adam 3e-4 with a faster (× 3) new head. Each lives
next to its model, as plain data in its registry entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from aeroloc.errors import ConfigError
from aeroloc.models import DEFAULT_MODEL, list_models, model_entry
from aeroloc.training.sampling import AugmentConfig, SamplerConfig


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How to train one model (use :func:`preset` for the thesis's recipes).

    Attributes:
        model: registry name.
        model_options: the model's config fields (e.g. ``input_size``).
        weights: initial trunk weights: ``"imagenet"``, a path, or None (random init).
        optimizer: ``"adam"`` or ``"rmsprop"``.
        lr: learning rate of the pretrained trunk layers (all layers without ``weights``).
        head_lr_mult: layers that start from random weights learn this much faster.
        weight_decay: L2 penalty.
        rho: RMSprop smoothing constant (Keras ρ, PyTorch ``alpha``).
        eps: optimizer ε.
        plateau_factor: LR × this when the validation metric stalls.
        plateau_patience: epochs without improvement before the LR drops.
        batch_size: triplets (anchors) per step.
        items_per_sample: triplets per training photo and epoch.
        epochs: most epochs.
        patience: early stopping after this many epochs without improvement.
        min_delta: improvement (confidence-level points) that counts.
        loss: ``"metric"``: the model's own loss of the thesis (contrastive or
            triplet) on sampled triplets; ``"rank"``: :func:`heatmap_rank_loss`,
            the smoothed share of all windows of the AoI that outrank the truth
            (needs ``dense_training``; docs/models.md).
        rank_tau: the rank loss's sigmoid temperature, in similarity units.
        margin: metric loss margin; None = the model's own.
        val_fraction: share of photos (whole flight lines) for validation.
        test_fraction: share of photos (whole flight lines) held out for the test.
        hard_start_epoch: first epoch (0-based) with mined hard negatives.
        mine_every: re-mine hard negatives every this many epochs.
        augment: augmentation.
        sampler: negatives.
        dense_training: train windows in the dense engine's feature domain
            (:class:`FeatureBank`) when the model has a frozen trunk prefix;
            otherwise (and for SigNet) windows are cut and embedded one by one.
        bank_rotations: quarter turns of each AoI kept in the feature bank:
            1 (none), 2 (0° and 180°) or 4.
        feature_cache: keep the frozen-prefix maps of the AoIs on disk under
            ``<dataset>/feature-cache/`` so later runs skip computing them.
        eval_engine: heatmap engine for validation (``dense`` or ``batched``).
        eval_stride_fraction: heatmap stride for validation (a quarter window).
        seed: seeds every random draw; equal seeds give equal runs.
        threads: torch CPU threads while training (None = leave as is).
    """

    model: str = DEFAULT_MODEL
    model_options: dict[str, Any] = field(default_factory=dict)
    weights: str | None = "imagenet"
    optimizer: str = "adam"
    lr: float = 3e-4
    head_lr_mult: float = 3.0
    weight_decay: float = 0.0
    rho: float = 0.9
    eps: float = 1e-8
    plateau_factor: float = 0.3
    plateau_patience: int = 2
    batch_size: int = 16
    items_per_sample: int = 4
    epochs: int = 12
    patience: int = 4
    min_delta: float = 0.02
    loss: str = "metric"
    rank_tau: float = 0.01
    margin: float | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    hard_start_epoch: int = 1
    mine_every: int = 1
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    dense_training: bool = True
    bank_rotations: int = 2
    feature_cache: bool = True
    eval_engine: str = "dense"
    eval_stride_fraction: float = 0.25
    seed: int = 0
    threads: int | None = 2

    def __post_init__(self) -> None:
        if self.model not in list_models():
            raise ConfigError(
                f"unknown model {self.model!r}; valid names: {', '.join(list_models())}"
            )
        if self.loss not in ("metric", "rank"):
            raise ConfigError(f"loss must be 'metric' or 'rank', got {self.loss!r}")
        if not (isinstance(self.rank_tau, int | float) and self.rank_tau > 0):
            raise ConfigError(f"rank_tau must be > 0, got {self.rank_tau!r}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ConfigError(f"optimizer must be 'adam' or 'rmsprop', got {self.optimizer!r}")
        for name in ("lr", "head_lr_mult", "eps"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a number > 0, got {v!r}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"weight_decay must be ≥ 0, got {self.weight_decay}")
        if not 0 < self.rho < 1:
            raise ConfigError(f"rho must be in (0, 1), got {self.rho}")
        if not 0 < self.plateau_factor < 1:
            raise ConfigError(f"plateau_factor must be in (0, 1), got {self.plateau_factor}")
        for name in ("batch_size", "items_per_sample", "epochs", "patience", "mine_every"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ConfigError(f"{name} must be an integer ≥ 1, got {v!r}")
        for name in ("plateau_patience", "hard_start_epoch", "seed"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
                raise ConfigError(f"{name} must be an integer ≥ 0, got {v!r}")
        if self.margin is not None and not self.margin > 0:
            raise ConfigError(f"margin must be > 0, got {self.margin}")
        if self.eval_engine not in ("dense", "batched", "naive"):
            raise ConfigError(
                f"eval_engine must be dense, batched or naive, got {self.eval_engine!r}"
            )
        if not 0 < self.eval_stride_fraction <= 1:
            raise ConfigError(
                f"eval_stride_fraction must be in (0, 1], got {self.eval_stride_fraction}"
            )
        if self.bank_rotations not in (1, 2, 4):
            raise ConfigError(f"bank_rotations must be 1, 2 or 4, got {self.bank_rotations!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be ≥ 1, got {self.threads}")
        if not isinstance(self.augment, AugmentConfig) or not isinstance(
            self.sampler, SamplerConfig
        ):
            raise ConfigError("augment and sampler must be AugmentConfig and SamplerConfig")

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for checkpoints and JSON)."""
        d = asdict(self)
        d["model_options"] = dict(self.model_options)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(unknown)}")
        values = dict(d)
        try:
            if isinstance(values.get("augment"), Mapping):
                values["augment"] = AugmentConfig(**values["augment"])
            if isinstance(values.get("sampler"), Mapping):
                values["sampler"] = SamplerConfig(**values["sampler"])
        except TypeError as exc:
            raise ConfigError(f"bad augment/sampler options: {exc}") from exc
        return cls(**values)


def preset_config(model: str) -> TrainConfig:
    """The registered training preset of ``model`` (its :class:`~aeroloc.models.ModelEntry`).

    Raises:
        ConfigError: unknown model.
    """
    if model not in list_models():
        raise ConfigError(f"unknown model {model!r}; valid names: {', '.join(list_models())}")
    values = dict(model_entry(model).train_preset)
    if isinstance(values.get("augment"), Mapping):
        values["augment"] = AugmentConfig(**values["augment"])
    if isinstance(values.get("sampler"), Mapping):
        values["sampler"] = SamplerConfig(**values["sampler"])
    return TrainConfig(model=model, **values)


def preset(model: str, **overrides: Any) -> TrainConfig:
    """The thesis recipe for ``model`` (see :func:`preset_config`), with fields replaced.

    Raises:
        ConfigError: unknown model or option.
    """
    base = preset_config(model)
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"unknown training option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
        )
    values = dict(overrides)
    # Nested options may be given as dicts of the fields to change.
    try:
        if isinstance(values.get("augment"), Mapping):
            values["augment"] = replace(base.augment, **values["augment"])
        if isinstance(values.get("sampler"), Mapping):
            values["sampler"] = replace(base.sampler, **values["sampler"])
    except TypeError as exc:
        raise ConfigError(f"bad augment/sampler options: {exc}") from exc
    return replace(base, **values)
