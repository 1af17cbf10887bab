"""Splits by flight line."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aeroloc.errors import InvalidInputError
from aeroloc.training.dataset import DatasetManifest
from aeroloc.training.splits import split_by_group


def test_split_never_shares_a_flight_line(manifest: DatasetManifest) -> None:
    split = split_by_group(manifest, val_fraction=0.2, test_fraction=0.2, seed=3)
    parts = [set(split.train), set(split.val), set(split.test)]
    assert all(parts)
    assert sum(len(p) for p in parts) == len(manifest.samples)
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    lines = [{manifest.samples[i].group for i in p} for p in parts]
    assert not (lines[0] & lines[1] or lines[0] & lines[2] or lines[1] & lines[2])
    assert split == split_by_group(manifest, val_fraction=0.2, test_fraction=0.2, seed=3)


def test_split_errors(manifest: DatasetManifest) -> None:
    one_line = replace(manifest, samples=manifest.samples[:1])
    with pytest.raises(InvalidInputError, match="flight line"):
        split_by_group(one_line)
    with pytest.raises(InvalidInputError, match="val_fraction"):
        split_by_group(manifest, val_fraction=1.5)
    with pytest.raises(InvalidInputError, match="must be < 1"):
        split_by_group(manifest, val_fraction=0.6, test_fraction=0.5)
