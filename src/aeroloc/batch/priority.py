"""Which photos of a batch go first: per flight line, the most textured and rocky ones.

A photo with much texture (and, when a rock mask is given, much rock under
its rough footprint) is the likeliest to be located, and a located photo is
what later helps its neighbours on the line. :func:`job_priority` is a cheap
score per photo:

``priority = texture × (1 + rock_share)``

* ``texture`` (:func:`texture_score`): the mean gradient magnitude of the
  scan read at most ``max_side`` pixels wide (an averaging decimation, so
  film grain and scan noise are smoothed away and terrain structure stays),
  inside the inner part of the frame (fiducials and the film edge excluded),
  in units of the scan's value range (the dtype's range for integer scans).
* ``rock_share`` (:func:`rock_share`): the share of the rough footprint (the
  catalog's camera centre, altitude and heading) covered by rock polygons;
  0 without a rock mask.

:func:`order_by_line` then orders the jobs so that every line's best photo
is submitted before any line's second best, and so on.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from rasterio.enums import Resampling

from aeroloc.aoi import rough_footprint
from aeroloc.batch.loop import PhotoJob
from aeroloc.catalog import PhotoRecord
from aeroloc.errors import AeroLocError, InvalidInputError
from aeroloc.files import open_raster

logger = logging.getLogger(__name__)

#: Largest side (pixels) at which :func:`texture_score` reads a scan.
TEXTURE_SIDE_PX = 256
#: Share of each side left out around the scan (frame, fiducials, film edge).
TEXTURE_INSET = 0.1


def texture_score(
    photo: str | os.PathLike[str], *, max_side: int = TEXTURE_SIDE_PX, inset: float = TEXTURE_INSET
) -> float:
    """Mean gradient magnitude of a scan at low resolution (see the module docstring).

    Args:
        photo: the scanned photo (first band is used).
        max_side: largest side of the decimated read (pixels, ≥ 8).
        inset: share of each side left out, in [0, 0.45].

    Returns:
        The score (≥ 0; 0 for a flat or all-nodata scan).

    Raises:
        InvalidInputError: ``max_side`` or ``inset`` out of range.
        MissingFileError, RasterReadError: the scan is missing or unreadable.
    """
    if max_side < 8:
        raise InvalidInputError(f"max_side must be ≥ 8 pixels, got {max_side}")
    if not (0.0 <= inset <= 0.45):
        raise InvalidInputError(f"inset must be in [0, 0.45], got {inset}")
    with open_raster(photo, what="photo") as ds:
        factor = max(1.0, max(ds.width, ds.height) / max_side)
        shape = (max(1, round(ds.height / factor)), max(1, round(ds.width / factor)))
        band = ds.read(1, out_shape=shape, resampling=Resampling.average, masked=True)
        dtype = np.dtype(ds.dtypes[0])
    img = np.ma.filled(band.astype(np.float64), np.nan)
    h, w = img.shape
    r0, c0 = int(h * inset), int(w * inset)
    img = img[r0 : h - r0, c0 : w - c0]
    if img.shape[0] < 2 or img.shape[1] < 2 or not np.isfinite(img).any():
        return 0.0
    value_range = _value_range(img, dtype)
    if value_range <= 0:
        return 0.0
    gy, gx = np.gradient(img / value_range)
    magnitude = np.hypot(gx, gy)
    finite = magnitude[np.isfinite(magnitude)]
    return float(finite.mean()) if finite.size else 0.0


def _value_range(img: np.ndarray, dtype: np.dtype) -> float:
    """The dtype's range for integer scans; the 0.5–99.5 percentile range otherwise."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(info.max) - float(info.min)
    lo, hi = np.nanpercentile(img, [0.5, 99.5])
    return float(hi - lo)


def rock_share(record: PhotoRecord, rock_mask: str | os.PathLike[str]) -> float:
    """Share (0–1) of ``record``'s rough footprint covered by the rock polygons.

    Only polygons near the footprint are read. Raises what reading the
    polygons raises (:class:`~aeroloc.errors.InvalidInputError` for a file
    that is not a vector layer).
    """
    import pyogrio
    from pyogrio.errors import DataLayerError, DataSourceError
    from rasterio.warp import transform_bounds
    from shapely import union_all

    footprint = rough_footprint(record)
    path = Path(rock_mask)
    try:
        info = pyogrio.read_info(path)
        file_crs = info.get("crs") or record.crs.to_string()
        bbox = transform_bounds(record.crs, file_crs, *footprint.bounds, densify_pts=21)
        frame = pyogrio.read_dataframe(path, bbox=tuple(bbox))
    except (DataSourceError, DataLayerError, ValueError) as exc:
        raise InvalidInputError(f"cannot read rock polygons {path}: {exc}") from exc
    if len(frame) == 0 or footprint.area <= 0:
        return 0.0
    if frame.crs is None:
        frame = frame.set_crs(record.crs.to_wkt())
    rocks = union_all(frame.to_crs(record.crs.to_wkt()).geometry.values)
    return float(min(1.0, rocks.intersection(footprint).area / footprint.area))


def job_priority(job: PhotoJob) -> float:
    """``texture × (1 + rock_share)`` of one job; 0 when its scan cannot be read.

    A scan that cannot be read scores 0 (it goes last and fails with its own
    reason when it is located). A module-level function, so a runner can
    compute the scores on its workers.
    """
    if job.record.path is None:
        return 0.0
    try:
        texture = texture_score(_scan_path(job))
        rock = 0.0 if job.rock_mask is None else rock_share(job.record, job.rock_mask)
    except (AeroLocError, OSError) as exc:
        logger.debug("photo %s: no priority score (%s)", job.photo_id, exc)
        return 0.0
    return texture * (1.0 + rock)


def _scan_path(job: PhotoJob) -> Path:
    path = job.record.path
    if path is None:
        raise InvalidInputError(f"photo {job.photo_id} has no path in the catalog")
    return path if path.is_absolute() else job.archive_root / path


def line_key(record: PhotoRecord) -> str:
    """The flight line a photo belongs to; a photo without one is a line of its own."""
    return record.flight_line if record.flight_line else f"\0{record.photo_id}"


def order_by_line(jobs: Sequence[PhotoJob], scores: Mapping[str, float]) -> tuple[PhotoJob, ...]:
    """``jobs`` with every line's best photo first, then every line's second best, ...

    Args:
        jobs: the photos, in catalog order (lines come in the order they first appear).
        scores: priority per photo id (higher first; a missing or NaN score is 0).

    Within a line, ties keep frame order.
    """
    lines: dict[str, list[PhotoJob]] = {}
    for job in jobs:
        lines.setdefault(line_key(job.record), []).append(job)

    def score(job: PhotoJob) -> float:
        s = float(scores.get(job.photo_id, 0.0))
        return s if math.isfinite(s) else 0.0

    ranked = [
        sorted(members, key=lambda j: (-score(j), j.record.frame or 0, j.index))
        for members in lines.values()
    ]
    ordered: list[PhotoJob] = []
    for depth in range(max((len(r) for r in ranked), default=0)):
        ordered.extend(r[depth] for r in ranked if depth < len(r))
    return tuple(ordered)
