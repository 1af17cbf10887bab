"""SigNet: config, the thesis's layers, dense heatmap against crops."""

from __future__ import annotations

import pytest
import torch

from aeroloc.errors import ConfigError
from aeroloc.models import model_spec
from model_inputs import built, images_for


def test_signet_margin_validated():
    with pytest.raises(ConfigError, match="margin must be a number > 0"):
        model_spec("signet", margin=-1)


def test_signet_layers_as_table_4_1():
    model = built("signet")
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    shapes = [(c.out_channels, *c.kernel_size, c.stride[0], c.padding[0]) for c in convs]
    assert shapes == [(96, 11, 11, 1, 0), (256, 5, 5, 1, 2), (384, 3, 3, 1, 1), (256, 3, 3, 1, 1)]
    bns = [m for m in model.features if isinstance(m, torch.nn.BatchNorm2d)]
    assert [(b.eps, b.momentum) for b in bns] == [(1e-6, 0.1), (1e-6, 0.1)]
    drops = [m.p for m in model.features if isinstance(m, torch.nn.Dropout)]
    assert drops == [0.3, 0.3] and model.drop.p == 0.5
    assert (model.fc1.out_features, model.fc2.out_features) == (1024, 128)


def test_dense_signet_close_to_crop():
    """Dense vs per-crop embedding of the same window for SigNet.

    They differ only because the crop's border cells see zero padding where
    the large map sees neighbouring rock; measured relative difference ≈ 0.07
    (tolerance 0.15). The deep trunks (ResNet-50, EfficientNet) have
    receptive fields wider than the window, so there the difference is of
    the order of the embedding itself: score dense windows against dense
    windows, or train on windows seen with their surroundings.
    """
    model = built("signet")
    s = model.stride_px
    h, w = model.spec.input_size
    big = images_for(model, 1, seed=4, extra_px=(6 * s, 6 * s))
    with torch.inference_mode():
        dense = model.embed_dense(big)[:, :, 3, 3]
        e = model.embed(big[:, :, 3 * s : 3 * s + h, 3 * s : 3 * s + w])
    assert float((dense - e).norm() / e.norm()) < 0.15


def test_signet_trains_every_layer():
    """SigNet has no frozen trunk prefix: nothing to cache, every layer trains."""
    model = built("signet")
    assert model.trunk_split() is None
    assert all(p.requires_grad for p in model.parameters())
