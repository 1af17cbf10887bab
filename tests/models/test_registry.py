"""The model registry: names, entries, errors; a toy model added with one registration."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import pytest
import torch

from aeroloc.errors import ConfigError, ModelError
from aeroloc.models import (
    DEFAULT_CHECKPOINT,
    DEFAULT_MODEL,
    Embedder,
    ModelEntry,
    ModelSpec,
    WeightsCard,
    get_model,
    list_models,
    model_entry,
    model_spec,
    read_checkpoint,
    register,
    unregister,
)
from aeroloc.models.base import dense_linear, make_config
from aeroloc.training.dataset import DatasetManifest
from cli_helpers import run
from model_inputs import NAMES


def test_list_models_names_every_model():
    assert list_models() == NAMES
    assert DEFAULT_MODEL == "effnet-lite0-siamese"


def test_unknown_model_lists_valid_names():
    with pytest.raises(ModelError, match=r"unknown model 'vgg'.*signet, resnet50-siamese"):
        get_model("vgg")


def test_unknown_option_is_config_error():
    with pytest.raises(ConfigError, match=r"unknown option\(s\) depth for model 'signet'"):
        get_model("signet", depth=3)


def test_every_model_has_an_entry_with_a_preset_and_a_weights_card():
    for name in list_models():
        entry = model_entry(name)
        assert entry.name == name
        spec = model_spec(name)
        assert entry.weights.preprocessing == spec.preprocessing
        assert entry.weights.input_size == spec.input_size
        assert entry.weights.source and entry.weights.licence
    shipped = model_entry(DEFAULT_MODEL).checkpoint_weights[DEFAULT_CHECKPOINT.name]
    assert shipped.seed == 0 and shipped.trained_on and "1000-1017" in shipped.trained_on
    assert read_checkpoint(DEFAULT_CHECKPOINT).config["seed"] == shipped.seed
    # Only ResNet-50's 2048-channel maps are cached in half precision.
    assert [n for n in list_models() if model_entry(n).half_feature_cache] == ["resnet50-siamese"]


def test_registering_twice_or_unregistering_an_unknown_name_is_an_error():
    with pytest.raises(ModelError, match="registered already"):
        register(model_entry("signet"))
    with pytest.raises(ModelError, match="unknown model 'toy'"):
        unregister("toy")
    with pytest.raises(ConfigError, match="preprocessing must be one of"):
        WeightsCard(source="x", licence="x", input_size=(8, 8), preprocessing="rgb")


# -- a toy model added with one registration -----------------------------------------


@dataclass(frozen=True)
class ToyConfig:
    """The toy model has nothing to configure but its loss margin."""

    margin: float = 0.2


class ToyNet(Embedder):
    """Two stride-4 convolutions and a linear head: ``[B x 1 x 32 x 32]`` gray → ``[B x 16]``."""

    name = "toy"
    config_class = ToyConfig

    def __init__(self, config: ToyConfig) -> None:
        super().__init__(config)
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 4, stride=4), torch.nn.ReLU(), torch.nn.Conv2d(4, 8, 2, stride=2)
        )
        self.fc = torch.nn.Linear(8 * 4 * 4, 16)

    @classmethod
    def spec_for(cls, config: Any) -> ModelSpec:
        return ModelSpec(
            name=cls.name,
            kind="embedder",
            input_size=(32, 32),
            channels=1,
            preprocessing="gray",
            desc_dim=16,
            stride_px=8,
            loss="triplet",
            margin=config.margin,
            normalized=True,
        )

    @classmethod
    def build(cls, *, weights: str | Path | None = None, **config: Any) -> Self:
        if weights is not None:
            raise ModelError("the toy model has no weights")
        return cls(make_config(cls.name, ToyConfig, config))

    @property
    def window_map_size(self) -> tuple[int, int]:
        return 4, 4

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.check_input(x, exact_size=False))

    def head_from_map(self, fmap: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(dense_linear(fmap, self.fc, (4, 4)), dim=1)


@pytest.fixture
def toy() -> Iterator[str]:
    """The toy model, registered for one test only."""
    register(
        ModelEntry(
            model_class=ToyNet,
            train_preset={"weights": None, "loss": "metric", "epochs": 1, "batch_size": 4},
            weights=WeightsCard(
                source="random init", licence="none", input_size=(32, 32), preprocessing="gray"
            ),
        )
    )
    try:
        yield ToyNet.name
    finally:
        unregister(ToyNet.name)


def test_a_toy_model_trains_locates_and_evaluates_through_the_cli(
    toy: str, manifest: DatasetManifest, tmp_path: Path
) -> None:
    """One registration is all it takes: train, locate with its checkpoint, evaluate."""
    assert toy in list_models()
    ckpt = tmp_path / "toy.pt"
    args = ("--data", manifest.root, "--out", ckpt, "--seed", 1, "--threads", 1)
    trained = run("train", "--model", toy, *args)
    assert trained.exit_code == 0, trained.output
    assert f"{toy}: best epoch 1 of 1" in trained.output
    assert read_checkpoint(ckpt).model == toy
    archive = Path(manifest.archives[0].path)
    photo_id = manifest.samples[0].photo_id
    out = tmp_path / "loc"
    located = run(
        "locate", "--reference", archive / "reference.tif", "--catalog", archive / "catalog.gpkg",
        "--photo-id", photo_id, "--model", ckpt, "--buffer-m", 1500, "--stride", 0.5,
        "--no-verify", "--out", out,
    )  # fmt: skip
    assert located.exit_code == 0, located.output
    result = json.loads((out / "result.json").read_text())
    assert result["best"]["status"] == "unverified"
    ev = tmp_path / "ev"
    evaluated = run("evaluate", "--truth", archive / "truth.json", "--results", out, "--out", ev)
    assert evaluated.exit_code == 0, evaluated.output
    assert "confidence level" in (ev / "evaluation.md").read_text()
