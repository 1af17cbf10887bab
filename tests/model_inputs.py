"""Shared by the model tests: one built instance per model, and smooth test images."""

from __future__ import annotations

import functools
import importlib.util

import torch
import torch.nn.functional as F

from aeroloc.models import Embedder, get_model
from aeroloc.models.effnet import WEIGHTS_MODULE

NAMES = ["signet", "resnet50-siamese", "effnet-lite0-siamese", "imlnet", "olr"]
#: Models whose trunk is the offline ImageNet EfficientNet-Lite0.
EFFNET_TRUNKS = ("effnet-lite0-siamese", "imlnet", "olr")
HAVE_EFFNET_WEIGHTS = importlib.util.find_spec(WEIGHTS_MODULE) is not None


@functools.cache
def built(name: str) -> Embedder:
    """One instance of each model in eval mode, built once per session (SigNet and ResNet-50
    are large)."""
    torch.manual_seed(0)
    weights = "imagenet" if name in EFFNET_TRUNKS and HAVE_EFFNET_WEIGHTS else None
    return get_model(name, weights=weights).eval()


def smooth_images(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """``[n x 1 x h x w]`` blobby images in [0, 1], like rock on snow."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 1, h // 8 + 2, w // 8 + 2, generator=g)
    z = F.interpolate(z, size=(h, w), mode="bicubic", align_corners=False)
    return torch.sigmoid(3 * z)


def images_for(
    model: Embedder, n: int, seed: int = 0, extra_px: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """``n`` smooth images at the model's input size (+ ``extra_px``), binarised for SigNet."""
    h, w = model.spec.input_size
    x = smooth_images(n, h + extra_px[0], w + extra_px[1], seed)
    if model.spec.preprocessing == "binary":
        x = (x > 0.5).float()
    return x
