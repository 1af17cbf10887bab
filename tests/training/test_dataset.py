"""The stored dataset: manifest, files, stored samples."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np

from aeroloc.preprocess import AveragedHistogramThreshold
from aeroloc.training.dataset import (
    STORE_WINDOW_PX,
    DatasetManifest,
    dataset_hash,
    load_sample,
    load_samples,
    read_manifest,
)
from aeroloc.training.sampling import SamplerConfig, crop_window, window_grid


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
