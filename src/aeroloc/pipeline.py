"""One photo through the pipeline: AoI → prepare → heatmap → candidates → verify → files.

``locate_photo`` is the stage calls in order; it writes, into its output
folder, ``heatmap.tif``, ``heatmap.png``, ``candidates.gpkg`` and
``heatmap_cells.npy``, and, when a candidate is verified (accepted or for
review), ``footprint.gpkg``, ``gcps.points``, ``photo_gcps.tif`` (and
``photo_warped.tif`` with ``warp``); last, ``result.json``
(:mod:`aeroloc.io.results`). Each is written atomically; ``result.json`` only
once everything else is in place, so its presence means the photo is done (a
rerun skips it unless asked to overwrite).

The walk over candidates is :func:`aeroloc.verify.walk.verify_candidates`;
the requests (:mod:`aeroloc.request`, re-exported here) come from a catalog
record (:func:`request_from_record`, :func:`request_from_catalog`) or from AoI
bounds (:func:`request_from_bounds`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aeroloc.aoi import AoIRaster, write_aoi
from aeroloc.errors import ModelError
from aeroloc.georef import GeorefOutputs, WarpConfig, write_georef_outputs
from aeroloc.heatmap.candidates import Candidate, find_candidates
from aeroloc.heatmap.engines import HeatmapConfig, compute_heatmap
from aeroloc.heatmap.grid import Heatmap
from aeroloc.heatmap.io import save_heatmap_png, save_heatmap_tif
from aeroloc.io.results import (
    CANDIDATES_FILE,
    CELLS_FILE,
    RESULT_FILE,
    has_result,
    locate_record,
    remove_stale_georef,
    save_cells,
    write_candidates_gpkg,
    write_result,
)
from aeroloc.models import (
    Embedder,
    default_model,
    get_model,
    list_models,
    load_checkpoint,
)
from aeroloc.preprocess import AveragedHistogramThreshold
from aeroloc.preprocess.prepare import PreparedPair, enhance_aoi_preview, prepare_request
from aeroloc.request import (
    LocateRequest,
    catalog_record,
    reference_crs,
    request_from_bounds,
    request_from_catalog,
    request_from_record,
)
from aeroloc.verify.walk import (
    Verification,
    VerifyConfig,
    frame_box,
    verify_candidates,
)

__all__ = [
    "LocateRequest",
    "LocateResult",
    "catalog_record",
    "load_model",
    "locate_photo",
    "reference_crs",
    "request_from_bounds",
    "request_from_catalog",
    "request_from_record",
    "write_aoi",
]


def load_model(spec: str | os.PathLike[str] | None = None) -> tuple[Embedder, str]:
    """A model from a registry name or a checkpoint path, and a label for reports.

    ``None`` gives the shipped default checkpoint (the adaptively trained
    ``effnet-lite0-siamese``), or, when the package has none, the ImageNet
    ``effnet-lite0-siamese``.
    """
    if spec is None:
        return default_model()
    text = str(spec)
    if text in list_models():
        return get_model(text), text
    path = Path(text)
    if path.suffix in (".pt", ".pth", ".ckpt") or path.exists():
        return load_checkpoint(path), str(path)
    raise ModelError(
        f"unknown model {text!r}: give a checkpoint file or one of {', '.join(list_models())}"
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class LocateResult:
    """What ``locate_photo`` found and wrote."""

    out_dir: Path
    heatmap: Heatmap
    candidates: tuple[Candidate, ...]
    window_px: int
    timings_s: dict[str, float] = field(default_factory=dict)
    skipped: bool = False
    verification: Verification | None = None
    georef: GeorefOutputs | None = None

    def paths(self) -> dict[str, Path]:
        names = (RESULT_FILE, "heatmap.tif", "heatmap.png", "candidates.gpkg", CELLS_FILE)
        out = {n: self.out_dir / n for n in names}
        if self.georef is not None:
            out.update({p.name: p for p in self.georef.paths.values()})
        return out

    @property
    def status(self) -> str:
        """``accepted``, ``review``, ``rejected``, or ``unverified`` without verification."""
        return "unverified" if self.verification is None else self.verification.status


def locate_photo(
    request: LocateRequest,
    out_dir: str | os.PathLike[str],
    *,
    model: Embedder,
    model_label: str = "",
    heatmap_config: HeatmapConfig | None = None,
    max_candidates: int = 20,
    threshold: AveragedHistogramThreshold | None = None,
    truth_footprint: Any = None,
    overwrite: bool = True,
    progress: Callable[[int, int], None] | None = None,
    verify: VerifyConfig | None = None,
    warp: WarpConfig | None = None,
) -> LocateResult | None:
    """Search one photo; verify its candidates; write the files (see the module docstring).

    Args:
        request: photo, references, AoI, heading and ground size.
        out_dir: folder to write into.
        model: similarity model for the heatmap.
        model_label: how reports name the model.
        heatmap_config: engine and stride.
        max_candidates: candidates kept after non-maximum suppression.
        threshold: binarisation threshold for binary models.
        truth_footprint: true footprint to draw on heatmap.png (synthetic data).
        overwrite: False skips a folder that already holds a result (resume).
        progress: called with (windows done, windows) while scoring.
        verify: verification settings; None skips verification (every
            candidate stays ``unverified``).
        warp: target CRS, resampling and tiling of ``photo_warped.tif``
            (written when ``verify.warp``); None: :class:`~aeroloc.georef.WarpConfig`.

    Returns:
        The result, or None when ``overwrite`` is False and the folder already
        holds one.
    """
    out = Path(out_dir)
    if not overwrite and has_result(out):
        return None
    hcfg = heatmap_config or HeatmapConfig()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    binary = model.spec.preprocessing == "binary"
    raster, prepared = prepare_request(
        request,
        threshold=(threshold or AveragedHistogramThreshold.fixed()) if binary else None,
        timings=timings,
    )
    t = time.perf_counter()
    heatmap = _heatmap(prepared, model, binary, hcfg, model_label or model.spec.name, progress)
    timings["heatmap"] = time.perf_counter() - t
    candidates = find_candidates(
        heatmap, max_candidates=max_candidates, azimuth_deg=request.azimuth_deg
    )
    verification: Verification | None = None
    georef: GeorefOutputs | None = None
    if verify is not None:
        t = time.perf_counter()
        verification = verify_candidates(prepared, heatmap, candidates, verify)
        timings["verify"] = time.perf_counter() - t
        t = time.perf_counter()
        georef = _write_georef(
            request, prepared, verification, out, warp=verify.warp, warp_config=warp
        )
        if georef is not None:
            timings["georef"] = time.perf_counter() - t
    remove_stale_georef(out, georef)
    t = time.perf_counter()
    status = "unverified" if verification is None else verification.status
    located = (
        verification.chosen.footprint
        if verification is not None
        and verification.chosen is not None
        and status in ("accepted", "review")
        else None
    )
    _write_heatmap_files(
        request, raster, heatmap, candidates, out, located, truth_footprint, status=status
    )
    timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    record = locate_record(
        request,
        prepared,
        heatmap,
        candidates,
        timings,
        verification=verification,
        georef=georef,
    )
    write_result(record, out)
    return LocateResult(
        out_dir=out,
        heatmap=heatmap,
        candidates=candidates,
        window_px=prepared.window_px,
        timings_s=timings,
        verification=verification,
        georef=georef,
    )


def _heatmap(
    prepared: PreparedPair,
    model: Embedder,
    binary: bool,
    config: HeatmapConfig,
    label: str,
    progress: Callable[[int, int], None] | None,
) -> Heatmap:
    """Stage 4: the model's scores of every window of the prepared AoI."""
    photo, aoi_img = _model_inputs(prepared, binary)
    return compute_heatmap(
        photo,
        aoi_img,
        model=model,
        window_px=prepared.window_px,
        pixel_to_map=prepared.pixel_to_map,
        crs=prepared.aoi.crs,
        config=config,
        model_label=label,
        progress=progress,
    )


def _write_georef(
    request: LocateRequest,
    prepared: PreparedPair,
    verification: Verification,
    out: Path,
    *,
    warp: bool,
    warp_config: WarpConfig | None = None,
) -> GeorefOutputs | None:
    """Footprint, GCPs (and warp) of the chosen candidate; None when none has a fit."""
    chosen = verification.chosen
    if chosen is None or chosen.transform is None or chosen.footprint is None:
        return None
    return write_georef_outputs(
        request.photo_path,
        out,
        chosen.transform,
        frame_box(prepared),
        tie_pixel_xy=chosen.tie_pixel_xy,
        tie_map_xy=chosen.tie_map_xy,
        warp=warp,
        warp_config=warp_config,
        properties={
            "photo_id": request.photo_id,
            "status": chosen.status,
            "p_correct": chosen.p_correct,
            "rank": chosen.candidate.rank,
            "score": chosen.candidate.score,
            "matcher": verification.matcher,
            "n_inliers": chosen.n_inliers,
            "rmse_px": chosen.rmse_px,
        },
    )


def _write_heatmap_files(
    request: LocateRequest,
    raster: AoIRaster,
    heatmap: Heatmap,
    candidates: Sequence[Candidate],
    out: Path,
    located: Any,
    truth_footprint: Any,
    *,
    status: str,
) -> None:
    """``heatmap.tif``, ``heatmap.png`` (status; accepted or proposed footprint), candidates,
    cells."""
    save_heatmap_tif(heatmap, out / "heatmap.tif")
    background, background_transform = enhance_aoi_preview(raster)
    save_heatmap_png(
        heatmap,
        out / "heatmap.png",
        background=background,
        background_transform=background_transform,
        candidates=[(c.rank, c.polygon) for c in candidates[:5]],
        footprint=located,
        truth=truth_footprint,
        title=f"{request.photo_id or request.photo_path.name}: {heatmap.model}",
        status=status,
    )
    write_candidates_gpkg(candidates, heatmap, out / CANDIDATES_FILE)
    save_cells(heatmap, out / CELLS_FILE)


def _model_inputs(prepared: PreparedPair, binary: bool) -> tuple[np.ndarray, np.ndarray]:
    if not binary:
        return prepared.photo, prepared.aoi_gray
    if prepared.photo_binary is None or prepared.aoi_binary is None:
        raise ModelError(
            "this model compares binary images (rock = black): give rock-outcrop polygons "
            "with --rock-mask, or choose a gray model"
        )
    return prepared.photo_binary, prepared.aoi_binary
