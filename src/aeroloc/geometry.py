"""Camera and footprint geometry shared by ``aoi``, ``synth`` and ``georef``.

Conventions used throughout aeroloc:

* Map coordinates are metres in the reference CRS (EPSG:3031 for Antarctica).
* ``azimuth_deg`` is the flight heading, clockwise from grid north (the map's
  +y axis). A photo's top edge points along the heading.
* Photo pixel coordinates are ``(col, row)`` with the origin at the top-left
  corner of the top-left pixel (rasterio's convention).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine

from aeroloc.errors import InvalidInputError

INCH_MM = 25.4


@dataclass(frozen=True, kw_only=True)
class Camera:
    """A frame camera: focal length and film format.

    Defaults are the USGS trimetrogon (TMA) cameras: 152.4 mm (6 in) lens,
    9 × 9 in film.
    """

    focal_length_mm: float = 152.4
    film_width_mm: float = 9 * INCH_MM
    film_height_mm: float = 9 * INCH_MM

    def __post_init__(self) -> None:
        for name in ("focal_length_mm", "film_width_mm", "film_height_mm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 1.0 <= value <= 2000.0):
                raise InvalidInputError(f"{name} must be between 1 and 2000 mm, got {value}")

    def ground_size_m(self, altitude_m: float) -> tuple[float, float]:
        """Ground width and height (m) of a nadir photo taken ``altitude_m`` above ground.

        ground size = altitude × film size / focal length.
        """
        check_altitude(altitude_m)
        scale = altitude_m / self.focal_length_mm
        return self.film_width_mm * scale, self.film_height_mm * scale


MAX_ALTITUDE_M = 25_000.0  # above any aircraft that flew aerial survey cameras


def check_altitude(altitude_m: float) -> float:
    """Return ``altitude_m`` if plausible, else raise :class:`InvalidInputError`."""
    if not math.isfinite(altitude_m) or altitude_m <= 0:
        raise InvalidInputError(f"altitude must be > 0 m, got {altitude_m}")
    if altitude_m > MAX_ALTITUDE_M:
        raise InvalidInputError(
            f"altitude {altitude_m:.0f} m is absurd (> {MAX_ALTITUDE_M:.0f} m): "
            "is it in feet? convert to metres"
        )
    return altitude_m


def heading_unit(azimuth_deg: float) -> tuple[float, float]:
    """Map-plane unit vector (dx, dy) of a heading clockwise from grid north."""
    a = math.radians(azimuth_deg)
    return math.sin(a), math.cos(a)


def photo_to_map(
    *,
    center_x: float,
    center_y: float,
    gsd_m: float,
    azimuth_deg: float,
    width_px: float,
    height_px: float,
) -> Affine:
    """Affine mapping photo pixel ``(col, row)`` → map ``(x, y)`` for a nadir photo.

    The photo centre maps to ``(center_x, center_y)``; its top edge points along
    ``azimuth_deg``; one pixel is ``gsd_m`` on the ground.
    """
    if not (math.isfinite(gsd_m) and gsd_m > 0):
        raise InvalidInputError(f"gsd_m must be > 0, got {gsd_m}")
    s, c = math.sin(math.radians(azimuth_deg)), math.cos(math.radians(azimuth_deg))
    a, b = gsd_m * c, -gsd_m * s
    d, e = -gsd_m * s, -gsd_m * c
    x0 = center_x - a * width_px / 2 - b * height_px / 2
    y0 = center_y - d * width_px / 2 - e * height_px / 2
    return Affine(a, b, x0, d, e, y0)


def footprint_corners(
    *,
    center_x: float,
    center_y: float,
    width_m: float,
    height_m: float,
    azimuth_deg: float,
) -> np.ndarray:
    """Map corners ``[4 x 2]`` of a rectangle: top-left, top-right, bottom-right, bottom-left.

    "Top" is the side the heading points to.
    """
    t = photo_to_map(
        center_x=center_x,
        center_y=center_y,
        gsd_m=1.0,
        azimuth_deg=azimuth_deg,
        width_px=width_m,
        height_px=height_m,
    )
    px = [(0.0, 0.0), (width_m, 0.0), (width_m, height_m), (0.0, height_m)]
    return np.array([t @ p for p in px], dtype=np.float64)
