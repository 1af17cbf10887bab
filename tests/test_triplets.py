"""Training data: dataset building, splits, window geometry and triplet sampling."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from aeroloc.errors import ConfigError, DataQualityError, InvalidInputError, MissingFileError
from aeroloc.files import write_json
from aeroloc.preprocess import AveragedHistogramThreshold
from aeroloc.triplets import (
    STORE_WINDOW_PX,
    AugmentConfig,
    DatasetManifest,
    SamplerConfig,
    TripletDataset,
    build_dataset,
    crop_window,
    dataset_hash,
    hard_cells,
    load_sample,
    load_samples,
    read_manifest,
    split_by_group,
    window_grid,
)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum() + 1e-12))


def test_dataset_manifest_and_files(manifest: DatasetManifest, tiny_triplets_seed: int) -> None:
    assert len(manifest.samples) + len(manifest.skipped) == 6
    assert len(manifest.samples) >= 5
    assert len(manifest.groups) == 3
    assert manifest.store_window_px == STORE_WINDOW_PX
    assert manifest.data_hash == dataset_hash(manifest.samples)
    assert len(manifest.data_hash) == 64
    (arch,) = manifest.archives
    assert arch.seed == tiny_triplets_seed and arch.preset == "tiny" and arch.n_photos == 6
    thr = AveragedHistogramThreshold.load(manifest.threshold_path)
    assert thr.threshold == manifest.threshold and thr.n_photos == 6
    again = read_manifest(manifest.root / "manifest.json")
    assert again.samples == manifest.samples
    raw = json.loads((manifest.root / "manifest.json").read_text())
    assert raw["format"] == "aeroloc-triplets" and raw["n_samples"] == len(manifest.samples)
    for i, rec in enumerate(manifest.samples):
        assert rec.group == f"{rec.archive}/{rec.flight_line}"
        s = load_sample(manifest, i, verify=True)
        assert s.photo.shape == (STORE_WINDOW_PX, STORE_WINDOW_PX) and s.photo.dtype == np.uint8
        assert s.aoi.shape == rec.aoi_shape == s.valid.shape
        assert s.rock is not None and s.rock.shape == rec.aoi_shape
        assert s.photo_binary is not None and s.photo_binary.dtype == bool
        c0, r0, c1, r1 = rec.true_box
        assert c1 - c0 == STORE_WINDOW_PX and c0 >= 0 and c1 <= rec.aoi_shape[1]
        assert r0 >= 0 and r1 <= rec.aoi_shape[0]
        # Catalog noise of the tiny preset: heading ±10°, altitude ±10 %.
        assert rec.azimuth_error_deg is not None and abs(rec.azimuth_error_deg) <= 10.01
        assert rec.size_ratio is not None and 0.85 < rec.size_ratio < 1.15
        gray = s.aoi_image("gray")
        binary = s.aoi_image("binary")
        assert np.isnan(gray).sum() == (~s.valid).sum()
        assert set(np.unique(binary[s.valid])) <= {0.0, 1.0}


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


def test_true_window_matches_the_photo_better_than_random_windows(
    manifest: DatasetManifest,
) -> None:
    """Geometry sanity: the stored true window correlates with the photo."""
    percentiles = []
    for s in load_samples(manifest):
        photo = cv2.resize(s.photo_image("gray"), (128, 128), interpolation=cv2.INTER_AREA)
        true = crop_window(s.aoi, s.valid, s.record.true_center, out_hw=(128, 128))
        grid = window_grid(s, SamplerConfig())
        half = STORE_WINDOW_PX / 2
        others = [
            _ncc(
                photo,
                crop_window(
                    s.aoi,
                    s.valid,
                    (c * grid.stride_px + half, r * grid.stride_px + half),
                    out_hw=(128, 128),
                ),
            )
            for r, c in grid.random
        ]
        percentiles.append(100.0 * np.mean(np.asarray(others) < _ncc(photo, true)))
    assert np.mean(percentiles) > 80.0, percentiles


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


def test_build_errors(tmp_path: Path, manifest: DatasetManifest) -> None:
    with pytest.raises(InvalidInputError, match="no archive"):
        build_dataset([], tmp_path / "d")
    with pytest.raises(MissingFileError, match="does not exist"):
        build_dataset([tmp_path / "nope"], tmp_path / "d")
    archive = Path(manifest.archives[0].path)
    with pytest.raises(InvalidInputError, match="twice"):
        build_dataset([archive, archive], tmp_path / "d")
    empty = tmp_path / "empty"
    shutil.copytree(archive, empty)
    truth = json.loads((empty / "truth.json").read_text())
    write_json(empty / "truth.json", {**truth, "photos": []})
    with pytest.raises(DataQualityError, match="no catalog photo"):
        build_dataset([empty], tmp_path / "d")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "manifest.json").write_text("{}")
    with pytest.raises(ConfigError, match="not an aeroloc triplet dataset"):
        read_manifest(tmp_path / "x")
    with pytest.raises(MissingFileError):
        read_manifest(tmp_path / "nothing")


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="negatives"):
        SamplerConfig(negatives=0)
    with pytest.raises(ConfigError, match="blank_fraction"):
        SamplerConfig(blank_fraction=0.8, hard_fraction=0.5)
    with pytest.raises(ConfigError, match="max_scale"):
        AugmentConfig(max_scale=1.5)
    with pytest.raises(InvalidInputError, match="at least one photo"):
        TripletDataset([], mode="gray", input_hw=(64, 64))
