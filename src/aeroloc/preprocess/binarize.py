"""Averaged-histogram binarisation of scanned photos (seed thesis, section 4.1.1).

TMA photos share a histogram shape: a small dark peak (exposed rock), a second
small peak (shadow) and a dominant bright peak (snow). Global methods such as
Otsu split shadow from snow and turn shadows black; the thesis instead
thresholds at the valley between the rock and the shadow peaks of the
*mean* histogram of a set of photos (48 photos gave 79).

The threshold, exactly:

1. Each photo gives a 256-bin histogram of its values rounded and clipped to
   0–255 (NaN ignored). With ``exclude_clipped`` the bins 0 and 255 are dropped
   (frame black and saturated snow are not terrain classes). Each histogram is
   normalised to sum 1 and the histograms are averaged (every photo weighs the
   same whatever its size).
2. The mean histogram is smoothed with a Gaussian of ``sigma_bins``.
3. Peaks are local maxima of the smoothed histogram whose topographic
   prominence is at least ``min_prominence`` times its maximum.
4. The threshold is the bin of the lowest value of the smoothed histogram
   strictly between the first (darkest) and the second significant peak; ties
   go to the darker bin. Fewer than two significant peaks is a
   :class:`~aeroloc.errors.DataQualityError`.

Pixels ``<= threshold`` are rock (False, black); brighter pixels are True (white).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage, signal

from aeroloc.errors import ConfigError, DataQualityError, InvalidInputError
from aeroloc.files import require_file, write_json
from aeroloc.preprocess._checks import fraction, image_2d, positive_number

#: Threshold found by the seed thesis on 48 TMA photos (Fig. 4.5).
SEED_STUDY_THRESHOLD = 79
N_BINS = 256
_KIND = "aeroloc.averaged_histogram_threshold"


def gray_histogram(photo: np.ndarray, *, exclude_clipped: bool = True) -> np.ndarray:
    """Normalised 256-bin histogram ``[256]`` of a photo ``[H x W]`` on the 0–255 scale.

    Values are rounded and clipped to 0–255; NaN is ignored. With
    ``exclude_clipped`` bins 0 and 255 are set to zero before normalising.
    """
    arr = image_2d(photo, name="photo")
    values = arr[np.isfinite(arr)] if np.issubdtype(arr.dtype, np.floating) else arr.ravel()
    idx = np.clip(np.rint(values), 0, N_BINS - 1).astype(np.intp)
    counts = np.bincount(idx, minlength=N_BINS).astype(np.float64)
    if exclude_clipped:
        counts[0] = counts[-1] = 0.0
    total = counts.sum()
    if total == 0:
        raise DataQualityError(
            "photo has no pixel strictly between 0 and 255: expected a gray-level photo, "
            "found only black/saturated values"
        )
    return counts / total


def first_valley(
    histogram: np.ndarray, *, sigma_bins: float = 2.0, min_prominence: float = 0.03
) -> tuple[int, int, int, np.ndarray]:
    """Locate the first valley of a histogram ``[256]``.

    Returns:
        ``(valley_bin, first_peak_bin, second_peak_bin, smoothed [256])``.
    """
    hist = np.asarray(histogram, dtype=np.float64)
    if hist.shape != (N_BINS,):
        raise InvalidInputError(f"histogram must have shape ({N_BINS},), found {hist.shape}")
    if not np.isfinite(hist).all() or (hist < 0).any() or hist.sum() <= 0:
        raise InvalidInputError("histogram must be finite, non-negative and not all zero")
    sigma = positive_number(sigma_bins, name="sigma_bins", allow_zero=True)
    prom = fraction(min_prominence, name="min_prominence", low=1e-6, high=1.0)
    smooth = ndimage.gaussian_filter1d(hist, sigma, mode="nearest") if sigma > 0 else hist.copy()
    peaks, _ = signal.find_peaks(smooth, prominence=prom * float(smooth.max()))
    if peaks.size < 2:
        raise DataQualityError(
            f"averaged histogram has {peaks.size} significant peak(s) (prominence >= "
            f"{prom:.0%} of the maximum): expected at least 2 (rock and shadow/snow); "
            "use more photos, lower min_prominence or a fixed threshold"
        )
    p1, p2 = int(peaks[0]), int(peaks[1])
    valley = p1 + 1 + int(np.argmin(smooth[p1 + 1 : p2]))
    return valley, p1, p2, smooth


@dataclass(frozen=True, kw_only=True, eq=False)
class AveragedHistogramThreshold:
    """A binarisation threshold from the first valley of an averaged histogram.

    Attributes:
        threshold: gray level (0–255); pixels ``<= threshold`` are rock.
        mean_histogram: mean normalised histogram ``[256]`` (zeros if given directly).
        smoothed_histogram: the Gaussian-smoothed mean histogram ``[256]``.
        peak_bins: the two peaks the valley lies between (``(-1, -1)`` if given directly).
        sigma_bins: Gaussian smoothing used.
        min_prominence: peak prominence used, as a fraction of the maximum.
        n_photos: photos averaged (0 if unknown or the threshold was given directly).
    """

    threshold: int
    mean_histogram: np.ndarray
    smoothed_histogram: np.ndarray
    peak_bins: tuple[int, int]
    sigma_bins: float
    min_prominence: float
    n_photos: int

    def __post_init__(self) -> None:
        if not isinstance(self.threshold, int | np.integer) or not 0 <= self.threshold <= 254:
            raise InvalidInputError(
                f"threshold must be an int in [0, 254], found {self.threshold!r}"
            )
        for name in ("mean_histogram", "smoothed_histogram"):
            shape = np.shape(getattr(self, name))
            if shape != (N_BINS,):
                raise InvalidInputError(f"{name} must have shape ({N_BINS},), found {shape}")

    @classmethod
    def from_photos(
        cls,
        photos: Iterable[np.ndarray],
        *,
        sigma_bins: float = 2.0,
        min_prominence: float = 0.03,
        exclude_clipped: bool = True,
    ) -> AveragedHistogramThreshold:
        """Average the histograms of ``photos`` (each ``[H x W]``, frame cropped)."""
        hists = [gray_histogram(p, exclude_clipped=exclude_clipped) for p in photos]
        if not hists:
            raise InvalidInputError("photos is empty: expected at least one photo, found 0")
        return cls.from_histogram(
            np.mean(hists, axis=0),
            sigma_bins=sigma_bins,
            min_prominence=min_prominence,
            n_photos=len(hists),
        )

    @classmethod
    def from_histogram(
        cls,
        histogram: np.ndarray,
        *,
        sigma_bins: float = 2.0,
        min_prominence: float = 0.03,
        n_photos: int = 0,
    ) -> AveragedHistogramThreshold:
        """Threshold of an already averaged histogram ``[256]`` (need not be normalised).

        ``n_photos`` only records how many photos the histogram averages (0 = unknown).
        """
        valley, p1, p2, smooth = first_valley(
            histogram, sigma_bins=sigma_bins, min_prominence=min_prominence
        )
        hist = np.asarray(histogram, dtype=np.float64)
        return cls(
            threshold=valley,
            mean_histogram=hist / hist.sum(),
            smoothed_histogram=smooth / hist.sum(),
            peak_bins=(p1, p2),
            sigma_bins=float(sigma_bins),
            min_prominence=float(min_prominence),
            n_photos=int(n_photos),
        )

    @classmethod
    def fixed(cls, threshold: int = SEED_STUDY_THRESHOLD) -> AveragedHistogramThreshold:
        """A given threshold without a histogram (default: the seed study's 79)."""
        zeros = np.zeros(N_BINS)
        return cls(
            threshold=threshold,
            mean_histogram=zeros,
            smoothed_histogram=zeros,
            peak_bins=(-1, -1),
            sigma_bins=0.0,
            min_prominence=0.0,
            n_photos=0,
        )

    def binarize(self, photo: np.ndarray) -> np.ndarray:
        """Binary image ``[H x W]`` bool: False where ``photo <= threshold`` (rock), else True.

        ``photo`` is on the 0–255 scale of the photos the threshold came from;
        NaN is not allowed (crop the frame instead of masking it).
        """
        arr = image_2d(photo, name="photo", allow_nan=False)
        return np.asarray(arr > self.threshold)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {
            "kind": _KIND,
            "version": 1,
            "threshold": int(self.threshold),
            "peak_bins": list(self.peak_bins),
            "sigma_bins": self.sigma_bins,
            "min_prominence": self.min_prominence,
            "n_photos": self.n_photos,
            "mean_histogram": [float(v) for v in self.mean_histogram],
            "smoothed_histogram": [float(v) for v in self.smoothed_histogram],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the threshold and its histograms as JSON, atomically."""
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AveragedHistogramThreshold:
        """Read a threshold written by :meth:`save`."""
        p = require_file(path, "threshold file")
        try:
            data = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"threshold file {p} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("kind") != _KIND:
            found = data.get("kind") if isinstance(data, dict) else type(data).__name__
            raise ConfigError(
                f"threshold file {p}: expected kind {_KIND!r}, found {found!r}; "
                "write it with AveragedHistogramThreshold.save"
            )
        expected = {
            "kind",
            "version",
            "threshold",
            "peak_bins",
            "sigma_bins",
            "min_prominence",
            "n_photos",
            "mean_histogram",
            "smoothed_histogram",
        }
        if set(data) != expected:
            raise ConfigError(
                f"threshold file {p}: expected keys {sorted(expected)}, found {sorted(data)}"
            )
        try:
            peaks = tuple(int(v) for v in data["peak_bins"])
            return cls(
                threshold=int(data["threshold"]),
                mean_histogram=np.asarray(data["mean_histogram"], dtype=np.float64),
                smoothed_histogram=np.asarray(data["smoothed_histogram"], dtype=np.float64),
                peak_bins=(peaks[0], peaks[1]),
                sigma_bins=float(data["sigma_bins"]),
                min_prominence=float(data["min_prominence"]),
                n_photos=int(data["n_photos"]),
            )
        except (TypeError, ValueError, IndexError) as exc:
            raise ConfigError(f"threshold file {p} has an invalid value: {exc}") from exc
