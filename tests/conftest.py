"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest

from aeroloc.synth import get_preset, make_archive
from aeroloc.training.build import build_dataset
from aeroloc.training.dataset import DatasetManifest, read_manifest

TINY_TRIPLETS_SEED = 11  # tests use archive seeds 0-99


@pytest.fixture(scope="session")
def tiny_triplets_seed() -> int:
    """Seed of the archive behind :func:`manifest`."""
    return TINY_TRIPLETS_SEED


@pytest.fixture(scope="session")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> DatasetManifest:
    """A 3-line × 2-photo tiny archive and its triplet dataset, built once per session."""
    base = tmp_path_factory.getbasetemp() / "aeroloc-tiny-triplets"
    data = base / "data"
    if (data / "manifest.json").is_file():
        return read_manifest(data)
    config = get_preset("tiny", n_lines=3, photos_per_line=2)
    make_archive(base / "archive", seed=TINY_TRIPLETS_SEED, config=config)
    return build_dataset([base / "archive"], data, buffer_m=2000.0)
