"""IML-Net: cross-view descriptors with a reconstruction network and multi-depth attention crops.

After the IML-Net method section (paper 003 in ``shared/papers``), which
matches multi-angle drone views to satellite tiles; here the historical photo
plays the drone view and the modern reference window the satellite view.

- **Encoder**: the offline ImageNet EfficientNet-Lite0 of
  :mod:`aeroloc.models.effnet` (its trunk, weights loader and stage outputs,
  reused through an :class:`~aeroloc.models.effnet.EffNetLite0Siamese`
  inside this model) up to ``trunk_stage`` (default 4: 112 channels at stride
  16), the last ``train_stages`` stages trainable. The paper's ResNet-50 has
  no offline weights here.
- **Descriptor**: the encoder's window map after its trainable 1 × 1
  projection (initialised to the identity), each channel centred over the
  window, flattened and L2-normalised (``112 · n²`` = 7,168 values for
  128 px): the ``effnet-lite0-siamese`` head, reused, so the dense engine
  scores an area of interest with one normalised cross-correlation. A
  descriptor learned from scratch (an FC layer to 256 values) started at
  58 % mean confidence on held-out photos against 88 % for this one
  (untrained, docs/models.md); a short training could not close that gap.
- **IRN** (image reconstruction network): a deconvolutional decoder on the
  descriptor read back as its ``112 × n × n`` map (a 3 × 3 convolution to 64
  channels, then 4 × 4 / 2 transposed convolutions with ReLU, a sigmoid at
  the end) reconstructs the *reference view* (the true window,
  ``recon_size`` px) from the *photo's* descriptor; its MSE pulls into the
  descriptor what the other view shows (:func:`reconstruction_loss`).
- **DRCL** (distance-regularised constraint loss): a triplet loss on
  descriptors scaled to a hypersphere of fixed radius ``radius``, with each
  anchor's *hardest* negative in the batch (:func:`hardest_negative_triplet_loss`).
  The fixed radius bounds every distance by ``2 · radius``, so a false
  negative (an overlapping neighbour photo's window) cannot drive distances
  without bound.
- **MUML** (multi-depth unit mutual learning): class-activation maps at the
  ends of four backbone units (EfficientNet stages 1–4, strides 4, 8, 16,
  16), bilinearly resampled to the input size, min–max normalised and
  thresholded at ``cam_threshold``; the mask's bounding box is cropped from
  the input, resized back to the input size and fed back as an extra
  training sample (:func:`cam_box`, :func:`crop_resize`). This task has no
  classes, so a unit's CAM weights each channel by its own global mean
  activation (the channels the image excites most), not by a class's
  classifier weights. The same box is cropped from the photo and from its
  true window (aligned up to the positive's jitter), so each crop pair is a
  positive pair at a finer scale; the pairs enter the DRCL with the batch's
  hardest negatives (the ``muml`` term). One unit, drawn at random, per
  anchor and step keeps a step's cost at two extra images per anchor.

Total loss: ``w_drcl · DRCL + w_irn · IRN + w_muml · MUML`` (:meth:`IMLNet.loss_terms`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from aeroloc.errors import ConfigError, InvalidInputError
from aeroloc.models.base import Embedder, ModelSpec, TrunkSplit
from aeroloc.models.effnet import (
    STAGES,
    WEIGHTS_FILE,
    WEIGHTS_PACKAGE,
    EffNetLite0Siamese,
    EffNetSiameseConfig,
    packaged_weights,
)
from aeroloc.models.registry import ModelEntry, TrainingHooks, WeightsCard, register

#: EfficientNet stages whose ends are the MUML units (strides 4, 8, 16, 16).
MUML_STAGES = (1, 2, 3, 4)
_DECODER_CHANNELS = 64


@dataclass(frozen=True, kw_only=True)
class IMLNetConfig:
    """IML-Net options.

    Attributes:
        input_size: side of the square input in pixels, a multiple of 16.
        trunk_stage: last EfficientNet stage of the encoder (4 = MUML's last unit).
        train_stages: encoder stages that train, counted back from ``trunk_stage``.
        recon_size: side in pixels of the IRN's reconstruction: the window's map
            side (input_size / 16) times a power of 2 ≥ 2.
        radius: the DRCL hypersphere's radius.
        margin: the DRCL margin, in distance units on that hypersphere (≤ 2 · radius).
        cam_threshold: MUML mask threshold on the min–max normalised CAM, in (0, 1).
        min_crop: smallest MUML crop side as a share of the input side.
        w_drcl, w_irn, w_muml: weights of the three loss terms (≥ 0, not all 0).
    """

    input_size: int = 128
    trunk_stage: int = 4
    train_stages: int = 1
    recon_size: int = 64
    radius: float = 1.0
    margin: float = 0.4
    cam_threshold: float = 0.5
    min_crop: float = 0.4
    w_drcl: float = 1.0
    w_irn: float = 1.0
    w_muml: float = 0.5

    def __post_init__(self) -> None:
        def positive_int(name: str) -> int:
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
                raise ConfigError(f"imlnet: {name} must be a positive integer, got {v!r}")
            return int(v)

        for name in ("input_size", "recon_size"):
            positive_int(name)
        if self.trunk_stage not in MUML_STAGES:
            raise ConfigError(
                f"imlnet: trunk_stage must be one of {MUML_STAGES} (the MUML units), "
                f"got {self.trunk_stage!r}"
            )
        if self.input_size % 16 or self.input_size < 32:
            raise ConfigError(
                f"imlnet: input_size must be a multiple of 16 and ≥ 32, got {self.input_size}"
            )
        n, r = self.input_size // 16, self.recon_size
        if r % n or r // n < 2 or (r // n) & (r // n - 1):
            raise ConfigError(
                f"imlnet: recon_size must be the {n}-cell window map times a power of 2 ≥ 2 "
                f"({2 * n}, {4 * n}, {8 * n}, ...), got {r}"
            )
        used = self.trunk_stage + 1
        if not (isinstance(self.train_stages, int) and 0 <= self.train_stages <= used):
            raise ConfigError(f"imlnet: train_stages must be 0-{used}, got {self.train_stages!r}")
        if not (isinstance(self.radius, int | float) and self.radius > 0):
            raise ConfigError(f"imlnet: radius must be > 0, got {self.radius!r}")
        if not (isinstance(self.margin, int | float) and 0 < self.margin <= 2 * self.radius):
            raise ConfigError(
                f"imlnet: margin must lie in (0, 2 · radius] = (0, {2 * self.radius:g}], "
                f"got {self.margin!r}"
            )
        if not 0 < self.cam_threshold < 1:
            raise ConfigError(f"imlnet: cam_threshold must lie in (0, 1), got {self.cam_threshold}")
        if not 0 < self.min_crop <= 1:
            raise ConfigError(f"imlnet: min_crop must lie in (0, 1], got {self.min_crop}")
        weights = (self.w_drcl, self.w_irn, self.w_muml)
        if any(not (isinstance(w, int | float) and w >= 0) for w in weights) or not any(weights):
            raise ConfigError(
                f"imlnet: loss weights w_drcl, w_irn, w_muml must be ≥ 0 and not all 0, got "
                f"{weights}"
            )

    @property
    def encoder_config(self) -> EffNetSiameseConfig:
        """The EfficientNet-Lite0 trunk this model wraps."""
        return EffNetSiameseConfig(
            input_size=self.input_size,
            trunk_stage=self.trunk_stage,
            train_stages=self.train_stages,
        )


# -- the three losses --------------------------------------------------------------------


def reconstruction_loss(recon: Tensor, target: Tensor) -> Tensor:
    """IRN loss: mean squared error between reconstructions and target views.

    Args:
        recon: ``[B x 1 x r x r]`` reconstructions in [0, 1].
        target: ``[B x 1 x H x W]`` target views in [0, 1]; resized (area) to ``r × r``.

    Returns:
        Scalar MSE over every pixel.
    """
    if recon.ndim != 4 or target.ndim != 4 or recon.shape[:2] != target.shape[:2]:
        raise InvalidInputError(
            f"expected reconstructions and targets [B x C x h x w] with equal B and C, got "
            f"{tuple(recon.shape)} and {tuple(target.shape)}"
        )
    if target.shape[-2:] != recon.shape[-2:]:
        target = F.adaptive_avg_pool2d(target, (int(recon.shape[-2]), int(recon.shape[-1])))
    return F.mse_loss(recon, target)


def hardest_negative_triplet_loss(
    anchor: Tensor,
    positive: Tensor,
    candidates: Tensor,
    *,
    margin: float,
    radius: float = 1.0,
    exclude: Tensor | None = None,
) -> Tensor:
    """DRCL: triplet loss on a fixed-radius hypersphere with each anchor's hardest negative.

    Every descriptor is L2-normalised and scaled to ``radius``; for anchor
    ``i`` the negative is the candidate nearest to it (not excluded):
    ``max(d(a_i, p_i) − min_j d(a_i, c_j) + margin, 0)``, averaged over anchors.

    Args:
        anchor: ``[B x D]``.
        positive: ``[B x D]``.
        candidates: ``[M x D]`` negatives shared by the batch.
        margin: required gap, in distance units on the sphere (> 0).
        radius: the sphere's radius (> 0).
        exclude: ``[B x M]`` bool, candidates that are not negatives of an anchor
            (None = none excluded). An anchor with no candidate left costs 0.

    Returns:
        Scalar mean loss.
    """
    if anchor.ndim != 2 or positive.shape != anchor.shape or candidates.ndim != 2:
        raise InvalidInputError(
            f"expected anchor and positive [B x D] and candidates [M x D], got "
            f"{tuple(anchor.shape)}, {tuple(positive.shape)}, {tuple(candidates.shape)}"
        )
    if candidates.shape[1] != anchor.shape[1] or candidates.shape[0] == 0:
        raise InvalidInputError(
            f"candidates must be a non-empty [M x {anchor.shape[1]}], got {tuple(candidates.shape)}"
        )
    if not margin > 0 or not radius > 0:
        raise InvalidInputError(f"margin and radius must be > 0, got {margin} and {radius}")
    a = F.normalize(anchor, dim=1) * radius
    p = F.normalize(positive, dim=1) * radius
    c = F.normalize(candidates, dim=1) * radius
    d_pos = torch.linalg.vector_norm(a - p, dim=1)
    d_all = torch.cdist(a, c)  # [B x M]
    if exclude is not None:
        if exclude.shape != d_all.shape:
            raise InvalidInputError(
                f"exclude must be [B x M] = {tuple(d_all.shape)}, got {tuple(exclude.shape)}"
            )
        d_all = d_all.masked_fill(exclude, float("inf"))
    d_neg = d_all.min(dim=1).values
    loss = torch.clamp(d_pos - d_neg + margin, min=0)
    # An anchor without any negative (all excluded: d_neg = inf) gives 0, not NaN.
    return torch.where(torch.isfinite(d_neg), loss, torch.zeros_like(loss)).mean()


def class_activation_map(fmap: Tensor) -> Tensor:
    """A class-free CAM: channels weighted by their global mean activation.

    Args:
        fmap: ``[B x C x h x w]`` unit output.

    Returns:
        ``[B x h x w]`` ``Σ_c w_c relu(F_c) / Σ_c w_c`` with ``w_c`` = the mean of
        ``relu(F_c)`` over the map.
    """
    act = F.relu(fmap)
    w = act.mean(dim=(2, 3), keepdim=True)
    return (act * w).sum(1) / w.sum(1).clamp_min(1e-12)


def cam_box(cam: Tensor, size: int, *, threshold: float, min_side: int) -> list[tuple[int, ...]]:
    """MUML: the bounding box of each thresholded, normalised CAM at input resolution.

    The CAM is resampled bilinearly to ``size × size``, min–max normalised per
    image, and thresholded (``> threshold``); the box covers every pixel of
    the mask, widened about its centre to ``min_side`` and kept inside the
    image. A flat CAM (no contrast) gives the whole image.

    Args:
        cam: ``[B x h x w]``.
        size: input side in pixels.
        threshold: in (0, 1).
        min_side: smallest box side in pixels (≤ ``size``).

    Returns:
        One ``(row0, row1, col0, col1)`` per image, half-open, in input pixels.
    """
    up = F.interpolate(
        cam[:, None].float(), size=(size, size), mode="bilinear", align_corners=False
    )
    up = up[:, 0]
    lo = up.amin(dim=(1, 2), keepdim=True)
    hi = up.amax(dim=(1, 2), keepdim=True)
    boxes: list[tuple[int, ...]] = []
    for b in range(up.shape[0]):
        span = float(hi[b] - lo[b])
        if span <= 1e-12:
            boxes.append((0, size, 0, size))
            continue
        mask = (up[b] - lo[b]) / span > threshold
        rows = torch.nonzero(mask.any(dim=1))[:, 0]
        cols = torch.nonzero(mask.any(dim=0))[:, 0]
        r0, r1 = int(rows.min()), int(rows.max()) + 1
        c0, c1 = int(cols.min()), int(cols.max()) + 1
        boxes.append((*_widen(r0, r1, min_side, size), *_widen(c0, c1, min_side, size)))
    return boxes


def _widen(lo: int, hi: int, side: int, size: int) -> tuple[int, int]:
    """``[lo, hi)`` widened about its centre to at least ``side``, shifted inside ``[0, size)``."""
    if hi - lo >= side:
        return lo, hi
    center = (lo + hi) / 2
    lo = round(center - side / 2)
    lo = min(max(lo, 0), size - side)
    return lo, lo + side


def crop_resize(images: Tensor, boxes: list[tuple[int, ...]], size: int) -> Tensor:
    """Crop ``images [B x C x H x W]`` to ``boxes`` (one each), each resized to ``size × size``."""
    out = [
        F.interpolate(
            img[None, :, r0:r1, c0:c1], size=(size, size), mode="bilinear", align_corners=False
        )
        for img, (r0, r1, c0, c1) in zip(images, boxes, strict=True)
    ]
    return torch.cat(out).clamp(0.0, 1.0)


# -- the model ---------------------------------------------------------------------------


class IMLNet(Embedder):
    """IML-Net embedder: ``[B x 1|3 x S x S]`` gray in [0, 1] → ``[B x C·n²]`` on the sphere."""

    name = "imlnet"
    config_class = IMLNetConfig
    batch_windows = 4  # the EfficientNet trunk's best batch (see effnet.py)

    def __init__(self, config: IMLNetConfig) -> None:
        super().__init__(config)
        # The attribute is called backbone so that the training loop's parameter groups
        # give the pretrained encoder the trunk's learning rate.
        self.backbone = EffNetLite0Siamese(config.encoder_config)
        c = STAGES[config.trunk_stage][4]
        n = config.input_size // self.backbone.stride_px
        layers: list[nn.Module] = [
            nn.Conv2d(c, _DECODER_CHANNELS, 3, padding=1),
            nn.ReLU(inplace=True),
        ]
        ch, side = _DECODER_CHANNELS, n
        while side < config.recon_size:
            out = 1 if side * 2 == config.recon_size else max(ch // 2, 8)
            layers.append(nn.ConvTranspose2d(ch, out, 4, stride=2, padding=1))
            layers.append(nn.ReLU(inplace=True) if out != 1 else nn.Sigmoid())
            ch, side = out, side * 2
        self.decoder = nn.Sequential(*layers)

    @classmethod
    def spec_for(cls, config: Any) -> ModelSpec:
        enc = config.encoder_config
        n = config.input_size // enc.stride
        return cls.embedder_spec(
            input_size=(config.input_size, config.input_size),
            channels=3,
            preprocessing="gray",
            desc_dim=enc.channels * n * n,
            stride_px=enc.stride,
            loss="triplet",
            # Search descriptors lie on the unit sphere: the margin in unit-sphere distances.
            margin=float(config.margin / config.radius),
            normalized=True,
        )

    @classmethod
    def build(cls, *, weights: str | Path | None = "imagenet", **config: Any) -> Self:
        """Build the model.

        Args:
            weights: encoder weights: ``"imagenet"`` (the offline EfficientNet-Lite0
                file), a path to a state dict with its names, or None (random).
            **config: :class:`IMLNetConfig` fields.
        """
        return cls.build_with_trunk(weights, config, packaged_weights)

    def load_trunk_weights(self, path: str | Path) -> None:
        """EfficientNet-Lite0 weights into the encoder (as ``effnet-lite0-siamese`` loads them)."""
        self.backbone.load_trunk_weights(path)

    @property
    def window_map_size(self) -> tuple[int, int]:
        return self.backbone.window_map_size

    def trunk(self, x: Tensor) -> Tensor:
        """``[B x 1|3 x H x W]`` in [0, 1] → ``[B x C x ceil(H/16) x ceil(W/16)]`` (C = 112)."""
        # Checked here so that errors name this model, not the wrapped encoder.
        return self.backbone.trunk(self.check_input(x, exact_size=False))

    def trunk_split(self) -> TrunkSplit | None:
        """The encoder's frozen stages as prefix (see ``effnet-lite0-siamese``)."""
        return self.backbone.trunk_split()

    def head_from_map(self, fmap: Tensor) -> Tensor:
        """``[B x C x h x w]`` → ``[B x C·n² x (h - n + 1) x (w - n + 1)]``, unit length
        (the ``effnet-lite0-siamese`` head: projected, centred window maps)."""
        return self.backbone.head_from_map(fmap)

    def similarity_map(self, anchor: Tensor, fmap: Tensor) -> Tensor:
        """One normalised cross-correlation over the map (as ``effnet-lite0-siamese``)."""
        return self.backbone.similarity_map(anchor, fmap)

    def similarity_at(self, anchor: Tensor, fmap: Tensor, cells: Tensor) -> Tensor:
        """The whole correlation map is cheaper than gathering windows (as the encoder's)."""
        return self.backbone.similarity_at(anchor, fmap, cells)

    def reconstruct(self, desc: Tensor) -> Tensor:
        """IRN decoder: ``[B x C·n²]`` → ``[B x 1 x recon_size x recon_size]`` in (0, 1)."""
        n = self.window_map_size[0]
        return self.decoder(desc.view(desc.shape[0], -1, n, n))

    def unit_cams(self, x: Tensor) -> dict[int, Tensor]:
        """MUML: the CAM ``[B x h_i x w_i]`` at the end of each unit (stages 1–``trunk_stage``)."""
        stages = tuple(s for s in MUML_STAGES if s <= self.config.trunk_stage)
        maps = self.backbone.stage_outputs(x, stages)
        return {s: class_activation_map(m) for s, m in maps.items()}

    def muml_pairs(
        self, photos: Tensor, views: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Attention crops of each photo and the same box of its reference view.

        One MUML unit per photo, drawn at random; the CAMs are computed
        without gradients (the boxes are not differentiable).

        Args:
            photos: ``[B x 1 x S x S]`` in [0, 1].
            views: ``[B x 1 x S x S]`` the photos' true windows.
            generator: random source of the unit draws.

        Returns:
            ``([B x 1 x S x S], [B x 1 x S x S])`` cropped photos and views.
        """
        size = self.config.input_size
        with torch.no_grad():
            cams = self.unit_cams(photos)
        units = sorted(cams)
        pick = torch.randint(len(units), (photos.shape[0],), generator=generator).tolist()
        boxes: list[tuple[int, ...]] = []
        min_side = max(1, round(self.config.min_crop * size))
        for b, u in enumerate(pick):
            cam = cams[units[u]][b : b + 1]
            boxes += cam_box(cam, size, threshold=self.config.cam_threshold, min_side=min_side)
        return crop_resize(photos, boxes, size), crop_resize(views, boxes, size)

    def loss_terms(
        self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """The three loss terms (unweighted) on an image-triplet batch.

        Args:
            batch: ``anchor [B x 1 x S x S]`` (photos), ``positive [B x 1 x S x S]``
                (true windows), ``negatives [B x K x 1 x S x S]``, optionally
                ``sample [B]`` (photo index: another item of the same photo is
                not its negative).
            generator: random source of the MUML unit draws.

        Returns:
            ``{"drcl", "irn", "muml"}`` scalars; ``muml`` is 0 when ``w_muml`` is 0.
        """
        cfg = self.config
        a, p, n = batch["anchor"], batch["positive"], batch["negatives"]
        b, k = n.shape[0], n.shape[1]
        images = [a, p, n.flatten(0, 1)]
        if cfg.w_muml > 0:
            crop_a, crop_p = self.muml_pairs(a, p, generator)
            images += [crop_a, crop_p]
        x = torch.cat(images)
        x = x.expand(-1, self.spec.channels, -1, -1).contiguous(memory_format=torch.channels_last)
        desc = self.embed(x)
        ea, ep, en = desc[:b], desc[b : 2 * b], desc[2 * b : 2 * b + b * k]
        # Candidates: every negative of the batch and the other photos' true windows.
        cand = torch.cat([en, ep])
        sample = batch.get("sample")
        owner = torch.arange(b, device=desc.device) if sample is None else sample.to(desc.device)
        # Every negative is one for every anchor; a true window is not a negative of an
        # item of its own photo (a jittered copy of that item's positive).
        exclude = torch.zeros(b, b * k + b, dtype=torch.bool, device=desc.device)
        exclude[:, b * k :] = owner[:, None] == owner[None, :]
        terms = {
            "drcl": hardest_negative_triplet_loss(
                ea, ep, cand, margin=cfg.margin, radius=cfg.radius, exclude=exclude
            ),
            "irn": reconstruction_loss(self.reconstruct(ea), p),
        }
        if cfg.w_muml > 0:
            ca, cp = desc[2 * b + b * k : 3 * b + b * k], desc[3 * b + b * k :]
            terms["muml"] = hardest_negative_triplet_loss(
                ca, cp, cand, margin=cfg.margin, radius=cfg.radius, exclude=exclude
            )
        else:
            terms["muml"] = desc.new_zeros(())
        return terms

    def total_loss(self, terms: Mapping[str, Tensor]) -> Tensor:
        """``w_drcl · drcl + w_irn · irn + w_muml · muml``."""
        cfg = self.config
        return cfg.w_drcl * terms["drcl"] + cfg.w_irn * terms["irn"] + cfg.w_muml * terms["muml"]


def imlnet_batch_loss(model: Embedder, batch: Mapping[str, Tensor], margin: float | None) -> Tensor:
    """The training loop's loss for IML-Net: :meth:`IMLNet.total_loss` of its terms.

    ``margin`` (the training config's override) is not used: the DRCL margin
    belongs to the model's config (``model_options``), next to its radius.
    """
    if not isinstance(model, IMLNet):
        raise InvalidInputError(f"imlnet_batch_loss needs an IMLNet, got {type(model).__name__}")
    # Seeded by the loop (torch.manual_seed per epoch), like every other random draw.
    return model.total_loss(model.loss_terms(batch))


register(
    ModelEntry(
        model_class=IMLNet,
        # Adam 1e-4 on the last encoder stage and the projection, 3e-4 on the decoder; image
        # triplets (the IRN and the MUML crops need the images). An epoch of 56 training
        # photos took 143-177 s with validation on the shared 2-core machine, so the 8
        # epochs with mining every 2nd epoch come to an estimated 25-35 min (only 2 epochs
        # were run; docs/benchmarks/log.md, session 11).
        train_preset={
            "lr": 1e-4,
            "head_lr_mult": 3.0,
            "epochs": 8,
            "patience": 3,
            "batch_size": 8,
            "items_per_sample": 4,
            "hard_start_epoch": 2,
            "mine_every": 2,
        },
        weights=WeightsCard(
            source=f"ImageNet EfficientNet-Lite0 encoder ({WEIGHTS_FILE} of the {WEIGHTS_PACKAGE} "
            "package); projection identity, decoder random",
            licence="Apache-2.0",
            input_size=(IMLNetConfig().input_size, IMLNetConfig().input_size),
            preprocessing="gray",
        ),
        training=TrainingHooks(batch_loss=imlnet_batch_loss),
    )
)
