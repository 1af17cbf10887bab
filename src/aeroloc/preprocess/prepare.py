"""Stage 3, the one composition: a scanned photo and its AoI in one comparable form.

Used by ``locate``, by the training-data builder and by ``aeroloc preprocess``
(:mod:`aeroloc.preprocess.run` writes and draws what this returns), so that a
model sees at training time exactly what it sees when it searches, and the
preview shows exactly that:

1. the scan's fiducial frame is cropped (:func:`crop_photo`);
2. the reference AoI goes to gray, its nodata specks are filled
   (:func:`~aeroloc.preprocess.enhance.fill_specks`), it is stretched and,
   with rock polygons, enhanced (shadows lifted, rock darkened) (:func:`enhance_aoi`);
3. the AoI is rotated so the photo's heading points up (NaN padding);
4. the photo is resampled to the AoI's pixel size — it then spans
   ``window_px`` AoI pixels — and histogram-matched to the rotated AoI.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from affine import Affine

from aeroloc.aoi import AoI, AoIRaster, crop_reference
from aeroloc.errors import DataQualityError, InvalidInputError
from aeroloc.files import read_gray, require_photo_contrast
from aeroloc.preprocess.binarize import AveragedHistogramThreshold
from aeroloc.preprocess.enhance import (
    EnhanceConfig,
    enhance_reference,
    fill_specks,
    rasterize_rock_mask,
    rgb_to_gray,
)
from aeroloc.preprocess.frame import FrameConfig, FrameCrop, crop_frame
from aeroloc.preprocess.histmatch import match_histogram
from aeroloc.preprocess.rotate import RotatedAoI, rotate_aoi

MIN_WINDOW_PX = 16
#: Longer side (px) of the AoI drawn beneath pictures such as ``heatmap.png``.
PREVIEW_PX = 1600


class PhotoRequest(Protocol):
    """What stage 3 needs to know about one photo (e.g. ``aeroloc.pipeline.LocateRequest``)."""

    @property
    def photo_path(self) -> Path:
        """The scanned photo."""

    @property
    def references(self) -> Sequence[Path]:
        """Reference rasters (mosaic, first wins)."""

    @property
    def aoi(self) -> AoI:
        """The area of interest."""

    @property
    def azimuth_deg(self) -> float:
        """Flight heading, clockwise from grid north."""

    @property
    def ground_size_m(self) -> float | None:
        """Side of the photo's ground footprint, or None with ``gsd_m``."""

    @property
    def gsd_m(self) -> float | None:
        """Ground size of one scan pixel, when ``ground_size_m`` is None."""

    @property
    def rock_mask_path(self) -> Path | None:
        """Rock-outcrop polygons for the enhancement."""


@dataclass(frozen=True, kw_only=True, eq=False)
class CroppedPhoto:
    """The image area of a scan (step 1).

    Attributes:
        scan: ``[H x W]`` float32, the whole scan in its native value range,
            NaN replaced by the scan's median.
        image: ``[h x w]`` float32 copy of ``scan`` inside the frame.
        frame: where the image area lies in the scan.
    """

    scan: np.ndarray
    image: np.ndarray
    frame: FrameCrop


@dataclass(frozen=True, kw_only=True, eq=False)
class PreparedPair:
    """A photo and its AoI, ready for sliding-window scoring.

    Attributes:
        photo: ``[window_px x window_px]`` float32 in [0, 1]: the image area at
            the AoI's pixel size, histogram-matched to the AoI.
        aoi: the enhanced gray AoI rotated to the heading; ``aoi.data[0]`` is
            ``[H x W]`` float32 in [0, 1], NaN = nodata or padding.
        rock: ``[H x W]`` bool rotated rock mask, or None without polygons.
        photo_binary: ``[window_px x window_px]`` float32 {0, 1} (rock = 0) when a
            binarisation threshold was given, else None.
        aoi_binary: ``[H x W]`` float32 {0, 1} (rock = 0, NaN outside) from the
            rock mask, when both threshold and polygons were given.
        window_px: side of the photo's ground footprint in AoI pixels.
        ground_size_m: side of the photo's ground footprint.
        frame: where the image area lies in the scan.
        photo_full: ``[h x w]`` float32 in [0, 1], the cropped image area at its
            scan resolution (for feature matching).
    """

    photo: np.ndarray
    aoi: RotatedAoI
    rock: np.ndarray | None
    photo_binary: np.ndarray | None
    aoi_binary: np.ndarray | None
    window_px: int
    ground_size_m: float
    frame: FrameCrop
    photo_full: np.ndarray

    @property
    def aoi_gray(self) -> np.ndarray:
        """``[H x W]`` rotated gray AoI in [0, 1]."""
        return self.aoi.data[0]

    @property
    def pixel_to_map(self) -> Affine:
        """Rotated AoI pixel (col, row) → map (x, y)."""
        return self.aoi.inverse


@dataclass(frozen=True, kw_only=True, eq=False)
class PreparationSteps:
    """Every step of :func:`prepare_steps`, for outputs that show them one by one.

    Attributes:
        cropped: the scan's image area (step 1).
        enhanced: ``[H x W]`` float32 in [0, 1], the north-up enhanced gray AoI
            (step 2; NaN = nodata).
        rock: ``[H x W]`` bool north-up rock mask, or None without polygons.
        pair: the result (steps 3 and 4).
    """

    cropped: CroppedPhoto
    enhanced: np.ndarray
    rock: np.ndarray | None
    pair: PreparedPair


def enhance_aoi(
    aoi: AoIRaster,
    *,
    rock_mask_path: str | os.PathLike[str] | None = None,
    enhance: EnhanceConfig | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Gray, enhanced AoI ``[H x W]`` in [0, 1] (NaN kept) and its rock mask (or None)."""
    cfg = enhance or EnhanceConfig()
    gray = fill_specks(_gray(aoi.data))
    if not np.isfinite(gray).any():
        raise DataQualityError("the AoI holds no valid reference pixel")
    rock = None
    if rock_mask_path is not None:
        rock = rasterize_rock_mask(
            rock_mask_path,
            transform=aoi.transform,
            shape=gray.shape,
            crs=aoi.crs,
            open_px=cfg.open_px,
            close_px=cfg.close_px,
            all_touched=cfg.all_touched,
        )
    out = enhance_reference(gray, rock, cfg) / 255.0
    return out.astype(np.float32), rock


def gray_aoi(aoi: AoIRaster) -> AoIRaster:
    """The AoI reduced to the one gray band the pipeline uses (read as :func:`enhance_aoi` does).

    Colour references are read as R, G, B; keeping only their gray saves two
    thirds of the AoI's memory for the rest of a run.
    """
    if aoi.data.shape[0] == 1:
        return aoi
    return replace(aoi, data=_gray(aoi.data)[None].astype(np.float32, copy=False))


def _gray(bands: np.ndarray) -> np.ndarray:
    """``[H x W]`` gray of reference bands: R, G, B combined, else the first band."""
    return rgb_to_gray(bands) if bands.shape[0] >= 3 else bands[0]


def enhance_aoi_preview(aoi: AoIRaster, max_px: int = PREVIEW_PX) -> tuple[np.ndarray, Affine]:
    """The enhanced gray AoI for pictures, at most ``max_px`` on its longer side.

    A large AoI is averaged down before the enhancement, so drawing a
    50 km area of interest does not hold another full-resolution copy.
    Returns the image and its pixel → map transform.
    """
    _, h, w = aoi.data.shape
    if max(h, w) <= max_px:
        return enhance_aoi(aoi)[0], aoi.transform
    k = max_px / max(h, w)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    small = np.stack([cv2.resize(b, size, interpolation=cv2.INTER_AREA) for b in aoi.data])
    transform = aoi.transform @ Affine.scale(w / size[0], h / size[1])
    preview = AoIRaster(
        data=small.astype(np.float32),
        transform=transform,
        crs=aoi.crs,
        polygon=aoi.polygon,
        resolution_m=aoi.resolution_m * w / size[0],
        sources=aoi.sources,
    )
    return enhance_aoi(preview)[0], transform


def crop_photo(
    photo_path: str | os.PathLike[str], frame_config: FrameConfig | None = None
) -> CroppedPhoto:
    """Read a scanned photo and crop its fiducial frame (step 1).

    Raises:
        DataQualityError: the photo has no valid pixel, or is one value everywhere.
    """
    scan = read_gray(photo_path, what="photo")
    require_photo_contrast(scan, photo_path)
    if not np.isfinite(scan).all():
        scan = np.nan_to_num(scan, nan=float(np.nanmedian(scan)))
    image, frame = crop_frame(scan, frame_config)
    return CroppedPhoto(scan=scan, image=image, frame=frame)


def request_aoi(request: PhotoRequest, *, warn_partial: bool = True) -> AoIRaster:
    """The references cropped to the request's AoI, as the one gray band (:func:`gray_aoi`).

    ``warn_partial``: see :func:`~aeroloc.aoi.crop_reference`.
    """
    return gray_aoi(crop_reference(request.references, request.aoi, warn_partial=warn_partial))


def prepare_request(
    request: PhotoRequest,
    *,
    threshold: AveragedHistogramThreshold | None = None,
    timings: dict[str, float] | None = None,
    warn_partial: bool = True,
) -> tuple[AoIRaster, PreparedPair]:
    """The reference cropped to the request's AoI (gray), and photo and AoI prepared as locate does.

    Args:
        request: photo, references, AoI, heading and ground size (or GSD).
        threshold: binarisation threshold (binary models); None = no binary variant.
        timings: filled with the seconds of ``aoi`` (cropping) and ``prepare``.
        warn_partial: warn when part of the AoI has no data.
    """
    t0 = time.perf_counter()
    raster = request_aoi(request, warn_partial=warn_partial)
    t1 = time.perf_counter()
    prepared = prepare_pair(
        request.photo_path,
        raster,
        azimuth_deg=request.azimuth_deg,
        ground_size_m=request.ground_size_m,
        gsd_m=request.gsd_m,
        rock_mask_path=request.rock_mask_path,
        threshold=threshold,
    )
    if timings is not None:
        timings["aoi"] = t1 - t0
        timings["prepare"] = time.perf_counter() - t1
    return raster, prepared


def prepare_pair(
    photo_path: str | os.PathLike[str],
    aoi: AoIRaster,
    *,
    frame_config: FrameConfig | None = None,
    **options: Any,
) -> PreparedPair:
    """Crop, enhance, rotate and match a photo and its AoI (see the module docstring).

    Args:
        photo_path: the scanned photo.
        aoi: reference pixels of the area of interest.
        frame_config: fiducial-frame detection parameters.
        **options: :func:`prepare_steps`'s keywords: ``azimuth_deg`` (flight
            heading, clockwise from grid north); ``ground_size_m`` (side of the
            photo's ground footprint: altitude × film / focal length) or
            ``gsd_m`` (ground size of one scan pixel: the footprint is then
            ``gsd_m`` × the image area's width); ``rock_mask_path`` (rock
            polygons for the enhancement and the binary AoI); ``threshold``
            (averaged-histogram threshold to also make binary images);
            ``enhance`` (reference enhancement parameters).
    """
    _footprint_size(options.get("ground_size_m"), options.get("gsd_m"))  # before reading
    photo = crop_photo(photo_path, frame_config)
    return prepare_steps(photo, aoi, photo_name=str(photo_path), **options).pair


def prepare_steps(
    photo: CroppedPhoto,
    aoi: AoIRaster,
    *,
    azimuth_deg: float,
    ground_size_m: float | None = None,
    gsd_m: float | None = None,
    rock_mask_path: str | os.PathLike[str] | None = None,
    threshold: AveragedHistogramThreshold | None = None,
    enhance: EnhanceConfig | None = None,
    photo_name: str = "",
) -> PreparationSteps:
    """Steps 2-4 on a cropped photo (:func:`crop_photo`); the arguments are :func:`prepare_pair`'s.

    ``photo_name`` names the photo in error messages.
    """
    size = _footprint_size(ground_size_m, gsd_m)
    image, frame = photo.image, photo.frame
    footprint_m = ground_size_m if ground_size_m is not None else size * frame.width
    window_px = _window_px(footprint_m, aoi.resolution_m)
    gray, rock = enhance_aoi(aoi, rock_mask_path=rock_mask_path, enhance=enhance)
    rot_gray, rock_rot = _rotate(gray, rock, aoi, azimuth_deg)
    aoi_gray = rot_gray.data[0]
    if window_px > min(aoi_gray.shape):
        raise DataQualityError(
            f"the AoI ({aoi_gray.shape[1]} x {aoi_gray.shape[0]} px) is smaller than the "
            f"photo's footprint ({window_px} px): "
            + (
                "check the photo's ground size per pixel (--gsd-m) or give a larger AoI (--aoi)"
                if gsd_m is not None
                else "enlarge the AoI buffer (--buffer-m) or check the catalog's altitude"
            )
        )
    lo, hi = float(image.min()), float(image.max())
    if hi - lo < 1e-6:
        raise DataQualityError(f"photo {photo_name} has no texture (constant gray)")
    image01 = ((image - lo) / (hi - lo)).astype(np.float32)
    small = cv2.resize(image01, (window_px, window_px), interpolation=cv2.INTER_AREA)
    matched = np.clip(match_histogram(small, aoi_gray), 0.0, 1.0).astype(np.float32)
    photo_binary = aoi_binary = None
    if threshold is not None:
        photo_binary = _binary_photo(threshold, image, window_px)
        if rock_rot is not None:
            aoi_binary = np.where(np.isfinite(aoi_gray), (~rock_rot).astype(np.float32), np.nan)
    pair = PreparedPair(
        photo=matched,
        aoi=rot_gray,
        rock=rock_rot,
        photo_binary=photo_binary,
        aoi_binary=aoi_binary,
        window_px=window_px,
        ground_size_m=float(footprint_m),
        frame=frame,
        photo_full=image01,
    )
    return PreparationSteps(cropped=photo, enhanced=gray, rock=rock, pair=pair)


def _footprint_size(ground_size_m: float | None, gsd_m: float | None) -> float:
    """The one given of ``ground_size_m`` and ``gsd_m``, checked."""
    if (ground_size_m is None) == (gsd_m is None):
        raise InvalidInputError("give exactly one of ground_size_m and gsd_m")
    size = ground_size_m if ground_size_m is not None else gsd_m
    if size is None or not (math.isfinite(size) and size > 0):
        raise InvalidInputError(f"ground size and GSD must be > 0 m, got {size}")
    return float(size)


def _window_px(ground_size_m: float, resolution_m: float) -> int:
    """The photo's footprint side in AoI pixels."""
    # A multiple of 4 makes a quarter-window stride exact (well under the altitude error).
    window_px = 4 * round(ground_size_m / resolution_m / 4)
    if window_px < MIN_WINDOW_PX:
        raise DataQualityError(
            f"the photo covers only {window_px} AoI pixels ({ground_size_m:.0f} m at "
            f"{resolution_m:g} m): too small to compare; check altitude or GSD"
        )
    return window_px


def _rotate(
    gray: np.ndarray, rock: np.ndarray | None, aoi: AoIRaster, azimuth_deg: float
) -> tuple[RotatedAoI, np.ndarray | None]:
    """The enhanced gray AoI rotated to the heading, and the rotated rock mask (or None)."""
    stack = [gray] if rock is None else [gray, rock.astype(np.float32)]
    rotated = rotate_aoi(
        np.stack(stack), transform=aoi.transform, crs=aoi.crs, azimuth_deg=azimuth_deg
    )
    rock_rot = None if rock is None else rotated.data[1] >= 0.5
    rot_gray = RotatedAoI(
        data=rotated.data[0][None],
        inverse=rotated.inverse,
        crs=rotated.crs,
        azimuth_deg=rotated.azimuth_deg,
        source_transform=rotated.source_transform,
        source_shape=rotated.source_shape,
    )
    return rot_gray, rock_rot


def _binary_photo(
    threshold: AveragedHistogramThreshold, image: np.ndarray, window_px: int
) -> np.ndarray:
    """``[window_px x window_px]`` float32 {0, 1} binary photo (rock = 0)."""
    binary = threshold.binarize(image)  # True = not rock
    small = cv2.resize(
        binary.astype(np.float32), (window_px, window_px), interpolation=cv2.INTER_AREA
    )
    return (small >= 0.5).astype(np.float32)
