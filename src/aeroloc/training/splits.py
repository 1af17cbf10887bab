"""Train/validation/test splits by flight line, so no photo and no line is in two parts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from aeroloc.errors import InvalidInputError
from aeroloc.training.dataset import DatasetManifest


@dataclass(frozen=True, kw_only=True)
class Split:
    """Sample indices of a train/val/test split by group (archive + flight line)."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]
    train_groups: tuple[str, ...]
    val_groups: tuple[str, ...]
    test_groups: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "train_groups": list(self.train_groups),
            "val_groups": list(self.val_groups),
            "test_groups": list(self.test_groups),
            "n_train": len(self.train),
            "n_val": len(self.val),
            "n_test": len(self.test),
        }


def split_by_group(
    manifest: DatasetManifest,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> Split:
    """Split samples about 8:1:1 so that no flight line (hence no photo) is in two parts.

    Groups are shuffled with ``seed``; test and then validation take whole
    groups until they hold at least their fraction of the photos (at least
    one group each when the fraction is > 0); training keeps the rest.

    Raises:
        InvalidInputError: bad fractions, or too few groups for the split.
    """
    for name, v in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= v < 1.0:
            raise InvalidInputError(f"{name} must be in [0, 1), got {v}")
    if val_fraction + test_fraction >= 1.0:
        raise InvalidInputError(
            f"val_fraction + test_fraction must be < 1, got {val_fraction + test_fraction}"
        )
    groups = manifest.groups
    need = 1 + (val_fraction > 0) + (test_fraction > 0)
    if len(groups) < need:
        raise InvalidInputError(
            f"dataset {manifest.root} has {len(groups)} flight line(s) ({len(manifest.samples)} "
            f"photos); a split by flight line into train/val/test needs at least {need}: "
            "add archives or flight lines"
        )
    members: dict[str, list[int]] = {g: [] for g in groups}
    for i, s in enumerate(manifest.samples):
        members[s.group].append(i)
    order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    n = len(manifest.samples)
    parts: dict[str, list[str]] = {"test": [], "val": []}
    pos = 0
    for part, frac in (("test", test_fraction), ("val", val_fraction)):
        if frac <= 0:
            continue
        count = 0
        # Leave at least one group for each part still to fill and for training.
        still = 1 + (part == "test" and val_fraction > 0)
        while pos < len(order) - still and (count < frac * n or not parts[part]):
            parts[part].append(order[pos])
            count += len(members[order[pos]])
            pos += 1
    train_groups = order[pos:]

    def idx(gs: Iterable[str]) -> tuple[int, ...]:
        return tuple(sorted(i for g in gs for i in members[g]))

    return Split(
        train=idx(train_groups),
        val=idx(parts["val"]),
        test=idx(parts["test"]),
        train_groups=tuple(sorted(train_groups)),
        val_groups=tuple(sorted(parts["val"])),
        test_groups=tuple(sorted(parts["test"])),
    )
