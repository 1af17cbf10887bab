"""Building a dataset from archives: bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aeroloc.errors import ConfigError, DataQualityError, InvalidInputError, MissingFileError
from aeroloc.files import write_json
from aeroloc.training.build import build_dataset
from aeroloc.training.dataset import DatasetManifest, read_manifest
from archive_helpers import write_minimal_archive


def test_build_errors(tmp_path: Path, manifest: DatasetManifest) -> None:
    with pytest.raises(InvalidInputError, match="no archive"):
        build_dataset([], tmp_path / "d")
    with pytest.raises(MissingFileError, match="does not exist"):
        build_dataset([tmp_path / "nope"], tmp_path / "d")
    archive = Path(manifest.archives[0].path)
    with pytest.raises(InvalidInputError, match="twice"):
        build_dataset([archive, archive], tmp_path / "d")
    empty = tmp_path / "empty"
    shutil.copytree(archive, empty)
    truth = json.loads((empty / "truth.json").read_text())
    write_json(empty / "truth.json", {**truth, "photos": []})
    with pytest.raises(DataQualityError, match="no catalog photo"):
        build_dataset([empty], tmp_path / "d")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "manifest.json").write_text("{}")
    with pytest.raises(ConfigError, match="not an aeroloc triplet dataset"):
        read_manifest(tmp_path / "x")
    with pytest.raises(MissingFileError):
        read_manifest(tmp_path / "nothing")


def test_a_test_only_archive_is_refused_for_training(tmp_path: Path) -> None:
    real = write_minimal_archive(tmp_path / "real", test_only=True)
    with pytest.raises(InvalidInputError, match=r"real.* holds real imagery marked test_only"):
        build_dataset([real], tmp_path / "d")
    assert not (tmp_path / "d").exists()
