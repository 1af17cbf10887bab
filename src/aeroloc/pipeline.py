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
the requests come from a catalog record (:func:`request_from_record`,
:func:`request_from_catalog`) or from AoI bounds (:func:`request_from_bounds`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS

from aeroloc.aoi import (
    AoI,
    AoIConfig,
    AoIRaster,
    aoi_from_bounds,
    aoi_polygon_to_gpkg,
    build_aoi,
    check_center_in_reference,
    crop_reference,
    save_aoi,
)
from aeroloc.catalog import CatalogQuery, PhotoRecord, parse_column_map, read_catalog
from aeroloc.errors import CatalogError, InvalidInputError, ModelError
from aeroloc.files import open_raster
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
from aeroloc.verify.walk import (
    Verification,
    VerifyConfig,
    frame_box,
    verify_candidates,
)


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


@dataclass(frozen=True, kw_only=True)
class LocateRequest:
    """Everything needed to search for one photo.

    Attributes:
        photo_path: the scanned photo.
        references: reference rasters (mosaic, first wins).
        aoi: the area of interest.
        azimuth_deg: heading used to rotate the AoI.
        ground_size_m: the photo's footprint side; or None with ``gsd_m``.
        gsd_m: scan pixel size on the ground, when ``ground_size_m`` is None.
        rock_mask_path: rock-outcrop polygons for the enhancement.
        photo_id: name used in reports.
    """

    photo_path: Path
    references: tuple[Path, ...]
    aoi: AoI
    azimuth_deg: float
    ground_size_m: float | None = None
    gsd_m: float | None = None
    rock_mask_path: Path | None = None
    photo_id: str = ""

    def __post_init__(self) -> None:
        if (self.ground_size_m is None) == (self.gsd_m is None):
            raise InvalidInputError("give the photo's ground size (altitude) or its GSD")
        if not math.isfinite(self.azimuth_deg):
            raise InvalidInputError(f"azimuth must be finite, got {self.azimuth_deg}")


def request_from_record(
    record: PhotoRecord,
    references: Sequence[Path],
    *,
    aoi_config: AoIConfig | None = None,
    photo_path: Path | None = None,
    rock_mask_path: Path | None = None,
) -> LocateRequest:
    """A :class:`LocateRequest` from a catalog record (AoI around its rough footprint)."""
    cfg = aoi_config or AoIConfig()
    path = photo_path or record.path
    if path is None:
        raise InvalidInputError(f"photo {record.photo_id} has no path in the catalog")
    if record.azimuth_deg is None:
        raise InvalidInputError(
            f"photo {record.photo_id} has no azimuth_deg: add the heading to the catalog"
        )
    area = build_aoi(record, cfg)
    check_center_in_reference(record, references)
    return LocateRequest(
        photo_path=Path(path),
        references=tuple(Path(p) for p in references),
        aoi=area,
        azimuth_deg=record.azimuth_deg,
        ground_size_m=area.ground_width_m,
        rock_mask_path=rock_mask_path,
        photo_id=record.photo_id,
    )


def reference_crs(references: Sequence[Path]) -> CRS:
    """The CRS of the first reference raster (the CRS every stage works in).

    Raises:
        MissingFileError, RasterReadError: the raster is missing or unreadable.
        CRSError: it has no CRS.
    """
    with open_raster(references[0], what="reference raster", need_crs=True) as ds:
        return ds.crs


def catalog_record(query: CatalogQuery, references: Sequence[Path]) -> PhotoRecord:
    """The record ``query`` names, its camera centre in the reference CRS.

    Args:
        query: catalog file, photo id (None raises: a catalog alone names no
            photo), column map and CRS.
        references: reference rasters; the first one's CRS is the target.
    """
    target_crs = reference_crs(references)
    if query.photo_id is None:
        raise CatalogError("--catalog needs --photo-id to pick the photo")
    cat = read_catalog(
        query.path,
        columns=parse_column_map(query.columns),
        crs=query.crs,
        target_crs=target_crs,
    )
    return cat.get(query.photo_id)


def request_from_catalog(
    query: CatalogQuery,
    references: Sequence[Path],
    *,
    azimuth_deg: float | None = None,
    buffer_m: float,
    photo_path: Path | None = None,
    rock_mask_path: Path | None = None,
) -> LocateRequest:
    """A :class:`LocateRequest` for one catalog row (see :func:`catalog_record`).

    ``azimuth_deg`` overrides the catalog's heading; ``photo_path`` its photo path.
    """
    record = catalog_record(query, references)
    if azimuth_deg is not None:
        record = replace(record, azimuth_deg=azimuth_deg)
    return request_from_record(
        record,
        references,
        aoi_config=AoIConfig(buffer_m=buffer_m),
        photo_path=photo_path,
        rock_mask_path=rock_mask_path,
    )


def request_from_bounds(
    photo_path: Path,
    references: Sequence[Path],
    bounds: Sequence[float],
    *,
    gsd_m: float,
    azimuth_deg: float,
    rock_mask_path: Path | None = None,
) -> LocateRequest:
    """A :class:`LocateRequest` without a catalog: an AoI box and the photo's GSD.

    Args:
        photo_path: the scanned photo (its stem names it in reports).
        references: reference rasters; ``bounds`` are in the first one's CRS.
        bounds: ``(minx, miny, maxx, maxy)`` of the search area (m).
        gsd_m: ground size of one scan pixel (m).
        azimuth_deg: flight heading, clockwise from grid north.
        rock_mask_path: rock-outcrop polygons for the enhancement.
    """
    area = aoi_from_bounds(bounds, reference_crs(references), azimuth_deg=azimuth_deg)
    return LocateRequest(
        photo_path=photo_path,
        references=tuple(references),
        aoi=area,
        azimuth_deg=azimuth_deg,
        gsd_m=gsd_m,
        rock_mask_path=rock_mask_path,
        photo_id=photo_path.stem,
    )


def write_aoi(
    record: PhotoRecord, references: Sequence[Path], out_dir: Path, *, config: AoIConfig
) -> tuple[AoI, AoIRaster, dict[str, Path]]:
    """Crop the references to ``record``'s AoI; write ``aoi.tif`` and ``aoi.gpkg``.

    Returns:
        The AoI, the cropped reference and the written files by label.
    """
    area = build_aoi(record, config)
    check_center_in_reference(record, references)
    raster = crop_reference(references, area)
    paths = {
        "aoi raster": save_aoi(raster, out_dir / "aoi.tif"),
        "aoi polygons": aoi_polygon_to_gpkg(area, out_dir / "aoi.gpkg"),
    }
    return area, raster, paths


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
