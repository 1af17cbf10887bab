"""Find the image area of a scanned aerial photo inside its fiducial/data frame.

A scanned TMA frame is the photo proper surrounded by a dark film border that
carries bright fiducial marks (corners, mid-sides) and, on one side, a data
strip (altimeter dial, clock, frame counter). The border may itself be
surrounded by a bright scanner background.

Detection works on row and column *dark-fraction profiles*:

1. The scan is block-averaged to at most ``work_size_px`` a side.
2. A pixel is *dark* below ``dark_level``; by default
   ``dark_level = p1 + 0.3 * (centre_median - p1)`` with ``p1`` the 1st
   percentile of the scan (frame black) and ``centre_median`` the median of
   the central half (mostly terrain).
3. For every column, the fraction of dark pixels in the central
   ``profile_band_frac`` of the rows (which skips the top and bottom border);
   likewise for rows. A 3-wide median filter removes thin fiducial bars.
4. From each edge inward (at most ``max_border_frac`` of the size), the
   border is the first run of columns whose dark fraction is at least
   ``dark_fraction`` (gaps up to 2 working pixels allowed, for marks and
   dials). A bright scanner margin before the run is skipped. Shadows next
   to the border are dark too, so the run is cut back to its last column
   that is *uniformly* film black (≥ 80 % of its pixels within the gray
   range of the run's outermost columns); the image starts there.
5. Each edge is refined at full resolution within ±2 working pixels, then
   moved ``inset_frac`` further in to drop the anti-aliased rim.

When detection fails (no contrast, no border on any side, an implausibly
wide border or a too small image area), a fixed ``fallback_margin_frac`` is
cut from every side and a warning says why.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from aeroloc.errors import InvalidInputError
from aeroloc.preprocess._checks import fraction, image_2d

_MAX_GAP_WORK_PX = 2
#: Share of a column's pixels in the film black's gray range for it to count as border.
_BORDER_UNIFORM = 0.8


@dataclass(frozen=True, kw_only=True)
class FrameConfig:
    """Parameters of :func:`detect_frame` (fractions are of the scan size).

    Attributes:
        dark_fraction: a row/column is frame border when at least this
            fraction of its profile band is dark.
        max_border_frac: the border is searched at most this far in from each edge.
        min_image_frac: the detected image must span at least this fraction of
            the scan along each axis, else detection counts as failed.
        inset_frac: extra cut inside every detected edge.
        fallback_margin_frac: margin cut from every side when detection fails.
        profile_band_frac: central fraction of rows (columns) used for the
            column (row) profiles.
        dark_level: gray level below which a pixel is dark; None = automatic.
        work_size_px: the coarse search runs on a copy at most this size.
    """

    dark_fraction: float = 0.6
    max_border_frac: float = 0.25
    min_image_frac: float = 0.5
    inset_frac: float = 0.002
    fallback_margin_frac: float = 0.05
    profile_band_frac: float = 0.7
    dark_level: float | None = None
    work_size_px: int = 1024

    def __post_init__(self) -> None:
        fraction(self.dark_fraction, name="dark_fraction", low=0.05, high=1.0)
        fraction(self.max_border_frac, name="max_border_frac", low=0.0, high=0.45)
        fraction(self.min_image_frac, name="min_image_frac", low=0.05, high=1.0)
        fraction(self.inset_frac, name="inset_frac", low=0.0, high=0.1)
        fraction(self.fallback_margin_frac, name="fallback_margin_frac", low=0.0, high=0.45)
        fraction(self.profile_band_frac, name="profile_band_frac", low=0.1, high=1.0)
        if self.dark_level is not None and not math.isfinite(self.dark_level):
            raise InvalidInputError(f"dark_level must be finite or None, found {self.dark_level}")
        if not isinstance(self.work_size_px, int) or self.work_size_px < 64:
            raise InvalidInputError(
                f"work_size_px must be an int >= 64, found {self.work_size_px!r}"
            )


@dataclass(frozen=True, kw_only=True)
class FrameCrop:
    """Image area of a scan as a pixel box; ``col1``/``row1`` are exclusive.

    Attributes:
        col0, row0, col1, row1: box in scan pixels.
        scan_width, scan_height: size of the scan the box refers to.
        detected: True when found from the frame, False for the fallback margin.
        reason: why detection failed (empty when ``detected``).
    """

    col0: int
    row0: int
    col1: int
    row1: int
    scan_width: int
    scan_height: int
    detected: bool
    reason: str = ""

    def __post_init__(self) -> None:
        if not (0 <= self.col0 < self.col1 <= self.scan_width):
            raise InvalidInputError(
                f"crop columns must satisfy 0 <= col0 < col1 <= {self.scan_width}, "
                f"found {self.col0}, {self.col1}"
            )
        if not (0 <= self.row0 < self.row1 <= self.scan_height):
            raise InvalidInputError(
                f"crop rows must satisfy 0 <= row0 < row1 <= {self.scan_height}, "
                f"found {self.row0}, {self.row1}"
            )

    @property
    def width(self) -> int:
        """Width of the image area in pixels."""
        return self.col1 - self.col0

    @property
    def height(self) -> int:
        """Height of the image area in pixels."""
        return self.row1 - self.row0

    def apply(self, scan: np.ndarray) -> np.ndarray:
        """Return the image area of ``scan`` ``[H x W]`` (a view, not a copy)."""
        if scan.shape[-2:] != (self.scan_height, self.scan_width):
            raise InvalidInputError(
                f"scan must be {self.scan_height} x {self.scan_width} px for this crop, "
                f"found {scan.shape[-2:]}"
            )
        return scan[..., self.row0 : self.row1, self.col0 : self.col1]

    def to_scan(self, cols: Any, rows: Any) -> tuple[np.ndarray, np.ndarray]:
        """Map cropped-image pixel coordinates to scan pixel coordinates."""
        return (
            np.asarray(cols, dtype=np.float64) + self.col0,
            np.asarray(rows, dtype=np.float64) + self.row0,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON metadata."""
        return {
            "col0": self.col0,
            "row0": self.row0,
            "col1": self.col1,
            "row1": self.row1,
            "scan_width": self.scan_width,
            "scan_height": self.scan_height,
            "detected": self.detected,
            "reason": self.reason,
        }


def detect_frame(scan: np.ndarray, config: FrameConfig | None = None) -> FrameCrop:
    """Locate the image area of a scanned photo ``[H x W]`` (any numeric dtype).

    Returns the crop box in scan pixels. Falls back to a fixed margin, with a
    warning, when the frame cannot be found (see the module docstring).
    """
    cfg = config or FrameConfig()
    scan = image_2d(scan, name="scanned photo", min_side_px=16)
    height, width = scan.shape
    if np.issubdtype(scan.dtype, np.floating) and not np.isfinite(scan).all():
        # Missing scan pixels are treated as frame black.
        scan = np.where(np.isfinite(scan), scan, np.nanmin(scan))

    factor = max(1, math.ceil(max(height, width) / cfg.work_size_px))
    small = _block_mean(scan, factor)
    level = _dark_level(small) if cfg.dark_level is None else cfg.dark_level
    if level is None:
        return _fallback(cfg, width, height, "the scan has no contrast between frame and image")

    # Each side as a view whose border lies at the start of axis 1.
    sides = {
        "left": (lambda a: a),
        "right": (lambda a: a[:, ::-1]),
        "top": (lambda a: a.T),
        "bottom": (lambda a: a[::-1, :].T),
    }
    edges: dict[str, int] = {}
    for side, view in sides.items():
        edge = _edge(view(small), view(scan), factor, level, cfg)
        if edge is None:
            return _fallback(
                cfg, width, height, f"the {side} border is wider than {cfg.max_border_frac:.0%}"
            )
        edges[side] = edge
    if not any(edges.values()):
        return _fallback(cfg, width, height, "no dark frame border found on any side")

    inset_c = math.ceil(cfg.inset_frac * width)
    inset_r = math.ceil(cfg.inset_frac * height)
    col0, col1 = edges["left"] + inset_c, width - edges["right"] - inset_c
    row0, row1 = edges["top"] + inset_r, height - edges["bottom"] - inset_r
    if col1 - col0 < cfg.min_image_frac * width or row1 - row0 < cfg.min_image_frac * height:
        return _fallback(
            cfg,
            width,
            height,
            f"the image area found ({max(col1 - col0, 0)} x {max(row1 - row0, 0)} px) is smaller "
            f"than {cfg.min_image_frac:.0%} of the scan",
        )
    return FrameCrop(
        col0=col0,
        row0=row0,
        col1=col1,
        row1=row1,
        scan_width=width,
        scan_height=height,
        detected=True,
    )


def crop_frame(scan: np.ndarray, config: FrameConfig | None = None) -> tuple[np.ndarray, FrameCrop]:
    """Detect the frame and return ``(image [h x w] copy, crop box)``."""
    crop = detect_frame(scan, config)
    return np.array(crop.apply(scan)), crop


def _block_mean(img: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return img.astype(np.float32)
    h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
    blocks = img[:h, :w].reshape(h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def _dark_level(small: np.ndarray) -> float | None:
    h, w = small.shape
    black = float(np.percentile(small, 1))
    centre = float(np.median(small[h // 4 : h - h // 4, w // 4 : w - w // 4]))
    if centre - black <= 1e-6 * max(abs(centre), 1.0):
        return None
    return black + 0.3 * (centre - black)


def _profile(img: np.ndarray, level: float, band_frac: float) -> np.ndarray:
    """Dark fraction of every column of ``img`` within its central row band."""
    h = img.shape[0]
    skip = int(h * (1.0 - band_frac) / 2)
    band = img[skip : h - skip] if h - 2 * skip > 0 else img
    return np.asarray((band < level).mean(axis=0), dtype=np.float64)


def _edge(
    small: np.ndarray, full: np.ndarray, factor: int, level: float, cfg: FrameConfig
) -> int | None:
    """Full-resolution index where the image starts along axis 1; None if implausible."""
    profile = ndimage.median_filter(_profile(small, level, cfg.profile_band_frac), size=3)
    limit = max(1, int(cfg.max_border_frac * profile.size))
    dark = np.flatnonzero(profile >= cfg.dark_fraction)
    if dark.size == 0 or dark[0] >= limit:
        return 0
    end = int(dark[0])
    for idx in dark:
        if idx - end > _MAX_GAP_WORK_PX:
            break
        end = int(idx) + 1
    end = _border_end(small, start=int(dark[0]), end=end, band_frac=cfg.profile_band_frac)
    if end > limit:
        return None
    if factor == 1:
        return end
    # Refine: the innermost dark full-resolution column near the coarse edge.
    lo = max(0, (end - 2) * factor)
    hi = min(full.shape[1], (end + 2) * factor)
    fine = _profile(full[:, lo:hi], level, cfg.profile_band_frac)
    dark_fine = np.flatnonzero(fine >= cfg.dark_fraction)
    return lo + (int(dark_fine[-1]) + 1 if dark_fine.size else 0)


def _border_end(small: np.ndarray, *, start: int, end: int, band_frac: float) -> int:
    """Where the film border really ends inside a dark run ``[start, end)`` (working px).

    Shadows and dark rock next to the border count as dark too, so the run
    can reach into the image. Film black is *uniform*: the border's gray range
    is taken from the run's outermost columns (1st–99th percentile of their
    central rows), and the border ends after the last column of the run whose
    pixels lie in that range for at least :data:`_BORDER_UNIFORM` of the rows
    (image columns, with deeper shadows and brighter rock, fall well below).
    """
    h = small.shape[0]
    skip = int(h * (1.0 - band_frac) / 2)
    band = small[skip : h - skip] if h - 2 * skip > 0 else small
    lo, hi = np.percentile(band[:, start : start + 3], [1, 99])
    uniform = ndimage.median_filter(((band >= lo) & (band <= hi)).mean(axis=0), size=3)
    inside = np.flatnonzero(uniform[start:end] >= _BORDER_UNIFORM)
    return start + int(inside[-1]) + 1 if inside.size else end


def _fallback(cfg: FrameConfig, width: int, height: int, reason: str) -> FrameCrop:
    mc = round(cfg.fallback_margin_frac * width)
    mr = round(cfg.fallback_margin_frac * height)
    warnings.warn(
        f"frame detection failed ({reason}); cutting a fixed margin of "
        f"{cfg.fallback_margin_frac:.1%} ({mc} x {mr} px) from every side instead",
        stacklevel=3,
    )
    return FrameCrop(
        col0=mc,
        row0=mr,
        col1=width - mc,
        row1=height - mr,
        scan_width=width,
        scan_height=height,
        detected=False,
        reason=reason,
    )
