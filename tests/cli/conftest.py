"""Fixtures of the command-line tests: one tiny archive synthesised through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import synth_tiny


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``aeroloc synth --preset tiny --seed 7``, made once for every CLI test module."""
    return synth_tiny(tmp_path_factory.mktemp("archive"), seed=7)


@pytest.fixture(scope="session")
def first_id(archive: Path) -> str:
    """The first photo of :func:`archive`."""
    return json.loads((archive / "truth.json").read_text())["photos"][0]["photo_id"]


@pytest.fixture(scope="session")
def catalog_args(archive: Path, first_id: str):
    """``--reference``, ``--catalog`` and ``--photo-id`` for :func:`first_id` (catalog by name)."""

    def args(catalog: str = "catalog.gpkg") -> tuple[object, ...]:
        return (
            "--reference",
            archive / "reference.tif",
            "--catalog",
            archive / catalog,
            "--photo-id",
            first_id,
        )

    return args
