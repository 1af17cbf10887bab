"""Three ways to score every sliding window of an AoI against a photo.

All engines take the same inputs and return the same :class:`Heatmap`:

* ``naive`` — each (photo, window) pair goes through the whole Siamese network,
  both branches every time, one pair at a time: the seed thesis's way. Kept as
  the reference and for the benchmark.
* ``batched`` — the photo is embedded once; the AoI is resized once to model
  scale (as for ``dense``), and windows are sliced from it lazily and embedded
  in batches of bounded size. ``naive`` cuts and resizes every window on its
  own, as the thesis did; at the seams of the resampling the two differ by
  interpolation only (same ranking; tests/heatmap/test_engines.py).
* ``dense`` — the whole AoI is resized once so that a window becomes the model's
  input size, goes once through the fully convolutional trunk, and the head
  runs on the feature map at each window's position
  (:meth:`~aeroloc.models.base.Embedder.similarity_at`): a heatmap cell takes
  the map cell nearest to its window (exact when the window stride is a
  multiple of the trunk's stride at model scale).

Context: a window's receptive field reaches beyond it, so a dense pass (which
sees the real surroundings) and a plain crop (which sees padding) embed it
differently. By default (``context_cells=1``) ``batched`` and ``naive`` cut
every window with one trunk cell of real surroundings (:func:`cut_window`,
:func:`embed_in_context`), so the three engines rank windows alike (measured
for the default model on held-out archives: Spearman 0.89 between ``dense``
and ``batched`` without context, 0.97 with one cell; docs/benchmarks.md). The
photo has no surroundings and is embedded alone (padding it with its mean
gray, tried first, lowered recall@1 from 80 % to 68 %). One cell costs about
1.6× per window in ``batched``; ``dense`` is the default.

Engines are registered by name (:func:`register_engine`, :func:`list_engines`);
:class:`HeatmapConfig` accepts only registered names. A new engine is one
function ``(EngineInputs) -> scores [R x C]`` with ``@register_engine("name")``.

Nodata: a window with more than ``max_nodata`` of its pixels NaN scores NaN
and is never ranked; smaller gaps (and context beyond the AoI) are filled with
the AoI's mean before embedding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from affine import Affine
from rasterio.crs import CRS

from aeroloc.errors import ConfigError, DataQualityError, InvalidInputError
from aeroloc.heatmap.grid import Heatmap, box_sums, grid_shape
from aeroloc.heatmap.poses import (
    SINGLE_POSE,
    PoseGrid,
    best_over_poses,
    pose_view,
    view_cells_for_base,
)
from aeroloc.models.base import Embedder

Progress = Callable[[int, int], None]


@dataclass(frozen=True, kw_only=True)
class HeatmapConfig:
    """How windows are cut and scored.

    Attributes:
        engine: a registered engine (:func:`list_engines`): ``naive``,
            ``batched`` or ``dense``.
        stride_fraction: window step as a fraction of the window (0.25 = a quarter).
        batch_size: windows per forward pass (``batched``); None = the
            model's ``batch_windows`` (4 for the default model, whose
            activations then stay in the CPU's cache; 32 for the others).
        max_nodata: largest NaN fraction a window may hold and still be scored.
        context_cells: trunk cells of surrounding AoI each window is embedded
            with (so ``batched`` and ``dense`` see the same thing).
        poses: the headings and scales scored (:mod:`aeroloc.heatmap.poses`);
            the default is the given heading and scale only.
    """

    engine: str = "dense"
    stride_fraction: float = 0.25
    batch_size: int | None = None
    max_nodata: float = 0.25
    context_cells: int = 1
    poses: PoseGrid = SINGLE_POSE

    def __post_init__(self) -> None:
        if not isinstance(self.poses, PoseGrid):
            raise ConfigError(f"poses must be a PoseGrid, got {type(self.poses).__name__}")
        if self.engine not in _ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; valid: {', '.join(list_engines())}")
        if not 0.0 < self.stride_fraction <= 1.0:
            raise ConfigError(f"stride_fraction must be in (0, 1], got {self.stride_fraction}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if not 0.0 <= self.max_nodata < 1.0:
            raise ConfigError(f"max_nodata must be in [0, 1), got {self.max_nodata}")
        if not 0 <= self.context_cells <= 4:
            raise ConfigError(f"context_cells must be 0-4, got {self.context_cells}")


@dataclass(frozen=True, kw_only=True, eq=False)
class EngineInputs:
    """What :func:`compute_heatmap` hands every engine.

    Attributes:
        model: the model, in eval mode, prepared for inference.
        photo_batch: ``[1 x 1 x h x w]`` the photo at the model's input size.
        anchor: ``[1 x D]`` its embedding.
        aoi: ``[H x W]`` gray in [0, 1], NaN = nodata.
        valid: ``[R x C]`` bool, the heatmap cells to score.
        cells: ``(row, col)`` of the valid cells, in row-major order.
        stride_px: heatmap stride in AoI pixels.
        scale: how windows map to model inputs.
        fill: value for NaN and for context beyond the AoI (the AoI's mean).
        config: the heatmap configuration.
        progress: called with (done, total) windows.
    """

    model: Embedder
    photo_batch: torch.Tensor
    anchor: torch.Tensor
    aoi: np.ndarray
    valid: np.ndarray
    cells: list[tuple[int, int]]
    stride_px: int
    scale: WindowScale
    fill: float
    config: HeatmapConfig
    progress: Progress | None = None

    def report(self, done: int) -> None:
        """Tell ``progress`` that ``done`` of the windows are scored."""
        if self.progress:
            self.progress(done, len(self.cells))


#: An engine: the ``[R x C]`` float32 scores of the valid cells (NaN elsewhere),
#: run under ``torch.inference_mode``.
EngineFn = Callable[[EngineInputs], np.ndarray]
_ENGINES: dict[str, EngineFn] = {}


def register_engine(name: str) -> Callable[[EngineFn], EngineFn]:
    """Decorator registering an engine function under ``name`` (for :class:`HeatmapConfig`)."""

    def add(fn: EngineFn) -> EngineFn:
        if name in _ENGINES:
            raise ConfigError(f"heatmap engine {name!r} is already registered")
        _ENGINES[name] = fn
        return fn

    return add


def list_engines() -> list[str]:
    """Names of the registered heatmap engines, in registration order."""
    return list(_ENGINES)


def to_model_input(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize a gray image ``[H x W]`` in [0, 1] to ``size_hw`` (area averaging).

    NaN pixels are replaced by the mean of the valid ones first.
    """
    img = np.asarray(image, dtype=np.float32)
    nan = ~np.isfinite(img)
    if nan.any():
        fill = float(np.nanmean(img)) if (~nan).any() else 0.5
        img = np.where(nan, fill, img)
    h, w = size_hw
    interp = cv2.INTER_AREA if img.shape[0] >= h and img.shape[1] >= w else cv2.INTER_LINEAR
    out = cv2.resize(img, (w, h), interpolation=interp)
    return np.clip(out, 0.0, 1.0)


@dataclass(frozen=True)
class WindowScale:
    """How AoI windows map to model inputs.

    A window of ``window_px`` AoI pixels becomes the model's input size; it is
    cut with ``margin_px`` AoI pixels of context on every side, which become
    ``context_cells`` trunk cells.
    """

    window_px: int
    input_hw: tuple[int, int]
    trunk_stride: int
    context_cells: int

    @property
    def margin_model_px(self) -> int:
        return self.context_cells * self.trunk_stride

    @property
    def margin_px(self) -> int:
        """Context margin in AoI pixels."""
        return round(self.margin_model_px * self.window_px / max(self.input_hw))

    @property
    def crop_hw(self) -> tuple[int, int]:
        """Model-input size of a window with its context."""
        m = 2 * self.margin_model_px
        return self.input_hw[0] + m, self.input_hw[1] + m


def window_scale(model: Embedder, window_px: int, context_cells: int = 0) -> WindowScale:
    """The :class:`WindowScale` of ``model`` for windows of ``window_px`` AoI pixels."""
    return WindowScale(window_px, model.spec.input_size, model.stride_px, context_cells)


def cut_window(
    aoi: np.ndarray, row0: int, col0: int, scale: WindowScale, fill: float
) -> np.ndarray:
    """The window at AoI pixel ``(row0, col0)`` with its context, resized for the model.

    Args:
        aoi: ``[H x W]`` gray in [0, 1], NaN = nodata.
        row0, col0: top-left AoI pixel of the window (may lie near any border).
        scale: window and context geometry.
        fill: value for NaN and for context beyond the AoI (the AoI's mean).

    Returns:
        ``scale.crop_hw`` float32 in [0, 1].
    """
    m = scale.margin_px
    size = scale.window_px + 2 * m
    r0, c0 = row0 - m, col0 - m
    crop = np.full((size, size), fill, dtype=np.float32)
    h, w = aoi.shape
    rs, cs = max(r0, 0), max(c0, 0)
    re, ce = min(r0 + size, h), min(c0 + size, w)
    if re > rs and ce > cs:
        part = aoi[rs:re, cs:ce]
        crop[rs - r0 : re - r0, cs - c0 : ce - c0] = np.where(np.isfinite(part), part, fill)
    return to_model_input(crop, scale.crop_hw)


def embed_in_context(model: Embedder, crops: torch.Tensor, context_cells: int) -> torch.Tensor:
    """Embeddings ``[B x D]`` of windows cut with :func:`cut_window` (``[B x 1 x h x w]``).

    The trunk sees the window's surroundings, as it does in the dense engine;
    the head pools only the window's own cells.
    """
    out = model.head_from_map(model.trunk(crops))
    return out[:, :, context_cells, context_cells]


def _as_batch(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)[:, None])


def _check_inputs(photo: np.ndarray, aoi: np.ndarray, window_px: int) -> None:
    if photo.ndim != 2 or aoi.ndim != 2:
        raise InvalidInputError(
            f"photo and AoI must be single-band [H x W], got {photo.shape} and {aoi.shape}"
        )
    if not np.isfinite(photo).all():
        raise DataQualityError("the photo holds NaN/nodata pixels; crop it to the image area")
    if float(np.nanstd(photo)) < 1e-3:
        raise DataQualityError(
            "the photo has no texture (constant gray): nothing to compare; is it all snow?"
        )
    if window_px < 8:
        raise InvalidInputError(f"window must be at least 8 AoI pixels, got {window_px}")


def _nodata_fraction(
    aoi: np.ndarray, window_px: int, stride_px: int, shape: tuple[int, int]
) -> np.ndarray:
    """``[R x C]`` share of NaN pixels of every window (summed-area table)."""
    rows = np.arange(shape[0]) * stride_px
    cols = np.arange(shape[1]) * stride_px
    return box_sums(~np.isfinite(aoi), window_px, rows, cols) / float(window_px * window_px)


def _scaled_windows(
    scaled: np.ndarray,
    cells: list[tuple[int, int]],
    stride_px: int,
    scale: WindowScale,
) -> Iterator[np.ndarray]:
    """Windows with context sliced from the AoI at model scale (:func:`model_scale_aoi`)."""
    sy, sx = scale.input_hw[0] / scale.window_px, scale.input_hw[1] / scale.window_px
    ch, cw = scale.crop_hw
    for r, c in cells:
        # The padding of the scaled AoI is the context margin: the window's AoI
        # corner at model scale is the crop's corner in the padded image.
        y = min(round(r * stride_px * sy), scaled.shape[0] - ch)
        x = min(round(c * stride_px * sx), scaled.shape[1] - cw)
        yield scaled[y : y + ch, x : x + cw]


def compute_heatmap(
    photo: np.ndarray,
    aoi: np.ndarray,
    *,
    model: Embedder,
    window_px: int,
    pixel_to_map: Affine,
    crs: CRS,
    config: HeatmapConfig | None = None,
    model_label: str = "",
    progress: Progress | None = None,
) -> Heatmap:
    """Score every window of ``aoi`` against ``photo``, at every pose of ``config.poses``.

    Args:
        photo: ``[h x w]`` float32 in [0, 1], the preprocessed photo (any size;
            it is resized to the model's input).
        aoi: ``[H x W]`` float32 in [0, 1], NaN = nodata; usually rotated so the
            photo's heading points up.
        model: an embedder from :func:`aeroloc.models.get_model`.
        window_px: window side in AoI pixels (the photo's ground size / AoI pixel size).
        pixel_to_map: AoI pixel (col, row) → map (x, y).
        crs: the map CRS.
        config: engine, stride and poses.
        model_label: name recorded in the heatmap.
        progress: called with (done, total) windows.
    """
    cfg = config or HeatmapConfig()
    _check_inputs(photo, aoi, window_px)
    stride_px = max(1, round(window_px * cfg.stride_fraction))
    shape = grid_shape(aoi.shape[0], aoi.shape[1], window_px, stride_px)
    valid = _nodata_fraction(aoi, window_px, stride_px, shape) <= cfg.max_nodata
    if not valid.any():
        raise DataQualityError(
            f"every window of the AoI has more than {cfg.max_nodata:.0%} nodata: "
            "the AoI lies outside the reference imagery"
        )
    model.eval()
    # Channels-last weights, and ResNet-50's batch norms folded: same scores, faster.
    model = model.for_inference()
    t0 = time.perf_counter()
    with torch.inference_mode():
        batch = _as_batch([to_model_input(photo, model.spec.input_size)])
        # The photo has no surroundings: it is embedded alone, as in training.
        photo_in = _Photo(batch=batch, anchor=model.embed(batch))  # anchor [1 x D]
        pose_scores = _all_pose_scores(
            model, photo_in, aoi, window_px, stride_px, valid, cfg, progress
        )
    scores = best_over_poses(pose_scores)
    elapsed = time.perf_counter() - t0
    return Heatmap(
        scores=scores,
        window_px=window_px,
        stride_px=stride_px,
        pixel_to_map=pixel_to_map,
        crs=crs,
        model=model_label or model.spec.name,
        engine=cfg.engine,
        timings_s={"heatmap": elapsed},
        pose_grid=cfg.poses,
        pose_scores=None if cfg.poses.is_single else pose_scores,
    )


@dataclass(frozen=True, eq=False)
class _Photo:
    """The photo at the model's input size (``[1 x 1 x h x w]``) and its embedding ``[1 x D]``."""

    batch: torch.Tensor
    anchor: torch.Tensor


def _engine_scores(
    model: Embedder,
    photo: _Photo,
    aoi: np.ndarray,
    window_px: int,
    stride_px: int,
    valid: np.ndarray,
    cfg: HeatmapConfig,
    progress: Progress | None,
) -> np.ndarray:
    """The configured engine's ``[R x C]`` scores of ``aoi``'s ``valid`` windows."""
    inputs = EngineInputs(
        model=model,
        photo_batch=photo.batch,
        anchor=photo.anchor,
        aoi=aoi,
        valid=valid,
        cells=[(int(r), int(c)) for r, c in zip(*np.nonzero(valid), strict=True)],
        stride_px=stride_px,
        scale=window_scale(model, window_px, cfg.context_cells),
        fill=float(np.nanmean(aoi)),
        config=cfg,
        progress=progress,
    )
    return _ENGINES[cfg.engine](inputs)


def _pose_scores(
    model: Embedder,
    photo: _Photo,
    aoi: np.ndarray,
    window_px: int,
    stride_px: int,
    base_valid: np.ndarray,
    cfg: HeatmapConfig,
    offset_deg: float,
    scale: float,
    progress: Progress | None,
) -> np.ndarray:
    """``[R x C]`` scores of the base grid's valid cells at one pose (NaN where the view has none).

    The base pose scores the AoI itself; any other scores its :func:`pose_view`
    on the view's own grid, and each base cell takes the view cell nearest it.
    """
    if (offset_deg, scale) == (0.0, 1.0):
        return _engine_scores(model, photo, aoi, window_px, stride_px, base_valid, cfg, progress)
    view = pose_view(aoi, window_px, offset_deg, scale)
    # Views are scored twice as densely, so that a base cell finds a view window
    # at most a quarter stride from its own centre.
    stride = max(1, round(view.window_px * cfg.stride_fraction / 2))
    h, w = view.image.shape
    out = np.full(base_valid.shape, np.nan, dtype=np.float32)
    if h < view.window_px or w < view.window_px:
        return out
    vshape = grid_shape(h, w, view.window_px, stride)
    vvalid = _nodata_fraction(view.image, view.window_px, stride, vshape) <= cfg.max_nodata
    if not vvalid.any():
        return out
    vscores = _engine_scores(
        model, photo, view.image, view.window_px, stride, vvalid, cfg, progress
    )
    r_idx, c_idx = np.nonzero(base_valid)
    centres = np.stack(
        [c_idx * stride_px + window_px / 2, r_idx * stride_px + window_px / 2], axis=1
    )
    rows, cols, inside = view_cells_for_base(centres, view, stride, vshape)
    out[r_idx[inside], c_idx[inside]] = vscores[rows[inside], cols[inside]]
    return out


def _all_pose_scores(
    model: Embedder,
    photo: _Photo,
    aoi: np.ndarray,
    window_px: int,
    stride_px: int,
    valid: np.ndarray,
    cfg: HeatmapConfig,
    progress: Progress | None,
) -> np.ndarray:
    """``[P x R x C]``: each pose of ``cfg.poses`` scored on the base grid."""
    poses = cfg.poses.poses
    n = int(valid.sum())
    out = np.full((len(poses), *valid.shape), np.nan, dtype=np.float32)
    for k, (offset, scale) in enumerate(poses):

        def report(done: int, total: int, k: int = k) -> None:
            if progress is not None:
                progress(k * n + round(n * done / max(1, total)), n * len(poses))

        out[k] = _pose_scores(
            model, photo, aoi, window_px, stride_px, valid, cfg, offset, scale, report
        )
    return out


@register_engine("naive")
def naive_engine(inputs: EngineInputs) -> np.ndarray:
    """The thesis's way: both branches for every pair, one pair at a time."""
    model, cfg, stride_px = inputs.model, inputs.config, inputs.stride_px
    scores = np.full(inputs.valid.shape, np.nan, dtype=np.float32)
    for i, (r, c) in enumerate(inputs.cells):
        a = model.embed(inputs.photo_batch)
        w = cut_window(inputs.aoi, r * stride_px, c * stride_px, inputs.scale, inputs.fill)
        e = embed_in_context(model, _as_batch([w]), cfg.context_cells)
        scores[r, c] = float(model.similarity(a, e)[0])
        inputs.report(i + 1)
    return scores


@register_engine("batched")
def batched_engine(inputs: EngineInputs) -> np.ndarray:
    """The photo embedded once; windows sliced from the model-scale AoI, embedded in batches."""
    model, cfg, cells = inputs.model, inputs.config, inputs.cells
    scores = np.full(inputs.valid.shape, np.nan, dtype=np.float32)
    scaled = model_scale_aoi(inputs.aoi, inputs.scale, inputs.fill)
    windows = _scaled_windows(scaled, cells, inputs.stride_px, inputs.scale)
    bs = cfg.batch_size or model.batch_windows
    for start in range(0, len(cells), bs):
        chunk = cells[start : start + bs]
        batch = _as_batch([next(windows) for _ in chunk])
        sims = model.similarity(inputs.anchor, embed_in_context(model, batch, cfg.context_cells))
        for (r, c), v in zip(chunk, sims.numpy(), strict=True):
            scores[r, c] = v
        inputs.report(start + len(chunk))
    return scores


@register_engine("dense")
def dense_engine(inputs: EngineInputs) -> np.ndarray:
    """One trunk pass over the model-scale AoI, the head at each window (dense_cell_scores)."""
    model, scale = inputs.model, inputs.scale
    fmap = model.trunk(_as_batch([model_scale_aoi(inputs.aoi, scale, inputs.fill)]))
    scores = dense_cell_scores(
        model,
        inputs.anchor[0],
        fmap,
        inputs.valid,
        stride_px=inputs.stride_px,
        input_per_px=(scale.input_hw[0] / scale.window_px, scale.input_hw[1] / scale.window_px),
        offset_cells=inputs.config.context_cells,
    )
    inputs.report(len(inputs.cells))
    return scores


def dense_cell_scores(
    model: Embedder,
    anchor: torch.Tensor,
    fmap: torch.Tensor,
    valid: np.ndarray,
    *,
    stride_px: int,
    input_per_px: tuple[float, float],
    offset_cells: int = 0,
) -> np.ndarray:
    """The ``dense`` engine's scores: each valid heatmap cell takes the nearest dense output.

    The head runs only on those cells (:meth:`Embedder.similarity_at`), not on
    every trunk cell.

    Args:
        model: the model (in eval mode).
        anchor: ``[D]`` the photo's embedding.
        fmap: ``[1 x F x h x w]`` trunk map of the model-scale AoI.
        valid: ``[R x C]`` heatmap cells to score.
        stride_px: heatmap stride in AoI pixels.
        input_per_px: (y, x) model input pixels per AoI pixel.
        offset_cells: trunk cells of context padding before the AoI's first pixel.

    Returns:
        ``[R x C]`` float32 scores, NaN where not ``valid``.
    """
    step = model.stride_px
    wh, ww = model.window_map_size
    rows = np.rint(np.arange(valid.shape[0]) * stride_px * input_per_px[0] / step).astype(np.int64)
    cols = np.rint(np.arange(valid.shape[1]) * stride_px * input_per_px[1] / step).astype(np.int64)
    rows = np.clip(rows + offset_cells, 0, fmap.shape[2] - wh)
    cols = np.clip(cols + offset_cells, 0, fmap.shape[3] - ww)
    scores = np.full(valid.shape, np.nan, dtype=np.float32)
    r_idx, c_idx = np.nonzero(valid)
    if len(r_idx):
        at = torch.from_numpy(np.stack([rows[r_idx], cols[c_idx]], axis=1))
        scores[r_idx, c_idx] = model.similarity_at(anchor, fmap, at).float().numpy()
    return scores


def model_scale_aoi(aoi: np.ndarray, scale: WindowScale, fill: float) -> np.ndarray:
    """The AoI resized so a window becomes the model's input, NaN filled, context-padded."""
    ih, iw = scale.input_hw
    sy, sx = ih / scale.window_px, iw / scale.window_px
    out_h = max(ih, round(aoi.shape[0] * sy))
    out_w = max(iw, round(aoi.shape[1] * sx))
    filled = np.where(np.isfinite(aoi), aoi, fill).astype(np.float32)
    # Resampled as a window resized alone is.
    scaled = to_model_input(filled, (out_h, out_w))
    m = scale.margin_model_px
    return np.pad(scaled, m, mode="constant", constant_values=fill)
