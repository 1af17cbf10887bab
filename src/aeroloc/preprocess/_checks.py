"""Input checks shared by the preprocessing functions (messages say expected vs found)."""

from __future__ import annotations

from typing import Any

import numpy as np

from aeroloc.errors import DataQualityError, InvalidInputError


def as_array(value: Any, *, name: str) -> np.ndarray:
    """Return ``value`` as a numeric ndarray or raise :class:`InvalidInputError`."""
    if not isinstance(value, np.ndarray):
        raise InvalidInputError(f"{name} must be a numpy array, found {type(value).__name__}")
    if not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_):
        raise InvalidInputError(f"{name} must be numeric, found dtype {value.dtype}")
    if value.size == 0:
        raise InvalidInputError(
            f"{name} is empty: expected at least one pixel, found shape {value.shape}"
        )
    return value


def image_2d(value: Any, *, name: str, min_side_px: int = 1, allow_nan: bool = True) -> np.ndarray:
    """Check a single-band image ``[H x W]``; all-NaN raises :class:`DataQualityError`."""
    arr = as_array(value, name=name)
    if arr.ndim != 2:
        raise InvalidInputError(f"{name} must be one band [H x W], found shape {arr.shape}")
    if min(arr.shape) < min_side_px:
        raise InvalidInputError(
            f"{name} must be at least {min_side_px} px a side, found shape {arr.shape}"
        )
    check_finite(arr, name=name, allow_nan=allow_nan)
    return arr


def bands_3d(value: Any, *, name: str) -> np.ndarray:
    """Check a band stack; ``[H x W]`` becomes ``[1 x H x W]``. Expected ``[B x H x W]``."""
    arr = as_array(value, name=name)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3:
        raise InvalidInputError(f"{name} must be [B x H x W] or [H x W], found shape {arr.shape}")
    check_finite(arr, name=name, allow_nan=True)
    return arr


def check_finite(arr: np.ndarray, *, name: str, allow_nan: bool) -> None:
    """Raise when ``arr`` has no finite value, or any NaN/inf when ``allow_nan`` is False."""
    if not np.issubdtype(arr.dtype, np.floating):
        return
    finite = np.isfinite(arr)
    if not finite.any():
        raise DataQualityError(
            f"{name} is all nodata (NaN): expected some valid pixels, found none in {arr.shape}"
        )
    if not allow_nan and not finite.all():
        raise InvalidInputError(
            f"{name} must not contain NaN/inf, found {int((~finite).sum())} such pixels"
        )


def positive_number(value: Any, *, name: str, allow_zero: bool = False) -> float:
    """Return ``value`` as float if finite and > 0 (or >= 0), else raise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, found {value!r}") from None
    ok = number >= 0 if allow_zero else number > 0
    if not (np.isfinite(number) and ok):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{name} must be {bound}, found {value!r}")
    return number


def fraction(value: Any, *, name: str, low: float = 0.0, high: float = 1.0) -> float:
    """Return ``value`` as float if ``low <= value <= high``, else raise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, found {value!r}") from None
    if not (np.isfinite(number) and low <= number <= high):
        raise InvalidInputError(f"{name} must be in [{low}, {high}], found {value!r}")
    return number


def grid_shape_hw(shape: Any) -> tuple[int, int]:
    """``shape`` as a positive ``(height, width)`` pair of ints."""
    try:
        height, width = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise InvalidInputError(f"shape must be (H, W), found {shape!r}") from None
    if height < 1 or width < 1:
        raise InvalidInputError(f"shape must be positive (H, W), found {shape!r}")
    return height, width
