"""The tiny synthetic archive (seed 0) that the synth tests read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aeroloc.synth import make_archive


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "seed0"
    messages: list[str] = []
    manifest = make_archive(out, seed=0, preset="tiny", progress=messages.append)
    assert manifest.n_photos == 3
    assert messages and messages[-1].startswith("done")
    assert set(manifest.paths()) >= {"reference", "truth (json)", "catalog (csv)"}
    return out


@pytest.fixture(scope="session")
def truth(archive: Path) -> dict:
    return json.loads((archive / "truth.json").read_text())
