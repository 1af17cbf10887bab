"""ResNet-50 Siamese network of the seed thesis (Liu 2024, section 4.3).

torchvision's ResNet-50 (ImageNet) as trunk, frozen up to ``conv5_block1``
(Keras naming; torchvision ``layer4[0]``), so only ``conv5_block2`` and
``conv5_block3`` (``layer4[1:]``) train. The 7 × 7 × 2048 map of a 200 × 200
input is flattened (100,352 values) and passes FC 512 → ReLU → BN → FC 256 →
ReLU → BN. Input: 200 × 200 gray, replicated to 3 channels and normalised
with the ImageNet mean and standard deviation. Triplet loss.

Embeddings are not normalised (as in the thesis); similarity is
``1 / (1 + d / margin)``. ``l2_normalize=True`` normalises them instead
(similarity ``1 - d²/4``).

ImageNet weights cannot be downloaded at run time: put torchvision's file
(``resnet50-0676ba61.pth`` or ``resnet50-11ad3fa6.pth``) into
``torch.hub.get_dir()/checkpoints`` or pass ``weights=PATH``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import torch
import torchvision
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from aeroloc.errors import ConfigError, ModelError
from aeroloc.models.base import (
    Embedder,
    ModelSpec,
    TrunkSplit,
    dense_linear,
    freeze,
    load_state_dict_checked,
    per_position,
    read_weights_file,
)
from aeroloc.models.registry import ModelEntry, WeightsCard, register

INPUT_SIZE = (200, 200)
EMBED_DIM = 256
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True, kw_only=True)
class ResNetSiameseConfig:
    """ResNet-50 Siamese options.

    Attributes:
        margin: triplet-loss margin; for unnormalised embeddings also the
            distance that maps to similarity 0.5.
        l2_normalize: L2-normalise embeddings (the thesis did not).
    """

    margin: float = 1.0
    l2_normalize: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.margin, int | float) and self.margin > 0):
            raise ConfigError(f"resnet50-siamese: margin must be a number > 0, got {self.margin!r}")
        if not isinstance(self.l2_normalize, bool):
            raise ConfigError(
                f"resnet50-siamese: l2_normalize must be true or false, got {self.l2_normalize!r}"
            )


def imagenet_weight_files() -> list[Path]:
    """Where torchvision keeps its ResNet-50 ImageNet weights (may not exist)."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return [folder / Path(w.url).name for w in torchvision.models.ResNet50_Weights]


def find_imagenet_weights() -> Path:
    """The first torchvision ResNet-50 ImageNet file in the torch hub cache, or ModelError."""
    files = imagenet_weight_files()
    for f in files:
        if f.is_file():
            return f
    raise ModelError(
        "ImageNet weights for resnet50-siamese not found (aeroloc never downloads): copy "
        f"torchvision's {' or '.join(f.name for f in files)} into {files[0].parent}, "
        "or pass weights=PATH (CLI: --weights PATH)"
    )


class ResNet50Siamese(Embedder):
    """ResNet-50 Siamese embedder: ``[B x 1|3 x 200 x 200]`` gray in [0, 1] → ``[B x 256]``."""

    name = "resnet50-siamese"
    config_class = ResNetSiameseConfig
    mean: Tensor
    std: Tensor

    def __init__(self, config: ResNetSiameseConfig) -> None:
        super().__init__(config)
        backbone = torchvision.models.resnet50(weights=None)
        # Keep torchvision's child names so its state dicts load with a prefix only.
        del backbone.fc, backbone.avgpool
        self.backbone = backbone
        freeze(backbone)
        for block in backbone.layer4[1:]:
            for p in block.parameters():
                p.requires_grad_(True)
        wh, ww = self.window_map_size
        self.fc1 = nn.Linear(2048 * wh * ww, 512)
        self.bn1 = nn.BatchNorm1d(512)
        self.fc2 = nn.Linear(512, EMBED_DIM)
        self.bn2 = nn.BatchNorm1d(EMBED_DIM)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def spec_for(cls, config: Any) -> ModelSpec:
        return cls.embedder_spec(
            input_size=INPUT_SIZE,
            channels=3,
            preprocessing="gray",
            desc_dim=EMBED_DIM,
            stride_px=32,
            loss="triplet",
            margin=float(config.margin),
            normalized=bool(config.l2_normalize),
        )

    @classmethod
    def build(cls, *, weights: str | Path | None = "imagenet", **config: Any) -> Self:
        """Build the model.

        Args:
            weights: ``"imagenet"`` (torchvision's file from the torch hub
                cache), a path to a torchvision-layout ResNet-50 state dict
                (its ``fc`` is dropped), or None (random trunk).
            **config: :class:`ResNetSiameseConfig` fields.
        """
        return cls.build_with_trunk(weights, config, find_imagenet_weights)

    def load_trunk_weights(self, path: str | Path) -> None:
        """Load a torchvision ResNet-50 state dict (``conv1.weight``, ``layer1.0...``)."""
        sd = read_weights_file(path, what="ResNet-50 weights file")
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
        load_state_dict_checked(self.backbone, sd, what=f"weights file {path}")

    @property
    def window_map_size(self) -> tuple[int, int]:
        def out(n: int) -> int:
            for _ in range(5):  # conv1, max-pool and layer2-4 each halve, rounding up
                n = (n + 1) // 2
            return n

        return out(INPUT_SIZE[0]), out(INPUT_SIZE[1])

    def for_inference(self) -> ResNet50Siamese:
        """A copy with every trunk batch norm folded into its convolution (eval only)."""
        if self.training:
            raise ModelError("for_inference needs a model in eval mode (call .eval() first)")
        folded = copy.deepcopy(self)
        b = folded.backbone
        b.conv1, b.bn1 = fuse_conv_bn_eval(b.conv1, b.bn1), nn.Identity()
        for layer in (b.layer1, b.layer2, b.layer3, b.layer4):
            for block in layer:
                for i in (1, 2, 3):
                    conv, bn = getattr(block, f"conv{i}"), getattr(block, f"bn{i}")
                    setattr(block, f"conv{i}", fuse_conv_bn_eval(conv, bn))
                    setattr(block, f"bn{i}", nn.Identity())
                if block.downsample is not None:
                    conv, bn = block.downsample
                    block.downsample = nn.Sequential(fuse_conv_bn_eval(conv, bn))
        return folded.to(memory_format=torch.channels_last)

    def trunk(self, x: Tensor) -> Tensor:
        """``[B x 1|3 x H x W]`` in [0, 1] → ``[B x 2048 x h x w]`` (7 × 7 for one window)."""
        x = self.check_input(x, exact_size=False)
        x = (x - self.mean) / self.std
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        return b.layer4(b.layer3(b.layer2(b.layer1(x))))

    def trunk_split(self) -> TrunkSplit | None:
        """Everything up to ``layer4[0]`` (frozen) as prefix; the later bottlenecks as suffix."""
        rb = self.backbone

        def prefix(x: Tensor) -> Tensor:
            x = self.check_input(x, exact_size=False)
            x = (x - self.mean) / self.std
            x = rb.maxpool(rb.relu(rb.bn1(rb.conv1(x))))
            return rb.layer4[0](rb.layer3(rb.layer2(rb.layer1(x))))

        def suffix(y: Tensor) -> Tensor:
            for block in rb.layer4[1:]:
                y = block(y)
            return y

        # Each later bottleneck has one 3 × 3 convolution.
        return TrunkSplit(prefix, suffix, len(rb.layer4) - 1)

    def head_from_map(self, fmap: Tensor) -> Tensor:
        """``[B x 2048 x h x w]`` → ``[B x 256 x (h-6) x (w-6)]``."""
        y = per_position(self.bn1, torch.relu(dense_linear(fmap, self.fc1, self.window_map_size)))
        y = nn.functional.conv2d(y, self.fc2.weight[:, :, None, None], self.fc2.bias)
        y = per_position(self.bn2, torch.relu(y))
        if self.config.l2_normalize:
            y = nn.functional.normalize(y, dim=1)
        return y


register(
    ModelEntry(
        model_class=ResNet50Siamese,
        # Thesis 4.3.3: Adam 1e-4, ImageNet trunk.
        train_preset={"lr": 1e-4, "head_lr_mult": 1.0},
        # Half-precision caches keep ResNet-50's 2048-channel maps affordable.
        half_feature_cache=True,
        weights=WeightsCard(
            source="ImageNet ResNet-50 of torchvision (resnet50-*.pth in the torch hub cache)",
            licence="BSD-3-Clause (torchvision)",
            input_size=INPUT_SIZE,
            preprocessing="gray",
        ),
    )
)
