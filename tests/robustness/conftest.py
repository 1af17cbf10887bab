"""Fixtures of the robustness suite: the bad inputs, made once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aeroloc.training.dataset import DatasetManifest
from robustness.bad_files import BadFiles, make_bad_files


@pytest.fixture(scope="session")
def bad(tiny_archive: Path, manifest: DatasetManifest, tmp_path_factory) -> BadFiles:
    """Every bad input of :mod:`cases`, with a good and a corrupt training dataset."""
    files = make_bad_files(tiny_archive, tmp_path_factory.mktemp("bad-inputs"))
    shutil.copytree(manifest.root, files.dataset)
    shutil.copytree(manifest.root, files.corrupt_dataset)
    for sample in sorted((files.corrupt_dataset / "samples").rglob("*.npz")):
        sample.write_bytes(b"PK\x03\x04 not a zip archive")
    return files
