"""The rows a report shows: ``results.gpkg`` when it is there, else the photo folders.

:func:`read_report_rows` reads the ``footprints`` layer of ``DIR/results.gpkg``
(:mod:`aeroloc.io.table`) into :class:`~aeroloc.io.table.FootprintRow` s.
Without the GeoPackage it builds the same rows with
:func:`aeroloc.io.table.collect_results`: for the catalog photos when they
are given, else for every sub-folder of ``DIR`` holding a ``result.json`` or
a ``failed.json`` (then flight line and frame are unknown).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rasterio.crs import CRS

from aeroloc.catalog import PhotoRecord
from aeroloc.errors import AeroLocError, InvalidInputError
from aeroloc.files import parse_crs
from aeroloc.io.failures import has_failure
from aeroloc.io.results import has_result, read_result
from aeroloc.io.table import (
    FOOTPRINT_LAYER,
    GPKG_FILE,
    FolderPhoto,
    FootprintRow,
    collect_results,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, eq=False)
class ReportRows:
    """Every photo of a results folder, in one CRS.

    Attributes:
        rows: one per photo, in table (catalog) order.
        crs: the CRS of their geometries (None when nothing says).
        source: where they came from (``results.gpkg`` or ``photo folders``).
        references: the reference rasters the photos' ``result.json`` name.
    """

    rows: tuple[FootprintRow, ...]
    crs: CRS | None
    source: str
    references: tuple[Path, ...] = ()


def read_report_rows(
    results_dir: str | os.PathLike[str],
    *,
    photos: Sequence[PhotoRecord] | None = None,
    crs: CRS | str | None = None,
) -> ReportRows:
    """The rows of ``results_dir`` (see the module docstring).

    Args:
        results_dir: a batch's output folder.
        photos: the catalog, for the fallback without ``results.gpkg``.
        crs: the table's CRS for that fallback (default: the CRS the photos'
            ``result.json`` name).

    Raises:
        InvalidInputError: ``results_dir`` is not a folder, or the GeoPackage
            has no ``footprints`` layer.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise InvalidInputError(f"results folder not found: {root}")
    references = _references(root)
    gpkg = root / GPKG_FILE
    if gpkg.is_file():
        rows, gpkg_crs = _read_gpkg(gpkg)
        return ReportRows(rows=rows, crs=gpkg_crs, source=GPKG_FILE, references=references)
    records = list(photos) if photos is not None else _photos_on_disk(root)
    table_crs = parse_crs(crs) if crs is not None else _result_crs(root)
    if table_crs is None:
        return ReportRows(rows=(), crs=None, source="photo folders", references=references)
    table = collect_results(root, records, crs=table_crs.to_wkt())
    logger.info("%s not found: %d photos read from their folders", gpkg, len(table.footprints))
    return ReportRows(
        rows=table.footprints, crs=table_crs, source="photo folders", references=references
    )


def _read_gpkg(path: Path) -> tuple[tuple[FootprintRow, ...], CRS | None]:
    import pyogrio

    try:
        frame = pyogrio.read_dataframe(path, layer=FOOTPRINT_LAYER)
    except Exception as exc:  # pyogrio raises its own DataSource/DataLayer errors
        raise InvalidInputError(f"{path} has no readable {FOOTPRINT_LAYER!r} layer: {exc}") from exc
    names = {f.name for f in fields(FootprintRow)} - {"geometry"}
    rows = []
    for rec, geom in zip(
        frame.drop(columns="geometry").to_dict("records"), frame.geometry, strict=True
    ):
        values = {k: _clean(v) for k, v in rec.items() if k in names}
        values["frame"] = None if values.get("frame") is None else int(values["frame"])
        values["n_gcps"] = int(values.get("n_gcps") or 0)
        values["reasons"] = values.get("reasons") or ""
        values["photo_id"] = str(values["photo_id"])
        if values.get("flight_line") is not None:
            values["flight_line"] = str(values["flight_line"])
        for name in ("p_correct", "error_m", "x", "y", "heatmap_s", "verify_s", "total_s"):
            if values.get(name) is None:
                values[name] = math.nan
        rows.append(
            FootprintRow(**values, geometry=None if geom is None or geom.is_empty else geom)
        )
    crs = None if frame.crs is None else CRS.from_wkt(frame.crs.to_wkt())
    return tuple(rows), crs


def _clean(value: Any) -> Any:
    """pandas' missing values (NaN in a text column, pd.NA) as None; numpy scalars as Python."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _photo_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and (has_result(p) or has_failure(p)))


def _photos_on_disk(root: Path) -> list[FolderPhoto]:
    """One photo per photo folder (id = folder name; no catalog, so no line or frame)."""
    return [FolderPhoto(photo_id=folder.name) for folder in _photo_folders(root)]


def _first_result(root: Path) -> Any:
    for folder in _photo_folders(root):
        if has_result(folder):
            try:
                return read_result(folder)
            except AeroLocError:
                continue
    return None


def _result_crs(root: Path) -> CRS | None:
    record = _first_result(root)
    return None if record is None or not record.inputs.crs else parse_crs(record.inputs.crs)


def _references(root: Path) -> tuple[Path, ...]:
    """The references of the first readable ``result.json`` (a relative path that does not
    exist from here is tried from ``root``)."""
    record = _first_result(root)
    if record is None:
        return ()
    paths = [Path(p) for p in record.inputs.references]
    return tuple(p if p.is_absolute() or p.exists() else root / p for p in paths)
