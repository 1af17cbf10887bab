"""Hard negatives: the windows far from the truth that the current model ranks highest."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from aeroloc.errors import DataQualityError
from aeroloc.heatmap.grid import Heatmap
from aeroloc.models import Embedder
from aeroloc.training.dataset import STORE_WINDOW_PX, Sample
from aeroloc.training.sampling import WindowGrid
from aeroloc.training.scoring import sample_heatmap


def pick_hard(
    scores: np.ndarray, allowed: np.ndarray, *, pool: int, spacing: float, min_separation: float
) -> np.ndarray:
    """The ``pool`` best-scoring allowed cells, each ``min_separation`` from the picks before it.

    The one hard-negative picker: both the image-triplet grid (:func:`hard_cells`)
    and the feature bank (:meth:`~aeroloc.training.features.FeatureBank.hard_cells`)
    use it. Ties keep their row-major order (stable sort).

    Args:
        scores: ``[R x C]`` similarity of the photo to each cell's window (NaN = not scored).
        allowed: ``[R x C]`` bool, the cells that may be picked (far enough from the truth).
        pool: how many to keep.
        spacing: length of one cell step in the unit of ``min_separation``.
        min_separation: least distance between two picks (keeps the pool diverse).

    Returns:
        ``[M x 2]`` (row, col), best first (M ≤ pool).
    """
    flat = np.where(allowed & np.isfinite(scores), scores, -np.inf).ravel()
    picked: list[tuple[int, int]] = []
    for k in np.argsort(-flat, kind="stable"):
        if not np.isfinite(flat[k]) or len(picked) >= pool:
            break
        r, c = divmod(int(k), scores.shape[1])
        if all(math.hypot(r - pr, c - pc) * spacing >= min_separation for pr, pc in picked):
            picked.append((r, c))
    return np.asarray(picked, dtype=np.int64).reshape(-1, 2)


def hard_cells(
    scores: np.ndarray, grid: WindowGrid, *, pool: int = 8, min_distance: float = 0.5
) -> np.ndarray:
    """The ``pool`` best-scoring grid windows at least ``min_distance`` windows from the truth.

    Args:
        scores: ``[R x C]`` heatmap on ``grid`` (NaN = not scored).
        grid: the sample's window grid.
        pool: how many to keep; picks lie at least half a window apart.
        min_distance: in windows.

    Returns:
        ``[M x 2]`` (row, col), best first (M ≤ pool).
    """
    if scores.shape != grid.shape:
        raise DataQualityError(
            f"heatmap grid {scores.shape} differs from the window grid {grid.shape}"
        )
    return pick_hard(
        scores,
        grid.distance >= min_distance,
        pool=pool,
        spacing=grid.stride_px / STORE_WINDOW_PX,
        min_separation=0.5,
    )


def mine_hard_negatives(
    model: Embedder,
    samples: Sequence[Sample],
    grids: Sequence[WindowGrid],
    *,
    pool: int = 8,
    min_distance: float = 0.5,
    engine: str = "dense",
    heatmap: Callable[[int, float], Heatmap] | None = None,
) -> dict[int, np.ndarray]:
    """The windows the current model confuses most with the truth, per sample.

    Scores every grid window (a heatmap at the grid's stride, without
    gradients) and keeps the ``pool`` best-scoring windows at least
    ``min_distance`` windows from the truth (:func:`hard_cells`).

    Args:
        model: the model being trained.
        samples: the training samples.
        grids: their window grids (:func:`window_grid`).
        pool: windows kept per sample.
        min_distance: in windows.
        engine: heatmap engine.
        heatmap: ``(sample index, stride fraction) → Heatmap``, to replace
            :func:`sample_heatmap` (e.g. with cached trunk features).

    Returns:
        sample index → ``[M x 2]`` (row, col) grid cells, best first.
    """
    out: dict[int, np.ndarray] = {}
    was_training = model.training
    model.eval()
    try:
        for i, (sample, grid) in enumerate(zip(samples, grids, strict=True)):
            frac = grid.stride_px / STORE_WINDOW_PX
            hm = (
                heatmap(i, frac)
                if heatmap is not None
                else sample_heatmap(model, sample, engine=engine, stride_fraction=frac)
            )
            picks = hard_cells(hm.scores, grid, pool=pool, min_distance=min_distance)
            if len(picks):
                out[i] = picks
    finally:
        model.train(was_training)
    return out
