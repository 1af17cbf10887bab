"""SigNet (Dey et al. 2017) as used in the seed thesis (Liu 2024, section 4.2, Table 4.1).

A Siamese convolutional network built for signature verification and applied
to binary rock masks: rock outcrops are black strokes on white snow, much like
signatures. Layers (input 155 × 220 binary, ReLU after every conv and FC layer):

=====================  ==============  ===========================
layer                  size            parameters
=====================  ==============  ===========================
convolution            96 × 11 × 11    stride 1
batch normalisation                    ε 1e-6, momentum 0.9 (Keras)
max pooling            3 × 3           stride 2
convolution            256 × 5 × 5     stride 1, pad 2
batch normalisation                    ε 1e-6, momentum 0.9 (Keras)
max pooling + dropout  3 × 3           stride 2, p 0.3
convolution            384 × 3 × 3     stride 1, pad 1
convolution            256 × 3 × 3     stride 1, pad 1
max pooling + dropout  3 × 3           stride 2, p 0.3
fully connected        1024            dropout p 0.5
fully connected        128
=====================  ==============  ===========================

Trained with the contrastive loss, margin 1. Embeddings are not normalised;
similarity is ``1 / (1 + d)`` (0.5 at the margin). The final ReLU makes
embeddings non-negative, as in the original network.

The input is inverted (``1 - x``) so that rock, the signal, is 1 and the zero
padding of the convolutions reads as "no rock".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from torch import Tensor, nn

from aeroloc.errors import ConfigError, ModelError
from aeroloc.models.base import (
    Embedder,
    ModelSpec,
    dense_linear,
    load_state_dict_checked,
    make_config,
    read_weights_file,
)
from aeroloc.models.registry import ModelEntry, WeightsCard, register

INPUT_SIZE = (155, 220)
EMBED_DIM = 128


@dataclass(frozen=True, kw_only=True)
class SigNetConfig:
    """SigNet options.

    Attributes:
        margin: contrastive-loss margin; also the distance that maps to similarity 0.5.
    """

    margin: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.margin, int | float) and self.margin > 0):
            raise ConfigError(f"signet: margin must be a number > 0, got {self.margin!r}")


def _bn(channels: int) -> nn.BatchNorm2d:
    # Keras BatchNormalization(momentum=0.9) keeps 0.9 of the old running
    # average; PyTorch's momentum is the weight of the new batch: 1 - 0.9 = 0.1.
    return nn.BatchNorm2d(channels, eps=1e-6, momentum=0.1)


class SigNet(Embedder):
    """SigNet embedder: ``[B x 1 x 155 x 220]`` binary in [0, 1] → ``[B x 128]``."""

    name = "signet"
    config_class = SigNetConfig

    def __init__(self, config: SigNetConfig) -> None:
        super().__init__(config)
        # The original Keras code applies ReLU inside each Conv2D, then BN.
        self.features = nn.Sequential(
            nn.Conv2d(1, 96, 11, stride=1),
            nn.ReLU(inplace=True),
            _bn(96),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(96, 256, 5, stride=1, padding=2),
            nn.ReLU(inplace=True),
            _bn(256),
            nn.MaxPool2d(3, stride=2),
            nn.Dropout(0.3),
            nn.Conv2d(256, 384, 3, stride=1, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, stride=1, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Dropout(0.3),
        )
        wh, ww = self.window_map_size
        self.fc1 = nn.Linear(256 * wh * ww, 1024)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(1024, EMBED_DIM)
        self.relu = nn.ReLU()

    @classmethod
    def spec_for(cls, config: Any) -> ModelSpec:
        return cls.embedder_spec(
            input_size=INPUT_SIZE,
            channels=1,
            preprocessing="binary",
            desc_dim=EMBED_DIM,
            stride_px=8,
            loss="contrastive",
            margin=float(config.margin),
            normalized=False,
        )

    @classmethod
    def build(cls, *, weights: str | Path | None = None, **config: Any) -> Self:
        """Build SigNet; ``weights`` = a SigNet state dict file or None (random init).

        There are no public pretrained SigNet weights (the thesis pre-trained
        on a Hindi signature set), so the default is a random initialisation.
        """
        model = cls(make_config(cls.name, SigNetConfig, config))
        if isinstance(weights, str) and weights == "imagenet":
            raise ModelError("signet has no ImageNet weights: give a weights file or None")
        if weights is not None:
            sd = read_weights_file(weights, what="SigNet weights file")
            load_state_dict_checked(model, sd, what=f"weights file {weights}")
        return model

    @property
    def window_map_size(self) -> tuple[int, int]:
        def out(n: int) -> int:
            n = n - 10  # conv 11, no padding
            for _ in range(3):  # three 3 × 3 / 2 max-pools; padded convs keep size
                n = (n - 3) // 2 + 1
            return n

        return out(INPUT_SIZE[0]), out(INPUT_SIZE[1])

    def trunk(self, x: Tensor) -> Tensor:
        """``[B x 1 x H x W]`` in [0, 1] → ``[B x 256 x h x w]`` (17 × 25 for one window)."""
        x = self.check_input(x, exact_size=False)
        return self.features(1.0 - x)

    def head_from_map(self, fmap: Tensor) -> Tensor:
        """``[B x 256 x h x w]`` → ``[B x 128 x (h-16) x (w-24)]``."""
        y = self.relu(dense_linear(fmap, self.fc1, self.window_map_size))
        y = self.drop(y)
        y = nn.functional.conv2d(y, self.fc2.weight[:, :, None, None], self.fc2.bias)
        return self.relu(y)


register(
    ModelEntry(
        model_class=SigNet,
        # Thesis Table 4.2 (pre-training batch 128). No pretrained SigNet exists offline.
        train_preset={
            "weights": None,
            "optimizer": "rmsprop",
            "lr": 1e-4,
            "rho": 0.9,
            "eps": 1e-8,
            "weight_decay": 5e-4,
            "plateau_factor": 0.1,
            "head_lr_mult": 1.0,
            "batch_size": 128,
            "items_per_sample": 8,
            "augment": {"brightness": 0.0, "contrast": 0.0, "gamma": 0.0, "grain": 0.03},
        },
        weights=WeightsCard(
            source="random init (no public pretrained SigNet weights)",
            licence="none",
            input_size=INPUT_SIZE,
            preprocessing="binary",
        ),
    )
)
