"""Raster-level entry point of the preprocessing stage (what ``aeroloc preprocess`` calls).

Photo: crop the frame → (optional) averaged-histogram binarisation →
histogram matching to the enhanced AoI. Reference AoI: RGB → gray → rock mask
→ shadow lift / rock darkening → rotation to the photo's heading. Everything is
computed first and written afterwards, each file atomically, so a failure
leaves no partial output.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError

from aeroloc.errors import CRSError, InvalidInputError, RasterReadError
from aeroloc.files import open_raster, parse_crs, read_gray, write_geotiff, write_json, write_png
from aeroloc.preprocess.binarize import AveragedHistogramThreshold
from aeroloc.preprocess.enhance import (
    EnhanceConfig,
    enhance_reference,
    rasterize_rock_mask,
    rgb_to_gray,
)
from aeroloc.preprocess.frame import FrameConfig, FrameCrop, detect_frame
from aeroloc.preprocess.histmatch import match_histogram
from aeroloc.preprocess.rotate import RotatedAoI, rotate_aoi

_MASK_OUTSIDE = 255  # nodata of the rotated rock mask (0 = no rock, 1 = rock)
_PREVIEW_PX = 700


class AoIRasterLike(Protocol):
    """Anything with AoI bands, their grid and CRS (e.g. ``aeroloc.aoi.AoIRaster``)."""

    @property
    def data(self) -> np.ndarray:
        """Bands ``[B x H x W]`` (or ``[H x W]``), NaN = nodata."""

    @property
    def transform(self) -> Affine:
        """Pixel → map Affine."""

    @property
    def crs(self) -> CRS:
        """Map CRS."""


@dataclass(frozen=True, kw_only=True, eq=False)
class ReferenceArrays:
    """AoI bands with their grid, as read by :func:`read_reference`.

    Attributes:
        data: float32 ``[B x H x W]``, NaN = nodata.
        transform: pixel → map Affine.
        crs: map CRS.
    """

    data: np.ndarray
    transform: Affine
    crs: CRS


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


def read_reference(path: str | os.PathLike[str]) -> ReferenceArrays:
    """Read a georeferenced AoI raster (e.g. written by ``aeroloc aoi``) as float32 bands."""
    with open_raster(path, what="AoI raster", need_crs=True) as ds:
        try:
            data = ds.read(masked=True)
        except RasterioIOError as exc:
            raise RasterReadError(f"cannot read AoI raster {path}: corrupt data ({exc})") from exc
        transform, crs = ds.transform, ds.crs
    arr = np.ma.filled(data.astype(np.float32), np.nan)
    return ReferenceArrays(data=np.asarray(arr), transform=transform, crs=crs)


def run_preprocess(
    *,
    photo_path: str | os.PathLike[str],
    aoi: AoIRasterLike,
    azimuth_deg: float,
    out_dir: str | os.PathLike[str],
    rock_mask_path: str | os.PathLike[str] | None = None,
    threshold_path: str | os.PathLike[str] | None = None,
    binarize: bool = False,
    frame_config: FrameConfig | None = None,
    enhance_config: EnhanceConfig | None = None,
) -> PreprocessOutputs:
    """Preprocess one scanned photo and its AoI; write rasters, metadata and a preview.

    Args:
        photo_path: scanned photo (un-referenced TIFF, gray or RGB).
        aoi: AoI bands, transform and CRS (e.g. ``aeroloc.aoi.AoIRaster``).
        azimuth_deg: flight heading of the photo, clockwise from grid north.
        out_dir: output folder (created).
        rock_mask_path: rock-outcrop polygons; without them the AoI is only
            converted to gray and stretched (no shadow lift).
        threshold_path: averaged-histogram threshold JSON; implies ``binarize``.
        binarize: write a binary photo. Without ``threshold_path`` the threshold
            comes from this photo alone (with a warning) and is saved.
        frame_config: frame detection parameters.
        enhance_config: reference enhancement parameters.

    Returns:
        The paths written.
    """
    frame_cfg = frame_config or FrameConfig()
    enhance_cfg = enhance_config or EnhanceConfig()
    az = _azimuth(azimuth_deg)
    data, transform, crs = _aoi_parts(aoi)
    out = Path(out_dir)

    # Photo: frame, binarisation.
    scan = read_gray(photo_path, what="photo")
    crop = detect_frame(scan, frame_cfg)
    photo = _as_uint8_if_exact(crop.apply(scan))
    threshold: AveragedHistogramThreshold | None = None
    threshold_written = False
    if threshold_path is not None:
        threshold = AveragedHistogramThreshold.load(threshold_path)
    elif binarize:
        warnings.warn(
            "binarisation threshold computed from this photo alone; the averaged-histogram "
            "method expects a threshold averaged over a set of photos (pass threshold_path)",
            stacklevel=2,
        )
        threshold = AveragedHistogramThreshold.from_photos([photo])
        threshold_written = True
    binary = None if threshold is None else threshold.binarize(photo)

    # Reference: gray, rock mask, enhancement, rotation.
    gray = rgb_to_gray(data)
    height, width = gray.shape
    rock = None
    if rock_mask_path is not None:
        rock = rasterize_rock_mask(
            rock_mask_path,
            transform=transform,
            shape=(height, width),
            crs=crs,
            open_px=enhance_cfg.open_px,
            close_px=enhance_cfg.close_px,
            all_touched=enhance_cfg.all_touched,
        )
    enhanced = enhance_reference(gray, rock, enhance_cfg)
    rotated = rotate_aoi(enhanced, transform=transform, crs=crs, azimuth_deg=az)
    rock_rotated = None
    if rock is not None:
        rock_f = np.where(np.isfinite(gray), rock.astype(np.float32), np.nan)
        rock_rotated = rotate_aoi(
            rock_f, transform=transform, crs=crs, azimuth_deg=az, resampling="nearest"
        )

    # Photo → AoI histogram matching (the unrotated AoI: same pixels, no resampling).
    matched = np.clip(np.rint(match_histogram(photo, enhanced)), 0, 255).astype(np.uint8)

    # Write.
    paths: dict[str, Path] = {}
    paths["photo_cropped"] = write_geotiff(out / "photo_cropped.tif", photo)
    paths["photo_matched"] = write_geotiff(out / "photo_matched.tif", matched)
    if binary is not None:
        binary_u8 = np.where(binary, np.uint8(255), np.uint8(0))
        paths["photo_binary"] = write_geotiff(out / "photo_binary.tif", binary_u8)
    if threshold is not None and threshold_written:
        paths["threshold"] = threshold.save(out / "threshold.json")
    paths["aoi_enhanced"] = write_geotiff(
        out / "aoi_enhanced.tif", enhanced, transform=transform, crs=crs, nodata=float("nan")
    )
    paths["aoi_rotated"] = write_geotiff(
        out / "aoi_rotated.tif",
        rotated.data,
        transform=rotated.inverse,
        crs=crs,
        nodata=float("nan"),
    )
    if rock is not None and rock_rotated is not None:
        paths["rock_mask"] = write_geotiff(
            out / "rock_mask.tif", rock.astype(np.uint8), transform=transform, crs=crs
        )
        rr = rock_rotated.data[0]
        rr_u8 = np.where(np.isfinite(rr), np.nan_to_num(rr), _MASK_OUTSIDE).astype(np.uint8)
        paths["rock_mask_rotated"] = write_geotiff(
            out / "rock_mask_rotated.tif",
            rr_u8,
            transform=rock_rotated.inverse,
            crs=crs,
            nodata=_MASK_OUTSIDE,
        )
    paths["preview"] = write_png(
        out / "preview.png",
        _preview(scan, crop, matched, binary, gray, rock, enhanced, rotated),
    )
    meta = _metadata(
        photo_path=Path(photo_path),
        crop=crop,
        threshold=threshold,
        rotated=rotated,
        transform=transform,
        crs=crs,
        shape=(height, width),
        rock=rock,
        frame_cfg=frame_cfg,
        enhance_cfg=enhance_cfg,
        outputs={**paths, "metadata": out / "preprocess.json"},
    )
    paths["metadata"] = write_json(out / "preprocess.json", meta)
    return PreprocessOutputs(**paths)


def _azimuth(value: Any) -> float:
    try:
        az = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"azimuth_deg must be a number, found {value!r}") from None
    if not math.isfinite(az):
        raise InvalidInputError(f"azimuth_deg must be finite, found {value!r}")
    return az % 360.0


def _aoi_parts(aoi: Any) -> tuple[np.ndarray, Affine, CRS]:
    for name in ("data", "transform", "crs"):
        if not hasattr(aoi, name):
            raise InvalidInputError(
                f"aoi must have data, transform and crs attributes, found {type(aoi).__name__} "
                f"without {name!r}"
            )
    if aoi.crs is None:
        raise CRSError("AoI has no CRS: expected the reference CRS (e.g. EPSG:3031)")
    if not isinstance(aoi.transform, Affine):
        raise InvalidInputError(
            f"aoi.transform must be an affine.Affine, found {type(aoi.transform).__name__}"
        )
    return aoi.data, aoi.transform, parse_crs(aoi.crs)


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
    crop: FrameCrop,
    threshold: AveragedHistogramThreshold | None,
    rotated: RotatedAoI,
    transform: Affine,
    crs: CRS,
    shape: tuple[int, int],
    rock: np.ndarray | None,
    frame_cfg: FrameConfig,
    enhance_cfg: EnhanceConfig,
    outputs: dict[str, Path],
) -> dict[str, Any]:
    return {
        "photo": str(photo_path),
        "azimuth_deg": rotated.azimuth_deg,
        "frame": crop.to_dict(),
        "threshold": None if threshold is None else int(threshold.threshold),
        "aoi": {
            "crs": crs.to_string(),
            "transform": _affine_list(transform),
            "shape": list(shape),
            "rock_fraction": None if rock is None else float(rock.mean()),
        },
        "rotation": {
            "shape": list(rotated.shape),
            "gsd_m": rotated.gsd_m,
            "inverse_pixel_to_map": _affine_list(rotated.inverse),
            "forward_map_to_pixel": _affine_list(rotated.forward),
            "affine_order": "a, b, c, d, e, f: x = a*col + b*row + c; y = d*col + e*row + f",
        },
        "config": {"frame": asdict(frame_cfg), "enhance": asdict(enhance_cfg)},
        "outputs": {k: v.name for k, v in outputs.items()},
    }


def _thin(arr: np.ndarray) -> np.ndarray:
    step = max(1, math.ceil(max(arr.shape[-2:]) / _PREVIEW_PX))
    return arr[..., ::step, ::step]


def _preview(
    scan: np.ndarray,
    crop: FrameCrop,
    matched: np.ndarray,
    binary: np.ndarray | None,
    gray: np.ndarray,
    rock: np.ndarray | None,
    enhanced: np.ndarray,
    rotated: RotatedAoI,
) -> Any:
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

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
    axes[0, 1].imshow(_thin(matched), cmap="gray", vmin=0, vmax=255)
    axes[0, 1].set_title("after: cropped, histogram-matched photo")
    ax = axes[0, 2]
    if binary is not None:
        ax.imshow(_thin(binary), cmap="gray", vmin=0, vmax=1)
        ax.set_title("after: binarised photo (black = rock)")
    else:
        bins = np.arange(257)
        photo_px = crop.apply(scan)
        ax.hist(_thin(photo_px).ravel(), bins=bins, density=True, alpha=0.5, label="photo")
        ax.hist(_thin(matched).ravel(), bins=bins, density=True, alpha=0.5, label="matched")
        valid = enhanced[np.isfinite(enhanced)]
        valid = valid[:: max(1, valid.size // 500_000)]
        ax.hist(valid, bins=bins, density=True, alpha=0.5, label="AoI")
        ax.legend()
        ax.set_title("histograms")
    finite = gray[np.isfinite(gray)]
    lo, hi = np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0)
    axes[1, 0].imshow(_thin(gray), cmap="gray", vmin=lo, vmax=hi)
    if rock is not None and rock.any():
        axes[1, 0].contour(_thin(rock).astype(float), levels=[0.5], colors="red", linewidths=0.5)
    rock_note = ", rock in red" if rock is not None else ""
    axes[1, 0].set_title(f"before: AoI gray (north up){rock_note}")
    axes[1, 1].imshow(_thin(enhanced), cmap="gray", vmin=0, vmax=255)
    axes[1, 1].set_title("after: enhanced AoI")
    axes[1, 2].imshow(_thin(rotated.data[0]), cmap="gray", vmin=0, vmax=255)
    axes[1, 2].set_title(f"after: AoI rotated, heading {rotated.azimuth_deg:.1f}° up")
    for a in axes.ravel():
        if a is not axes[0, 2] or binary is not None:
            a.set_xticks([])
            a.set_yticks([])
    fig.tight_layout()
    return fig
