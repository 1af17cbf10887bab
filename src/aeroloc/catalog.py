"""Photo catalogs: one :class:`PhotoRecord` per photo, read from CSV, GeoPackage or shapefile.

A catalog lists, per photo, its id, the scanned file, flight line and frame,
the approximate camera centre, altitude, focal length, flight heading and view.
Column names are mappable (``--columns photo_id=ENTITY_ID,x=LON``). Camera
centres are reprojected to the reference CRS (EPSG:3031 by default):

* CSV: ``lon``/``lat`` columns are WGS84 degrees; ``x``/``y`` columns are in
  ``crs`` (default: already in the target CRS). ``x``/``y`` values that look
  like degrees without an explicit ``crs`` are refused, since silently treating
  degrees as metres would put every photo near the projection origin.
* GeoPackage / shapefile: point geometry in the layer CRS (``crs`` only fills
  in for a layer without one), or the same columns as a CSV when the layer has
  no point geometry or ``columns`` maps x/y or lon/lat explicitly.

Every validation error names the row (1-based, header not counted), the photo
id when known, and the column.
"""

from __future__ import annotations

import difflib
import math
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Transformer
from rasterio.crs import CRS

from aeroloc.errors import CatalogError, ConfigError, InvalidInputError
from aeroloc.files import parse_crs, require_file
from aeroloc.geometry import MAX_ALTITUDE_M as MAX_ALT
from aeroloc.geometry import Camera, check_altitude

#: Fields of a catalog row, as names for ``--columns TARGET=COLUMN``.
FIELDS: tuple[str, ...] = (
    "photo_id",
    "path",
    "flight_line",
    "frame",
    "x",
    "y",
    "lon",
    "lat",
    "altitude_m",
    "focal_length_mm",
    "azimuth_deg",
    "view",
)

#: Accepted spellings of the ``view`` column (case-insensitive).
VIEWS: dict[str, str] = {
    "nadir": "nadir",
    "n": "nadir",
    "v": "nadir",
    "vertical": "nadir",
    "left": "left",
    "l": "left",
    "right": "right",
    "r": "right",
}

# Column names recognised without a mapping, besides the field name itself
# (shapefiles truncate field names to 10 characters).
_ALIASES: dict[str, tuple[str, ...]] = {
    "lon": ("longitude", "long"),
    "lat": ("latitude",),
    "flight_line": ("flight_lin",),
    "focal_length_mm": ("focal_leng",),
    "azimuth_deg": ("azimuth_de",),
}

_VECTOR_SUFFIXES = {".gpkg", ".shp"}
_CSV_SUFFIXES = {".csv", ".txt"}
_WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True, kw_only=True)
class PhotoRecord:
    """One photo of a catalog.

    Attributes:
        photo_id: unique id (e.g. the USGS entity id).
        path: scanned photo file, resolved against the catalog's folder; None if not given.
        flight_line: flight line id, or None.
        frame: frame number along the line, or None.
        x: approximate camera centre easting, in ``crs`` (m).
        y: approximate camera centre northing, in ``crs`` (m).
        crs: CRS of ``x``/``y`` (the reference CRS).
        altitude_m: flying height above ground (m), or None.
        focal_length_mm: lens focal length (mm), or None to use the camera default.
        azimuth_deg: flight heading clockwise from grid north, in [0, 360), or None.
        view: "nadir", "left" or "right".
    """

    photo_id: str
    path: Path | None = None
    flight_line: str | None = None
    frame: int | None = None
    x: float
    y: float
    crs: CRS
    altitude_m: float | None = None
    focal_length_mm: float | None = None
    azimuth_deg: float | None = None
    view: str = "nadir"

    def __post_init__(self) -> None:
        if not self.photo_id:
            raise InvalidInputError("photo_id must not be empty")
        if not (math.isfinite(self.x) and math.isfinite(self.y)):
            raise InvalidInputError(
                f"photo {self.photo_id}: camera centre ({self.x}, {self.y}) is not finite"
            )
        if self.view not in ("nadir", "left", "right"):
            raise InvalidInputError(
                f"photo {self.photo_id}: view must be nadir, left or right, got {self.view!r}"
            )
        if self.altitude_m is not None:
            check_altitude(self.altitude_m)
        if self.azimuth_deg is not None and not math.isfinite(self.azimuth_deg):
            raise InvalidInputError(f"photo {self.photo_id}: azimuth_deg must be finite")

    def camera(self, default: Camera | None = None) -> Camera:
        """The camera of this photo: ``default`` (TMA) with this photo's focal length if known."""
        base = default if default is not None else Camera()
        if self.focal_length_mm is None:
            return base
        return Camera(
            focal_length_mm=self.focal_length_mm,
            film_width_mm=base.film_width_mm,
            film_height_mm=base.film_height_mm,
        )


@dataclass(frozen=True, kw_only=True)
class Catalog:
    """The photos of one catalog file, in file order, all in one CRS."""

    records: tuple[PhotoRecord, ...]
    crs: CRS
    source: Path | None = None
    _index: dict[str, PhotoRecord] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, PhotoRecord] = {}
        for rec in self.records:
            if rec.photo_id in index:
                raise CatalogError(f"duplicate photo_id {rec.photo_id!r}")
            index[rec.photo_id] = rec
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[PhotoRecord]:
        return iter(self.records)

    def __contains__(self, photo_id: object) -> bool:
        return photo_id in self._index

    @property
    def photo_ids(self) -> tuple[str, ...]:
        """Photo ids in file order."""
        return tuple(r.photo_id for r in self.records)

    def get(self, photo_id: str) -> PhotoRecord:
        """The record of ``photo_id``, or :class:`CatalogError` naming close or known ids."""
        rec = self._index.get(str(photo_id))
        if rec is not None:
            return rec
        where = f" in {self.source}" if self.source else ""
        close = difflib.get_close_matches(str(photo_id), list(self._index), n=3)
        hint = close or list(self._index)[:3]
        label = "did you mean" if close else "e.g."
        raise CatalogError(
            f"photo {photo_id!r} is not in the catalog{where} ({len(self)} photos; "
            f"{label} {', '.join(hint)})"
        )


@dataclass(frozen=True, kw_only=True)
class CatalogQuery:
    """One photo of a catalog file, and how to read the file.

    Attributes:
        path: CSV, GeoPackage or shapefile.
        photo_id: the row to pick (None names no photo: using it raises).
        columns: ``FIELD=COL,...`` column map (see :func:`parse_column_map`).
        crs: CRS of the catalog's x/y (default: the layer's, WGS84 for lon/lat).
    """

    path: Path
    photo_id: str | None
    columns: str | None = None
    crs: str | None = None


def parse_column_map(text: str | None) -> dict[str, str]:
    """Parse ``"photo_id=ENTITY_ID,x=LON"`` into ``{"photo_id": "ENTITY_ID", "x": "LON"}``.

    Raises:
        ConfigError: an item is not ``FIELD=COLUMN``, a field is unknown or repeated.
    """
    result: dict[str, str] = {}
    if text is None or not text.strip():
        return result
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        target, sep, source = item.partition("=")
        target, source = target.strip(), source.strip()
        if not sep or not target or not source:
            raise ConfigError(f"column mapping {item!r}: expected FIELD=COLUMN, e.g. x=LON")
        _check_field(target)
        if target in result:
            raise ConfigError(f"column mapping names field {target!r} twice")
        result[target] = source
    return result


def _check_field(name: str) -> None:
    if name not in FIELDS:
        raise ConfigError(f"unknown catalog field {name!r}: valid fields are {', '.join(FIELDS)}")


def read_catalog(
    path: str | os.PathLike[str],
    *,
    columns: Mapping[str, str] | None = None,
    crs: str | int | CRS | None = None,
    target_crs: str | int | CRS = "EPSG:3031",
    layer: str | None = None,
) -> Catalog:
    """Read a photo catalog and reproject camera centres to ``target_crs``.

    Args:
        path: ``.csv``, ``.gpkg`` or ``.shp`` file.
        columns: field → column name in the file (see :data:`FIELDS`); unmapped
            fields use a column of the field's own name (case-insensitive).
        crs: CRS of the ``x``/``y`` (or ``lon``/``lat``) values or of a vector
            layer without CRS. Default: a layer's own CRS; WGS84 for lon/lat;
            ``target_crs`` for x/y.
        target_crs: the reference CRS the records are returned in.
        layer: layer of a multi-layer GeoPackage (default: the first).

    Raises:
        MissingFileError: ``path`` does not exist.
        CatalogError: unreadable file, missing column, bad value, duplicate id.
        ConfigError: unknown field in ``columns``.
        CRSError: unknown CRS string.
    """
    p = require_file(path, "photo catalog")
    mapping = dict(columns or {})
    for target in mapping:
        _check_field(target)
    src_crs = parse_crs(crs) if crs is not None else None
    dst_crs = parse_crs(target_crs)

    suffix = p.suffix.lower()
    geometry_xy: tuple[np.ndarray, np.ndarray] | None = None
    layer_crs: CRS | None = None
    if suffix in _CSV_SUFFIXES:
        table = _read_csv(p)
    elif suffix in _VECTOR_SUFFIXES:
        table, geometry_xy, layer_crs = _read_vector(p, layer)
    else:
        raise CatalogError(f"catalog {p}: unsupported format {p.suffix!r}: use .csv, .gpkg or .shp")
    if len(table) == 0:
        raise CatalogError(f"catalog {p} has no rows")

    resolved = _resolve_columns(table, mapping, p)
    if "photo_id" not in resolved:
        raise _missing("photo_id", table, p)

    has_xy = "x" in resolved and "y" in resolved
    has_lonlat = "lon" in resolved and "lat" in resolved
    mapped_coords = bool({"x", "y", "lon", "lat"} & set(mapping))
    if geometry_xy is not None and not mapped_coords:
        coord_kind = "geometry"
        coord_crs = layer_crs or src_crs
    elif has_xy and (src_crs is not None or not has_lonlat):
        coord_kind = "xy"
        coord_crs = src_crs or layer_crs
    elif has_lonlat:
        coord_kind = "lonlat"
        coord_crs = src_crs or _WGS84
    else:
        need = "x" if "x" not in resolved else "y"
        raise CatalogError(
            f"catalog {p} has no camera-centre column {need!r} (nor lon/lat): "
            f"columns are {_list_columns(table)}; map one with --columns {need}=COLUMN"
        )

    cols = _Columns(table, resolved)
    if coord_kind == "geometry" and geometry_xy is not None:
        xs, ys = geometry_xy
    else:
        kx, ky = ("x", "y") if coord_kind == "xy" else ("lon", "lat")
        xs, ys = cols.number(kx, required=True), cols.number(ky, required=True)

    if coord_crs is None:
        if _looks_like_degrees(xs, ys):
            raise CatalogError(
                f"catalog {p}: x/y values look like degrees (e.g. {xs[0]:g}, {ys[0]:g}) "
                "but no CRS was given: pass --crs EPSG:4326 or name the columns lon/lat"
            )
        coord_crs = dst_crs
    if coord_kind == "lonlat" and coord_crs.is_geographic:
        cols.check_range("lat", ys, -90.0, 90.0, "is not a latitude")
        cols.check_range("lon", xs, -360.0, 360.0, "is not a longitude")

    tx, ty = _reproject(xs, ys, coord_crs, dst_crs)
    failed = np.flatnonzero(~(np.isfinite(tx) & np.isfinite(ty)))
    if failed.size:
        i = int(failed[0])
        raise CatalogError(
            f"{cols.where(i)}: camera centre ({xs[i]:g}, {ys[i]:g}) in {_crs_name(coord_crs)} "
            f"cannot be transformed to {_crs_name(dst_crs)}"
        )

    altitude = cols.number("altitude_m")
    implausible = np.flatnonzero(~np.isnan(altitude) & ((altitude <= 0) | (altitude > MAX_ALT)))
    if implausible.size:
        i = int(implausible[0])
        try:
            check_altitude(float(altitude[i]))
        except InvalidInputError as exc:
            raise cols.error(i, "altitude_m", str(exc)) from None
    focal = cols.number("focal_length_mm")
    cols.check_range("focal_length_mm", focal, 1.0, 2000.0, "mm is outside 1..2000 mm")
    azimuth = cols.number("azimuth_deg") % 360.0
    frames = cols.integer("frame")
    views = cols.view()
    base = str(p.parent.resolve())
    # normpath, not resolve(): one syscall per row is slow on 330,000-photo archives.
    paths = [
        None if t is None else Path(os.path.normpath(os.path.join(base, t)))
        for t in cols.text("path")
    ]
    lines = cols.text("flight_line")

    records = []
    seen: dict[str, int] = {}
    for i, pid in enumerate(cols.ids):
        if pid in seen:
            raise CatalogError(f"row {i + 1}: column photo_id: {pid!r} duplicates row {seen[pid]}")
        seen[pid] = i + 1
        records.append(
            PhotoRecord(
                photo_id=pid,
                path=paths[i],
                flight_line=lines[i],
                frame=frames[i],
                x=float(tx[i]),
                y=float(ty[i]),
                crs=dst_crs,
                altitude_m=_opt(altitude[i]),
                focal_length_mm=_opt(focal[i]),
                azimuth_deg=_opt(azimuth[i]),
                view=views[i],
            )
        )
    return Catalog(records=tuple(records), crs=dst_crs, source=p)


def _opt(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _read_csv(p: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(
            p, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig"
        )
    except UnicodeDecodeError as exc:
        raise CatalogError(
            f"catalog {p} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}): save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CatalogError(f"cannot read catalog {p} as CSV: {reason}") from exc
    table.columns = [str(c).strip() for c in table.columns]
    return table


#: The first 16 bytes of every SQLite database (and so of every GeoPackage).
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _geopackage_problem(p: Path) -> str | None:
    """Why GDAL could not open ``p`` as a GeoPackage, in words (None: not known)."""
    import sqlite3

    try:
        with p.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError:
        return None
    if head != _SQLITE_MAGIC:
        return "not a GeoPackage (not an SQLite file): give a GeoPackage, shapefile or CSV"
    try:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            if "gpkg_contents" not in tables:
                return (
                    "an SQLite file but not a GeoPackage (no gpkg_contents table): "
                    "give a GeoPackage, shapefile or CSV"
                )
            n = con.execute("SELECT count(*) FROM gpkg_contents").fetchone()[0]
        finally:
            con.close()
    except (sqlite3.Error, UnicodeDecodeError):  # a damaged file: GDAL's reason stands
        return None
    if n == 0:
        return "a GeoPackage without layers: add a layer with one row per photo"
    return None


def _read_vector(
    p: Path, layer: str | None
) -> tuple[pd.DataFrame, tuple[np.ndarray, np.ndarray] | None, CRS | None]:
    import pyogrio
    from pyogrio.errors import DataLayerError, DataSourceError

    try:
        with warnings.catch_warnings():
            # pyogrio warns when a GeoPackage has several layers and none was named.
            warnings.simplefilter("ignore", UserWarning)
            gdf = pyogrio.read_dataframe(p, layer=layer)
    except (DataSourceError, DataLayerError, ValueError) as exc:
        problem = _geopackage_problem(p) if p.suffix.lower() == ".gpkg" else None
        if problem is not None:
            raise CatalogError(f"cannot read catalog {p}: {problem}") from None
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CatalogError(f"cannot read catalog {p}: {reason}") from exc
    layer_crs = CRS.from_user_input(gdf.crs) if getattr(gdf, "crs", None) is not None else None
    geometry_xy = None
    geom = getattr(gdf, "geometry", None) if "geometry" in gdf.columns else None
    if geom is not None and len(gdf) and geom.notna().all():
        types = set(geom.geom_type)
        if types == {"Point"}:
            geometry_xy = (geom.x.to_numpy(dtype=float), geom.y.to_numpy(dtype=float))
    table = pd.DataFrame(gdf.drop(columns="geometry", errors="ignore"))
    if geometry_xy is None and geom is not None and len(gdf):
        names = {c.lower() for c in table.columns}
        if not ({"x", "y"} <= names or {"lon", "lat"} <= names):
            types_text = ", ".join(sorted(set(geom.dropna().geom_type))) or "empty"
            raise CatalogError(
                f"catalog {p}: geometry is {types_text}, expected points "
                "(or x/y or lon/lat columns)"
            )
    return table, geometry_xy, layer_crs


def _resolve_columns(table: pd.DataFrame, mapping: Mapping[str, str], p: Path) -> dict[str, str]:
    """Field → actual column name in ``table`` for every field present."""
    by_lower = {str(c).lower(): str(c) for c in table.columns}
    resolved: dict[str, str] = {}
    for target in FIELDS:
        if target in mapping:
            source = mapping[target]
            if source in table.columns:
                resolved[target] = source
            elif source.lower() in by_lower:
                resolved[target] = by_lower[source.lower()]
            else:
                raise CatalogError(
                    f"column mapping {target}={source}: catalog {p} has no column {source!r}; "
                    f"columns are {_list_columns(table)}"
                )
            continue
        for name in (target, *_ALIASES.get(target, ())):
            if name in by_lower:
                resolved[target] = by_lower[name]
                break
    return resolved


def _missing(name: str, table: pd.DataFrame, p: Path) -> CatalogError:
    return CatalogError(
        f"catalog {p} has no required column {name!r}: columns are {_list_columns(table)}; "
        f"map one with --columns {name}=COLUMN"
    )


def _list_columns(table: pd.DataFrame) -> str:
    cols = [str(c) for c in table.columns]
    return ", ".join(cols) if cols else "(none)"


class _Columns:
    """Typed, validated columns of a catalog table; errors name the row, photo id and column."""

    def __init__(self, table: pd.DataFrame, resolved: Mapping[str, str]):
        self.table = table
        self.resolved = resolved
        self.n = len(table)
        self.ids: list[str] = []  # filled first, so that later errors can name the photo
        ids = self.text("photo_id")
        for i, pid in enumerate(ids):
            if pid is None:
                raise CatalogError(
                    f"row {i + 1}: column {self.label('photo_id')}: photo id is empty"
                )
        self.ids = [pid for pid in ids if pid is not None]

    def label(self, name: str) -> str:
        source = self.resolved.get(name, name)
        return name if source == name else f"{name} ({source})"

    def where(self, i: int) -> str:
        return f"row {i + 1}" + (f" (photo_id {self.ids[i]})" if i < len(self.ids) else "")

    def error(self, i: int, name: str, message: str) -> CatalogError:
        return CatalogError(f"{self.where(i)}: column {self.label(name)}: {message}")

    def _strings(self, name: str) -> pd.Series:
        """The column as stripped strings, NA for empty cells."""
        series = self.table[self.resolved[name]]
        if pd.api.types.is_float_dtype(series.dtype):
            # A vector layer may store ids or line numbers as floats: 12.0 -> "12".
            series = pd.Series(
                [int(v) if v == v and float(v).is_integer() else v for v in series.tolist()],
                dtype=object,
            )
        strings = series.astype("string").str.strip()
        return strings.mask(strings == "")

    def text(self, name: str) -> list[str | None]:
        """Stripped strings; None for absent columns and empty cells."""
        if name not in self.resolved:
            return [None] * self.n
        strings = self._strings(name)
        return strings.astype(object).where(strings.notna(), None).tolist()

    def number(self, name: str, *, required: bool = False) -> np.ndarray:
        """``[N]`` float64; NaN for empty cells (an error if ``required``)."""
        if name not in self.resolved:
            return np.full(self.n, np.nan)
        series = self.table[self.resolved[name]]
        strings: pd.Series | None = None
        if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
            series.dtype
        ):
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            empty = np.isnan(values)
            bad = np.isinf(values)
        else:
            strings = self._strings(name)
            empty = strings.isna().to_numpy()
            values = pd.to_numeric(strings, errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
            bad = ~empty & ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            shown = strings.iloc[i] if strings is not None else str(values[i])
            raise self.error(i, name, f"{shown!r} is not a number")
        if required and empty.any():
            raise self.error(int(np.flatnonzero(empty)[0]), name, "value is empty")
        return values

    def integer(self, name: str) -> list[int | None]:
        values = self.number(name)
        fractional = np.flatnonzero(~np.isnan(values) & (values != np.round(values)))
        if fractional.size:
            i = int(fractional[0])
            raise self.error(i, name, f"{values[i]:g} is not a whole number")
        return [None if math.isnan(v) else int(v) for v in values.tolist()]

    def check_range(self, name: str, values: np.ndarray, lo: float, hi: float, what: str) -> None:
        outside = np.flatnonzero(~np.isnan(values) & ((values < lo) | (values > hi)))
        if outside.size:
            i = int(outside[0])
            raise self.error(i, name, f"{values[i]:g} {what}")

    def view(self) -> list[str]:
        out = []
        for i, t in enumerate(self.text("view")):
            if t is None:
                out.append("nadir")
            elif t.lower() in VIEWS:
                out.append(VIEWS[t.lower()])
            else:
                raise self.error(i, "view", f"{t!r} is not one of nadir, left, right")
        return out


def _looks_like_degrees(xs: np.ndarray, ys: np.ndarray) -> bool:
    return bool(np.all(np.abs(xs) <= 180.0) and np.all(np.abs(ys) <= 90.0))


def _reproject(xs: np.ndarray, ys: np.ndarray, src: CRS, dst: CRS) -> tuple[np.ndarray, np.ndarray]:
    if src == dst:
        return xs, ys
    transformer = Transformer.from_crs(src.to_wkt(), dst.to_wkt(), always_xy=True)
    tx, ty = transformer.transform(xs, ys, errcheck=False)
    return np.asarray(tx, dtype=np.float64), np.asarray(ty, dtype=np.float64)


def _crs_name(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()
