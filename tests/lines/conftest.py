"""A tiny synthetic archive (one line of three overlapping frames) for the flight-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from aeroloc.io.archive import Truth, read_truth
from aeroloc.synth import make_archive

LINES_ARCHIVE_SEED = 5  # tests use archive seeds 0-99


@pytest.fixture(scope="session")
def line_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive folder: reference.tif, catalog.csv, photos/, truth.json (about 4 s)."""
    out = tmp_path_factory.mktemp("lines") / f"seed{LINES_ARCHIVE_SEED}"
    make_archive(out, seed=LINES_ARCHIVE_SEED, preset="tiny")
    return out


@pytest.fixture(scope="session")
def line_truth(line_archive: Path) -> Truth:
    """Its ``truth.json``."""
    return read_truth(line_archive)
