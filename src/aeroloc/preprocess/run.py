"""What ``aeroloc preprocess`` writes: stage 3's arrays as rasters, metadata and a preview.

The arrays come from :func:`aeroloc.preprocess.prepare.prepare_steps`, the
composition ``locate`` and training use, so the files and the preview show
exactly what the model scores: the photo at the AoI's pixel size,
histogram-matched to the rotated, enhanced AoI (both in [0, 1]), and with
``binarize`` the binary photo. Everything is computed first and written
afterwards, each file atomically, so a failure leaves no partial output.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from aeroloc.aoi import AoIRaster
from aeroloc.files import write_geotiff, write_json, write_png
from aeroloc.preprocess.binarize import AveragedHistogramThreshold
from aeroloc.preprocess.enhance import EnhanceConfig
from aeroloc.preprocess.frame import FrameConfig
from aeroloc.preprocess.prepare import (
    PhotoRequest,
    PreparationSteps,
    crop_photo,
    gray_aoi,
    prepare_steps,
    request_aoi,
)

_MASK_OUTSIDE = 255  # nodata of the rotated rock mask (0 = no rock, 1 = rock)
_PREVIEW_PX = 700


@dataclass(frozen=True, kw_only=True)
class PreprocessOutputs:
    """Files written by :func:`run_preprocess` (None = not produced)."""

    photo_cropped: Path
    photo_matched: Path
    aoi_enhanced: Path
    aoi_rotated: Path
    metadata: Path
    preview: Path
    photo_binary: Path | None = None
    threshold: Path | None = None
    rock_mask: Path | None = None
    rock_mask_rotated: Path | None = None

    def paths(self) -> dict[str, Path]:
        """Label → path of every file written."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def preprocess_photo(
    request: PhotoRequest,
    out_dir: str | os.PathLike[str],
    *,
    threshold_path: str | os.PathLike[str] | None = None,
    binarize: bool = False,
) -> PreprocessOutputs:
    """Stage 3 of one photo as ``locate`` runs it, written to ``out_dir`` (:func:`run_preprocess`).

    Args:
        request: photo, references, AoI, heading, ground size and rock mask
            (e.g. from :func:`aeroloc.pipeline.request_from_record`).
        out_dir: output folder (created).
        threshold_path: averaged-histogram threshold JSON; implies ``binarize``.
        binarize: also write a binary photo.
    """
    # The threshold file first: a bad one is refused before the AoI is cropped.
    threshold = None if threshold_path is None else AveragedHistogramThreshold.load(threshold_path)
    return run_preprocess(
        photo_path=request.photo_path,
        aoi=request_aoi(request),
        threshold=threshold,
        azimuth_deg=request.azimuth_deg,
        ground_size_m=request.ground_size_m,
        gsd_m=request.gsd_m,
        out_dir=out_dir,
        rock_mask_path=request.rock_mask_path,
        threshold_path=threshold_path,
        binarize=binarize,
    )


def run_preprocess(
    *,
    photo_path: str | os.PathLike[str],
    aoi: AoIRaster,
    azimuth_deg: float,
    out_dir: str | os.PathLike[str],
    ground_size_m: float | None = None,
    gsd_m: float | None = None,
    rock_mask_path: str | os.PathLike[str] | None = None,
    threshold_path: str | os.PathLike[str] | None = None,
    threshold: AveragedHistogramThreshold | None = None,
    binarize: bool = False,
    frame_config: FrameConfig | None = None,
    enhance_config: EnhanceConfig | None = None,
) -> PreprocessOutputs:
    """Preprocess one scanned photo and its AoI; write rasters, metadata and a preview.

    Args:
        photo_path: scanned photo (un-referenced TIFF, gray or RGB).
        aoi: the reference cropped to the AoI (e.g. ``aeroloc.aoi.read_aoi``).
        azimuth_deg: flight heading of the photo, clockwise from grid north.
        out_dir: output folder (created).
        ground_size_m: side of the photo's ground footprint; or None with ``gsd_m``.
        gsd_m: ground size of one scan pixel, when ``ground_size_m`` is None.
        rock_mask_path: rock-outcrop polygons; without them the AoI is only
            converted to gray and stretched (no shadow lift).
        threshold_path: averaged-histogram threshold JSON; implies ``binarize``.
        threshold: that file's threshold when the caller read it already.
        binarize: write a binary photo. Without ``threshold_path`` the threshold
            comes from this photo alone (with a warning) and is saved.
        frame_config: frame detection parameters.
        enhance_config: reference enhancement parameters.

    Returns:
        The paths written.
    """
    frame_cfg = frame_config or FrameConfig()
    enhance_cfg = enhance_config or EnhanceConfig()
    cropped = crop_photo(photo_path, frame_cfg)
    photo = _as_uint8_if_exact(cropped.image)
    if threshold is None and threshold_path is not None:
        threshold = AveragedHistogramThreshold.load(threshold_path)
    if threshold is None and binarize:
        warnings.warn(
            "binarisation threshold computed from this photo alone; the averaged-histogram "
            "method expects a threshold averaged over a set of photos (pass threshold_path)",
            stacklevel=2,
        )
        threshold = AveragedHistogramThreshold.from_photos([photo])
    steps = prepare_steps(
        cropped,
        aoi,
        azimuth_deg=azimuth_deg,
        ground_size_m=ground_size_m,
        gsd_m=gsd_m,
        rock_mask_path=rock_mask_path,
        threshold=threshold,
        enhance=enhance_cfg,
        photo_name=str(photo_path),
    )
    out = Path(out_dir)
    paths = {"photo_cropped": write_geotiff(out / "photo_cropped.tif", photo)}
    paths.update(_write_rasters(out, steps, aoi))
    if threshold is not None and threshold_path is None:
        paths["threshold"] = threshold.save(out / "threshold.json")
    paths["preview"] = write_png(out / "preview.png", _preview(steps, gray_aoi(aoi).data[0]))
    meta = _metadata(
        photo_path=Path(photo_path),
        steps=steps,
        aoi=aoi,
        threshold=threshold,
        config={"frame": asdict(frame_cfg), "enhance": asdict(enhance_cfg)},
        outputs={**paths, "metadata": out / "preprocess.json"},
    )
    paths["metadata"] = write_json(out / "preprocess.json", meta)
    return PreprocessOutputs(**paths)


def _write_rasters(out: Path, steps: PreparationSteps, aoi: AoIRaster) -> dict[str, Path]:
    """The matched and binary photo, the enhanced and rotated AoI and the rock masks."""
    pair = steps.pair
    rotated = pair.aoi
    paths = {"photo_matched": write_geotiff(out / "photo_matched.tif", pair.photo)}
    if pair.photo_binary is not None:
        binary_u8 = np.where(pair.photo_binary >= 0.5, np.uint8(255), np.uint8(0))
        paths["photo_binary"] = write_geotiff(out / "photo_binary.tif", binary_u8)
    for name, data, transform in (
        ("aoi_enhanced", steps.enhanced, aoi.transform),
        ("aoi_rotated", rotated.data, rotated.inverse),
    ):
        paths[name] = write_geotiff(
            out / f"{name}.tif", data, transform=transform, crs=rotated.crs, nodata=float("nan")
        )
    if steps.rock is not None and pair.rock is not None:
        paths["rock_mask"] = write_geotiff(
            out / "rock_mask.tif",
            steps.rock.astype(np.uint8),
            transform=aoi.transform,
            crs=rotated.crs,
        )
        inside = np.isfinite(pair.aoi_gray)
        rr_u8 = np.where(inside, pair.rock.astype(np.uint8), np.uint8(_MASK_OUTSIDE))
        paths["rock_mask_rotated"] = write_geotiff(
            out / "rock_mask_rotated.tif",
            rr_u8,
            transform=rotated.inverse,
            crs=rotated.crs,
            nodata=_MASK_OUTSIDE,
        )
    return paths


def _as_uint8_if_exact(arr: np.ndarray) -> np.ndarray:
    """uint8 copy when every value is an integer in 0–255 (an 8-bit scan), else float32."""
    if np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 255:
        as_int = np.rint(arr)
        if np.array_equal(as_int, arr):
            return as_int.astype(np.uint8)
    return np.array(arr, dtype=np.float32)


def _affine_list(t: Affine) -> list[float]:
    return [float(v) for v in tuple(t)[:6]]


def _metadata(
    *,
    photo_path: Path,
    steps: PreparationSteps,
    aoi: AoIRaster,
    threshold: AveragedHistogramThreshold | None,
    config: dict[str, Any],
    outputs: dict[str, Path],
) -> dict[str, Any]:
    pair, rotated = steps.pair, steps.pair.aoi
    return {
        "photo": str(photo_path),
        "azimuth_deg": rotated.azimuth_deg,
        "frame": pair.frame.to_dict(),
        "threshold": None if threshold is None else int(threshold.threshold),
        "window_px": pair.window_px,
        "ground_size_m": pair.ground_size_m,
        "aoi": {
            "crs": rotated.crs.to_string(),
            "transform": _affine_list(aoi.transform),
            "shape": list(steps.enhanced.shape),
            "rock_fraction": None if steps.rock is None else float(steps.rock.mean()),
        },
        "rotation": {
            "shape": list(rotated.shape),
            "gsd_m": rotated.gsd_m,
            "inverse_pixel_to_map": _affine_list(rotated.inverse),
            "forward_map_to_pixel": _affine_list(rotated.forward),
            "affine_order": "a, b, c, d, e, f: x = a*col + b*row + c; y = d*col + e*row + f",
        },
        "config": config,
        "outputs": {k: v.name for k, v in outputs.items()},
    }


def _thin(arr: np.ndarray) -> np.ndarray:
    step = max(1, math.ceil(max(arr.shape[-2:]) / _PREVIEW_PX))
    return arr[..., ::step, ::step]


def _preview(steps: PreparationSteps, gray: np.ndarray) -> Any:
    """Before/after panels of ``steps``; ``gray`` is the north-up AoI before enhancement."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    pair, scan, crop = steps.pair, steps.cropped.scan, steps.cropped.frame
    fig = Figure(figsize=(13, 8.5))
    axes = fig.subplots(2, 3)
    step = max(1, math.ceil(max(scan.shape) / _PREVIEW_PX))
    ax = axes[0, 0]
    ax.imshow(scan[::step, ::step], cmap="gray", vmin=0, vmax=255)
    ax.add_patch(
        Rectangle(
            (crop.col0 / step, crop.row0 / step),
            crop.width / step,
            crop.height / step,
            fill=False,
            edgecolor="red" if crop.detected else "orange",
            linewidth=1.5,
        )
    )
    ax.set_title("before: scan and image area" + ("" if crop.detected else " (fallback)"))
    axes[0, 1].imshow(pair.photo, cmap="gray", vmin=0, vmax=1)
    axes[0, 1].set_title(f"after: photo as scored ({pair.window_px} px, matched)")
    ax = axes[0, 2]
    if pair.photo_binary is not None:
        ax.imshow(pair.photo_binary, cmap="gray", vmin=0, vmax=1)
        ax.set_title("after: binarised photo as scored (black = rock)")
    else:
        bins = np.linspace(0.0, 1.0, 257)
        ax.hist(_thin(pair.photo_full).ravel(), bins=bins, density=True, alpha=0.5, label="photo")
        ax.hist(pair.photo.ravel(), bins=bins, density=True, alpha=0.5, label="matched")
        valid = pair.aoi_gray[np.isfinite(pair.aoi_gray)]
        valid = valid[:: max(1, valid.size // 500_000)]
        ax.hist(valid, bins=bins, density=True, alpha=0.5, label="AoI")
        ax.legend()
        ax.set_title("histograms")
    finite = gray[np.isfinite(gray)]
    lo, hi = np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0)
    axes[1, 0].imshow(_thin(gray), cmap="gray", vmin=lo, vmax=hi)
    if steps.rock is not None and steps.rock.any():
        axes[1, 0].contour(
            _thin(steps.rock).astype(float), levels=[0.5], colors="red", linewidths=0.5
        )
    rock_note = ", rock in red" if steps.rock is not None else ""
    axes[1, 0].set_title(f"before: AoI gray (north up){rock_note}")
    axes[1, 1].imshow(_thin(steps.enhanced), cmap="gray", vmin=0, vmax=1)
    axes[1, 1].set_title("after: enhanced AoI")
    axes[1, 2].imshow(_thin(pair.aoi_gray), cmap="gray", vmin=0, vmax=1)
    axes[1, 2].set_title(f"after: AoI rotated, heading {pair.aoi.azimuth_deg:.1f}° up")
    for a in axes.ravel():
        if a is not axes[0, 2] or pair.photo_binary is not None:
            a.set_xticks([])
            a.set_yticks([])
    fig.tight_layout()
    return fig
