"""Shared by the verification and locate tests: a photo of the tiny archive, oracle matchers.

The matchers here stand in for feature matchers so that tests check the
geometry chain (frame crop, resampling, window offset, rotated AoI) exactly.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from aeroloc.aoi import AoIConfig
from aeroloc.catalog import read_catalog
from aeroloc.heatmap.candidates import Candidate
from aeroloc.heatmap.grid import Heatmap, grid_shape
from aeroloc.pipeline import LocateRequest, request_from_record
from aeroloc.preprocess.prepare import PreparedPair
from aeroloc.synth import make_archive
from aeroloc.verify import Matches
from aeroloc.verify.matching import MODEL_KINDS
from aeroloc.verify.walk import photo_scan_to_matched


def tiny_archive(tmp_path_factory: pytest.TempPathFactory, seed: int = 7) -> Path:
    """A tiny synthetic archive of ``seed`` in a fresh temporary folder."""
    out = tmp_path_factory.mktemp(f"tiny{seed}")
    make_archive(out, seed=seed, preset="tiny")
    return out


def request_for(archive: Path, photo_id: str, buffer_m: float = 1500.0) -> LocateRequest:
    """The locate request of one photo of a synthetic archive (AoI ``buffer_m`` around it)."""
    record = read_catalog(archive / "catalog.gpkg").get(photo_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return request_from_record(
            record,
            [archive / "reference.tif"],
            aoi_config=AoIConfig(buffer_m=buffer_m),
            rock_mask_path=archive / "rock_outcrop.gpkg",
        )


class OracleMatcher:
    """Matches computed from the truth: photo pixel → truth map → window pixel."""

    name = "oracle"
    fit_kinds = MODEL_KINDS

    def __init__(self, pair: PreparedPair, truth: dict, box, outliers: int = 0) -> None:
        self.pair, self.truth, self.box, self.outliers = pair, truth, box, outliers

    def match(self, a: np.ndarray, b: np.ndarray) -> Matches:
        h, w = a.shape
        u, v = np.meshgrid(np.linspace(5, w - 5, 8), np.linspace(5, h - 5, 8))
        xy_a = np.column_stack([u.ravel(), v.ravel()])
        scan = np.linalg.inv(photo_scan_to_matched(self.pair))
        hom = np.column_stack([xy_a, np.ones(len(xy_a))]) @ scan.T
        t = Affine(*self.truth["pixel_to_map"])
        xs = t.a * hom[:, 0] + t.b * hom[:, 1] + t.c
        ys = t.d * hom[:, 0] + t.e * hom[:, 1] + t.f
        col, row = self.pair.aoi.to_pixel(xs, ys)
        xy_b = np.column_stack([col - self.box[0], row - self.box[1]])
        rng = np.random.default_rng(0)
        xy_b[: self.outliers] = rng.uniform(0, min(b.shape), size=(self.outliers, 2))
        return Matches(xy_a=xy_a, xy_b=xy_b, scores=np.ones(len(xy_a)), matcher=self.name)


def heatmap_and_candidate(pair: PreparedPair, x: float, y: float) -> tuple[Heatmap, Candidate]:
    """A flat heatmap over the pair's AoI and a candidate at its cell nearest ``(x, y)`` (map)."""
    stride = pair.window_px // 4
    rows, cols = grid_shape(*pair.aoi_gray.shape, pair.window_px, stride)
    hm = Heatmap(
        scores=np.full((rows, cols), 0.5, np.float32),
        window_px=pair.window_px,
        stride_px=stride,
        pixel_to_map=pair.pixel_to_map,
        crs=pair.aoi.crs,
    )
    r, c = hm.nearest_cell(x, y) or (0, 0)
    cx, cy = hm.center_map(r, c)
    cand = Candidate(
        rank=1,
        score=0.9,
        percentile=99.0,
        row=r,
        col=c,
        x=cx,
        y=cy,
        polygon=hm.window_polygon(r, c),
    )
    return hm, cand
