"""Fixtures shared by several test modules."""

from __future__ import annotations

from pathlib import Path

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


TINY_BATCH_SEED = 7


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic archive (1 line × 3 photos, seed 7), made once per session."""
    root = tmp_path_factory.getbasetemp() / "aeroloc-tiny-batch" / "archive"
    if not (root / "truth.json").is_file():
        make_archive(root, seed=TINY_BATCH_SEED, preset="tiny")
    return root


@pytest.fixture(scope="session")
def located_tiny(tiny_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Batch results of the first two photos of :func:`tiny_archive`, verified (one
    candidate each); the third photo is left pending. Read-only: copy it to change it."""
    from aeroloc.batch.config import BatchConfig, BatchInputs
    from aeroloc.batch.run import batch_jobs, run_batch
    from aeroloc.batch.worker import LocateSpec
    from aeroloc.verify.walk import VerifyConfig

    out = tmp_path_factory.getbasetemp() / "aeroloc-tiny-batch" / "located"
    jobs, crs = batch_jobs(BatchInputs(catalog=tiny_archive), out)
    spec = LocateSpec(buffer_m=1500.0, verify=VerifyConfig(max_candidates=1))
    run_batch(jobs[:2], spec, BatchConfig(out_dir=out, workers=0, prioritise=False), crs=crs)
    return out
