"""Build the flight-line inputs from what is on disk: a catalog and a results folder.

A results folder holds one folder per photo, ``DIR/<photo_id>/result.json``,
as ``locate`` (and the batch) write them. :func:`read_lines` groups the
catalog by flight line, orders each line by frame, and attaches to every
photo whose result is verified (``accepted`` or ``review``, with a transform)
a :class:`~aeroloc.lines.inputs.LocatedPhoto` read from the result's
transform and frame box (:func:`located_from_record`).

A located photo's uncertainty is ``σ = max(min_sigma_m, rmse_px · aoi_pixel_m)``:
the verification fit's residual on the reference grid, with a floor (the
search's median centre error is ~15 m against a 10 m reference).

Catalog rows without a flight line or frame are single photos: they are left
out of the lines, listed in :attr:`CatalogLines.singles`, with a warning.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aeroloc.catalog import Catalog, PhotoRecord
from aeroloc.errors import AeroLocError, InvalidInputError
from aeroloc.geometry import Camera
from aeroloc.georef.transform import PhotoTransform
from aeroloc.io.results import RESULT_FILE, LocateRecord, read_result
from aeroloc.lines.inputs import METHODS, FlightLine, LinePhoto, LocatedPhoto

log = logging.getLogger(__name__)

#: Floor of a searched photo's position uncertainty (m).
DEFAULT_MIN_SIGMA_M = 20.0


@dataclass(frozen=True, kw_only=True, eq=False)
class CatalogLines:
    """A catalog split into flight lines.

    Attributes:
        lines: one per flight line, in order of first appearance in the catalog.
        singles: ids of photos without a flight line or frame.
    """

    lines: tuple[FlightLine, ...]
    singles: tuple[str, ...] = ()

    def line(self, line_id: str) -> FlightLine:
        """The line ``line_id``.

        Raises:
            InvalidInputError: no such line.
        """
        for line in self.lines:
            if line.line_id == line_id:
                return line
        known = ", ".join(line.line_id for line in self.lines[:5])
        raise InvalidInputError(f"no flight line {line_id!r} (lines: {known})")


def located_from_record(
    record: LocateRecord, *, method: str = "search", min_sigma_m: float = DEFAULT_MIN_SIGMA_M
) -> LocatedPhoto | None:
    """The located photo of a verified result, or None (rejected, unverified, no transform).

    Raises:
        InvalidInputError: the record's transform or frame box is malformed.
    """
    best = record.best
    if not best.verified or best.transform is None:
        return None
    if method not in METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    box = record.inputs.frame_box_px
    if len(box) != 4:
        raise InvalidInputError(f"result of {record.photo_id} has no frame box (frame_box_px)")
    sigma = min_sigma_m
    if best.rmse_px is not None and record.aoi_pixel_m is not None:
        fit = best.rmse_px * record.aoi_pixel_m
        if math.isfinite(fit):
            sigma = max(sigma, fit)
    transform = PhotoTransform.from_json(best.transform)
    return LocatedPhoto.from_transform(
        transform,
        (box[0], box[1], box[2], box[3]),
        sigma_m=sigma,
        status=best.status,
        method=method,
    )


def _ground_size(record: PhotoRecord, camera: Camera | None) -> float | None:
    if record.altitude_m is None:
        return None
    return record.camera(camera).ground_size_m(record.altitude_m)[0]


def line_photo(
    rec: PhotoRecord,
    folder: Path,
    *,
    camera: Camera | None = None,
    method: str | None = None,
    min_sigma_m: float = DEFAULT_MIN_SIGMA_M,
    before_solve: bool = False,
) -> LinePhoto:
    """One catalog photo of a line with what ``folder/result.json`` says (``pending`` without).

    Args:
        rec: the catalog record (with a frame).
        folder: the photo's result folder.
        camera: camera for a record without a focal length.
        method: how it was placed (default: the method its result records).
        min_sigma_m: floor of a located photo's uncertainty.
        before_solve: read the result as it was before the joint solve
            changed it (:meth:`~aeroloc.io.results.LocateRecord.unsolved`).

    Raises:
        InvalidInputError: the record has no frame.
    """
    located: LocatedPhoto | None = None
    status = "pending"
    if (folder / RESULT_FILE).is_file():
        try:
            result = read_result(folder)
            if before_solve:
                result = result.unsolved()
            located = located_from_record(
                result, method=method or result.method, min_sigma_m=min_sigma_m
            )
            status = result.status
        except AeroLocError as exc:
            log.warning("photo %s: unreadable result (%s); treated as failed", rec.photo_id, exc)
            status = "failed"
    if rec.frame is None:  # checked by the caller
        raise InvalidInputError(f"photo {rec.photo_id} has no frame")
    return LinePhoto(
        photo_id=rec.photo_id,
        frame=rec.frame,
        catalog_x=rec.x,
        catalog_y=rec.y,
        catalog_heading_deg=rec.azimuth_deg,
        ground_size_m=_ground_size(rec, camera),
        located=located,
        status=status,
    )


def read_lines(
    catalog: Catalog,
    results_dir: str | os.PathLike[str],
    *,
    camera: Camera | None = None,
    methods: Mapping[str, str] | None = None,
    min_sigma_m: float = DEFAULT_MIN_SIGMA_M,
) -> CatalogLines:
    """The catalog's flight lines with what ``results_dir`` says about each photo.

    Args:
        catalog: the photos (their CRS is the lines' CRS).
        results_dir: folder of ``<photo_id>/result.json``; a photo without one is ``pending``.
        camera: camera for records without a focal length (default TMA).
        methods: how each located photo was placed (photo id → one of
            :data:`~aeroloc.lines.inputs.METHODS`); default: the ``method``
            its ``result.json`` records.
        min_sigma_m: floor of a located photo's uncertainty.

    Raises:
        InvalidInputError: two photos of one line share a frame.
    """
    root = Path(results_dir)
    how = dict(methods or {})
    groups: dict[str, list[PhotoRecord]] = {}
    singles = []
    for rec in catalog:
        if rec.flight_line is None or rec.frame is None:
            singles.append(rec.photo_id)
            continue
        groups.setdefault(rec.flight_line, []).append(rec)
    if singles:
        log.warning(
            "%d photo(s) without a flight line or frame are single photos: %s",
            len(singles),
            ", ".join(singles[:5]) + (" ..." if len(singles) > 5 else ""),
        )
    lines = tuple(
        FlightLine(
            line_id=line_id,
            crs=catalog.crs,
            photos=tuple(
                line_photo(
                    rec,
                    root / rec.photo_id,
                    camera=camera,
                    method=how.get(rec.photo_id),
                    min_sigma_m=min_sigma_m,
                )
                for rec in recs
            ),
        )
        for line_id, recs in groups.items()
    )
    return CatalogLines(lines=lines, singles=tuple(singles))
