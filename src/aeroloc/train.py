"""Adaptive training of the similarity models on a triplet dataset.

:func:`train` fine-tunes a registry model on a dataset written by
:func:`aeroloc.triplets.build_dataset`:

1. split the photos about 8:1:1 by flight line (:func:`~aeroloc.triplets.split_by_group`),
   so no photo and no line is in two parts;
2. each epoch, cut fresh triplets (anchor photo, jittered true window, random,
   blank and — from ``hard_start_epoch`` on — hard negatives that the current
   model ranks highest) and minimise the model's own loss (triplet or
   contrastive) over every (anchor, positive, negative) combination;
3. validate with the seed thesis's measure: the *mean confidence level* of the
   true window among all windows of the validation AoIs (heatmaps at a
   quarter-window stride, as ``locate`` computes them), plus recall@1/@5;
4. keep the best epoch (early stopping), write it with
   :func:`~aeroloc.models.save_checkpoint` (model, config, preprocessing,
   input size, data hash), a ``.last.pt`` checkpoint to resume from, the
   history as JSON and a loss-curve PNG.

Presets follow the thesis: SigNet RMSprop (lr 1e-4, ρ 0.9, ε 1e-8, weight
decay 5e-4, LR × 0.1 on plateau, batch 128); ResNet-50 Adam 1e-4; the
EfficientNet-Lite0 default Adam 3e-4 with a faster (× 3) new head.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from affine import Affine
from rasterio.crs import CRS
from torch import Tensor
from torch.nn import functional as F

from aeroloc.errors import ConfigError, DataQualityError, InvalidInputError, ModelError
from aeroloc.files import atomic_output, write_json, write_png
from aeroloc.heatmap.engines import (
    HeatmapConfig,
    dense_cell_scores,
    model_scale_aoi,
    to_model_input,
    window_scale,
)
from aeroloc.heatmap.grid import Heatmap, box_sums, grid_shape
from aeroloc.models import (
    DEFAULT_CHECKPOINT,
    DEFAULT_MODEL,
    Embedder,
    get_model,
    heatmap_rank_loss,
    list_models,
    loss_for_triplets,
    read_checkpoint,
    save_checkpoint,
)
from aeroloc.models.base import load_state_dict_checked
from aeroloc.models.effnet import EffNetLite0Siamese, conv_bn
from aeroloc.models.resnet import ResNet50Siamese
from aeroloc.triplets import (
    STORE_WINDOW_PX,
    AugmentConfig,
    DatasetManifest,
    Sample,
    SamplerConfig,
    Split,
    TripletDataset,
    augment_photo,
    combine_datasets,
    load_samples,
    mine_hard_negatives,
    read_manifest,
    rotate_point,
    score_heatmap,
    score_sample,
    split_by_group,
    window_nodata,
)

MIN_TRAIN_PHOTOS = 2
"""Fewest training photos :func:`train` accepts."""


# -- configuration ----------------------------------------------------------------------


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


PRESETS: dict[str, TrainConfig] = {
    # Thesis Table 4.2 (pre-training batch 128). No pretrained SigNet exists offline.
    "signet": TrainConfig(
        model="signet",
        weights=None,
        optimizer="rmsprop",
        lr=1e-4,
        rho=0.9,
        eps=1e-8,
        weight_decay=5e-4,
        plateau_factor=0.1,
        head_lr_mult=1.0,
        batch_size=128,
        items_per_sample=8,
        augment=AugmentConfig(brightness=0.0, contrast=0.0, gamma=0.0, grain=0.03),
    ),
    # Thesis 4.3.3: Adam 1e-4, ImageNet trunk.
    "resnet50-siamese": TrainConfig(model="resnet50-siamese", lr=1e-4, head_lr_mult=1.0),
    # The CPU default: the ImageNet trunk stays fixed (its stage-4 maps of every AoI are
    # computed once and cached) and the 1 × 1 projection learns which channels to trust
    # across epochs and sensors; an epoch then takes seconds instead of minutes. The
    # projected map is blurred over 3 × 3 cells, so that the windows a quarter window
    # around the truth score high too (the confidence level averages them). The rank
    # loss trains each photo against every window of its AoI at once, which is what
    # the confidence level and the candidates' ranking measure (docs/models.md).
    "effnet-lite0-siamese": TrainConfig(
        model="effnet-lite0-siamese",
        model_options={"train_stages": 0, "blur_cells": 3},
        loss="rank",
        lr=1e-3,
        epochs=10,
    ),
}


def preset(model: str, **overrides: Any) -> TrainConfig:
    """The thesis recipe for ``model`` (see :data:`PRESETS`), with fields replaced.

    Raises:
        ConfigError: unknown model or option.
    """
    if model not in PRESETS:
        raise ConfigError(f"unknown model {model!r}; valid names: {', '.join(PRESETS)}")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"unknown training option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
        )
    base = PRESETS[model]
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


# -- progress and results ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TrainEvent:
    """A progress report.

    Attributes:
        phase: ``"start"``, ``"mine"``, ``"step"``, ``"validate"``, ``"epoch"`` or ``"done"``.
        epoch: 0-based epoch (-1 = before training).
        epochs: planned epochs.
        step: steps done in this epoch.
        steps: steps per epoch.
        loss: running mean training loss of the epoch, when known.
        metrics: the epoch's record (phase ``"epoch"``) or validation scores.
        message: a one-line description.
    """

    phase: str
    epoch: int
    epochs: int
    step: int = 0
    steps: int = 0
    loss: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""


TrainProgress = Callable[[TrainEvent], None]


@dataclass(frozen=True, kw_only=True)
class EvalSummary:
    """Localisation quality of a model on stored photos.

    Attributes:
        n: photos scored.
        mean_confidence: mean confidence level (%).
        var_confidence: its variance (of the fraction, as the thesis reports it).
        recall: k → share of photos with the truth in the top-k candidates.
        mean_rank: mean rank of the first candidate at the truth (0 = not in the list).
        per_sample: one record per photo.
        seconds: time taken.
        unscorable: photos the model cannot compare (e.g. a binary photo
            without rock is one flat colour); each counts as chance: confidence
            50 %, not found.
    """

    n: int
    mean_confidence: float
    var_confidence: float
    recall: dict[int, float]
    per_sample: tuple[dict[str, Any], ...]
    seconds: float
    unscorable: int = 0

    def to_dict(self, *, with_samples: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "n": self.n,
            "mean_confidence": self.mean_confidence,
            "var_confidence": self.var_confidence,
            **{f"recall@{k}": v for k, v in self.recall.items()},
            "seconds": self.seconds,
            "unscorable": self.unscorable,
        }
        if with_samples:
            d["per_sample"] = list(self.per_sample)
        return d


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    """What :func:`train` wrote and measured.

    Attributes:
        checkpoint: the best epoch's model (``out``).
        last_checkpoint: the last epoch with optimizer state (resume from it).
        loss_curve: PNG of training/validation loss and validation confidence.
        history_path: JSON with config, split and one record per epoch.
        history: the epoch records.
        best_epoch: 0-based epoch of ``checkpoint``.
        before: validation scores before training (None when resumed).
        best: validation scores of the best epoch.
        test: test-split scores of the best model (None without a test split).
        stopped_early: training stopped before ``epochs``.
        elapsed_s: wall-clock time of this call.
        data_hash: the dataset's hash.
        split: the split used.
    """

    checkpoint: Path
    last_checkpoint: Path
    loss_curve: Path
    history_path: Path
    history: tuple[dict[str, Any], ...]
    best_epoch: int
    before: dict[str, Any] | None
    best: dict[str, Any]
    test: dict[str, Any] | None
    stopped_early: bool
    elapsed_s: float
    data_hash: str
    split: Split

    def regression(self) -> str | None:
        """A warning when no epoch beat the untrained model on validation, else None.

        Then the checkpoint (the best *trained* epoch) ranks the truth lower
        than the starting weights did: more data, more epochs or a lower
        learning rate are needed before it is worth using.
        """
        if not self.before:
            return None
        start = self.before.get("mean_confidence")
        best = self.best.get("val_confidence")
        if start is None or best is None or not best < start:
            return None
        return (
            f"no epoch beat the untrained model: validation confidence {best:.1f} % at best, "
            f"{start:.1f} % before training"
        )


# -- evaluation -------------------------------------------------------------------------


TrunkSplit = tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor], int]


def trunk_split(model: Embedder) -> TrunkSplit | None:
    """Split ``model.trunk`` into a frozen prefix and a trainable suffix, if the model has one.

    ``suffix(prefix(x))`` equals ``model.trunk(x)``; the prefix has no
    trainable parameter and its batch norms stay in eval mode, so its output
    on a fixed image does not change while training and can be cached. The
    prefix ends at the model's full stride, and each suffix output cell sees
    only prefix cells within ``margin`` of it.

    Returns:
        ``(prefix, suffix, margin)``, or None for models that train every
        layer (SigNet) or whose trainable part changes the stride.
    """
    if isinstance(model, EffNetLite0Siamese):
        bb = model.backbone
        first = model.config.trunk_stage + 1 - model.config.train_stages
        frozen = [b for b, st in zip(bb._blocks, bb.block_stage, strict=True) if st < first]
        trained = [b for b, st in zip(bb._blocks, bb.block_stage, strict=True) if st >= first]

        def eff_prefix(x: Tensor) -> Tensor:
            x = model.check_input(x, exact_size=False)
            y = F.relu6(conv_bn(x * (255.0 / 128.0) - (127.0 / 128.0), bb._conv_stem, bb._bn0))
            for block in frozen:
                y = block(y)
            return y

        def eff_suffix(y: Tensor) -> Tensor:
            for block in trained:
                y = block(y)
            return y

        dws = [cast(torch.nn.Conv2d, b._depthwise_conv) for b in trained]
        if any(dw.stride != (1, 1) for dw in dws):
            return None
        margin = sum((dw.kernel_size[0] - 1) // 2 for dw in dws)
        return eff_prefix, eff_suffix, margin
    if isinstance(model, ResNet50Siamese):
        rb = model.backbone

        def res_prefix(x: Tensor) -> Tensor:
            x = model.check_input(x, exact_size=False)
            x = (x - model.mean) / model.std
            x = rb.maxpool(rb.relu(rb.bn1(rb.conv1(x))))
            return rb.layer4[0](rb.layer3(rb.layer2(rb.layer1(x))))

        def res_suffix(y: Tensor) -> Tensor:
            for block in rb.layer4[1:]:
                y = block(y)
            return y

        # Each later bottleneck has one 3 × 3 convolution.
        return res_prefix, res_suffix, len(rb.layer4) - 1
    return None


class DenseScorer:
    """Dense-engine heatmaps of stored samples, with the frozen trunk prefix cached.

    Computes what :func:`aeroloc.heatmap.engines.compute_heatmap` with the
    ``dense`` engine computes (the AoI resized once so a window becomes the
    model input, trunk once, head per window, nearest dense output per cell),
    but keeps each AoI's frozen-prefix feature map, so that validation and
    hard-negative mining during training only run the trainable layers.
    Models without a frozen prefix (:func:`trunk_split` is None) run the
    whole trunk each time.
    """

    def __init__(
        self,
        model: Embedder,
        samples: Sequence[Sample],
        *,
        max_nodata: float = HeatmapConfig().max_nodata,
        cache: bool = True,
        half: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        self.model = model
        self.cache_dir = cache_dir
        self._key: str | None = None
        self.samples = list(samples)
        self.max_nodata = max_nodata
        self.mode = model.spec.preprocessing
        self.split = trunk_split(model) if cache else None
        self.half = half
        self._maps: dict[tuple[int, int], Tensor] = {}

    def aoi(self, i: int, k: int = 0) -> np.ndarray:
        """``[H x W]`` AoI of sample ``i`` (model's mode, NaN outside), turned by ``k`` × 90°."""
        return np.ascontiguousarray(np.rot90(self.samples[i].aoi_image(self.mode), k))

    def scale(self) -> tuple[float, float]:
        """(y, x) model pixels per stored pixel."""
        ih, iw = self.model.spec.input_size
        return ih / STORE_WINDOW_PX, iw / STORE_WINDOW_PX

    def scaled_aoi(self, aoi: np.ndarray) -> np.ndarray:
        """The AoI at model scale with NaN filled by its mean, as the dense engine feeds it."""
        finite = np.isfinite(aoi)
        fill = float(aoi[finite].mean())
        # No context cells: the dense engine's padding only shifts its map by that many cells.
        return model_scale_aoi(aoi, window_scale(self.model, STORE_WINDOW_PX), fill)

    def prefix_map(self, i: int, k: int = 0) -> Tensor:
        """``[1 x C x h x w]`` frozen-prefix map of sample ``i``'s AoI turned by ``k`` × 90°."""
        if self.split is None:
            raise ModelError(f"{self.model.spec.name} has no frozen trunk prefix to cache")
        key = (i, k % 4)
        if key not in self._maps:
            path = None
            if self.cache_dir is not None:
                sha = self.samples[i].record.sha256[:20]
                path = self.cache_dir / self._prefix_key() / f"{sha}-{self.mode}-{k % 4}.pt"
            y = None
            if path is not None and path.is_file():
                try:
                    y = torch.load(path, map_location="cpu", weights_only=True)
                except Exception:  # a corrupt cache file is recomputed
                    y = None
            if y is None:
                x = torch.from_numpy(self.scaled_aoi(self.aoi(i, k)))[None, None]
                with torch.inference_mode():
                    y = self.split[0](x.contiguous(memory_format=torch.channels_last))
                y = (y.half() if self.half else y).contiguous()
                if path is not None:
                    with atomic_output(path) as tmp:
                        torch.save(y, tmp)
            self._maps[key] = y
        return self._maps[key]

    def _prefix_key(self) -> str:
        """Hash of everything the frozen prefix depends on (model, config, frozen weights)."""
        if self._key is None:
            h = hashlib.sha256()
            h.update(
                json.dumps([self.model.spec.name, self.model.config_dict(), self.half]).encode()
            )
            # Frozen layers only: their parameters and (frozen batch norms') statistics.
            for mname, module in self.model.named_modules():
                own = list(module.named_parameters(recurse=False))
                if not own or any(p.requires_grad for _, p in own):
                    continue
                tensors = own + list(module.named_buffers(recurse=False))
                for name, t in tensors:
                    h.update(f"{mname}.{name}".encode())
                    h.update(t.detach().cpu().contiguous().numpy().tobytes())
            self._key = h.hexdigest()[:16]
        return self._key

    def trunk_map(self, i: int, k: int = 0) -> Tensor:
        """``[1 x F x h x w]`` full trunk map of the AoI (suffix over the cached prefix)."""
        if self.split is None:
            x = torch.from_numpy(self.scaled_aoi(self.aoi(i, k)))[None, None]
            return self.model.trunk(x)
        return self.split[1](self.prefix_map(i, k).float())

    def heatmap(self, i: int, stride_fraction: float = 0.25) -> Heatmap:
        """Heatmap of sample ``i`` (cells in stored pixels), as the dense engine scores it."""
        model = self.model
        sample = self.samples[i]
        aoi = self.aoi(i)
        window = STORE_WINDOW_PX
        stride_px = max(1, round(window * stride_fraction))
        shape = grid_shape(aoi.shape[0], aoi.shape[1], window, stride_px)
        valid = window_nodata(np.isfinite(aoi), window, stride_px, shape) <= self.max_nodata
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                photo = to_model_input(sample.photo_image(self.mode), model.spec.input_size)
                anchor = model.embed(torch.from_numpy(photo)[None, None])
                scores = dense_cell_scores(
                    model,
                    anchor[0],
                    self.trunk_map(i),
                    valid,
                    stride_px=stride_px,
                    input_per_px=self.scale(),
                )
        finally:
            model.train(was_training)
        return Heatmap(
            scores=scores,
            window_px=window,
            stride_px=stride_px,
            pixel_to_map=Affine.identity(),
            crs=CRS.from_epsg(3031),
            model=model.spec.name,
            engine="dense",
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class BankEntry:
    """One sample, turned by ``k`` × 90°, on the grid of dense head outputs.

    Head output ``(r, c)`` embeds the window whose feature map starts at
    prefix cell ``(r, c)``: model pixels ``(r, c) × stride``.

    Attributes:
        k: quarter turns.
        photo: ``[S x S]`` the photo in [0, 1], turned alike.
        true_cell: fractional (row, col) of the true window's head output.
        distance: ``[R x C]`` distance of each window from the truth, in windows.
        usable: ``[R x C]`` enough data and away from the map border
            (so a crop of the prefix map gives exactly the dense features).
        random: ``[N x 2]`` usable windows at least ``min_distance`` from the truth.
        blank: ``[M x 2]`` those of them with no rock and little texture.
    """

    k: int
    photo: np.ndarray
    true_cell: tuple[float, float]
    distance: np.ndarray
    usable: np.ndarray
    random: np.ndarray
    blank: np.ndarray


class FeatureBank(DenseScorer):
    """Training windows in the dense engine's feature domain.

    A window's embedding in a dense heatmap is the head over its cells of
    ``suffix(prefix(AoI))``; a suffix output cell sees only prefix cells
    within ``margin``, so a crop of the cached prefix map grown by the margin
    gives exactly the features the dense engine scores, context included.
    Training on such crops (instead of separately cut windows, whose borders
    see zero padding) trains what ``locate`` ranks. Anchors (photos) are
    embedded on their own, as at inference.
    """

    def __init__(
        self,
        model: Embedder,
        samples: Sequence[Sample],
        *,
        sampler: SamplerConfig,
        half: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        super().__init__(model, samples, half=half, cache_dir=cache_dir)
        if self.split is None:
            raise ModelError(
                f"{model.spec.name} has no frozen trunk prefix; train it on image triplets"
            )
        self.sampler = sampler
        self._prefix, self._suffix, self.margin = self.split
        self.n = model.window_map_size[0]
        self._entries: dict[tuple[int, int], BankEntry] = {}

    def entry(self, i: int, k: int = 0) -> BankEntry:
        """Geometry and negative candidates of sample ``i`` turned by ``k`` × 90°."""
        key = (i, k % 4)
        if key in self._entries:
            return self._entries[key]
        s = self.samples[i]
        cfg = self.sampler
        fmap = self.prefix_map(i, k)
        h, w = fmap.shape[-2:]
        n, m = self.n, self.margin
        rows, cols = h - n + 1, w - n + 1
        sy, sx = self.scale()
        step = self.model.stride_px
        tops = np.rint(np.arange(rows) * step / sy).astype(np.int64)
        lefts = np.rint(np.arange(cols) * step / sx).astype(np.int64)
        win = STORE_WINDOW_PX
        valid = np.ascontiguousarray(np.rot90(s.valid, k))
        area = float(win * win)
        nodata = 1.0 - box_sums(valid, win, tops, lefts) / area
        gray = np.ascontiguousarray(np.rot90(s.aoi, k)).astype(np.float64) / 255.0 * valid
        mean = box_sums(gray, win, tops, lefts) / area
        std = np.sqrt(np.maximum(box_sums(gray * gray, win, tops, lefts) / area - mean**2, 0))
        rock = (
            np.zeros((rows, cols))
            if s.rock is None
            else box_sums(np.rot90(s.rock, k), win, tops, lefts) / area
        )
        tc, tr = rotate_point(*s.record.true_center, s.aoi.shape, k)
        true_cell = ((tr - win / 2) * sy / step, (tc - win / 2) * sx / step)
        rr, cc = np.mgrid[0:rows, 0:cols]
        distance = np.hypot(rr - true_cell[0], cc - true_cell[1]) / n
        inside = (rr >= m) & (cc >= m) & (rr + n + m <= h) & (cc + n + m <= w)
        usable = inside & (nodata <= cfg.max_nodata)
        far = usable & (distance >= cfg.min_distance)
        random = np.argwhere(far)
        blank = np.empty((0, 2), dtype=np.int64)
        if random.size:
            limit = np.quantile(std[far], cfg.blank_std_quantile)
            blank = np.argwhere(far & (rock <= cfg.blank_rock_max) & (std <= limit))
        if not len(random):
            raise DataQualityError(
                f"sample {s.record.sample_id}: no window lies {cfg.min_distance} windows from "
                "the truth; enlarge the AoI buffer"
            )
        photo = np.ascontiguousarray(np.rot90(s.photo_image(self.mode), k))
        e = BankEntry(
            k=k % 4,
            photo=photo,
            true_cell=true_cell,
            distance=distance,
            usable=usable,
            random=random,
            blank=blank,
        )
        self._entries[key] = e
        return e

    def positive_cell(
        self, e: BankEntry, rng: np.random.Generator, max_shift: float
    ) -> tuple[int, int]:
        """A head output within ``max_shift`` windows of the truth on each axis (or the nearest)."""
        reach = max_shift * self.n
        opts = []
        for t in e.true_cell:
            near = range(math.ceil(t - reach), math.floor(t + reach) + 1)
            opts.append(list(near) or [round(t)])
        r = int(opts[0][rng.integers(len(opts[0]))])
        c = int(opts[1][rng.integers(len(opts[1]))])
        rows, cols = e.usable.shape
        m = self.margin
        h, w = rows + self.n - 1, cols + self.n - 1
        r = int(np.clip(r, m, h - self.n - m))
        c = int(np.clip(c, m, w - self.n - m))
        return r, c

    def window_embeddings(self, cells: Sequence[tuple[int, int, int, int]]) -> Tensor:
        """Embeddings ``[N x D]`` of windows ``(sample, k, row, col)``, with gradients."""
        n, m = self.n, self.margin
        crops = []
        for i, k, r, c in cells:
            fmap = self.prefix_map(i, k)
            crops.append(fmap[0, :, r - m : r + n + m, c - m : c + n + m])
        x = torch.stack(crops).float().contiguous(memory_format=torch.channels_last)
        y = self._suffix(x)[:, :, m : m + n, m : m + n]
        return self.model.head_from_map(y)[:, :, 0, 0]

    def anchor_embeddings(self, photos: Sequence[np.ndarray]) -> Tensor:
        """Embeddings ``[N x D]`` of photos at model input size (no gradients in the prefix)."""
        x = torch.from_numpy(np.stack(photos))[:, None].contiguous(
            memory_format=torch.channels_last
        )
        with torch.no_grad():
            pre = self._prefix(x)
        return self.model.head_from_map(self._suffix(pre))[:, :, 0, 0]

    def window_scores(self, i: int, k: int = 0) -> np.ndarray:
        """``[R x C]`` similarity of the clean photo to every dense window (no gradients)."""
        e = self.entry(i, k)
        model = self.model
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                photo = to_model_input(e.photo, model.spec.input_size)
                anchor = model.embed(torch.from_numpy(photo)[None, None])
                sims = model.similarity_map(anchor[0], self.trunk_map(i, k))
        finally:
            model.train(was_training)
        return sims.float().numpy()

    def hard_cells(self, i: int, k: int, pool: int) -> np.ndarray:
        """``[M x 2]`` the best-scoring usable windows far from the truth, half a window apart."""
        e = self.entry(i, k)
        scores = self.window_scores(i, k)
        far = e.usable & (e.distance >= self.sampler.min_distance)
        flat = np.where(far, scores, -np.inf).ravel()
        picked: list[tuple[int, int]] = []
        for idx in np.argsort(-flat, kind="stable"):
            if not np.isfinite(flat[idx]) or len(picked) >= pool:
                break
            r, c = divmod(int(idx), scores.shape[1])
            if all(math.hypot(r - pr, c - pc) >= 0.5 * self.n for pr, pc in picked):
                picked.append((r, c))
        return np.asarray(picked, dtype=np.int64).reshape(-1, 2)


def evaluate(
    model: Embedder,
    samples: Sequence[Sample],
    *,
    ks: Sequence[int] = (1, 5),
    engine: str = "dense",
    stride_fraction: float = 0.25,
    scorer: DenseScorer | None = None,
) -> EvalSummary:
    """Mean confidence level and recall@k of ``model`` on stored samples.

    Each photo's heatmap is computed as ``locate`` does (its preprocessing
    mode, ``engine``, a window stride of ``stride_fraction``); recall@k counts
    the truth as found when one of the top-k candidates (non-maximum
    suppression over half a window) lies within half a window of it.

    Args:
        model: the model.
        samples: stored samples.
        ks: the k of recall@k.
        engine: heatmap engine.
        stride_fraction: window stride as a fraction of the window.
        scorer: a :class:`DenseScorer` over the same samples (same result as
            ``engine="dense"``, faster when called repeatedly).
    """
    if not samples:
        raise InvalidInputError("no samples to evaluate")
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    rows = []
    try:
        for i, s in enumerate(samples):
            if scorer is not None:
                sc = score_heatmap(
                    scorer.heatmap(i, stride_fraction),
                    s.record.true_center,
                    sample_id=s.record.sample_id,
                    ks=ks,
                )
            else:
                try:
                    sc = score_sample(
                        model, s, ks=ks, engine=engine, stride_fraction=stride_fraction
                    )
                except DataQualityError as exc:
                    rows.append(_chance_row(s.record.sample_id, ks, str(exc)))
                    continue
            rows.append(
                {
                    "sample_id": sc.sample_id,
                    "confidence": sc.confidence,
                    "rank": sc.rank,
                    "error_windows": sc.error_windows,
                    **{f"hit@{k}": v for k, v in sc.hits.items()},
                }
            )
    finally:
        model.train(was_training)
    conf = np.array([r["confidence"] for r in rows], dtype=np.float64)
    ok = np.isfinite(conf)
    return EvalSummary(
        n=len(rows),
        mean_confidence=float(conf[ok].mean()) if ok.any() else float("nan"),
        var_confidence=float((conf[ok] / 100.0).var()) if ok.any() else float("nan"),
        recall={k: float(np.mean([r[f"hit@{k}"] for r in rows])) for k in ks},
        per_sample=tuple(rows),
        seconds=time.perf_counter() - t0,
        unscorable=sum("unscorable" in r for r in rows),
    )


def _chance_row(sample_id: str, ks: Sequence[int], reason: str) -> dict[str, Any]:
    """The evaluation record of a photo the model cannot compare: chance level."""
    return {
        "sample_id": sample_id,
        "confidence": 50.0,
        "rank": None,
        "error_windows": math.nan,
        **{f"hit@{k}": False for k in ks},
        "unscorable": reason,
    }


def evaluate_dataset(
    model: Embedder,
    data: str | os.PathLike[str] | DatasetManifest,
    *,
    ks: Sequence[int] = (1, 5),
    engine: str = "dense",
    stride_fraction: float = 0.25,
) -> EvalSummary:
    """:func:`evaluate` on every photo of a dataset (e.g. one built from held-out archives)."""
    manifest = data if isinstance(data, DatasetManifest) else read_manifest(data)
    return evaluate(
        model, load_samples(manifest), ks=ks, engine=engine, stride_fraction=stride_fraction
    )


# -- training ---------------------------------------------------------------------------


@contextmanager
def _torch_settings(threads: int | None) -> Iterator[None]:
    """Thread count and deterministic algorithms for the run, restored afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


def build_model(config: TrainConfig) -> Embedder:
    """The model to train, seeded so that its new layers start the same every run."""
    torch.manual_seed(config.seed)
    return get_model(config.model, weights=config.weights, **config.model_options)


def _param_groups(model: Embedder, config: TrainConfig) -> list[dict[str, Any]]:
    # Layers loaded from pretrained weights learn at lr, new ones faster.
    pretrained = config.weights is not None
    base: list[torch.nn.Parameter] = []
    new: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (base if pretrained and name.startswith("backbone.") else new).append(p)
    groups = []
    if base:
        groups.append({"params": base, "lr": config.lr})
    if new:
        groups.append({"params": new, "lr": config.lr * (config.head_lr_mult if base else 1.0)})
    if not groups:
        raise ModelError(f"{config.model} has no trainable parameter")
    return groups


def _optimizer(model: Embedder, config: TrainConfig) -> torch.optim.Optimizer:
    groups = _param_groups(model, config)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            groups, lr=config.lr, alpha=config.rho, eps=config.eps, weight_decay=config.weight_decay
        )
    return torch.optim.Adam(groups, lr=config.lr, eps=config.eps, weight_decay=config.weight_decay)


def _batch_loss(model: Embedder, batch: dict[str, Tensor], margin: float | None) -> Tensor:
    """Loss over every (anchor, positive, negative_k) of a batch, one forward pass."""
    a, p, n = batch["anchor"], batch["positive"], batch["negatives"]
    b, k = n.shape[0], n.shape[1]
    x = torch.cat([a, p, n.flatten(0, 1)])
    if x.shape[1] != model.spec.channels:
        x = x.expand(-1, model.spec.channels, -1, -1)
    emb = model.embed(x.contiguous(memory_format=torch.channels_last))
    ea, ep, en = emb[:b], emb[b : 2 * b], emb[2 * b :]
    return loss_for_triplets(
        model.spec,
        ea.repeat_interleave(k, dim=0),
        ep.repeat_interleave(k, dim=0),
        en,
        margin=margin,
    )


def _loader(ds: TripletDataset, batch_size: int, seed: int) -> torch.utils.data.DataLoader[Any]:
    g = torch.Generator()
    g.manual_seed(seed)
    return torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=True, generator=g, num_workers=0
    )


def _mean_loss(model: Embedder, ds: TripletDataset, batch_size: int, margin: float | None) -> float:
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ds), batch_size):
            items = [ds[i] for i in range(start, min(len(ds), start + batch_size))]
            batch = {
                k: torch.stack([it[k] for it in items]) for k in ("anchor", "positive", "negatives")
            }
            total += float(_batch_loss(model, batch, margin)) * len(items)
            n += len(items)
    return total / max(n, 1)


def _loss_curve(history: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    ep = [h["epoch"] + 1 for h in history if h["epoch"] >= 0]
    tr = [h["train_loss"] for h in history if h["epoch"] >= 0]
    va = [h["val_loss"] for h in history if h["epoch"] >= 0]
    ax.plot(ep, tr, "o-", label="training loss")
    if any(v is not None and math.isfinite(v) for v in va):
        ax.plot(ep, va, "s-", label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ce = [h["epoch"] + 1 for h in history]
    cv = [h["val_confidence"] for h in history]
    if any(v is not None and math.isfinite(v) for v in cv):
        ax2.plot(ce, cv, "^--", color="tab:green", label="val. mean confidence level (%)")
        ax2.set_ylabel("mean confidence level (%)")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return write_png(path, fig)


def sibling(out: Path, suffix: str) -> Path:
    """``out`` with its suffix replaced by ``suffix`` (``model.pt`` → ``model.last.pt``)."""
    return out.with_name(out.stem + suffix)


def train(
    config: TrainConfig,
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    resume: str | os.PathLike[str] | None = None,
    progress: TrainProgress | None = None,
) -> TrainResult:
    """Train ``config.model`` on the dataset(s) in ``data``; write the best checkpoint to ``out``.

    Also writes ``<out stem>.last.pt`` (last epoch, optimizer state, hard
    negatives: pass it as ``resume`` to continue), ``<out stem>.history.json``
    and ``<out stem>.loss.png``.

    Args:
        config: recipe (see :func:`preset`).
        data: dataset folder (``aeroloc triplets``), or several (combined).
        out: checkpoint file to write.
        resume: a checkpoint of the same model to continue from (its epoch,
            weights and, if present, optimizer state and hard negatives).
        progress: called with :class:`TrainEvent` reports.

    Raises:
        ConfigError: bad config; resume checkpoint of another model.
        DataQualityError: empty or too small dataset; no binary data for SigNet.
        ModelError: weights cannot be loaded.
    """
    t_start = time.perf_counter()
    out_path = Path(out)
    paths = [data] if isinstance(data, str | os.PathLike) else list(data)
    manifest = combine_datasets([read_manifest(p) for p in paths])
    split = split_by_group(
        manifest,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    if len(split.train) < MIN_TRAIN_PHOTOS:
        raise DataQualityError(
            f"dataset {manifest.root} leaves {len(split.train)} training photo(s) after the "
            f"split; at least {MIN_TRAIN_PHOTOS} are needed: add archives"
        )
    emit = progress or (lambda e: None)
    with _torch_settings(config.threads):
        return _train(config, manifest, split, out_path, resume, emit, t_start)


class _ImageSource:
    """Image triplets (:class:`TripletDataset`): every window is cut and embedded on its own."""

    def __init__(
        self,
        model: Embedder,
        train_s: Sequence[Sample],
        val_s: Sequence[Sample],
        config: TrainConfig,
        scorer: DenseScorer | None,
    ) -> None:
        spec = model.spec
        self.config = config
        self.samples = list(train_s)
        self.ds = TripletDataset(
            train_s,
            mode=spec.preprocessing,
            input_hw=spec.input_size,
            augment=config.augment,
            sampler=config.sampler,
            items_per_sample=config.items_per_sample,
            seed=config.seed,
        )
        self.val_ds = (
            TripletDataset(
                val_s,
                mode=spec.preprocessing,
                input_hw=spec.input_size,
                augment=AugmentConfig.none(),
                sampler=replace(config.sampler, hard_fraction=0.0),
                items_per_sample=2,
                seed=config.seed + 7919,
            )
            if val_s
            else None
        )
        self.scorer = scorer
        self.hard: dict[int, np.ndarray] = {}
        self.mines = True

    def mine(self, model: Embedder, epoch: int) -> None:
        self.hard = mine_hard_negatives(
            model,
            self.samples,
            self.ds.grids,
            pool=self.config.sampler.hard_pool,
            min_distance=self.config.sampler.min_distance,
            engine="dense" if self.config.eval_engine == "dense" else "batched",
            heatmap=None if self.scorer is None else self.scorer.heatmap,
        )
        self.ds.set_hard_negatives(self.hard)

    def batches(self, epoch: int) -> tuple[int, Iterator[Any]]:
        self.ds.set_epoch(epoch)
        loader = _loader(self.ds, self.config.batch_size, self.config.seed * 7_919 + epoch)
        return len(loader), iter(loader)

    def loss(self, model: Embedder, batch: Any) -> tuple[Tensor, int]:
        return _batch_loss(model, batch, self.config.margin), int(batch["anchor"].shape[0])

    def val_loss(self, model: Embedder) -> float | None:
        if self.val_ds is None:
            return None
        return _mean_loss(model, self.val_ds, self.config.batch_size, self.config.margin)

    def hard_state(self) -> dict[str, Any]:
        return {str(i): torch.from_numpy(v) for i, v in self.hard.items()}

    def load_hard_state(self, state: Mapping[str, Any]) -> None:
        self.hard = {int(i): np.asarray(v.numpy()) for i, v in state.items()}
        self.ds.set_hard_negatives(self.hard)


class _BankSource:
    """Training items in the dense engine's feature domain (:class:`FeatureBank`).

    Anchors are augmented photos embedded on their own; windows come from the
    cached AoI prefix maps (turned by 0/180° or all quarter turns), embedded
    exactly as the dense engine embeds them. With the metric loss an item is
    a triplet set (positive and sampled negatives); with the rank loss it is
    the photo's whole similarity map.
    """

    def __init__(
        self,
        model: Embedder,
        train_s: Sequence[Sample],
        val_s: Sequence[Sample],
        config: TrainConfig,
        half: bool,
        cache_dir: Path | None,
    ) -> None:
        self.config = config
        self.model = model
        self.bank = FeatureBank(
            model, train_s, sampler=config.sampler, half=half, cache_dir=cache_dir
        )
        self.val_bank = (
            FeatureBank(
                model,
                val_s,
                sampler=replace(config.sampler, hard_fraction=0.0),
                half=half,
                cache_dir=cache_dir,
            )
            if val_s
            else None
        )
        self.rotations = {1: (0,), 2: (0, 2), 4: (0, 1, 2, 3)}[config.bank_rotations]
        self.hard: dict[int, tuple[int, np.ndarray]] = {}
        self.epoch = 0
        # The rank loss already sees every window: nothing to mine.
        self.mines = config.loss == "metric"

    def mine(self, model: Embedder, epoch: int) -> None:
        for i in range(len(self.bank.samples)):
            rng = np.random.default_rng([self.config.seed, epoch, i, 17])
            k = int(self.rotations[rng.integers(len(self.rotations))])
            self.hard[i] = (k, self.bank.hard_cells(i, k, self.config.sampler.hard_pool))

    def batches(self, epoch: int) -> tuple[int, Iterator[Any]]:
        self.epoch = epoch
        n = len(self.bank.samples)
        items = [(i, j) for i in range(n) for j in range(self.config.items_per_sample)]
        order = np.random.default_rng([self.config.seed, epoch, 29]).permutation(len(items))
        bs = self.config.batch_size
        chunks = [
            [(epoch, *items[t]) for t in order[start : start + bs]]
            for start in range(0, len(items), bs)
        ]
        return len(chunks), iter(chunks)

    def _view(
        self,
        bank: FeatureBank,
        item: tuple[int, int, int],
        augment: AugmentConfig,
        hard: Mapping[int, tuple[int, np.ndarray]],
    ) -> tuple[np.random.Generator, BankEntry, np.ndarray]:
        """An item's random stream, its AoI entry (turned) and its augmented photo.

        The turn is the mined one when the photo has hard negatives, a random
        one of ``rotations`` in training, none in validation. The photo is at
        model input size.
        """
        epoch, i, j = item
        rng = np.random.default_rng([self.config.seed, epoch, i, j])
        if i in hard:
            k = hard[i][0]
        elif bank is self.bank:
            k = int(self.rotations[rng.integers(len(self.rotations))])
        else:
            k = 0
        e = bank.entry(i, k)
        spec = self.model.spec
        photo = augment_photo(e.photo, rng, augment, binary=spec.preprocessing == "binary")
        return rng, e, to_model_input(photo, spec.input_size)

    def _triplets(
        self,
        bank: FeatureBank,
        items: Sequence[tuple[int, int, int]],
        augment: AugmentConfig,
        hard: Mapping[int, tuple[int, np.ndarray]],
    ) -> Tensor:
        cfg = self.config.sampler
        spec = self.model.spec
        photos, cells = [], []
        for item in items:
            rng, e, photo = self._view(bank, item, augment, hard)
            i, k = item[1], e.k
            photos.append(photo)
            r, c = bank.positive_cell(e, rng, augment.max_shift)
            cells.append((i, k, r, c))
            pool_hard = hard[i][1] if i in hard and hard[i][0] == k else np.empty((0, 2))
            for u in rng.random(cfg.negatives):
                if u < cfg.blank_fraction and len(e.blank):
                    pool = e.blank
                elif u < cfg.blank_fraction + cfg.hard_fraction and len(pool_hard):
                    pool = pool_hard
                else:
                    pool = e.random
                r, c = pool[rng.integers(len(pool))]
                cells.append((i, k, int(r), int(c)))
        anchors = bank.anchor_embeddings(photos)
        windows = bank.window_embeddings(cells)
        kk = cfg.negatives + 1
        windows = windows.view(len(items), kk, -1)
        neg = windows[:, 1:].reshape(len(items) * cfg.negatives, -1)
        return loss_for_triplets(
            spec,
            anchors.repeat_interleave(cfg.negatives, dim=0),
            windows[:, 0].repeat_interleave(cfg.negatives, dim=0),
            neg,
            margin=self.config.margin,
        )

    def _ranked(
        self, bank: FeatureBank, items: Sequence[tuple[int, int, int]], augment: AugmentConfig
    ) -> Tensor:
        """Mean :func:`heatmap_rank_loss` of each item's photo over its whole AoI."""
        # The heatmap's grid (a window stride apart) falls anywhere relative to the
        # truth; its cell nearest the truth is up to half a stride away on each axis.
        stride = self.config.eval_stride_fraction * bank.n
        photos, views, truths = [], [], []
        for item in items:
            rng, e, photo = self._view(bank, item, augment, {})
            photos.append(photo)
            views.append((item[1], e))
            dr, dc = rng.uniform(-stride / 2, stride / 2, 2)
            truths.append((e.true_cell[0] + dr, e.true_cell[1] + dc))
        anchors = bank.anchor_embeddings(photos)
        losses = []
        for anchor, (i, e), truth in zip(anchors, views, truths, strict=True):
            scores = self.model.similarity_map(anchor, bank.trunk_map(i, e.k))
            negatives = e.usable & (e.distance >= self.config.sampler.min_distance)
            losses.append(
                heatmap_rank_loss(
                    scores.float(),
                    truth,
                    torch.from_numpy(negatives),
                    tau=self.config.rank_tau,
                    stencil_step=stride,
                )
            )
        return torch.stack(losses).mean()

    def _items_loss(
        self,
        bank: FeatureBank,
        items: Sequence[tuple[int, int, int]],
        augment: AugmentConfig,
        hard: Mapping[int, tuple[int, np.ndarray]],
    ) -> Tensor:
        if self.config.loss == "rank":
            return self._ranked(bank, items, augment)
        return self._triplets(bank, items, augment, hard)

    def loss(self, model: Embedder, batch: Any) -> tuple[Tensor, int]:
        return self._items_loss(self.bank, batch, self.config.augment, self.hard), len(batch)

    def val_loss(self, model: Embedder) -> float | None:
        if self.val_bank is None:
            return None
        items = [(0, i, j) for i in range(len(self.val_bank.samples)) for j in range(2)]
        model.eval()
        total = 0.0
        bs = self.config.batch_size
        with torch.no_grad():
            for start in range(0, len(items), bs):
                chunk = items[start : start + bs]
                loss = self._items_loss(self.val_bank, chunk, AugmentConfig.none(), {})
                total += float(loss) * len(chunk)
        return total / len(items)

    def hard_state(self) -> dict[str, Any]:
        return {str(i): {"k": k, "cells": torch.from_numpy(v)} for i, (k, v) in self.hard.items()}

    def load_hard_state(self, state: Mapping[str, Any]) -> None:
        self.hard = {
            int(i): (int(v["k"]), np.asarray(v["cells"].numpy())) for i, v in state.items()
        }


def _train(
    config: TrainConfig,
    manifest: DatasetManifest,
    split: Split,
    out: Path,
    resume: str | os.PathLike[str] | None,
    emit: TrainProgress,
    t_start: float,
) -> TrainResult:
    # Channels-last runs EfficientNet's depthwise convolutions about 1.7x faster on CPUs.
    model = build_model(config).to(memory_format=torch.channels_last)
    spec = model.spec
    mode = spec.preprocessing
    use_bank = config.dense_training and trunk_split(model) is not None
    if config.loss == "rank" and not use_bank:
        raise ConfigError(
            f"the rank loss scores whole heatmaps in the dense feature domain; {spec.name} "
            + (
                "has no frozen trunk prefix to train it on"
                if config.dense_training
                else "needs dense_training=True for it"
            )
            + ": use loss='metric'"
        )
    all_samples = load_samples(manifest, verify=True)
    if mode == "binary" and any(s.rock is None or s.photo_binary is None for s in all_samples):
        raise DataQualityError(
            f"{spec.name} trains on binary windows but the dataset has no rock mask or "
            "binary photos: build it from archives with rock_outcrop.gpkg"
        )
    train_s = [all_samples[i] for i in split.train]
    val_s = [all_samples[i] for i in split.val]
    test_s = [all_samples[i] for i in split.test]
    dense = config.eval_engine == "dense"
    # Half-precision caches keep ResNet-50's 2048-channel maps affordable.
    half = spec.name == "resnet50-siamese"
    cache_dir = manifest.root / "feature-cache" if config.feature_cache else None
    source: _ImageSource | _BankSource
    if use_bank:
        source = _BankSource(model, train_s, val_s, config, half, cache_dir)
        val_scorer: DenseScorer | None = source.val_bank
    else:
        val_scorer = (
            DenseScorer(model, val_s, half=half, cache_dir=cache_dir) if dense and val_s else None
        )
        train_scorer = (
            DenseScorer(model, train_s, half=half, cache_dir=cache_dir) if dense else None
        )
        source = _ImageSource(model, train_s, val_s, config, train_scorer)
    if not dense:
        val_scorer = None
    optimizer = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=config.plateau_factor, patience=config.plateau_patience
    )
    history: list[dict[str, Any]] = []
    start_epoch = 0
    best_metric = -math.inf
    best_epoch = -1
    best_state: dict[str, Tensor] | None = None
    bad_epochs = 0
    before: dict[str, Any] | None = None
    eval_kw: dict[str, Any] = {
        "engine": config.eval_engine,
        "stride_fraction": config.eval_stride_fraction,
        "scorer": val_scorer,
    }

    if resume is not None:
        ckpt = read_checkpoint(resume)
        if ckpt.model != spec.name:
            raise ConfigError(
                f"cannot resume {spec.name} from {ckpt.path}: it holds model {ckpt.model!r}"
            )
        load_state_dict_checked(model, ckpt.state_dict, what=f"checkpoint {ckpt.path}")
        ex = ckpt.extra
        start_epoch = int(ex.get("epoch", 0))
        history = [dict(h) for h in ex.get("history", [])]
        if "optimizer" in ex:
            optimizer.load_state_dict(ex["optimizer"])
        if "scheduler" in ex:
            scheduler.load_state_dict(ex["scheduler"])
        best_metric = float(ex.get("best_metric", -math.inf))
        best_epoch = int(ex.get("best_epoch", -1))
        bad_epochs = int(ex.get("bad_epochs", 0))
        if ex.get("best_state_dict"):
            best_state = {k: v.clone() for k, v in ex["best_state_dict"].items()}
        if ex.get("hard"):
            source.load_hard_state(ex["hard"])
        emit(
            TrainEvent(
                phase="start",
                epoch=start_epoch,
                epochs=config.epochs,
                message=f"resumed from {ckpt.path} at epoch {start_epoch}",
            )
        )
    elif val_s:
        emit(
            TrainEvent(phase="validate", epoch=-1, epochs=config.epochs, message="before training")
        )
        ev = evaluate(model, val_s, **eval_kw)
        val_loss = source.val_loss(model)
        before = {**ev.to_dict(), "val_loss": val_loss}
        history.append(
            {
                "epoch": -1,
                "train_loss": None,
                "val_loss": val_loss,
                "val_confidence": ev.mean_confidence,
                "val_recall@1": ev.recall[1],
                "val_recall@5": ev.recall[5],
                "lr": None,
                "seconds": ev.seconds,
                "hard_negatives": False,
                "mined": False,
            }
        )
        emit(TrainEvent(phase="epoch", epoch=-1, epochs=config.epochs, metrics=history[-1]))

    last_path = sibling(out, ".last.pt")
    stopped_early = False
    record_cfg = {
        **config.to_dict(),
        "dataset": str(manifest.root),
        "split": split.to_dict(),
        "training_windows": "dense features" if use_bank else "image crops",
    }
    for epoch in range(start_epoch, config.epochs):
        if bad_epochs >= config.patience:
            stopped_early = True
            break
        t0 = time.perf_counter()
        mined = (
            source.mines
            and epoch >= config.hard_start_epoch
            and (epoch - config.hard_start_epoch) % config.mine_every == 0
        )
        if mined:
            emit(
                TrainEvent(
                    phase="mine",
                    epoch=epoch,
                    epochs=config.epochs,
                    message=f"mining hard negatives on {len(train_s)} photos",
                )
            )
            source.mine(model, epoch)
        torch.manual_seed(config.seed * 100_003 + epoch)
        steps, batches = source.batches(epoch)
        model.train()
        total, count = 0.0, 0
        for step, batch in enumerate(batches, start=1):
            loss, n = source.loss(model, batch)
            if not torch.isfinite(loss):
                raise ModelError(
                    f"training loss became {float(loss.detach())} at epoch {epoch + 1}: lower "
                    "the learning rate"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * n
            count += n
            emit(
                TrainEvent(
                    phase="step",
                    epoch=epoch,
                    epochs=config.epochs,
                    step=step,
                    steps=steps,
                    loss=total / count,
                )
            )
        train_loss = total / max(count, 1)
        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": None,
            "val_confidence": None,
            "val_recall@1": None,
            "val_recall@5": None,
            "lr": optimizer.param_groups[0]["lr"],
            "hard_negatives": bool(source.hard),
            "mined": mined,
        }
        if val_s:
            emit(TrainEvent(phase="validate", epoch=epoch, epochs=config.epochs))
            ev = evaluate(model, val_s, **eval_kw)
            record["val_loss"] = source.val_loss(model)
            record["val_confidence"] = ev.mean_confidence
            record["val_recall@1"] = ev.recall[1]
            record["val_recall@5"] = ev.recall[5]
            # Confidence level (%) first; recall@1 (adds at most 1 point) breaks
            # near-ties once the confidence saturates.
            metric = ev.mean_confidence + ev.recall[1]
            scheduler.step(metric)
        else:
            metric = -train_loss
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        if metric > best_metric + config.min_delta:
            best_metric, best_epoch, bad_epochs = metric, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            _save(
                model,
                out,
                config=record_cfg,
                manifest=manifest,
                extra={
                    "epoch": epoch + 1,
                    "best_epoch": epoch,
                    "history": history,
                    "metrics": record,
                },
            )
        else:
            bad_epochs += 1
        _save(
            model,
            last_path,
            config=record_cfg,
            manifest=manifest,
            extra={
                "epoch": epoch + 1,
                "history": history,
                "optimizer": optimizer.state_dict(),
                "scheduler": _plain(scheduler.state_dict()),
                "best_metric": best_metric,
                "best_epoch": best_epoch,
                "bad_epochs": bad_epochs,
                "best_state_dict": best_state or {},
                "hard": source.hard_state(),
            },
        )
        emit(TrainEvent(phase="epoch", epoch=epoch, epochs=config.epochs, metrics=record))

    if best_state is None:
        raise DataQualityError(
            f"no epoch was trained (resumed at epoch {start_epoch} of {config.epochs}): "
            "raise --epochs to continue"
        )
    model.load_state_dict(best_state)
    model = model.to(memory_format=torch.contiguous_format).eval()
    best_record = next((h for h in history if h["epoch"] == best_epoch), history[-1])
    test = None
    if test_s:
        emit(
            TrainEvent(
                phase="validate",
                epoch=best_epoch,
                epochs=config.epochs,
                message=f"test split ({len(test_s)} photos)",
            )
        )
        test_scorer = DenseScorer(model, test_s, half=half, cache_dir=cache_dir) if dense else None
        test_kw = {**eval_kw, "scorer": test_scorer}
        test = evaluate(model, test_s, **test_kw).to_dict(with_samples=True)
    elapsed = time.perf_counter() - t_start
    summary = {
        "epoch": best_epoch + 1,
        "best_epoch": best_epoch,
        "history": history,
        "metrics": best_record,
        "before": before or {},
        "test": test or {},
        "train_seconds": elapsed,
        "stopped_early": stopped_early,
    }
    _save(model, out, config=record_cfg, manifest=manifest, extra=summary)
    history_path = write_json(
        sibling(out, ".history.json"),
        {"config": record_cfg, "data_hash": manifest.data_hash, **summary},
    )
    curve = _loss_curve(history, sibling(out, ".loss.png"), f"{spec.name} on {manifest.root.name}")
    emit(TrainEvent(phase="done", epoch=best_epoch, epochs=config.epochs, metrics=summary))
    return TrainResult(
        checkpoint=out,
        last_checkpoint=last_path,
        loss_curve=curve,
        history_path=history_path,
        history=tuple(history),
        best_epoch=best_epoch,
        before=before,
        best=best_record,
        test=test,
        stopped_early=stopped_early,
        elapsed_s=elapsed,
        data_hash=manifest.data_hash,
        split=split,
    )


def _plain(obj: Any) -> Any:
    """State dicts with only plain values (what a checkpoint may hold)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, bool | int | float | str | Tensor):
        return obj
    return str(obj)


def _save(
    model: Embedder,
    path: Path,
    *,
    config: dict[str, Any],
    manifest: DatasetManifest,
    extra: dict[str, Any],
) -> Path:
    return save_checkpoint(
        model,
        path,
        config=_plain(config),
        preprocessing=model.spec.preprocessing,
        input_size=model.spec.input_size,
        data_hash=manifest.data_hash,
        extra=_plain(extra),
    )


# -- CLI --------------------------------------------------------------------------------


def train_command(
    *,
    model: str,
    data: Path,
    out: Path,
    epochs: int | None = None,
    seed: int | None = None,
    resume: Path | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    weights: str | None = "preset",
    threads: int | None = None,
    loss: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> TrainResult:
    """Body of ``aeroloc train``: the model's preset with the given overrides and a progress bar.

    Args:
        model: ``--model`` registry name.
        data: ``--data`` dataset folder.
        out: ``--out`` checkpoint file.
        epochs, seed, lr, batch_size, threads, loss: override the preset when given.
        resume: ``--resume`` checkpoint.
        weights: ``--weights``: ``imagenet``, ``none`` (random init), a path, or
            ``"preset"`` (the preset's).
        echo: where summary lines go (default ``click.echo``).
    """
    import click
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    say = echo or click.echo
    overrides: dict[str, Any] = {}
    for key, value in (
        ("epochs", epochs),
        ("seed", seed),
        ("lr", lr),
        ("batch_size", batch_size),
        ("threads", threads),
        ("loss", loss),
    ):
        if value is not None:
            overrides[key] = value
    if weights != "preset":
        overrides["weights"] = None if weights in (None, "none", "random") else weights
    config = preset(model, **overrides)

    def fmt(v: Any, spec: str = ".2f") -> str:
        return (
            "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)
        )

    with Progress(
        TextColumn("[bold]{task.fields[label]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None, label="start", loss="-")

        def on_event(e: TrainEvent) -> None:
            label = f"epoch {e.epoch + 1}/{e.epochs}"
            if e.phase == "step":
                bar.update(
                    task, completed=e.step, total=e.steps, label=label, loss=fmt(e.loss, ".4f")
                )
            elif e.phase in ("mine", "validate", "start"):
                bar.update(task, label=f"{label} {e.phase}")
                if e.message and e.phase == "start":
                    bar.console.print(e.message)
            elif e.phase == "epoch":
                m = e.metrics
                name = "before" if e.epoch < 0 else f"epoch {e.epoch + 1:>3}"
                bar.console.print(
                    f"{name}: train loss {fmt(m.get('train_loss'), '.4f')}  val loss "
                    f"{fmt(m.get('val_loss'), '.4f')}  val confidence "
                    f"{fmt(m.get('val_confidence'))} %  recall@1 {fmt(m.get('val_recall@1'))}  "
                    f"recall@5 {fmt(m.get('val_recall@5'))}"
                )

        result = train(config, data, out, resume=resume, progress=on_event)
    n_epochs = sum(1 for h in result.history if h["epoch"] >= 0)
    say(
        f"{model}: best epoch {result.best_epoch + 1} of {n_epochs}"
        f"{' (early stop)' if result.stopped_early else ''} in {result.elapsed_s / 60:.1f} min; "
        f"val confidence {fmt(result.best.get('val_confidence'))} %"
    )
    warning = result.regression()
    if warning:
        say(f"  warning: {warning}")
    if result.test:
        say(
            f"  test split: mean confidence {fmt(result.test['mean_confidence'])} %, "
            f"recall@1 {fmt(result.test['recall@1'])}, recall@5 {fmt(result.test['recall@5'])}"
        )
    for label, p in (
        ("checkpoint", result.checkpoint),
        ("resume from", result.last_checkpoint),
        ("loss curve", result.loss_curve),
        ("history", result.history_path),
    ):
        say(f"  {label:<12} {p}")
    return result


__all__ = [
    "DEFAULT_CHECKPOINT",
    "PRESETS",
    "EvalSummary",
    "TrainConfig",
    "TrainEvent",
    "TrainResult",
    "build_model",
    "evaluate",
    "evaluate_dataset",
    "preset",
    "train",
    "train_command",
]
