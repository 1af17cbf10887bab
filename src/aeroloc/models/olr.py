"""Occlusion-based latent representation (OLR) over land-cover labels of each window.

After Tijdeman's BSc thesis (paper 002 in ``shared/papers``: sections 3.2,
4.4 and chapter 6), which adapted Karatsiolis & Kamilaris's OLR from faces to
land cover and failed because its classifier never learned the sparse labels.

**Labels** (:func:`label_fractions`, :class:`LabelRules`). Synthetic archives
write no land-cover raster; what a training sample holds is the enhanced gray
AoI (the reference: snow near saturation, lifted shadows mid-gray, open water
dark and flat) and the rock mask rasterised from the archive's
``rock_outcrop.gpkg`` (drawn by ``aeroloc synth`` from its rock cover, about
74 % agreement). Per window (the photo's footprint, valid pixels only):

- ``rock``: rock-mask pixels ≥ ``rock_min`` (0.05) of the window;
- ``snow``: off-rock pixels ≥ ``bright_min`` gray (235) ≥ ``snow_min`` (0.8);
- ``shadow``: off-rock pixels in (``dark_max``, ``mid_max``] = (80, 215] gray ≥
  ``shadow_min`` (0.10) (the enhancement lifts shadows into that band);
- ``crevassed``: ice texture, pixels > ``mid_max`` gray whose ``std_px`` × ``std_px``
  (9 × 9) neighbourhood lies off rock and has a gray standard deviation ≥
  ``crevasse_std`` (8), ≥ ``crevassed_min`` (0.05);
- ``textured``: … with a standard deviation in [``texture_std``, ``crevasse_std``)
  = [3, 8), ≥ ``textured_min`` (0.15);
- ``sea``: off-rock pixels ≤ ``dark_max`` gray and flat (standard deviation
  < ``flat_std``, 4) ≥ ``sea_min`` (0.05): open water. An ice shelf is flat bright
  snow in the gray reference and cannot be told from snow, so it is not a label.

Shares are of the window's valid pixels. The photo of a sample takes the labels of its true window.

**Classifier** (the thesis's section 3.2.1; it allows another architecture and
its chapter 6.3 blames the classifier type): the frozen offline
EfficientNet-Lite0 trunk of :mod:`aeroloc.models.effnet` to stage 4, a 3 × 3
convolution with ReLU, global average pooling and one linear layer → N
logits. It trains first (:func:`train_classifier`, the ``prepare`` step of
``aeroloc train``) with the thesis's remedies (section 4.4):

- *combining* labels (``combine``; default ``crevassed`` + ``textured`` →
  ``ice_texture``, the issue's "crevassed or textured ice");
- *pruning* labels present in fewer than ``prune_below`` (or more than
  ``1 − prune_below``) of the training windows: their outputs stay but leave
  every loss and the embedding (the ``active`` buffer);
- *randomised batches*: windows of all photos shuffled together;
- *class weights* ``1/f · t/2`` per batch (:func:`class_weights`);
- *focal loss* (:func:`focal_loss`, γ 2, α 0.25);
- a *lowered threshold* (0.3) for counting a label present.

Its report gives true and false positives per label, not only accuracy.

**Siamese network** (section 3.2.2): the same frozen trunk, a 1 × 1 convolution
with ReLU and a 1 × 1 convolution to ``N × k`` feature maps, average-pooled
over the window into N label vectors of size k. Trained (MSE) so that the
per-label dot products of two images match the product of the classifier's
label probabilities (their joint probability) while a random square occludes
each Siamese input (:func:`random_occlusion`, :func:`siamese_loss`); the
classifier sees the images whole. Pairs are all pairs of a batch's images
(photos, true windows and negatives).

**Search similarity**: the agreement of the label embeddings, the cosine of
the two images' concatenated label vectors, ``Σ_l <u_l, v_l> / (|u| |v|)``:
the sum of the learned per-label joint probabilities, normalised. As an
embedder: the concatenation L2-normalised, similarity ``1 - d²/4``.

After training (the ``finish`` step) a figure ``<checkpoint>.labels.png``
shows the label-correlation matrix the Siamese network learned (mean cosine
between two labels' vectors of the same window) next to the labels'
co-occurrence matrix (share of windows holding both).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import cv2
import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from aeroloc.errors import ConfigError, DataQualityError, InvalidInputError
from aeroloc.models.base import Embedder, ModelSpec, TrunkSplit, freeze
from aeroloc.models.effnet import (
    STAGES,
    WEIGHTS_FILE,
    WEIGHTS_PACKAGE,
    EffNetLite0Siamese,
    EffNetSiameseConfig,
    packaged_weights,
)
from aeroloc.models.registry import ModelEntry, TrainingHooks, WeightsCard, register

log = logging.getLogger(__name__)

#: Labels :func:`label_fractions` derives, before combining and pruning.
RAW_LABELS = ("rock", "snow", "shadow", "crevassed", "textured", "sea")


# -- labels per window --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LabelRules:
    """Gray levels (0–255, enhanced AoI) and window shares that define the raw labels.

    See the module docstring for each label's rule.
    """

    dark_max: int = 80
    mid_max: int = 215
    bright_min: int = 235
    texture_std: float = 3.0
    crevasse_std: float = 8.0
    flat_std: float = 4.0
    std_px: int = 9
    rock_min: float = 0.05
    snow_min: float = 0.8
    shadow_min: float = 0.10
    crevassed_min: float = 0.05
    textured_min: float = 0.15
    sea_min: float = 0.05

    def __post_init__(self) -> None:
        if not 0 <= self.dark_max < self.mid_max < self.bright_min <= 255:
            raise ConfigError(
                "label rules: need 0 ≤ dark_max < mid_max < bright_min ≤ 255, got "
                f"{self.dark_max}, {self.mid_max}, {self.bright_min}"
            )
        if not 0 < self.texture_std < self.crevasse_std or not self.flat_std > 0:
            raise ConfigError("label rules: need 0 < texture_std < crevasse_std and flat_std > 0")
        if self.std_px < 3 or self.std_px % 2 == 0:
            raise ConfigError(f"label rules: std_px must be odd and ≥ 3, got {self.std_px}")

    def minimum(self, label: str) -> float:
        """The window share at which a raw label counts as present."""
        return float(getattr(self, f"{label}_min"))


def label_fractions(
    aoi: np.ndarray,
    valid: np.ndarray,
    rock: np.ndarray | None,
    rows: np.ndarray,
    cols: np.ndarray,
    side: int,
    rules: LabelRules | None = None,
) -> dict[str, np.ndarray]:
    """Each raw label's share of the valid pixels of every window (the label rules' shares).

    Args:
        aoi: ``[H x W]`` uint8 enhanced gray AoI.
        valid: ``[H x W]`` bool.
        rock: ``[H x W]`` bool rock mask, or None (no rock anywhere).
        rows, cols: top-left pixels of the windows (a grid ``R × C``).
        side: window side in pixels.
        rules: the thresholds.

    Returns:
        ``{label: [R x C] float}``: each label's pixels (module docstring) as a
        share of the window's valid pixels, for :data:`RAW_LABELS`; plus
        ``"valid"``, the valid share of each window.
    """
    from aeroloc.heatmap.grid import box_sums

    r = rules or LabelRules()
    if aoi.shape != valid.shape or (rock is not None and rock.shape != aoi.shape):
        raise InvalidInputError(
            f"aoi, valid and rock must have one shape, got {aoi.shape}, {valid.shape}, "
            f"{None if rock is None else rock.shape}"
        )
    g = aoi.astype(np.float32)
    mean = cv2.blur(g, (r.std_px, r.std_px))
    sq = cv2.blur(g * g, (r.std_px, r.std_px))
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    on_rock = (rock & valid) if rock is not None else np.zeros_like(valid)
    off = valid & ~on_rock
    # Texture only where the whole neighbourhood is off rock: a rock edge is not ice texture.
    kernel = np.ones((r.std_px, r.std_px), np.uint8)
    core = cv2.erode(off.astype(np.uint8), kernel).astype(bool)
    ice = core & (g > r.mid_max)
    masks = {
        "rock": on_rock,
        "snow": off & (g >= r.bright_min),
        "shadow": off & (g > r.dark_max) & (g <= r.mid_max),
        "crevassed": ice & (std >= r.crevasse_std),
        "textured": ice & (std >= r.texture_std) & (std < r.crevasse_std),
        "sea": off & (g <= r.dark_max) & (std < r.flat_std),
    }
    n_valid = box_sums(valid, side, rows, cols)
    out = {k: box_sums(m, side, rows, cols) / np.maximum(n_valid, 1.0) for k, m in masks.items()}
    out["valid"] = n_valid / float(side * side)
    return out


def raw_labels(fractions: Mapping[str, np.ndarray], rules: LabelRules | None = None) -> np.ndarray:
    """``[... x 6]`` bool presence of :data:`RAW_LABELS` from :func:`label_fractions`."""
    r = rules or LabelRules()
    return np.stack([fractions[k] >= r.minimum(k) for k in RAW_LABELS], axis=-1)


def combine_labels(
    raw: np.ndarray, combine: Sequence[tuple[str, ...]]
) -> tuple[tuple[str, ...], np.ndarray]:
    """Label combining (thesis 4.4.4): each group ``(name, member, ...)`` becomes one label.

    A combined label is present where any member is; it takes the place of
    its first member; labels in no group stay as they are.

    Args:
        raw: ``[... x 6]`` bool over :data:`RAW_LABELS`.
        combine: groups, each ``(new name, raw label, raw label, ...)``.

    Returns:
        (label names, ``[... x N]`` bool).
    """
    names, columns = combined_names(combine), []
    member_of = {m: g for g in combine for m in g[1:]}
    done: set[str] = set()
    for i, label in enumerate(RAW_LABELS):
        group = member_of.get(label)
        if group is None:
            columns.append(raw[..., i])
        elif group[0] not in done:
            done.add(group[0])
            idx = [RAW_LABELS.index(m) for m in group[1:]]
            columns.append(np.asarray(raw[..., idx].any(axis=-1)))
    return names, np.stack(columns, axis=-1)


def combined_names(combine: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    """The label names after combining (see :func:`combine_labels`)."""
    member_of = {m: g[0] for g in combine for m in g[1:]}
    names: list[str] = []
    for label in RAW_LABELS:
        name = member_of.get(label, label)
        if name not in names:
            names.append(name)
    return tuple(names)


# -- config -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OLRConfig:
    """OLR options.

    Attributes:
        input_size: side of the square input in pixels, a multiple of 16.
        k: length of each label vector (the thesis's k).
        hidden: channels of the 3 × 3 layer of the classifier and Siamese heads.
        combine: label groups ``(name, raw label, ...)`` (:func:`combine_labels`).
        prune_below: labels in fewer (or more) than this share (1 − this) of the
            training windows are pruned; 0 = none.
        focal_gamma: focal-loss focusing γ (0 = cross-entropy).
        focal_alpha: focal-loss weight of positives α in (0, 1), or None.
        class_weights: weight each label by ``1/f · t/2`` of the batch.
        random_batches: shuffle the classifier's windows across photos.
        threshold: probability at which the classifier counts a label present.
        classifier_epochs: epochs of the classifier step.
        classifier_lr: its Adam learning rate.
        classifier_batch: its batch size (windows).
        windows_per_photo: most reference windows per training photo for the classifier.
        window_step: grid step of those windows, as a share of a window.
        occlusion: (smallest, largest) side of the Siamese inputs' occluding square,
            as shares of the input side.
    """

    input_size: int = 128
    k: int = 16
    hidden: int = 64
    combine: tuple[tuple[str, ...], ...] = (("ice_texture", "crevassed", "textured"),)
    prune_below: float = 0.01
    focal_gamma: float = 2.0
    focal_alpha: float | None = 0.25
    class_weights: bool = True
    random_batches: bool = True
    threshold: float = 0.3
    classifier_epochs: int = 8
    classifier_lr: float = 1e-3
    classifier_batch: int = 32
    windows_per_photo: int = 48
    window_step: float = 0.25
    occlusion: tuple[float, float] = (0.2, 0.5)

    def __post_init__(self) -> None:
        for name in ("input_size", "k", "hidden", "classifier_epochs", "classifier_batch"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
                raise ConfigError(f"olr: {name} must be a positive integer, got {v!r}")
        if self.input_size % 16 or self.input_size < 32:
            raise ConfigError(
                f"olr: input_size must be a multiple of 16 and ≥ 32, got {self.input_size}"
            )
        groups = tuple(tuple(str(x) for x in g) for g in self.combine)
        object.__setattr__(self, "combine", groups)
        seen: set[str] = set()
        for g in groups:
            if len(g) < 3:
                raise ConfigError(
                    f"olr: a combine group is (name, label, label, ...), got {list(g)}"
                )
            bad = [m for m in g[1:] if m not in RAW_LABELS]
            if bad:
                raise ConfigError(
                    f"olr: cannot combine unknown label(s) {', '.join(bad)}; labels: "
                    f"{', '.join(RAW_LABELS)}"
                )
            twice = seen & set(g[1:])
            if twice:
                raise ConfigError(f"olr: label(s) {', '.join(sorted(twice))} in two groups")
            seen |= set(g[1:])
        names = [g[0] for g in groups]
        kept = [label for label in RAW_LABELS if label not in seen]
        clash = sorted({n for n in names if names.count(n) > 1 or n in kept})
        if clash:
            raise ConfigError(
                f"olr: combined label name(s) {', '.join(clash)} clash with another group or "
                "a label that is not combined"
            )
        if not 0 <= self.prune_below < 0.5:
            raise ConfigError(f"olr: prune_below must lie in [0, 0.5), got {self.prune_below}")
        if not self.focal_gamma >= 0:
            raise ConfigError(f"olr: focal_gamma must be ≥ 0, got {self.focal_gamma}")
        if self.focal_alpha is not None and not 0 < self.focal_alpha < 1:
            raise ConfigError(
                f"olr: focal_alpha must lie in (0, 1) or be null, got {self.focal_alpha}"
            )
        if not 0 < self.threshold < 1:
            raise ConfigError(f"olr: threshold must lie in (0, 1), got {self.threshold}")
        if not self.classifier_lr > 0:
            raise ConfigError(f"olr: classifier_lr must be > 0, got {self.classifier_lr}")
        if not (isinstance(self.windows_per_photo, int) and self.windows_per_photo >= 0):
            raise ConfigError(
                f"olr: windows_per_photo must be an integer ≥ 0, got {self.windows_per_photo!r}"
            )
        if not 0 < self.window_step <= 1:
            raise ConfigError(f"olr: window_step must lie in (0, 1], got {self.window_step}")
        occ = tuple(float(v) for v in self.occlusion)
        if len(occ) != 2 or not 0 <= occ[0] <= occ[1] < 1:
            raise ConfigError(
                f"olr: occlusion must be (smallest, largest) with 0 ≤ smallest ≤ largest < 1, "
                f"got {list(self.occlusion)}"
            )
        object.__setattr__(self, "occlusion", occ)

    @property
    def labels(self) -> tuple[str, ...]:
        """The label names after combining, in output order."""
        return combined_names(self.combine)


# -- losses -------------------------------------------------------------------------------


def class_weights(labels: Tensor) -> Tensor:
    """The thesis's class weights (4.4.1) of one batch: ``1/f · t/2`` per label.

    Args:
        labels: ``[B x N]`` 0/1, the batch's labels.

    Returns:
        ``[N]``: ``t / (2 f_l)`` with ``f_l`` the count of label ``l`` in the
        batch and ``t`` the number of labels assigned in the batch; 1 for a
        label absent from the batch.
    """
    if labels.ndim != 2:
        raise InvalidInputError(f"expected labels [B x N], got {tuple(labels.shape)}")
    f = labels.float().sum(0)
    t = f.sum()
    return torch.where(f > 0, t / (2 * f.clamp_min(1.0)), torch.ones_like(f))


def focal_loss(
    logits: Tensor,
    targets: Tensor,
    *,
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    weights: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Focal loss (Lin et al., thesis 4.4.5) of multi-label logits.

    ``−α_t (1 − p_t)^γ log p_t`` per label with ``p_t = p`` for a present label
    and ``1 − p`` for an absent one (``α_t = α`` / ``1 − α``); γ = 0 and
    α = None is binary cross-entropy.

    Args:
        logits: ``[B x N]``.
        targets: ``[B x N]`` 0/1.
        gamma: focusing parameter ≥ 0.
        alpha: weight of present labels in (0, 1), or None (1 for both).
        weights: ``[N]`` per-label weights (:func:`class_weights`), or None.
        mask: ``[N]`` bool, labels that count (not pruned), or None (all).

    Returns:
        Scalar: the mean over the batch and the counted labels.
    """
    if logits.shape != targets.shape or logits.ndim != 2:
        raise InvalidInputError(
            f"expected logits and targets [B x N] of one shape, got {tuple(logits.shape)} "
            f"and {tuple(targets.shape)}"
        )
    y = targets.to(logits.dtype)
    log_pt = -F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    pt = log_pt.exp()
    loss = -((1.0 - pt) ** gamma) * log_pt
    if alpha is not None:
        loss = loss * (alpha * y + (1.0 - alpha) * (1.0 - y))
    if weights is not None:
        loss = loss * weights.to(loss.dtype)[None, :]
    if mask is not None:
        loss = loss[:, mask.bool()]
    return loss.mean() if loss.numel() else logits.new_zeros(())


def siamese_loss(dots: Tensor, joint: Tensor, mask: Tensor | None = None) -> Tensor:
    """OLR's Siamese loss: MSE between per-label dot products and joint label probabilities.

    Args:
        dots: ``[... x N]`` ``<u_l(a), u_l(b)>`` per pair and label.
        joint: ``[... x N]`` ``c_l(a) · c_l(b)`` from the classifier.
        mask: ``[N]`` bool, labels that count, or None (all).
    """
    if dots.shape != joint.shape:
        raise InvalidInputError(
            f"dot products {tuple(dots.shape)} and joint probabilities {tuple(joint.shape)} differ"
        )
    if mask is not None:
        dots, joint = dots[..., mask.bool()], joint[..., mask.bool()]
    return F.mse_loss(dots, joint) if dots.numel() else dots.new_zeros(())


def random_occlusion(
    x: Tensor, sides: tuple[float, float], generator: torch.Generator | None = None
) -> Tensor:
    """Each image with one random square filled with the image's mean (thesis 3.2.2).

    Args:
        x: ``[B x C x H x W]``.
        sides: (smallest, largest) side of the square as shares of ``min(H, W)``.
        generator: random source.

    Returns:
        A new ``[B x C x H x W]``.
    """
    b, _, h, w = x.shape
    out = x.clone()
    lo, hi = sides
    u = torch.rand(b, 3, generator=generator)
    for i in range(b):
        side = round((lo + (hi - lo) * float(u[i, 0])) * min(h, w))
        if side <= 0:
            continue
        r0 = int(float(u[i, 1]) * (h - side + 1))
        c0 = int(float(u[i, 2]) * (w - side + 1))
        out[i, :, r0 : r0 + side, c0 : c0 + side] = x[i].mean()
    return out


# -- the model ----------------------------------------------------------------------------


class OLR(Embedder):
    """OLR embedder: ``[B x 1|3 x S x S]`` gray in [0, 1] → ``[B x N·k]``, unit length."""

    name = "olr"
    config_class = OLRConfig
    batch_windows = 4  # the EfficientNet trunk's best batch (see effnet.py)
    trunk_stage = 4

    def __init__(self, config: OLRConfig) -> None:
        super().__init__(config)
        self.backbone = EffNetLite0Siamese(
            EffNetSiameseConfig(
                input_size=config.input_size, trunk_stage=self.trunk_stage, train_stages=0
            )
        )
        freeze(self.backbone)
        c = STAGES[self.trunk_stage][4]
        n_labels = len(config.labels)
        self.classifier = nn.ModuleDict(
            {
                "conv": nn.Conv2d(c, config.hidden, 3, padding=1),
                "fc": nn.Linear(config.hidden, n_labels),
            }
        )
        # The classifier trains in its own step (train_classifier), then stays fixed.
        freeze(self.classifier)
        # 1 × 1 layers: each window's label vectors depend on its own cells only, so the
        # dense engine's pooled map equals the per-window head (Embedder contract).
        last = nn.Conv2d(config.hidden, n_labels * config.k, 1)
        with torch.no_grad():
            # Small initial vectors: their dot products start near the joint probabilities'
            # scale (0-1) instead of in the tens.
            last.weight.mul_(0.1)
        self.siamese = nn.Sequential(
            nn.Conv2d(c, config.hidden, 1),
            nn.ReLU(inplace=True),
            last,
        )
        # 1 = label kept, 0 = pruned (set by the classifier step, saved in checkpoints).
        self.active: Tensor
        self.register_buffer("active", torch.ones(n_labels))

    @classmethod
    def spec_for(cls, config: Any) -> ModelSpec:
        return cls.embedder_spec(
            input_size=(config.input_size, config.input_size),
            channels=3,
            preprocessing="gray",
            desc_dim=len(config.labels) * config.k,
            stride_px=16,
            loss="triplet",
            margin=0.5,
            normalized=True,
        )

    @classmethod
    def build(cls, *, weights: str | Path | None = "imagenet", **config: Any) -> Self:
        """Build the model.

        Args:
            weights: trunk weights: ``"imagenet"`` (the offline EfficientNet-Lite0
                file), a path to a state dict with its names, or None (random).
            **config: :class:`OLRConfig` fields.
        """
        return cls.build_with_trunk(weights, config, packaged_weights)

    def load_trunk_weights(self, path: str | Path) -> None:
        """EfficientNet-Lite0 weights into the trunk (as ``effnet-lite0-siamese`` loads them)."""
        self.backbone.load_trunk_weights(path)

    @property
    def labels(self) -> tuple[str, ...]:
        """Label names, in output order."""
        return tuple(self.config.labels)

    @property
    def active_mask(self) -> Tensor:
        """``[N]`` bool: labels not pruned."""
        return self.active > 0.5

    @property
    def window_map_size(self) -> tuple[int, int]:
        return self.backbone.window_map_size

    def trunk(self, x: Tensor) -> Tensor:
        """``[B x 1|3 x H x W]`` in [0, 1] → ``[B x 112 x ceil(H/16) x ceil(W/16)]`` (frozen)."""
        return self.backbone.trunk(self.check_input(x, exact_size=False))

    def trunk_split(self) -> TrunkSplit | None:
        """The whole trunk is frozen: it is the prefix (cached in training), no suffix."""
        return TrunkSplit(prefix=self.trunk, suffix=lambda y: y, margin=0)

    def classifier_logits(self, fmap: Tensor) -> Tensor:
        """``[B x 112 x n x n]`` window maps → ``[B x N]`` label logits."""
        y = F.relu(self.classifier["conv"](fmap)).mean(dim=(2, 3))
        return self.classifier["fc"](y)

    def classify(self, x: Tensor) -> Tensor:
        """Label probabilities ``[B x N]`` of windows ``[B x C x S x S]`` (pruned labels 0)."""
        self.check_input(x, exact_size=True, values=False)
        return torch.sigmoid(self.classifier_logits(self.trunk(x))) * self.active

    def label_vectors_map(self, fmap: Tensor) -> Tensor:
        """``[B x 112 x h x w]`` → ``[B x N x k x h' x w']`` window label vectors (pruned 0)."""
        n = self.window_map_size[0]
        y = F.avg_pool2d(self.siamese(fmap), n, stride=1)
        b, _, h, w = y.shape
        y = y.view(b, len(self.labels), self.config.k, h, w)
        return y * self.active.view(1, -1, 1, 1, 1)

    def label_vectors(self, x: Tensor) -> Tensor:
        """``[B x N x k]`` label vectors of windows ``[B x C x S x S]``."""
        self.check_input(x, exact_size=True, values=False)
        return self.label_vectors_map(self.trunk(x))[..., 0, 0]

    def head_from_map(self, fmap: Tensor) -> Tensor:
        """``[B x 112 x h x w]`` → ``[B x N·k x h' x w']``: the label vectors, concatenated,
        L2-normalised."""
        y = self.label_vectors_map(fmap)
        return F.normalize(y.flatten(1, 2), dim=1)


def pair_dots(u: Tensor, v: Tensor) -> Tensor:
    """Per-label dot products ``[B x M x N]`` of label vectors ``[B x N x k]``, ``[M x N x k]``."""
    return torch.einsum("bnk,mnk->bmn", u, v)


def olr_batch_loss(model: Embedder, batch: Mapping[str, Tensor], margin: float | None) -> Tensor:
    """The Siamese step's loss on an image-triplet batch (every image paired with every one).

    The classifier labels the images whole; the Siamese network sees each
    under a random square. ``margin`` is not used (the loss has none).
    """
    if not isinstance(model, OLR):
        raise InvalidInputError(f"olr_batch_loss needs an OLR model, got {type(model).__name__}")
    a, p, n = batch["anchor"], batch["positive"], batch["negatives"]
    x = torch.cat([a, p, n.flatten(0, 1)])
    with torch.no_grad():
        probs = model.classify(x)
        occluded = model.trunk(random_occlusion(x, model.config.occlusion))
    u = model.label_vectors_map(occluded)[..., 0, 0]
    joint = probs[:, None, :] * probs[None, :, :]
    return siamese_loss(pair_dots(u, u), joint, model.active_mask)


# -- the classifier step and the figure ---------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class LabelledWindows:
    """Windows cut from stored samples, with their labels.

    Attributes:
        images: ``[W x 1 x S x S]`` float in [0, 1] (model input size).
        labels: ``[W x N]`` bool, after combining.
        names: the N label names.
        sample: ``[W]`` index of the sample each window comes from.
        is_photo: ``[W]`` bool, the window is a photo (labels of its true window).
    """

    images: Tensor
    labels: np.ndarray
    names: tuple[str, ...]
    sample: np.ndarray
    is_photo: np.ndarray


def labelled_windows(
    samples: Sequence[Any],
    config: OLRConfig,
    *,
    seed: int,
    rules: LabelRules | None = None,
) -> LabelledWindows:
    """Reference windows (up to ``windows_per_photo`` per sample, ≥ 75 % valid) and each photo.

    Args:
        samples: :class:`~aeroloc.training.dataset.Sample` objects.
        config: the model's config (input size, combining, window step and count).
        seed: which windows a sample keeps when it has more.
        rules: label thresholds.
    """
    from aeroloc.training.dataset import STORE_WINDOW_PX
    from aeroloc.training.sampling import crop_window

    s = STORE_WINDOW_PX
    hw = (config.input_size, config.input_size)
    step = max(1, round(config.window_step * s))
    images: list[np.ndarray] = []
    rows_out: list[np.ndarray] = []
    owner: list[int] = []
    photo: list[bool] = []
    for i, smp in enumerate(samples):
        h, w = smp.aoi.shape
        rows = np.arange(0, max(h - s, 0) + 1, step)
        cols = np.arange(0, max(w - s, 0) + 1, step)
        fr = label_fractions(smp.aoi, smp.valid, smp.rock, rows, cols, s, rules)
        lab = raw_labels(fr, rules)
        ok = np.argwhere(fr["valid"] >= 0.75)
        rng = np.random.default_rng([seed, i, 4099])
        if len(ok) > config.windows_per_photo:
            ok = ok[np.sort(rng.choice(len(ok), config.windows_per_photo, replace=False))]
        for r, c in ok:
            center = (cols[c] + s / 2, rows[r] + s / 2)
            images.append(crop_window(smp.aoi, smp.valid, center, out_hw=hw))
            rows_out.append(lab[r, c])
            owner.append(i)
            photo.append(False)
        tc, tr = smp.record.true_center
        top = np.array([round(tr - s / 2)])
        left = np.array([round(tc - s / 2)])
        true_fr = label_fractions(smp.aoi, smp.valid, smp.rock, top, left, s, rules)
        ones = np.ones(smp.photo.shape, dtype=bool)
        images.append(crop_window(smp.photo, ones, (s / 2, s / 2), out_hw=hw))
        rows_out.append(raw_labels(true_fr, rules)[0, 0])
        owner.append(i)
        photo.append(True)
    if not images:
        raise DataQualityError("olr: no sample to cut labelled windows from")
    names, labels = combine_labels(np.stack(rows_out), config.combine)
    return LabelledWindows(
        images=torch.from_numpy(np.stack(images))[:, None],
        labels=labels,
        names=names,
        sample=np.asarray(owner),
        is_photo=np.asarray(photo),
    )


def _features(model: OLR, images: Tensor, batch: int = 32) -> Tensor:
    """Frozen trunk maps ``[W x 112 x n x n]`` of windows, in eval mode without gradients."""
    was = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            out.append(model.trunk(images[start : start + batch]))
    model.train(was)
    return torch.cat(out) if out else images.new_zeros(0)


def label_counts(probs: Tensor, labels: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """True/false positives/negatives per label of probabilities ``[W x N]`` at ``threshold``."""
    pred = probs.detach().cpu().numpy() >= threshold
    y = np.asarray(labels, dtype=bool)
    return {
        "tp": (pred & y).sum(0),
        "fp": (pred & ~y).sum(0),
        "fn": (~pred & y).sum(0),
        "tn": (~pred & ~y).sum(0),
    }


def train_classifier(
    model: Embedder, train_s: Sequence[Any], val_s: Sequence[Any], train_config: Any, out: Path
) -> dict[str, Any]:
    """The classifier step: derive labels, prune them, train with the remedies, report.

    Runs before the Siamese epochs of ``aeroloc train --model olr`` (the
    registry's ``prepare`` hook). The report counts true and false
    positives per label on the validation photos' windows (the training
    windows when there is no validation photo).

    Args:
        model: an :class:`OLR`.
        train_s, val_s: training and validation samples.
        train_config: the run's :class:`~aeroloc.training.config.TrainConfig` (its seed).
        out: the run's checkpoint path (unused: the report goes into the history).
    """
    if not isinstance(model, OLR):
        raise InvalidInputError(f"train_classifier needs an OLR model, got {type(model).__name__}")
    t0 = time.perf_counter()
    cfg = model.config
    seed = int(getattr(train_config, "seed", 0))
    train_w = labelled_windows(train_s, cfg, seed=seed)
    freq = train_w.labels.mean(0)
    keep = (freq >= cfg.prune_below) & (freq <= 1 - cfg.prune_below) & (train_w.labels.any(0))
    if cfg.prune_below == 0:
        keep = np.ones_like(keep)
    if not keep.any():
        shares = ", ".join(f"{n} {f:.3f}" for n, f in zip(cfg.labels, freq, strict=True))
        raise DataQualityError(
            f"olr: every label was pruned (window shares {shares}); lower prune_below or add "
            "archives"
        )
    with torch.no_grad():
        model.active.copy_(torch.from_numpy(keep.astype(np.float32)))
    mask = model.active_mask
    feats = _features(model, train_w.images)
    targets = torch.from_numpy(train_w.labels.astype(np.float32))
    params = list(model.classifier.parameters())
    for prm in params:
        prm.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.classifier_lr)
    gen = torch.Generator().manual_seed(seed * 7_919 + 13)
    losses: list[float] = []
    model.train()
    for _epoch in range(cfg.classifier_epochs):
        # Randomised batches (thesis 4.4.3) mix every photo's windows; in order, a batch
        # holds the windows of one or two photos.
        order = (
            torch.randperm(len(feats), generator=gen)
            if cfg.random_batches
            else torch.arange(len(feats))
        )
        total = 0.0
        for start in range(0, len(order), cfg.classifier_batch):
            idx = order[start : start + cfg.classifier_batch]
            y = targets[idx]
            w = class_weights(y[:, mask]) if cfg.class_weights else None
            weights = None
            if w is not None:
                weights = torch.ones(len(cfg.labels))
                weights[mask] = w
            loss = focal_loss(
                model.classifier_logits(feats[idx]),
                y,
                gamma=cfg.focal_gamma,
                alpha=cfg.focal_alpha,
                weights=weights,
                mask=mask,
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(feats))
    for prm in params:
        prm.requires_grad_(False)
    model.eval()
    eval_w = labelled_windows(val_s, cfg, seed=seed + 1) if val_s else train_w
    with torch.no_grad():
        logits = model.classifier_logits(_features(model, eval_w.images))
        probs = torch.sigmoid(logits) * model.active  # a pruned label is never predicted
    report = classifier_report(probs, eval_w.labels, cfg.labels, keep, cfg.threshold)
    report.update(
        {
            "train_windows": len(feats),
            "train_frequency": {n: float(f) for n, f in zip(cfg.labels, freq, strict=True)},
            "pruned": [n for n, k in zip(cfg.labels, keep, strict=True) if not k],
            "eval_split": "validation" if val_s else "training",
            "loss_per_epoch": losses,
            "seconds": time.perf_counter() - t0,
        }
    )
    for name, row in report["per_label"].items():
        log.info(
            "olr classifier %s: tp %d fp %d fn %d tn %d (threshold %.2f)",
            name,
            row["tp"],
            row["fp"],
            row["fn"],
            row["tn"],
            cfg.threshold,
        )
    return report


def classifier_report(
    probs: Tensor,
    labels: np.ndarray,
    names: Sequence[str],
    active: np.ndarray,
    threshold: float,
) -> dict[str, Any]:
    """Per-label true/false positives, precision and recall, and the binary accuracy."""
    counts = label_counts(probs, labels, threshold)
    per_label: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(names):
        tp, fp, fn, tn = (int(counts[k][j]) for k in ("tp", "fp", "fn", "tn"))
        per_label[name] = {
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "tn": tn,
            "support": tp + fn,
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
            "pruned": not bool(active[j]),
        }
    kept = np.asarray(active, dtype=bool)
    correct = sum(counts[k][kept].sum() for k in ("tp", "tn"))
    total = len(labels) * int(kept.sum())
    positives = int(np.asarray(labels, dtype=bool)[:, kept].sum())
    return {
        "threshold": threshold,
        "eval_windows": len(labels),
        "per_label": per_label,
        "binary_accuracy": float(correct / total) if total else None,
        "positives_found": float(counts["tp"][kept].sum() / positives) if positives else None,
    }


def label_matrices(model: OLR, windows: LabelledWindows) -> tuple[np.ndarray, np.ndarray]:
    """(learned label correlation ``[N x N]``, label co-occurrence ``[N x N]``) over ``windows``.

    The correlation of labels i and j is the mean, over windows, of the cosine
    between the window's label vectors ``u_i`` and ``u_j``; the co-occurrence
    is the share of windows that hold both labels (the diagonal: each label's
    frequency).
    """
    feats = _features(model, windows.images)
    with torch.no_grad():
        u = F.normalize(model.label_vectors_map(feats)[..., 0, 0], dim=2)  # [W x N x k]
        corr = torch.einsum("wik,wjk->ij", u, u) / max(len(u), 1)
    y = windows.labels.astype(np.float64)
    co = y.T @ y / max(len(y), 1)
    return corr.numpy().astype(np.float64), co


def label_figure(
    corr: np.ndarray, co: np.ndarray, names: Sequence[str], path: Path, title: str = ""
) -> Path:
    """The learned label-correlation matrix next to the label co-occurrence matrix (PNG)."""
    from matplotlib.figure import Figure

    from aeroloc.files import write_png

    fig = Figure(figsize=(11.5, 4.8), layout="constrained")
    for ax_i, (mat, label, cmap, lim) in enumerate(
        (
            (corr, "label correlation (Siamese, mean cosine)", "RdBu_r", (-1.0, 1.0)),
            (co, "label co-occurrence (share of windows)", "viridis", (0.0, 1.0)),
        )
    ):
        ax = fig.add_subplot(1, 2, ax_i + 1)
        im = ax.imshow(mat, cmap=cmap, vmin=lim[0], vmax=lim[1])
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=7)
        ax.set_title(label, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    if title:
        fig.suptitle(title, fontsize=10)
    return write_png(path, fig)


def olr_finish(
    model: Embedder, train_s: Sequence[Any], val_s: Sequence[Any], train_config: Any, out: Path
) -> dict[str, Any]:
    """After training: the label matrices over the validation (else training) windows and
    their figure ``<out stem>.labels.png``."""
    if not isinstance(model, OLR):
        raise InvalidInputError(f"olr_finish needs an OLR model, got {type(model).__name__}")
    from aeroloc.training.outputs import sibling

    seed = int(getattr(train_config, "seed", 0))
    windows = labelled_windows(val_s or train_s, model.config, seed=seed + 1)
    corr, co = label_matrices(model, windows)
    path = label_figure(
        corr,
        co,
        model.labels,
        sibling(Path(out), ".labels.png"),
        f"olr on {len(windows.labels)} windows",
    )
    return {
        "labels": list(model.labels),
        "label_correlation": corr.round(4).tolist(),
        "label_cooccurrence": co.round(4).tolist(),
        "figure": str(path),
    }


register(
    ModelEntry(
        model_class=OLR,
        # The classifier step (its trunk maps computed once, then 8 epochs) took 279 s on
        # the 2,744 windows of 56 photos under load; the Siamese heads then train with Adam
        # 1e-3 on image batches, 91-118 s an epoch with validation: about 15 min for the
        # preset (3 of its 6 epochs were run). No hard negatives: the loss pairs every image
        # of a batch with every other, negative or not.
        train_preset={
            "lr": 1e-3,
            "epochs": 6,
            "patience": 3,
            "batch_size": 8,
            "items_per_sample": 4,
            "hard_start_epoch": 1_000,
        },
        weights=WeightsCard(
            source=f"ImageNet EfficientNet-Lite0 trunk ({WEIGHTS_FILE} of the {WEIGHTS_PACKAGE} "
            "package); classifier and Siamese heads random",
            licence="Apache-2.0",
            input_size=(OLRConfig().input_size, OLRConfig().input_size),
            preprocessing="gray",
        ),
        training=TrainingHooks(
            batch_loss=olr_batch_loss, prepare=train_classifier, finish=olr_finish
        ),
    )
)
