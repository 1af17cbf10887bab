"""Training configs and the presets read from the model registry."""

from __future__ import annotations

from aeroloc.training.config import TrainConfig, preset


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
