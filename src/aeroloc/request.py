"""What to search for one photo: :class:`LocateRequest` and the ways to build one.

A request names the photo, the reference rasters, the area of interest, the
heading and the photo's ground size; :func:`aeroloc.pipeline.locate_photo`
searches it. Building one reads only the catalog and the references' headers
(no model, no torch), so a command checks its inputs here before loading a
model: a bad command line is answered at once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError

from aeroloc.aoi import (
    AoI,
    AoIConfig,
    aoi_from_bounds,
    build_aoi,
    check_center_in_reference,
    check_projected,
)
from aeroloc.catalog import CatalogQuery, PhotoRecord, parse_column_map, read_catalog
from aeroloc.errors import CatalogError, InvalidInputError, RasterReadError
from aeroloc.files import finite_or_nan, open_raster, read_gray, require_photo_contrast


@dataclass(frozen=True, kw_only=True)
class LocateRequest:
    """Everything needed to search for one photo.

    Attributes:
        photo_path: the scanned photo.
        references: reference rasters (mosaic, first wins).
        aoi: the area of interest.
        azimuth_deg: heading used to rotate the AoI.
        ground_size_m: the photo's footprint side; or None with ``gsd_m``.
        gsd_m: scan pixel size on the ground, when ``ground_size_m`` is None.
        rock_mask_path: rock-outcrop polygons for the enhancement.
        photo_id: name used in reports.
    """

    photo_path: Path
    references: tuple[Path, ...]
    aoi: AoI
    azimuth_deg: float
    ground_size_m: float | None = None
    gsd_m: float | None = None
    rock_mask_path: Path | None = None
    photo_id: str = ""

    def __post_init__(self) -> None:
        if (self.ground_size_m is None) == (self.gsd_m is None):
            raise InvalidInputError("give the photo's ground size (altitude) or its GSD")
        if not math.isfinite(self.azimuth_deg):
            raise InvalidInputError(f"azimuth must be finite, got {self.azimuth_deg}")


def request_from_record(
    record: PhotoRecord,
    references: Sequence[Path],
    *,
    aoi_config: AoIConfig | None = None,
    photo_path: Path | None = None,
    rock_mask_path: Path | None = None,
) -> LocateRequest:
    """A :class:`LocateRequest` from a catalog record (AoI around its rough footprint)."""
    cfg = aoi_config or AoIConfig()
    path = photo_path or record.path
    if path is None:
        raise InvalidInputError(f"photo {record.photo_id} has no path in the catalog")
    if record.azimuth_deg is None:
        raise InvalidInputError(
            f"photo {record.photo_id} has no azimuth_deg: add the heading to the catalog"
        )
    area = build_aoi(record, cfg)
    check_center_in_reference(record, references)
    photo = check_photo(path)
    return LocateRequest(
        photo_path=photo,
        references=tuple(Path(p) for p in references),
        aoi=area,
        azimuth_deg=record.azimuth_deg,
        ground_size_m=area.ground_width_m,
        rock_mask_path=rock_mask_path,
        photo_id=record.photo_id,
    )


def reference_crs(references: Sequence[Path]) -> CRS:
    """The CRS of the first reference raster (the CRS every stage works in).

    Raises:
        MissingFileError, RasterReadError: the raster is missing or unreadable.
        CRSError: it has no CRS, or a geographic one (degrees).
    """
    if not references:
        raise InvalidInputError("no reference raster given: pass --reference REF.tif")
    with open_raster(references[0], what="reference raster", need_crs=True) as ds:
        return check_projected(ds.crs, f"reference raster {Path(references[0]).name}")


def catalog_record(query: CatalogQuery, references: Sequence[Path]) -> PhotoRecord:
    """The record ``query`` names, its camera centre in the reference CRS.

    Args:
        query: catalog file, photo id (None raises: a catalog alone names no
            photo), column map and CRS.
        references: reference rasters; the first one's CRS is the target.
    """
    target_crs = reference_crs(references)
    if query.photo_id is None:
        raise CatalogError("--catalog needs --photo-id to pick the photo")
    cat = read_catalog(
        query.path,
        columns=parse_column_map(query.columns),
        crs=query.crs,
        target_crs=target_crs,
    )
    return cat.get(query.photo_id)


def request_from_catalog(
    query: CatalogQuery,
    references: Sequence[Path],
    *,
    azimuth_deg: float | None = None,
    buffer_m: float,
    photo_path: Path | None = None,
    rock_mask_path: Path | None = None,
) -> LocateRequest:
    """A :class:`LocateRequest` for one catalog row (see :func:`catalog_record`).

    ``azimuth_deg`` overrides the catalog's heading; ``photo_path`` its photo path.
    """
    record = catalog_record(query, references)
    if azimuth_deg is not None:
        record = replace(record, azimuth_deg=azimuth_deg)
    return request_from_record(
        record,
        references,
        aoi_config=AoIConfig(buffer_m=buffer_m),
        photo_path=photo_path,
        rock_mask_path=rock_mask_path,
    )


def request_from_bounds(
    photo_path: Path,
    references: Sequence[Path],
    bounds: Sequence[float],
    *,
    gsd_m: float,
    azimuth_deg: float,
    rock_mask_path: Path | None = None,
) -> LocateRequest:
    """A :class:`LocateRequest` without a catalog: an AoI box and the photo's GSD.

    Args:
        photo_path: the scanned photo (its stem names it in reports).
        references: reference rasters; ``bounds`` are in the first one's CRS.
        bounds: ``(minx, miny, maxx, maxy)`` of the search area (m).
        gsd_m: ground size of one scan pixel (m).
        azimuth_deg: flight heading, clockwise from grid north.
        rock_mask_path: rock-outcrop polygons for the enhancement.
    """
    photo = check_photo(photo_path)
    area = aoi_from_bounds(bounds, reference_crs(references), azimuth_deg=azimuth_deg)
    _check_gsd(photo, area, gsd_m)
    return LocateRequest(
        photo_path=photo,
        references=tuple(references),
        aoi=area,
        azimuth_deg=azimuth_deg,
        gsd_m=gsd_m,
        rock_mask_path=rock_mask_path,
        photo_id=photo_path.stem,
    )


def check_photo(path: str | os.PathLike[str]) -> Path:
    """``path`` when it is a readable raster that is not one value everywhere.

    Reads a decimated view only (at most 64 x 64 pixels of the first band), and
    the whole photo only when that view looks constant, so the check is cheap.

    Raises:
        MissingFileError, InvalidInputError, RasterReadError: missing, a folder, not a raster.
        DataQualityError: every pixel has the same value (or none is valid).
    """
    p = Path(path)
    with open_raster(p, what="photo") as ds:
        shape = (min(ds.height, _PREVIEW_PX), min(ds.width, _PREVIEW_PX))
        try:
            view = ds.read(1, out_shape=shape, masked=True)
        except RasterioIOError as exc:
            raise RasterReadError(f"cannot read photo {p}: corrupt data ({exc})") from exc
    values = finite_or_nan(np.ma.filled(view.astype(np.float32), np.nan))
    if np.isfinite(values).any() and np.nanmax(values) - np.nanmin(values) >= 1e-6:
        return p
    require_photo_contrast(read_gray(p, what="photo"), p)
    return p


#: Side (px) of the decimated view :func:`check_photo` reads first.
_PREVIEW_PX = 64


#: A photo's footprint is at least this share of its scan's shorter side (the
#: fiducial frame takes the rest), so a --gsd-m that makes even this much
#: larger than the AoI cannot be right.
_MIN_IMAGE_SHARE = 0.5


def _check_gsd(photo: Path, area: AoI, gsd_m: float) -> None:
    """Refuse a GSD with which the photo alone would cover more than the AoI box."""
    if not (math.isfinite(gsd_m) and gsd_m > 0):
        raise InvalidInputError(f"--gsd-m must be a positive number, got {gsd_m}")
    with open_raster(photo, what="photo") as ds:
        side_px = min(ds.width, ds.height)
    footprint_m = gsd_m * side_px * _MIN_IMAGE_SHARE
    box_m = min(area.width_m, area.height_m)
    if footprint_m > box_m:
        raise InvalidInputError(
            f"at --gsd-m {gsd_m:g} the photo ({side_px} px on its shorter side) covers at "
            f"least {footprint_m / 1000:.3g} km, more than the --aoi box ({box_m / 1000:.3g} km): "
            "check --gsd-m (metres of ground per scan pixel) or give a larger --aoi"
        )
