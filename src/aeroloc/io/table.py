"""``results.gpkg`` and ``results.csv``: one table of a batch, rebuilt from what is on disk.

A batch's output folder holds one folder per photo (``<photo_id>/``) with a
``result.json`` (:mod:`aeroloc.io.results`) or a ``failed.json``
(:mod:`aeroloc.io.failures`), or nothing yet. :func:`collect_results` reads
them, for every photo of the catalog, into a :class:`ResultsTable`;
:func:`write_results_table` writes it as

* ``results.gpkg``, GeoPackage 1.2 (read without a warning by GDAL ≥ 2.2,
  QGIS included), in the reference CRS, with two layers:

  - ``footprints``: one row per catalog photo (:data:`FOOTPRINT_COLUMNS`);
    the geometry is the verified footprint (status ``accepted`` or
    ``review``) or the footprint a flight line placed the photo at
    (``method = line``, status ``unverified``), **null** for every other
    photo (``rejected``, ``unverified`` without a placement, ``failed``,
    ``pending``).
  - ``gcps``: one point per ground control point of a verified photo
    (:data:`GCP_COLUMNS`), at its map position.

* ``results.csv``: the ``footprints`` table, the geometry as WKT
  (``geometry_wkt``, empty when null).

Both files are written atomically. Paths in the table are relative to the
folder that holds ``results.gpkg``.

The error estimate ``error_m`` is the *precision* of the fit, not its
accuracy: the reprojection RMSE of the verification inliers, measured in
reference (AoI) pixels (``best.rmse_px``), times the AoI pixel size
(``aoi_pixel_m``). It is NaN for a photo without a verified fit. A GCP's
``residual_m`` is its fit residual in photo pixels (from ``gcps.points``)
times the ground size of a photo pixel at that point (from the fitted
transform); GCPs laid on a grid through the transform (``gcp_source`` =
``grid``) have residual 0 by construction.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from aeroloc.catalog import PhotoRecord
from aeroloc.errors import AeroLocError, InvalidInputError
from aeroloc.files import atomic_output, parse_crs
from aeroloc.georef import FOOTPRINT_FILE, POINTS_FILE
from aeroloc.io.failures import has_failure, read_failure
from aeroloc.io.results import METHODS as METHODS  # how a photo was placed (re-exported)
from aeroloc.io.results import RESULT_FILE, LocateRecord, has_result, read_result

GPKG_FILE = "results.gpkg"
CSV_FILE = "results.csv"
FOOTPRINT_LAYER = "footprints"
GCP_LAYER = "gcps"
#: GeoPackage version written: GDAL 3.6 (and every GDAL from 2.2) reads it without a warning.
GPKG_VERSION = "1.2"
#: Status of a catalog photo with neither result.json nor failed.json.
PENDING = "pending"
FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class FootprintRow:
    """One photo of the ``footprints`` layer.

    Attributes:
        photo_id, flight_line, frame: from the catalog (line and frame null when unknown).
        status: ``accepted``, ``review``, ``rejected``, ``unverified``,
            ``failed`` or ``pending``.
        method: how the position was found (:data:`METHODS`, read from
            ``result.json``; a file without it is ``search``); null for a
            failed or pending photo.
        sigma_m: 1-σ position uncertainty (m) of a flight-line placement
            (``neighbour``: the chain; ``line``: the solve); NaN otherwise.
        full_search: 1 when a search over the full AoI ran for the photo, 0
            when the flight line placed it without one; null for a failed or
            pending photo.
        p_correct: calibrated probability that the fit is right (NaN: none).
        error_m: fit precision in metres (see the module docstring; NaN: no fit).
        n_gcps: ground control points written (0: none).
        gcp_source: ``tie points`` or ``grid`` (null: no GCPs).
        x, y: located photo centre (map CRS; NaN unless accepted or review).
        rank: rank of the chosen (or top) candidate (null: none).
        windows_tried: candidates verification tried (null: not verified).
        heatmap_s, verify_s, total_s: seconds (NaN when not run; a failed
            photo has ``total_s`` = the time until it failed).
        reasons: why this status, ``"; "``-joined (a failed photo: its error).
        folder: the photo's output folder.
        result_file, footprint_file, gcps_file, heatmap_png: its files (null when absent).
        geometry: verified footprint polygon, or None.
    """

    photo_id: str
    flight_line: str | None
    frame: int | None
    status: str
    method: str | None = None
    sigma_m: float = math.nan
    full_search: int | None = None
    p_correct: float = math.nan
    error_m: float = math.nan
    n_gcps: int = 0
    gcp_source: str | None = None
    x: float = math.nan
    y: float = math.nan
    rank: int | None = None
    windows_tried: int | None = None
    heatmap_s: float = math.nan
    verify_s: float = math.nan
    total_s: float = math.nan
    reasons: str = ""
    folder: str = ""
    result_file: str | None = None
    footprint_file: str | None = None
    gcps_file: str | None = None
    heatmap_png: str | None = None
    geometry: BaseGeometry | None = None


@dataclass(frozen=True, kw_only=True)
class GcpRow:
    """One ground control point of the ``gcps`` layer.

    Attributes:
        photo_id, status: the photo and its status.
        gcp: 1-based number within the photo.
        col, row: photo scan pixel (origin at the top-left pixel corner).
        map_x, map_y: map position (the layer's CRS).
        residual_px: fit residual in photo pixels.
        residual_m: the same in metres on the ground.
        gcp_source: ``tie points`` or ``grid``.
    """

    photo_id: str
    status: str
    gcp: int
    col: float
    row: float
    map_x: float
    map_y: float
    residual_px: float
    residual_m: float
    gcp_source: str


#: Columns of the ``footprints`` layer and of ``results.csv``, in order (the geometry apart).
FOOTPRINT_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in fields(FootprintRow) if f.name != "geometry"
)
#: Columns of the ``gcps`` layer, in order (the point geometry apart).
GCP_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(GcpRow))


@dataclass(frozen=True, kw_only=True)
class ResultsTable:
    """Every photo of a batch and every GCP, in one CRS."""

    footprints: tuple[FootprintRow, ...]
    gcps: tuple[GcpRow, ...]
    crs: str

    def counts(self) -> dict[str, int]:
        """Photos per status, in a fixed order (statuses without photos left out)."""
        order = ("accepted", "review", "rejected", "unverified", FAILED, PENDING)
        found = [r.status for r in self.footprints]
        return {s: found.count(s) for s in order if s in found}


@dataclass(frozen=True, kw_only=True)
class TablePaths:
    """The files :func:`write_results_table` wrote."""

    gpkg: Path
    csv: Path


class TablePhoto(Protocol):
    """What a table row needs of a photo: a catalog :class:`PhotoRecord` has it."""

    @property
    def photo_id(self) -> str: ...

    @property
    def flight_line(self) -> str | None: ...

    @property
    def frame(self) -> int | None: ...


@dataclass(frozen=True, kw_only=True)
class FolderPhoto:
    """A photo known only by its folder (no catalog at hand): no line, no frame."""

    photo_id: str
    flight_line: str | None = None
    frame: int | None = None


def collect_results(
    results_dir: str | os.PathLike[str], photos: Sequence[TablePhoto], *, crs: str
) -> ResultsTable:
    """The table of ``results_dir/<photo_id>/`` for every photo of ``photos``, from disk.

    Args:
        results_dir: the batch's output folder.
        photos: the catalog photos, in the order the rows should follow.
        crs: the reference CRS (the layers' CRS).
    """
    root = Path(results_dir)
    rows: list[FootprintRow] = []
    gcps: list[GcpRow] = []
    for rec in photos:
        row, points = _photo(root, rec)
        rows.append(row)
        gcps.extend(points)
    return ResultsTable(footprints=tuple(rows), gcps=tuple(gcps), crs=parse_crs(crs).to_wkt())


def _photo(root: Path, rec: TablePhoto) -> tuple[FootprintRow, list[GcpRow]]:
    folder = root / rec.photo_id
    base: dict[str, Any] = {
        "photo_id": rec.photo_id,
        "flight_line": rec.flight_line or None,
        "frame": rec.frame,
        "folder": rec.photo_id,
    }
    if has_result(folder):
        try:
            record = read_result(folder)
        except AeroLocError as exc:
            return FootprintRow(**base, status=FAILED, reasons=f"unreadable result: {exc}"), []
        return _located(root, folder, record, base)
    if has_failure(folder):
        try:
            failure = read_failure(folder)
            reason, seconds = failure.reason, failure.seconds
        except InvalidInputError as exc:
            reason, seconds = str(exc), math.nan
        return FootprintRow(**base, status=FAILED, reasons=reason, total_s=seconds), []
    return FootprintRow(**base, status=PENDING), []


def _located(
    root: Path, folder: Path, record: LocateRecord, base: dict[str, Any]
) -> tuple[FootprintRow, list[GcpRow]]:
    best = record.best
    t = record.timings_s
    verified = best.verified and best.footprint is not None
    line_placed = record.method == "line" and best.footprint is not None
    placement = record.placement

    def rel(name: str | None) -> str | None:
        if not name or not (folder / name).is_file():
            return None
        return (folder / name).relative_to(root).as_posix()

    files = dict(best.files)
    points = _gcp_rows(folder, record) if verified else []
    error_m = math.nan
    if verified and best.rmse_px is not None and record.aoi_pixel_m is not None:
        error_m = float(best.rmse_px) * float(record.aoi_pixel_m)
    row = FootprintRow(
        **base,
        status=best.status,
        method=record.method,
        sigma_m=_float(None if placement is None else placement.sigma_m),
        full_search=1 if placement is None or placement.full_search else 0,
        p_correct=_float(best.p_correct),
        error_m=error_m,
        n_gcps=len(points) if points else int(best.n_gcps or 0),
        gcp_source=best.gcp_source if verified else None,
        x=_float(best.x) if verified or line_placed else math.nan,
        y=_float(best.y) if verified or line_placed else math.nan,
        rank=best.rank,
        windows_tried=None if record.verification is None else record.verification.windows_tried,
        heatmap_s=_float(t.get("heatmap")),
        verify_s=_float(t.get("verify")),
        total_s=_float(t.get("total")),
        reasons="; ".join(best.reasons),
        result_file=rel(RESULT_FILE),
        footprint_file=(
            rel(files.get("footprint", FOOTPRINT_FILE)) if verified or line_placed else None
        ),
        gcps_file=rel(files.get("gcps", POINTS_FILE)) if verified else None,
        heatmap_png=rel("heatmap.png"),
        geometry=(
            shape(dict(best.footprint)) if (verified or line_placed) and best.footprint else None
        ),
    )
    return row, points


def _gcp_rows(folder: Path, record: LocateRecord) -> list[GcpRow]:
    """The GCPs of a verified photo from its ``gcps.points``, residuals in metres."""
    from aeroloc.georef.outputs import read_points
    from aeroloc.georef.transform import PhotoTransform

    best = record.best
    name = best.files.get("gcps", POINTS_FILE)
    if best.transform is None or not (folder / name).is_file():
        return []
    points = read_points(folder / name)
    transform = PhotoTransform.from_json(best.transform)
    rows = []
    for i, ((col, row), (x, y), (dx, dy)) in enumerate(
        zip(points.pixel_xy, points.map_xy, points.residual_px, strict=True), 1
    ):
        res_px = math.hypot(float(dx), float(dy))
        rows.append(
            GcpRow(
                photo_id=record.photo_id,
                status=best.status,
                gcp=i,
                col=float(col),
                row=float(row),
                map_x=float(x),
                map_y=float(y),
                residual_px=res_px,
                residual_m=res_px * transform.pixel_size_m(float(col), float(row)),
                gcp_source=best.gcp_source or "",
            )
        )
    return rows


def _float(v: float | None) -> float:
    return math.nan if v is None else float(v)


def write_results_table(table: ResultsTable, results_dir: str | os.PathLike[str]) -> TablePaths:
    """Write ``results.gpkg`` (two layers) and ``results.csv`` into ``results_dir``, atomically."""
    import pandas as pd
    import pyogrio

    root = Path(results_dir)
    footprints = _frame(
        [{c: getattr(r, c) for c in FOOTPRINT_COLUMNS} for r in table.footprints],
        FOOTPRINT_COLUMNS,
        [r.geometry for r in table.footprints],
        table.crs,
    )
    gcps = _frame(
        [{c: getattr(r, c) for c in GCP_COLUMNS} for r in table.gcps],
        GCP_COLUMNS,
        [Point(r.map_x, r.map_y) for r in table.gcps],
        table.crs,
    )
    gpkg = root / GPKG_FILE
    with atomic_output(gpkg) as tmp:
        pyogrio.write_dataframe(
            footprints,
            tmp,
            layer=FOOTPRINT_LAYER,
            driver="GPKG",
            geometry_type="Polygon",
            dataset_options={"VERSION": GPKG_VERSION},
        )
        pyogrio.write_dataframe(
            gcps, tmp, layer=GCP_LAYER, driver="GPKG", geometry_type="Point", append=True
        )
    csv = root / CSV_FILE
    text = pd.DataFrame(footprints.drop(columns="geometry")).assign(
        geometry_wkt=[("" if g is None else g.wkt) for g in (r.geometry for r in table.footprints)]
    )
    with atomic_output(csv) as tmp:
        text.to_csv(tmp, index=False)
    return TablePaths(gpkg=gpkg, csv=csv)


def _frame(
    records: list[dict[str, Any]],
    columns: Sequence[str],
    geometry: list[BaseGeometry | None],
    crs: str,
) -> Any:
    """A GeoDataFrame with ``columns`` in order; integer columns that may be null as Int64."""
    import geopandas as gpd
    import pandas as pd

    frame = pd.DataFrame.from_records(records, columns=list(columns))
    for name in ("frame", "rank", "windows_tried", "gcp", "n_gcps", "full_search"):
        if name in frame.columns:
            frame[name] = frame[name].astype("Int64")
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs=crs), crs=crs)


def build_results_table(
    results_dir: str | os.PathLike[str], photos: Sequence[PhotoRecord], *, crs: str
) -> tuple[ResultsTable, TablePaths]:
    """:func:`collect_results` then :func:`write_results_table`: the table as it is on disk now."""
    table = collect_results(results_dir, photos, crs=crs)
    return table, write_results_table(table, results_dir)
