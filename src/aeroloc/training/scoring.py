"""Heatmaps of stored samples and their scores against the truth."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from affine import Affine
from rasterio.crs import CRS

from aeroloc.evaluation.metrics import heatmap_truth, rank_of_truth, recall_at
from aeroloc.heatmap.candidates import find_candidates
from aeroloc.heatmap.engines import HeatmapConfig, compute_heatmap
from aeroloc.heatmap.grid import Heatmap
from aeroloc.models import Embedder
from aeroloc.training.dataset import STORE_WINDOW_PX, Sample


def sample_heatmap(
    model: Embedder,
    sample: Sample,
    *,
    mode: str | None = None,
    engine: str = "dense",
    stride_fraction: float = 0.25,
    context_cells: int | None = None,
) -> Heatmap:
    """The heatmap of a stored sample, as ``locate`` computes it (stored-pixel coordinates).

    ``pixel_to_map`` is the identity: cells map to stored AoI pixels.
    ``context_cells`` None keeps the engine's default padding.
    """
    m = mode or model.spec.preprocessing
    config = HeatmapConfig(engine=engine, stride_fraction=stride_fraction)
    if context_cells is not None:
        config = replace(config, context_cells=context_cells)
    return compute_heatmap(
        sample.photo_image(m),
        sample.aoi_image(m),
        model=model,
        window_px=STORE_WINDOW_PX,
        pixel_to_map=Affine.identity(),
        crs=CRS.from_epsg(3031),
        config=config,
    )


@dataclass(frozen=True, kw_only=True)
class SampleScore:
    """Localisation quality of one photo's heatmap.

    Attributes:
        sample_id: the sample.
        confidence: confidence level (%).
        rank: rank (1 = best) of the first NMS candidate within half a window
            of the truth, or 0 if none of the candidates is.
        hits: k → the truth lies within half a window of one of the top-k candidates.
        error_windows: distance of the top candidate from the truth, in windows.
    """

    sample_id: str
    confidence: float
    rank: int
    hits: dict[int, bool]
    error_windows: float


def score_heatmap(
    heatmap: Heatmap,
    center: tuple[float, float],
    *,
    sample_id: str = "",
    ks: Sequence[int] = (1, 5),
    max_candidates: int = 20,
) -> SampleScore:
    """Confidence level and recall@k of a heatmap whose cells map to stored pixels."""
    _, conf = heatmap_truth(heatmap, center)
    cands = find_candidates(heatmap, max_candidates=max(max_candidates, *ks))
    s = heatmap.window_px
    dists = [math.hypot(c.x - center[0], c.y - center[1]) / s for c in cands]
    rank = rank_of_truth(dists, 0.5)
    return SampleScore(
        sample_id=sample_id,
        confidence=conf,
        rank=rank or 0,
        hits=recall_at(rank, ks),
        error_windows=dists[0] if dists else float("nan"),
    )


def score_sample(
    model: Embedder,
    sample: Sample,
    *,
    ks: Sequence[int] = (1, 5),
    engine: str = "dense",
    stride_fraction: float = 0.25,
    max_candidates: int = 20,
) -> SampleScore:
    """Confidence level and recall@k of one stored sample (heatmap as ``locate`` computes it)."""
    hm = sample_heatmap(model, sample, engine=engine, stride_fraction=stride_fraction)
    return score_heatmap(
        hm,
        sample.record.true_center,
        sample_id=sample.record.sample_id,
        ks=ks,
        max_candidates=max_candidates,
    )
