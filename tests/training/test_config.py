"""Training configs and the presets read from the model registry."""

from __future__ import annotations

import pytest

from aeroloc.errors import ConfigError
from aeroloc.models import list_models, model_entry
from aeroloc.training.config import TrainConfig, preset, preset_config


def test_presets_follow_the_thesis() -> None:
    s = preset("signet")
    assert (s.optimizer, s.lr, s.rho, s.eps, s.weight_decay, s.batch_size) == (
        "rmsprop",
        1e-4,
        0.9,
        1e-8,
        5e-4,
        128,
    )
    assert s.plateau_factor == 0.1 and s.weights is None
    r = preset("resnet50-siamese")
    assert (r.optimizer, r.lr) == ("adam", 1e-4)
    assert s.loss == r.loss == "metric" and preset("effnet-lite0-siamese").loss == "rank"
    assert TrainConfig.from_dict(s.to_dict()) == s


def test_presets_come_from_the_registry() -> None:
    """Each registered model's preset is its entry's plain values on top of the defaults."""
    for name in list_models():
        cfg = preset_config(name)
        assert cfg.model == name
        for key, value in model_entry(name).train_preset.items():
            got = getattr(cfg, key)
            if isinstance(value, dict) and key in ("augment", "sampler"):
                assert all(getattr(got, k) == v for k, v in value.items())
            else:
                assert got == value
    assert preset("signet").augment.grain == 0.03 and preset("signet").augment.contrast == 0.0


def test_preset_errors() -> None:
    with pytest.raises(ConfigError, match="unknown model 'vgg'; valid names: signet"):
        preset("vgg")
    with pytest.raises(ConfigError, match="unknown training option"):
        preset("signet", depth=3)
    with pytest.raises(ConfigError, match="bad augment/sampler options"):
        preset("signet", augment={"sharpness": 1.0})
    override = preset("signet", augment={"grain": 0.1})
    assert override.augment.grain == 0.1 and override.augment.contrast == 0.0
