"""One photo through the pipeline: AoI → prepare → heatmap → candidates → files.

``locate_photo`` writes, into its output folder, the files DESIGN.md lists:
``heatmap.tif``, ``heatmap.png``, ``candidates.gpkg`` and, last,
``result.json``. Each is written atomically; ``result.json`` only once
everything else is in place, so its presence means the photo is done (a rerun
skips it unless asked to overwrite).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import mapping

from aeroloc import __version__
from aeroloc.aoi import AoI, AoIConfig, build_aoi, check_center_in_reference, crop_reference
from aeroloc.candidates import Candidate, find_candidates
from aeroloc.catalog import PhotoRecord
from aeroloc.errors import InvalidInputError, ModelError
from aeroloc.files import atomic_output, write_json
from aeroloc.heatmap.engines import HeatmapConfig, compute_heatmap
from aeroloc.heatmap.grid import Heatmap
from aeroloc.heatmap.io import save_heatmap_png, save_heatmap_tif
from aeroloc.models import DEFAULT_MODEL, Embedder, get_model, list_models, load_checkpoint
from aeroloc.prepare import PreparedPair, enhance_aoi, prepare_pair
from aeroloc.preprocess import AveragedHistogramThreshold

RESULT_FILE = "result.json"
CELLS_FILE = "heatmap_cells.npy"
DEFAULT_CHECKPOINT = Path(__file__).parent / "weights" / "effnet-lite0-siamese.pt"


def load_model(spec: str | os.PathLike[str] | None = None) -> tuple[Embedder, str]:
    """A model from a registry name or a checkpoint path, and a label for reports.

    ``None`` gives the shipped default checkpoint (the adaptively trained
    ``effnet-lite0-siamese``), or, when the package has none, the ImageNet
    ``effnet-lite0-siamese``.
    """
    if spec is None:
        if DEFAULT_CHECKPOINT.is_file():
            return load_checkpoint(DEFAULT_CHECKPOINT), f"{DEFAULT_MODEL} (shipped checkpoint)"
        return get_model(DEFAULT_MODEL), f"{DEFAULT_MODEL} (ImageNet)"
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


@dataclass(frozen=True, kw_only=True, eq=False)
class LocateResult:
    """What ``locate_photo`` found and wrote."""

    out_dir: Path
    heatmap: Heatmap
    candidates: tuple[Candidate, ...]
    window_px: int
    timings_s: dict[str, float] = field(default_factory=dict)
    skipped: bool = False

    def paths(self) -> dict[str, Path]:
        names = (RESULT_FILE, "heatmap.tif", "heatmap.png", "candidates.gpkg", CELLS_FILE)
        return {n: self.out_dir / n for n in names}


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
) -> LocateResult | None:
    """Search one photo; write result.json, heatmap.tif/png and candidates.gpkg.

    Returns None when ``overwrite`` is False and the folder already holds a
    result (resume).
    """
    out = Path(out_dir)
    if not overwrite and (out / RESULT_FILE).is_file():
        return None
    hcfg = heatmap_config or HeatmapConfig()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    raster = crop_reference(request.references, request.aoi)
    timings["aoi"] = time.perf_counter() - t0
    binary = model.spec.preprocessing == "binary"
    t = time.perf_counter()
    prepared = prepare_pair(
        request.photo_path,
        raster,
        azimuth_deg=request.azimuth_deg,
        ground_size_m=request.ground_size_m,
        gsd_m=request.gsd_m,
        rock_mask_path=request.rock_mask_path,
        threshold=(threshold or AveragedHistogramThreshold.fixed()) if binary else None,
    )
    timings["prepare"] = time.perf_counter() - t
    photo, aoi_img = _model_inputs(prepared, binary)
    t = time.perf_counter()
    heatmap = compute_heatmap(
        photo,
        aoi_img,
        model=model,
        window_px=prepared.window_px,
        pixel_to_map=prepared.pixel_to_map,
        crs=prepared.aoi.crs,
        config=hcfg,
        model_label=model_label or model.spec.name,
        progress=progress,
    )
    timings["heatmap"] = time.perf_counter() - t
    candidates = find_candidates(heatmap, max_candidates=max_candidates)
    t = time.perf_counter()
    save_heatmap_tif(heatmap, out / "heatmap.tif")
    background, _ = enhance_aoi(raster)
    save_heatmap_png(
        heatmap,
        out / "heatmap.png",
        background=background,
        background_transform=raster.transform,
        candidates=[(c.rank, c.polygon) for c in candidates[:5]],
        truth=truth_footprint,
        title=f"{request.photo_id or request.photo_path.name}: {heatmap.model}",
    )
    write_candidates_gpkg(candidates, heatmap, out / "candidates.gpkg")
    save_cells(heatmap, out / CELLS_FILE)
    timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    write_json(out / RESULT_FILE, _result_json(request, prepared, heatmap, candidates, timings))
    return LocateResult(
        out_dir=out,
        heatmap=heatmap,
        candidates=candidates,
        window_px=prepared.window_px,
        timings_s=timings,
    )


def _model_inputs(prepared: PreparedPair, binary: bool) -> tuple[np.ndarray, np.ndarray]:
    if not binary:
        return prepared.photo, prepared.aoi_gray
    if prepared.photo_binary is None or prepared.aoi_binary is None:
        raise ModelError(
            "this model compares binary images (rock = black): give rock-outcrop polygons "
            "with --rock-mask, or choose a gray model"
        )
    return prepared.photo_binary, prepared.aoi_binary


def write_candidates_gpkg(
    candidates: Sequence[Candidate], heatmap: Heatmap, path: str | os.PathLike[str]
) -> Path:
    """Window polygons with rank, score and percentile, as a GeoPackage layer."""
    import geopandas as gpd

    frame = gpd.GeoDataFrame(
        [c.as_dict() for c in candidates],
        geometry=[c.polygon for c in candidates],
        crs=heatmap.crs.to_wkt(),
    )
    with atomic_output(path) as tmp:
        frame.to_file(tmp, layer="candidates", driver="GPKG")
    return Path(path)


def _result_json(
    request: LocateRequest,
    prepared: PreparedPair,
    heatmap: Heatmap,
    candidates: Sequence[Candidate],
    timings: dict[str, float],
) -> dict[str, Any]:
    best = candidates[0]
    crs = heatmap.crs.to_string()
    return {
        "aeroloc_version": __version__,
        "photo_id": request.photo_id,
        "photo": str(request.photo_path),
        "inputs": {
            "references": [str(p) for p in request.references],
            "rock_mask": str(request.rock_mask_path) if request.rock_mask_path else None,
            "crs": crs,
            "aoi_bounds": list(request.aoi.bounds),
            "azimuth_deg": request.azimuth_deg,
            "ground_size_m": prepared.ground_size_m,
            "frame_box_px": [
                prepared.frame.col0,
                prepared.frame.row0,
                prepared.frame.col1,
                prepared.frame.row1,
            ],
        },
        "model": heatmap.model,
        "engine": heatmap.engine,
        "window_px": heatmap.window_px,
        "stride_px": heatmap.stride_px,
        "grid": {
            "shape": list(heatmap.shape),
            "pixel_to_map": list(heatmap.pixel_to_map)[:6],
            "cells_file": CELLS_FILE,
        },
        "aoi_pixel_m": heatmap.pixel_size_m,
        "n_windows": heatmap.n_windows,
        "n_valid_windows": int(heatmap.valid.sum()),
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        "candidates": [c.as_dict() for c in candidates],
        "best": {
            **best.as_dict(),
            "status": "unverified",
            "footprint": mapping(best.polygon),
        },
    }


def save_cells(heatmap: Heatmap, path: str | os.PathLike[str]) -> Path:
    """The raw ``[R x C]`` window scores (rotated grid) as ``.npy``, for evaluation."""
    with atomic_output(path) as tmp, tmp.open("wb") as fh:
        np.save(fh, heatmap.scores.astype(np.float32))
    return Path(path)


def heatmap_from_result(result: dict[str, Any], folder: str | os.PathLike[str]) -> Heatmap:
    """Rebuild the :class:`Heatmap` of a ``locate`` run from its result and cells file."""
    from affine import Affine

    from aeroloc.files import parse_crs

    grid = result["grid"]
    scores = np.load(Path(folder) / grid["cells_file"])
    return Heatmap(
        scores=scores,
        window_px=int(result["window_px"]),
        stride_px=int(result["stride_px"]),
        pixel_to_map=Affine(*grid["pixel_to_map"]),
        crs=parse_crs(result["inputs"]["crs"]),
        model=str(result["model"]),
        engine=str(result["engine"]),
    )


def read_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``result.json`` (or the one inside a folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULT_FILE
    try:
        data: dict[str, Any] = json.loads(p.read_text())
    except FileNotFoundError:
        from aeroloc.errors import MissingFileError

        raise MissingFileError(
            f"no {RESULT_FILE} in {p.parent}: run aeroloc locate first"
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{p} is not valid JSON: {exc}") from exc
    return data
