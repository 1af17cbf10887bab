"""Window crops, triplets, window grids and the sampling configs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from aeroloc.errors import ConfigError, InvalidInputError
from aeroloc.training.dataset import STORE_WINDOW_PX, DatasetManifest, load_sample, load_samples
from aeroloc.training.mining import hard_cells
from aeroloc.training.sampling import (
    AugmentConfig,
    SamplerConfig,
    TripletDataset,
    crop_window,
    window_grid,
)


def test_crop_window_known_answer() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((600, 700)).astype(np.float32)
    valid = np.ones(img.shape, bool)
    out = crop_window(img, valid, (300.0, 250.0), out_hw=(256, 256))
    np.testing.assert_allclose(out, img[122:378, 172:428], atol=1e-6)
    u8 = (img * 255).astype(np.uint8)
    out8 = crop_window(u8, valid, (300.0, 250.0), out_hw=(256, 256))
    np.testing.assert_allclose(out8, u8[122:378, 172:428] / 255.0, atol=1e-6)
    # A quarter turn of the window equals np.rot90 of the crop.
    turned = crop_window(img, valid, (300.0, 250.0), out_hw=(256, 256), angle_deg=90.0)
    np.testing.assert_allclose(turned, np.rot90(img[122:378, 172:428], -1), atol=1e-4)
    # Nodata is filled with the window's mean.
    valid[:, :300] = False
    half = crop_window(img, valid, (300.0, 250.0), out_hw=(256, 256))
    np.testing.assert_allclose(half[:, :128], img[122:378, 300:428].mean(), atol=1e-5)


def test_triplet_dataset_items(manifest: DatasetManifest) -> None:
    samples = load_samples(manifest)
    sampler = SamplerConfig(negatives=4, blank_fraction=0.5)
    ds = TripletDataset(samples, mode="gray", input_hw=(96, 96), sampler=sampler, seed=1)
    assert len(ds) == len(samples)
    item = ds[0]
    assert item["anchor"].shape == (1, 96, 96) and item["positive"].shape == (1, 96, 96)
    assert item["negatives"].shape == (4, 1, 96, 96)
    for key in ("anchor", "positive", "negatives"):
        assert float(item[key].min()) >= 0.0 and float(item[key].max()) <= 1.0
    again = ds[0]
    assert all(torch.equal(item[k], again[k]) for k in item)
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["anchor"], item["anchor"])
    binary = TripletDataset(samples, mode="binary", input_hw=(155, 220), seed=1)
    b = binary[1]
    assert b["anchor"].shape == (1, 155, 220) and b["negatives"].shape[1:] == (1, 155, 220)
    # Hard negatives come from the given pool once set.
    grid = ds.grids[0]
    ds.set_hard_negatives({0: grid.random[:1]})
    hard = TripletDataset(
        samples,
        mode="gray",
        input_hw=(96, 96),
        sampler=replace(sampler, blank_fraction=0.0, hard_fraction=1.0),
        seed=1,
    )
    hard.set_hard_negatives({0: grid.random[:1]})
    assert hard[0]["kinds"].tolist() == [2, 2, 2, 2]
    assert set(hard[1]["kinds"].tolist()) == {0}  # no pool for sample 1: random


def test_window_grid_negatives_are_far_and_blanks_have_no_rock(
    manifest: DatasetManifest,
) -> None:
    s = load_sample(manifest, 0)
    cfg = SamplerConfig()
    grid = window_grid(s, cfg)
    assert len(grid.random) > 10
    assert (grid.distance[tuple(grid.random.T)] >= cfg.min_distance).all()
    assert s.rock is not None
    for r, c in grid.blank:
        r0, c0 = r * grid.stride_px, c * grid.stride_px
        assert s.rock[r0 : r0 + STORE_WINDOW_PX, c0 : c0 + STORE_WINDOW_PX].mean() <= 0.01
    scores = np.zeros(grid.shape, np.float32)
    r, c = grid.random[3]
    scores[r, c] = 1.0
    picks = hard_cells(scores, grid, pool=3)
    assert tuple(picks[0]) == (r, c) and len(picks) == 3


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="negatives"):
        SamplerConfig(negatives=0)
    with pytest.raises(ConfigError, match="blank_fraction"):
        SamplerConfig(blank_fraction=0.8, hard_fraction=0.5)
    with pytest.raises(ConfigError, match="max_scale"):
        AugmentConfig(max_scale=1.5)
    with pytest.raises(InvalidInputError, match="at least one photo"):
        TripletDataset([], mode="gray", input_hw=(64, 64))
