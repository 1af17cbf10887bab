"""Checkpoints: round trips through the registry, mismatches, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aeroloc.errors import InvalidInputError, MissingFileError, ModelError
from aeroloc.models import (
    EffNetLite0Siamese,
    get_model,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from model_inputs import built, images_for


def _trained_effnet() -> EffNetLite0Siamese:
    torch.manual_seed(2)
    model = get_model("effnet-lite0-siamese", weights=None, input_size=96)
    # Move BN statistics away from their defaults so the round trip checks buffers too.
    model.train()
    with torch.no_grad():
        model.embed(torch.rand(4, 1, 96, 96))
    assert isinstance(model, EffNetLite0Siamese)
    return model.eval()


def test_checkpoint_round_trip_through_registry(tmp_path):
    model = _trained_effnet()
    path = save_checkpoint(
        model,
        tmp_path / "ckpt" / "m.pt",
        config={"lr": 1e-4, "epochs": 3},
        data_hash="abc123",
        extra={"epoch": 3, "history": [0.5, 0.4], "opt": {"state": {0: torch.ones(2)}}},
    )
    loaded = load_checkpoint(path, expect_model="effnet-lite0-siamese", expect_preprocessing="gray")
    assert loaded.config == model.config
    assert not loaded.training
    x = torch.rand(3, 1, 96, 96)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.embed(x), model.embed(x), rtol=0, atol=0)
    info = read_checkpoint(path)
    assert (info.model, info.input_size, info.data_hash) == (
        "effnet-lite0-siamese",
        (96, 96),
        "abc123",
    )
    assert info.config == {"lr": 1e-4, "epochs": 3}
    assert info.extra["history"] == [0.5, 0.4]
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]  # no temporary left behind


@pytest.mark.parametrize("name", ["signet", "resnet50-siamese"])
def test_checkpoint_round_trip_large_models(tmp_path, name):
    model = built(name)
    path = save_checkpoint(model, tmp_path / f"{name}.pt")
    loaded = load_checkpoint(path, expect_model=name)
    x = images_for(model, 1, seed=7)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.embed(x), model.embed(x), rtol=0, atol=0)


def test_checkpoint_of_another_model_or_preprocessing(tmp_path):
    path = save_checkpoint(_trained_effnet(), tmp_path / "m.pt")
    with pytest.raises(ModelError, match="holds model 'effnet-lite0-siamese', expected 'signet'"):
        load_checkpoint(path, expect_model="signet")
    with pytest.raises(ModelError, match="trained on 'gray' windows, expected 'binary'"):
        load_checkpoint(path, expect_preprocessing="binary")


def test_checkpoint_with_mismatched_keys(tmp_path):
    path = save_checkpoint(_trained_effnet(), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    sd = payload["state_dict"]
    sd["head.extra"] = sd.pop("proj.weight")
    torch.save(payload, path)
    with pytest.raises(ModelError, match=r"missing: proj\.weight; unexpected: head\.extra"):
        load_checkpoint(path)


def test_checkpoint_unknown_model_lists_names(tmp_path):
    path = save_checkpoint(_trained_effnet(), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["model"] = "alexnet"
    torch.save(payload, path)
    with pytest.raises(ModelError, match="unknown model 'alexnet'; valid names: signet"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    raw = tmp_path / "raw.pt"
    torch.save({"fc.weight": torch.zeros(2)}, raw)
    with pytest.raises(ModelError, match="not an aeroloc checkpoint"):
        load_checkpoint(raw)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match="not a PyTorch file"):
        load_checkpoint(junk)
    with pytest.raises(MissingFileError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "absent.pt")


def test_checkpoint_passed_as_raw_weights(tmp_path):
    path = save_checkpoint(_trained_effnet(), tmp_path / "m.pt")
    with pytest.raises(
        ModelError, match="is an aeroloc checkpoint of model 'effnet-lite0-siamese'"
    ):
        get_model("effnet-lite0-siamese", weights=path)


def test_save_checkpoint_bad_arguments(tmp_path):
    model = _trained_effnet()
    with pytest.raises(InvalidInputError, match="preprocessing must be one of binary, gray"):
        save_checkpoint(model, tmp_path / "a.pt", preprocessing="rgb")
    with pytest.raises(InvalidInputError, match="input_size"):
        save_checkpoint(model, tmp_path / "a.pt", input_size=(200, 200))
    with pytest.raises(InvalidInputError, match=r"extra\['when'\] holds a \w*Path"):
        save_checkpoint(model, tmp_path / "a.pt", extra={"when": Path("x")})
    assert not (tmp_path / "a.pt").exists()
