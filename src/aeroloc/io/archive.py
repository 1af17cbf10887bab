"""The archive contract: the files of a photo archive and its ``truth.json``.

An archive is a folder (``aeroloc synth`` writes one; a real archive with
ground truth can follow the same layout)::

    catalog.gpkg | catalog.csv   noisy metadata (what locate reads)
    reference.tif                reference raster (name from truth.json "reference")
    rock_outcrop.gpkg            rock polygons, optional (truth.json "rock_outcrop")
    truth_epoch.tif              synthetic only: the historical epoch, same grid
    truth.json                   {"crs", "seed"?, "preset"?, "test_only"?, "photos":
                                 [{"photo_id", "center_x", "center_y", "footprint"?,
                                 "pixel_to_map"?, ...}]}
    truth.gpkg                   synthetic only: the true footprints
    photos/<photo_id>.tif        the scans (catalog ``path``, relative to the archive)

This module is the one place that knows these names: the generator writes
through :func:`write_truth` and the file-name constants, and everything that
reads an archive (the demo, evaluation, the benches, training) calls
:func:`read_archive` or :func:`read_truth`.

An archive whose ``truth.json`` says ``"test_only": true`` (the benchmark of
real rasters, ``bench/real``) is for measuring only: whatever trains a model,
tunes a threshold or calibrates ``p_correct`` calls :func:`refuse_test_only`
on it and stops.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aeroloc.catalog import Catalog, PhotoRecord, read_catalog
from aeroloc.errors import InvalidInputError, MissingFileError
from aeroloc.files import require_file, write_json

CATALOG_FILE = "catalog.gpkg"
CATALOG_CSV_FILE = "catalog.csv"
REFERENCE_FILE = "reference.tif"
TRUTH_EPOCH_FILE = "truth_epoch.tif"
ROCK_MASK_FILE = "rock_outcrop.gpkg"
TRUTH_FILE = "truth.json"
TRUTH_GPKG_FILE = "truth.gpkg"
PHOTO_DIR = "photos"
#: CRS of an archive whose truth file names none.
DEFAULT_CRS = "EPSG:3031"


def photo_file(photo_id: str) -> str:
    """Where the generator writes a photo's scan, relative to the archive root."""
    return f"{PHOTO_DIR}/{photo_id}.tif"


@dataclass(frozen=True, kw_only=True)
class TruthRecord:
    """The true pose of one photo, as ``truth.json`` lists it.

    Only ``photo_id``, ``center_x`` and ``center_y`` are required; a synthetic
    archive fills every field.

    Attributes:
        photo_id: catalog id.
        center_x, center_y: true camera centre (map CRS, metres).
        flight_line: flight line id ("" when unknown).
        path: scan path relative to the archive.
        frame: frame number along the line.
        altitude_m, azimuth_deg, gsd_m: true altitude, heading and scan pixel size.
        image_box_px: image area of the scan ``(col0, row0, col1, row1)``.
        scan_size_px: scan ``(width, height)``.
        pixel_to_map: scan pixel → map affine, six numbers ``(a, b, c, d, e, f)``.
        footprint: true footprint corners ``((x, y), ...)`` in the map CRS.
        film: the synthetic film look (free-form).
    """

    photo_id: str
    center_x: float
    center_y: float
    flight_line: str = ""
    path: str | None = None
    frame: int | None = None
    altitude_m: float | None = None
    azimuth_deg: float | None = None
    gsd_m: float | None = None
    image_box_px: tuple[int, ...] | None = None
    scan_size_px: tuple[int, ...] | None = None
    pixel_to_map: tuple[float, ...] | None = None
    footprint: tuple[tuple[float, float], ...] | None = None
    film: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TruthRecord:
        """One entry of ``truth.json``'s ``photos`` (raises KeyError/TypeError/ValueError)."""

        def opt(key: str, kind: Any) -> Any:
            v = data.get(key)
            return None if v is None else kind(v)

        footprint = data.get("footprint")
        return cls(
            photo_id=str(data["photo_id"]),
            center_x=float(data["center_x"]),
            center_y=float(data["center_y"]),
            flight_line=str(data.get("flight_line", "")),
            path=opt("path", str),
            frame=opt("frame", int),
            altitude_m=opt("altitude_m", float),
            azimuth_deg=opt("azimuth_deg", float),
            gsd_m=opt("gsd_m", float),
            image_box_px=opt("image_box_px", lambda v: tuple(int(x) for x in v)),
            scan_size_px=opt("scan_size_px", lambda v: tuple(int(x) for x in v)),
            pixel_to_map=opt("pixel_to_map", lambda v: tuple(float(x) for x in v)),
            footprint=(
                None if footprint is None else tuple((float(p[0]), float(p[1])) for p in footprint)
            ),
            film=dict(data.get("film") or {}),
        )

    def to_json(self) -> dict[str, Any]:
        """The ``truth.json`` entry (fields that are None are left out)."""
        out: dict[str, Any] = {
            "photo_id": self.photo_id,
            "path": self.path,
            "flight_line": self.flight_line,
            "frame": self.frame,
            "center_x": self.center_x,
            "center_y": self.center_y,
            "altitude_m": self.altitude_m,
            "azimuth_deg": self.azimuth_deg,
            "gsd_m": self.gsd_m,
            "image_box_px": _list(self.image_box_px),
            "scan_size_px": _list(self.scan_size_px),
            "pixel_to_map": _list(self.pixel_to_map),
            "footprint": None if self.footprint is None else [list(p) for p in self.footprint],
            "film": dict(self.film) if self.film else None,
        }
        return {k: v for k, v in out.items() if v is not None}


def _list(v: Sequence[Any] | None) -> list[Any] | None:
    return None if v is None else list(v)


@dataclass(frozen=True, kw_only=True)
class Truth:
    """A parsed ``truth.json``: its photos and the archive-level fields.

    Attributes:
        path: the file read.
        photos: truth records by photo id, in file order.
        crs: map CRS of the archive.
        reference: reference raster name, relative to the archive.
        rock_mask: rock-outcrop polygons name, relative to the archive.
        seed, preset: how a synthetic archive was made (None otherwise).
        test_only: the archive holds real imagery kept for benchmarks: never
            train, tune or calibrate on it (see :func:`refuse_test_only`).
    """

    path: Path
    photos: Mapping[str, TruthRecord]
    crs: str = DEFAULT_CRS
    reference: str = REFERENCE_FILE
    rock_mask: str = ROCK_MASK_FILE
    seed: int | None = None
    preset: str | None = None
    test_only: bool = False


def read_truth(path: str | os.PathLike[str]) -> Truth:
    """Read ``truth.json`` (or the one inside an archive folder).

    Raises:
        MissingFileError: no such file.
        InvalidInputError: not JSON, no ``photos`` list, a photo without
            ``photo_id``/``center_x``/``center_y``, or a ``test_only`` that is
            not true or false.
    """
    p = Path(path)
    if p.is_dir():
        p = p / TRUTH_FILE
    if not p.is_file():
        raise MissingFileError(f"truth file not found: {p}")
    try:
        data = json.loads(p.read_text())
        photos = {r.photo_id: r for r in (TruthRecord.from_json(t) for t in data["photos"])}
        seed, preset = data.get("seed"), data.get("preset")
        test_only = data.get("test_only", False)
        if not isinstance(test_only, bool):
            raise ValueError(f"test_only must be true or false, got {test_only!r}")
        return Truth(
            path=p,
            photos=photos,
            crs=str(data.get("crs") or DEFAULT_CRS),
            reference=str(data.get("reference") or REFERENCE_FILE),
            rock_mask=str(data.get("rock_outcrop") or ROCK_MASK_FILE),
            seed=None if seed is None else int(seed),
            preset=None if preset is None else str(preset),
            test_only=test_only,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # ValueError covers json.JSONDecodeError and UnicodeDecodeError
        raise InvalidInputError(
            f"{p} is not a truth file (expected {{'photos': [{{photo_id, center_x, center_y, "
            f"...}}]}}): {exc}"
        ) from exc


def write_truth(
    root: str | os.PathLike[str],
    photos: Sequence[TruthRecord],
    *,
    crs: str,
    seed: int | None = None,
    preset: str | None = None,
    extra: Mapping[str, Any] | None = None,
    test_only: bool = False,
) -> Path:
    """Write ``root/truth.json`` (atomically) naming the archive's standard files.

    Args:
        root: archive folder.
        photos: one record per photo, in catalog order.
        crs: map CRS of the archive.
        seed, preset: how a synthetic archive was made.
        extra: further archive-level fields (config, site, sun, ...), written
            after ``preset``.
        test_only: mark the archive as benchmark-only real imagery
            (``"test_only": true``; the key is left out when False).
    """
    data: dict[str, Any] = {
        "crs": crs,
        "reference": REFERENCE_FILE,
        "truth_epoch": TRUTH_EPOCH_FILE,
        "rock_outcrop": ROCK_MASK_FILE,
        "seed": seed,
        "preset": preset,
    }
    if test_only:
        data["test_only"] = True
    extra_fields = dict(extra or {})
    if "test_only" in extra_fields:
        raise InvalidInputError("pass test_only as its own argument, not in extra")
    return write_json(
        Path(root) / TRUTH_FILE,
        {**data, **extra_fields, "photos": [r.to_json() for r in photos]},
    )


def refuse_test_only(archive: Archive | Truth, use: str = "training or calibration") -> None:
    """Raise when ``archive`` is marked ``test_only`` (real imagery kept for benchmarks).

    Args:
        archive: a read archive or truth file.
        use: what the caller was about to do, for the message.

    Raises:
        InvalidInputError: the archive is test-only.
    """
    if archive.test_only:
        where = archive.root if isinstance(archive, Archive) else archive.path.parent
        raise InvalidInputError(
            f"{where} holds real imagery marked test_only: it is for benchmarks, never for {use}"
        )


@dataclass(frozen=True, kw_only=True)
class Archive:
    """An archive folder read through its contract (see the module docstring).

    Attributes:
        archive_id: ``<preset>-<seed>`` for a synthetic archive, else the folder name.
        root: the folder.
        catalog: the catalog records (map CRS of the truth file).
        reference: the reference raster.
        rock_mask: rock-outcrop polygons, or None when the archive has none.
        truth: truth records by photo id.
        crs: map CRS.
        seed, preset: how a synthetic archive was made (None otherwise).
        test_only: benchmark-only real imagery (see :func:`refuse_test_only`).
    """

    archive_id: str
    root: Path
    catalog: Catalog
    reference: Path
    rock_mask: Path | None
    truth: Mapping[str, TruthRecord]
    crs: str
    seed: int | None
    preset: str | None
    test_only: bool = False

    @property
    def truth_path(self) -> Path:
        return self.root / TRUTH_FILE

    def photo_path(self, record: PhotoRecord) -> Path:
        """The scan of a catalog record (a relative catalog path is relative to the root)."""
        if record.path is None:
            raise InvalidInputError(f"photo {record.photo_id} has no path in the catalog")
        return record.path if record.path.is_absolute() else self.root / record.path


def is_archive(root: str | os.PathLike[str]) -> bool:
    """True when ``root`` holds a truth file (e.g. a finished synthetic archive)."""
    return (Path(root) / TRUTH_FILE).is_file()


def read_archive(root: str | os.PathLike[str]) -> Archive:
    """Read an archive's truth, catalog (``catalog.gpkg``, else ``catalog.csv``) and paths.

    Raises:
        MissingFileError: no folder, truth file, catalog or reference.
        InvalidInputError: a bad truth file.
        CatalogError: a bad catalog.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise MissingFileError(f"archive folder {folder} does not exist")
    require_file(folder / TRUTH_FILE, f"truth file of archive {folder}")
    truth = read_truth(folder / TRUTH_FILE)
    cat_path = folder / CATALOG_FILE
    if not cat_path.is_file():
        cat_path = require_file(folder / CATALOG_CSV_FILE, f"catalog of archive {folder}")
    catalog = read_catalog(cat_path, target_crs=truth.crs)
    reference = require_file(folder / truth.reference, f"reference of archive {folder}")
    rock = folder / truth.rock_mask
    synthetic = truth.seed is not None and truth.preset
    return Archive(
        archive_id=f"{truth.preset}-{truth.seed}" if synthetic else folder.name,
        root=folder,
        catalog=catalog,
        reference=reference,
        rock_mask=rock if rock.is_file() else None,
        truth=truth.photos,
        crs=truth.crs,
        seed=truth.seed,
        preset=truth.preset,
        test_only=truth.test_only,
    )
