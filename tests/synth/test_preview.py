"""Preview pictures of a synthetic archive."""

from __future__ import annotations

from pathlib import Path

import pytest

from aeroloc.errors import InvalidInputError
from aeroloc.synth.preview import write_previews


def test_previews(archive: Path, truth: dict, tmp_path: Path) -> None:
    photo_id = truth["photos"][1]["photo_id"]
    written = write_previews(archive, tmp_path, photo_id=photo_id, size_px=128)
    assert set(written) == {"reference", "epoch", "photo", "rock", "scan", "detail"}
    for path in written.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InvalidInputError, match="not in"):
        write_previews(archive, tmp_path, photo_id="CA0000V0000")
