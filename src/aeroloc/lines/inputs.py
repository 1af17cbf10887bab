"""What the flight-line stages take: one line's photos, ordered by frame, some located.

A :class:`FlightLine` holds the photos of one flight line of a catalog, ordered
by frame. Each :class:`LinePhoto` carries what the catalog says (approximate
camera centre, heading, footprint size from the altitude) and, when the photo
has been placed (by the search, by propagation or by a neighbour), a
:class:`LocatedPhoto`: its centre, heading and GSD read from the fitted
photo-scan-pixel → map transform, its footprint, and a 1-σ position
uncertainty in metres.

Conventions (see :mod:`aeroloc.geometry`): map coordinates in metres in the
line's CRS; headings clockwise from grid north, in [0, 360); a photo's top
edge points along its heading.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rasterio.crs import CRS
from shapely.geometry import Polygon

from aeroloc.errors import InvalidInputError
from aeroloc.files import parse_crs
from aeroloc.georef.transform import PhotoTransform

# How a photo got its location (search, propagated, neighbour, line): defined
# once, with the result file that records it.
from aeroloc.io.results import METHODS as METHODS


def wrap_deg(angle: float) -> float:
    """``angle`` wrapped to [-180, 180) degrees."""
    return (float(angle) + 180.0) % 360.0 - 180.0


def circular_median_deg(angles: Sequence[float]) -> float:
    """Median of headings (degrees) on the circle, in [0, 360).

    The angles are unwrapped around their circular mean first, so 359° and 1°
    have median 0°, not 180°.
    """
    a = np.asarray(angles, dtype=np.float64)
    if a.size == 0:
        raise InvalidInputError("circular_median_deg needs at least one angle")
    r = np.radians(a)
    mean = math.degrees(math.atan2(float(np.sin(r).mean()), float(np.cos(r).mean())))
    offsets = np.array([wrap_deg(v - mean) for v in a])
    return float((mean + float(np.median(offsets))) % 360.0)


def heading_of(transform: PhotoTransform, col: float, row: float) -> float:
    """Heading (degrees clockwise from grid north) of the photo's "up" at scan ``(col, row)``.

    "Up" is the direction of decreasing row, which the geometry convention
    points along the flight heading.
    """
    xs, ys = transform.apply([col, col], [row + 0.5, row - 0.5])
    dx, dy = float(xs[1] - xs[0]), float(ys[1] - ys[0])
    return math.degrees(math.atan2(dx, dy)) % 360.0


def _edge_lengths(footprint: Polygon) -> tuple[float, float]:
    """``(width, height)`` of a quadrilateral TL, TR, BR, BL: mean of opposite edges."""
    pts = np.asarray(footprint.exterior.coords)[:4]
    edge = [float(np.hypot(*(pts[(i + 1) % 4] - pts[i]))) for i in range(4)]
    return (edge[0] + edge[2]) / 2, (edge[1] + edge[3]) / 2


@dataclass(frozen=True, kw_only=True, eq=False)
class LocatedPhoto:
    """Where a photo was placed.

    Attributes:
        x, y: photo centre (map CRS, m): the centroid of ``footprint``.
        heading_deg: heading of the photo's top edge, clockwise from grid north.
        gsd_m: ground size of one scan pixel at the image centre (m), or None
            when only the footprint is known.
        ground_width_m, ground_height_m: footprint size across and along track (m).
        sigma_m: 1-σ uncertainty of the centre (m), > 0.
        footprint: map polygon of the image area (TL, TR, BR, BL).
        transform: photo scan pixel → map, or None when only the footprint is known.
        image_box_px: ``(col0, row0, col1, row1)`` of the image area in the scan.
        status: ``accepted`` or ``review``.
        method: one of :data:`METHODS`.
    """

    x: float
    y: float
    heading_deg: float
    gsd_m: float | None
    ground_width_m: float
    ground_height_m: float
    sigma_m: float
    footprint: Polygon
    transform: PhotoTransform | None = None
    image_box_px: tuple[int, int, int, int] | None = None
    status: str = "accepted"
    method: str = "search"

    def __post_init__(self) -> None:
        values = (self.x, self.y, self.heading_deg, self.ground_width_m, self.ground_height_m)
        if not all(math.isfinite(v) for v in values):
            raise InvalidInputError(f"located photo needs finite values, got {values}")
        if not (math.isfinite(self.sigma_m) and self.sigma_m > 0):
            raise InvalidInputError(f"sigma_m must be > 0 m, got {self.sigma_m}")
        if self.gsd_m is not None and not (math.isfinite(self.gsd_m) and self.gsd_m > 0):
            raise InvalidInputError(f"gsd_m must be > 0 m, got {self.gsd_m}")
        if self.status not in ("accepted", "review"):
            raise InvalidInputError(
                f"a located photo's status is accepted or review, got {self.status!r}"
            )
        if self.method not in METHODS:
            raise InvalidInputError(
                f"method must be one of {', '.join(METHODS)}, got {self.method!r}"
            )
        object.__setattr__(self, "heading_deg", float(self.heading_deg) % 360.0)

    @classmethod
    def from_transform(
        cls,
        transform: PhotoTransform,
        image_box_px: Sequence[int],
        *,
        sigma_m: float,
        status: str = "accepted",
        method: str = "search",
    ) -> LocatedPhoto:
        """From a photo-scan-pixel → map transform and the scan's image area.

        Raises:
            InvalidInputError: the box is malformed, or the transform gives no
                valid footprint (:class:`~aeroloc.errors.DataQualityError`).
        """
        if len(image_box_px) != 4:
            raise InvalidInputError(
                f"image_box_px must be (col0, row0, col1, row1), got {image_box_px}"
            )
        c0, r0, c1, r1 = (int(v) for v in image_box_px)
        if not (c1 > c0 and r1 > r0):
            raise InvalidInputError(
                f"image_box_px must have col1 > col0 and row1 > row0, got {image_box_px}"
            )
        footprint = transform.footprint((c0, r0, c1, r1))
        cc, rc = (c0 + c1) / 2, (r0 + r1) / 2
        width, height = _edge_lengths(footprint)
        centre = footprint.centroid
        return cls(
            x=float(centre.x),
            y=float(centre.y),
            heading_deg=heading_of(transform, cc, rc),
            gsd_m=transform.pixel_size_m(cc, rc),
            ground_width_m=width,
            ground_height_m=height,
            sigma_m=sigma_m,
            footprint=footprint,
            transform=transform,
            image_box_px=(c0, r0, c1, r1),
            status=status,
            method=method,
        )

    @classmethod
    def from_footprint(
        cls,
        footprint: Polygon | Sequence[Sequence[float]],
        *,
        sigma_m: float,
        status: str = "accepted",
        method: str = "search",
    ) -> LocatedPhoto:
        """From footprint corners alone, ordered top-left, top-right, bottom-right, bottom-left."""
        poly = footprint if isinstance(footprint, Polygon) else Polygon(footprint)
        pts = np.asarray(poly.exterior.coords)[:4]
        if len(pts) != 4 or not poly.is_valid or poly.area <= 0:
            raise InvalidInputError("a footprint must be a valid quadrilateral TL, TR, BR, BL")
        width, height = _edge_lengths(poly)
        up = (pts[0] + pts[1]) / 2 - (pts[3] + pts[2]) / 2
        centre = poly.centroid
        return cls(
            x=float(centre.x),
            y=float(centre.y),
            heading_deg=math.degrees(math.atan2(float(up[0]), float(up[1]))) % 360.0,
            gsd_m=None,
            ground_width_m=width,
            ground_height_m=height,
            sigma_m=sigma_m,
            footprint=poly,
            status=status,
            method=method,
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class LinePhoto:
    """One photo of a flight line: its catalog entry and, if placed, where.

    Attributes:
        photo_id: catalog id.
        frame: frame number along the line.
        catalog_x, catalog_y: the catalog's approximate camera centre (map CRS, m).
        catalog_heading_deg: the catalog's heading, or None.
        ground_size_m: footprint side from the catalog altitude (m), or None.
        located: where the photo was placed, or None.
        status: the photo's current status when not located (``rejected``,
            ``pending``, ``failed``...; free text for reports).
    """

    photo_id: str
    frame: int
    catalog_x: float
    catalog_y: float
    catalog_heading_deg: float | None = None
    ground_size_m: float | None = None
    located: LocatedPhoto | None = None
    status: str = "pending"

    def __post_init__(self) -> None:
        if not self.photo_id:
            raise InvalidInputError("photo_id must not be empty")
        if not (math.isfinite(self.catalog_x) and math.isfinite(self.catalog_y)):
            raise InvalidInputError(f"photo {self.photo_id}: catalog centre is not finite")
        if self.ground_size_m is not None and not (
            math.isfinite(self.ground_size_m) and self.ground_size_m > 0
        ):
            raise InvalidInputError(
                f"photo {self.photo_id}: ground_size_m must be > 0, got {self.ground_size_m}"
            )
        if self.located is not None:
            object.__setattr__(self, "status", self.located.status)

    @property
    def accepted(self) -> bool:
        """True when the photo is located with status ``accepted``."""
        return self.located is not None and self.located.status == "accepted"


@dataclass(frozen=True, kw_only=True, eq=False)
class FlightLine:
    """The photos of one flight line, ordered by frame (frames and ids unique).

    Attributes:
        line_id: the catalog's flight line.
        crs: map CRS of every coordinate.
        photos: ordered by ``frame`` (sorted on construction).
    """

    line_id: str
    crs: CRS
    photos: tuple[LinePhoto, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "crs", parse_crs(self.crs))
        photos = tuple(sorted(self.photos, key=lambda p: p.frame))
        frames = [p.frame for p in photos]
        dup = sorted({f for f in frames if frames.count(f) > 1})
        if dup:
            raise InvalidInputError(f"flight line {self.line_id}: frame(s) {dup} appear twice")
        ids = [p.photo_id for p in photos]
        dup_ids = sorted({i for i in ids if ids.count(i) > 1})
        if dup_ids:
            raise InvalidInputError(
                f"flight line {self.line_id}: photo id(s) {dup_ids} appear twice"
            )
        object.__setattr__(self, "photos", photos)

    def __len__(self) -> int:
        return len(self.photos)

    @property
    def frames(self) -> tuple[int, ...]:
        """Frame numbers, ascending."""
        return tuple(p.frame for p in self.photos)

    @property
    def accepted(self) -> tuple[LinePhoto, ...]:
        """Photos located with status ``accepted``, by frame."""
        return tuple(p for p in self.photos if p.accepted)

    def photo(self, key: str | int) -> LinePhoto:
        """The photo with this id (str) or frame (int).

        Raises:
            InvalidInputError: no such photo on the line.
        """
        for p in self.photos:
            if (isinstance(key, str) and p.photo_id == key) or (
                not isinstance(key, str) and p.frame == key
            ):
                return p
        raise InvalidInputError(f"flight line {self.line_id} has no photo {key!r}")
