"""Flight lines with known geometry for the tests of ``aeroloc.lines``."""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np
from affine import Affine
from shapely.geometry import Polygon

from aeroloc.geometry import photo_to_map
from aeroloc.georef.transform import PhotoTransform
from aeroloc.io.archive import Truth, TruthRecord
from aeroloc.lines.inputs import FlightLine, LinePhoto, LocatedPhoto

CRS = "EPSG:3031"
BOX = (40, 30, 1040, 1030)  # image area of a 1080 x 1060 scan
GSD_M = 2.0


def true_transform(x: float, y: float, heading_deg: float, gsd_m: float = GSD_M) -> PhotoTransform:
    """Scan pixel → map of a nadir photo centred on ``(x, y)`` (image area :data:`BOX`)."""
    c0, r0, c1, r1 = BOX
    to_map = photo_to_map(
        center_x=x,
        center_y=y,
        gsd_m=gsd_m,
        azimuth_deg=heading_deg,
        width_px=c1 - c0,
        height_px=r1 - r0,
    )
    a, b, c, d, e, f = tuple(to_map)[:6]
    # shift the origin from the image area's corner to the scan's
    matrix = np.array([[a, b, c - a * c0 - b * r0], [d, e, f - d * c0 - e * r0], [0, 0, 1.0]])
    return PhotoTransform(matrix=matrix, kind="similarity", crs=CRS)


def true_centres(
    n: int,
    *,
    interval_m: float,
    direction_deg: float,
    x0: float = 400_000.0,
    y0: float = -990_000.0,
) -> np.ndarray:
    """``[n x 2]`` centres on a straight line, one interval apart."""
    ux, uy = math.sin(math.radians(direction_deg)), math.cos(math.radians(direction_deg))
    k = np.arange(n, dtype=np.float64)
    return np.column_stack([x0 + k * interval_m * ux, y0 + k * interval_m * uy])


def make_line(
    centres: np.ndarray,
    *,
    heading_deg: float,
    first_frame: int = 10,
    located: Collection[int] | None = None,
    sigma_m: float = 15.0,
    catalog_offset_m: tuple[float, float] = (700.0, -400.0),
    line_id: str = "L1",
) -> FlightLine:
    """A line with photos at ``centres``; those whose index is in ``located`` are located there."""
    located = set(range(len(centres))) if located is None else set(located)
    photos = []
    for k, (x, y) in enumerate(centres):
        loc = None
        if k in located:
            loc = LocatedPhoto.from_transform(
                true_transform(float(x), float(y), heading_deg), BOX, sigma_m=sigma_m
            )
        photos.append(
            LinePhoto(
                photo_id=f"P{first_frame + k:04d}",
                frame=first_frame + k,
                catalog_x=float(x) + catalog_offset_m[0],
                catalog_y=float(y) + catalog_offset_m[1],
                catalog_heading_deg=heading_deg + 3.0,
                ground_size_m=1000 * GSD_M * 1.05,
                located=loc,
                status="rejected" if loc is None else "accepted",
            )
        )
    return FlightLine(line_id=line_id, crs=CRS, photos=tuple(photos))


def truth_transform(record: TruthRecord, crs: str) -> PhotoTransform:
    """The true scan pixel → map transform of a synthetic photo."""
    if record.pixel_to_map is None:
        raise ValueError(f"truth of {record.photo_id} has no pixel_to_map")
    return PhotoTransform.from_affine(Affine(*record.pixel_to_map), crs, kind="similarity")


def truth_located(record: TruthRecord, crs: str, *, sigma_m: float = 10.0) -> LocatedPhoto:
    """A synthetic photo located exactly where its truth says."""
    if record.image_box_px is None:
        raise ValueError(f"truth of {record.photo_id} has no image_box_px")
    box = tuple(record.image_box_px)
    return LocatedPhoto.from_transform(truth_transform(record, crs), box, sigma_m=sigma_m)


def line_from_truth(truth: Truth, located: Collection[str]) -> FlightLine:
    """The archive's (one) flight line, with the photos in ``located`` located at their truth."""
    photos = []
    line_ids = {r.flight_line for r in truth.photos.values()}
    if len(line_ids) != 1:
        raise ValueError(f"expected one flight line, found {sorted(line_ids)}")
    for rec in truth.photos.values():
        if rec.frame is None:
            raise ValueError(f"truth of {rec.photo_id} has no frame")
        photos.append(
            LinePhoto(
                photo_id=rec.photo_id,
                frame=rec.frame,
                catalog_x=rec.center_x + 500.0,
                catalog_y=rec.center_y - 300.0,
                catalog_heading_deg=rec.azimuth_deg,
                located=truth_located(rec, truth.crs) if rec.photo_id in located else None,
            )
        )
    return FlightLine(line_id=line_ids.pop(), crs=truth.crs, photos=tuple(photos))


def iou(a: Polygon, b: Polygon) -> float:
    """Intersection over union of two polygons."""
    return float(a.intersection(b).area / a.union(b).area)
