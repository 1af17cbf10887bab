"""Training data for the similarity models: prepared pairs on disk, triplets at training time.

:func:`build_dataset` runs every photo of one or more archives through the
same :func:`~aeroloc.prepare.prepare_pair` call that ``locate`` uses, with the
same noisy catalog inputs (centre, altitude, heading), so a model trains on
exactly what it will search. An *archive* is any folder with located photos::

    catalog.gpkg | catalog.csv   noisy metadata (what locate reads)
    reference.tif                reference raster (name from truth.json "reference")
    rock_outcrop.gpkg            rock polygons, optional (truth.json "rock_outcrop")
    truth.json                   {"crs", "seed"?, "preset"?, "photos": [{"photo_id",
                                 "center_x", "center_y", ...}]}: the true centres

which is what :func:`aeroloc.synth.make_archive` writes. The dataset folder::

    manifest.json                samples, archives, skipped photos, data hash
    threshold.json               averaged-histogram threshold of the photos (SigNet)
    samples/<archive>/<id>.npz   one compressed sample per photo

Each sample is stored at one fixed scale, where the photo's footprint (one
window) spans :data:`STORE_WINDOW_PX` pixels: ``photo`` (uint8 [S x S], the
histogram-matched photo), ``aoi`` (uint8 [H x W], the enhanced gray AoI rotated
to the *catalog* heading), ``valid`` (bool [H x W]), ``rock`` (bool [H x W],
the rotated rock mask) and ``photo_binary`` (bool [S x S], True = not rock).
The binary AoI for SigNet is ``not rock`` inside ``valid``. The true window is
the truth centre mapped into the rotated AoI, with the catalog's window size:
what a perfect heatmap would rank first.

At training time :class:`TripletDataset` cuts triplets: anchor = the photo;
positive = the true window jittered by at most 1/8 window (about half the
default quarter-window stride; ``AugmentConfig.max_shift``, 3/8 in the default
model's preset) with small rotations and scale changes;
negatives = random windows at least half a window from the truth, *blank*
windows (no rock, little texture: the seed thesis's models scored those high
because none were in training) and hard negatives that the current model
ranks highest (:func:`mine_hard_negatives`). 90° rotations turn the whole
triplet. Gray windows feed ``effnet-lite0-siamese`` and ``resnet50-siamese``,
binary ones ``signet``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from affine import Affine
from rasterio.crs import CRS

from aeroloc import __version__
from aeroloc.aoi import DEFAULT_BUFFER_M, AoIConfig, build_aoi, crop_reference
from aeroloc.candidates import find_candidates
from aeroloc.catalog import Catalog, PhotoRecord, read_catalog
from aeroloc.errors import (
    AeroLocError,
    ConfigError,
    DataQualityError,
    InvalidInputError,
    MissingFileError,
    OutputError,
)
from aeroloc.evaluation.metrics import heatmap_truth, rank_of_truth, recall_at
from aeroloc.files import atomic_output, read_gray, require_file, write_json
from aeroloc.heatmap.engines import HeatmapConfig, compute_heatmap
from aeroloc.heatmap.grid import Heatmap, box_sums, grid_shape
from aeroloc.models.base import Embedder
from aeroloc.preprocess import AveragedHistogramThreshold, crop_frame, gray_histogram
from aeroloc.preprocess.prepare import prepare_pair

STORE_WINDOW_PX = 256
"""Side of one window (the photo's footprint) in stored pixels."""

DATASET_FORMAT = "aeroloc-triplets"
DATASET_VERSION = 1
MANIFEST_NAME = "manifest.json"
THRESHOLD_NAME = "threshold.json"

Progress = Callable[[int, int, str], None]
"""Called with (photos done, photos in total, label of the photo just done)."""


# -- manifest ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SampleRecord:
    """One stored sample (one photo).

    Attributes:
        sample_id: ``<archive>/<photo_id>``, unique in the dataset.
        file: the ``.npz`` file, relative to the dataset folder.
        archive: archive id (``<preset>-<seed>`` for synthetic archives).
        photo_id: the catalog's photo id.
        flight_line: the catalog's flight line ("" if none).
        group: ``<archive>/<flight_line>``; splits never share a group.
        window_px: side of the photo's footprint in AoI pixels (catalog altitude).
        scale_x, scale_y: stored pixels per AoI pixel along columns and rows.
        aoi_shape: (H, W) of the stored AoI.
        true_center: (col, row) of the true centre in stored AoI pixels.
        true_nodata: NaN share of the true window.
        center_error_m: catalog centre minus truth (distance).
        azimuth_error_deg: catalog heading minus true heading, in (-180, 180], or None.
        size_ratio: catalog ground size / true ground size, or None.
        sha256: hash of the sample's arrays.
    """

    sample_id: str
    file: str
    archive: str
    photo_id: str
    flight_line: str
    group: str
    window_px: int
    scale_x: float
    scale_y: float
    aoi_shape: tuple[int, int]
    true_center: tuple[float, float]
    true_nodata: float
    center_error_m: float
    azimuth_error_deg: float | None
    size_ratio: float | None
    sha256: str

    @property
    def true_box(self) -> tuple[float, float, float, float]:
        """``(col0, row0, col1, row1)`` of the true window in stored pixels."""
        c, r = self.true_center
        h = STORE_WINDOW_PX / 2
        return c - h, r - h, c + h, r + h

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["aoi_shape"] = list(self.aoi_shape)
        d["true_center"] = list(self.true_center)
        d["true_box"] = list(self.true_box)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SampleRecord:
        d = {k: v for k, v in d.items() if k != "true_box"}
        d["aoi_shape"] = (int(d["aoi_shape"][0]), int(d["aoi_shape"][1]))
        d["true_center"] = (float(d["true_center"][0]), float(d["true_center"][1]))
        return cls(**d)


@dataclass(frozen=True, kw_only=True)
class ArchiveRecord:
    """One source archive of a dataset."""

    archive_id: str
    path: str
    seed: int | None
    preset: str | None
    n_photos: int
    n_samples: int


@dataclass(frozen=True, kw_only=True)
class DatasetManifest:
    """What :func:`build_dataset` wrote (``manifest.json``).

    Attributes:
        root: the dataset folder.
        samples: one record per stored photo.
        archives: the source archives.
        skipped: photos left out, each ``{"archive", "photo_id", "reason"}``.
        store_window_px: window side in stored pixels.
        buffer_m: AoI buffer used.
        crs: map CRS of the archives.
        threshold: binarisation threshold (0–255) of ``threshold.json``.
        data_hash: sha256 over every sample's arrays and geometry.
        aeroloc_version: version that wrote it.
    """

    root: Path
    samples: tuple[SampleRecord, ...]
    archives: tuple[ArchiveRecord, ...]
    skipped: tuple[dict[str, str], ...]
    store_window_px: int
    buffer_m: float
    crs: str
    threshold: int
    data_hash: str
    aeroloc_version: str = __version__

    @property
    def groups(self) -> tuple[str, ...]:
        """Distinct split groups (archive + flight line), sorted."""
        return tuple(sorted({s.group for s in self.samples}))

    @property
    def threshold_path(self) -> Path:
        return self.root / THRESHOLD_NAME

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": DATASET_FORMAT,
            "version": DATASET_VERSION,
            "aeroloc_version": self.aeroloc_version,
            "store_window_px": self.store_window_px,
            "buffer_m": self.buffer_m,
            "crs": self.crs,
            "threshold": self.threshold,
            "data_hash": self.data_hash,
            "n_samples": len(self.samples),
            "n_groups": len(self.groups),
            "archives": [asdict(a) for a in self.archives],
            "skipped": list(self.skipped),
            "samples": [s.to_dict() for s in self.samples],
        }


def read_manifest(path: str | os.PathLike[str]) -> DatasetManifest:
    """Read a dataset's ``manifest.json`` (``path`` = the folder or the file).

    Raises:
        MissingFileError: no manifest.
        ConfigError: not a triplet dataset, or a corrupt manifest.
    """
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_NAME
    p = require_file(p, "dataset manifest (build it with `aeroloc triplets`)")
    try:
        d = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"dataset manifest {p} is not valid JSON: {exc}") from exc
    if not isinstance(d, dict) or d.get("format") != DATASET_FORMAT:
        raise ConfigError(
            f"{p} is not an aeroloc triplet dataset manifest (no format {DATASET_FORMAT!r}); "
            "build one with `aeroloc triplets --archive DIR --out DIR`"
        )
    if not isinstance(d.get("version"), int) or d["version"] > DATASET_VERSION:
        raise ConfigError(
            f"dataset {p} has version {d.get('version')!r}; this aeroloc reads up to "
            f"{DATASET_VERSION}: rebuild the dataset or upgrade aeroloc"
        )
    try:
        return DatasetManifest(
            root=p.parent,
            samples=tuple(SampleRecord.from_dict(s) for s in d["samples"]),
            archives=tuple(ArchiveRecord(**a) for a in d["archives"]),
            skipped=tuple(dict(s) for s in d["skipped"]),
            store_window_px=int(d["store_window_px"]),
            buffer_m=float(d["buffer_m"]),
            crs=str(d["crs"]),
            threshold=int(d["threshold"]),
            data_hash=str(d["data_hash"]),
            aeroloc_version=str(d.get("aeroloc_version", "")),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ConfigError(f"dataset manifest {p} is incomplete or corrupt: {exc!r}") from exc


def combine_datasets(manifests: Sequence[DatasetManifest]) -> DatasetManifest:
    """One dataset made of several (samples keep their files; the first folder is the root).

    Raises:
        InvalidInputError: no dataset, different window scales or CRSs, or a
            photo in two datasets.
    """
    if not manifests:
        raise InvalidInputError("no dataset given")
    if len(manifests) == 1:
        return manifests[0]
    first = manifests[0]
    for m in manifests[1:]:
        if m.store_window_px != first.store_window_px:
            raise InvalidInputError(
                f"datasets {first.root} and {m.root} store windows of different sizes"
            )
        if CRS.from_user_input(m.crs) != CRS.from_user_input(first.crs):
            raise InvalidInputError(f"datasets {first.root} and {m.root} use different CRSs")
    samples = [
        replace(s, file=str((m.root / s.file).resolve())) for m in manifests for s in m.samples
    ]
    ids = [s.sample_id for s in samples]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise InvalidInputError(f"photo(s) in more than one dataset: {', '.join(dupes[:5])}")
    return replace(
        first,
        samples=tuple(samples),
        archives=tuple(a for m in manifests for a in m.archives),
        skipped=tuple(x for m in manifests for x in m.skipped),
        data_hash=dataset_hash(samples),
    )


# -- splits -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Split:
    """Sample indices of a train/val/test split by group (archive + flight line)."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]
    train_groups: tuple[str, ...]
    val_groups: tuple[str, ...]
    test_groups: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "train_groups": list(self.train_groups),
            "val_groups": list(self.val_groups),
            "test_groups": list(self.test_groups),
            "n_train": len(self.train),
            "n_val": len(self.val),
            "n_test": len(self.test),
        }


def split_by_group(
    manifest: DatasetManifest,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> Split:
    """Split samples about 8:1:1 so that no flight line (hence no photo) is in two parts.

    Groups are shuffled with ``seed``; test and then validation take whole
    groups until they hold at least their fraction of the photos (at least
    one group each when the fraction is > 0); training keeps the rest.

    Raises:
        InvalidInputError: bad fractions, or too few groups for the split.
    """
    for name, v in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= v < 1.0:
            raise InvalidInputError(f"{name} must be in [0, 1), got {v}")
    if val_fraction + test_fraction >= 1.0:
        raise InvalidInputError(
            f"val_fraction + test_fraction must be < 1, got {val_fraction + test_fraction}"
        )
    groups = manifest.groups
    need = 1 + (val_fraction > 0) + (test_fraction > 0)
    if len(groups) < need:
        raise InvalidInputError(
            f"dataset {manifest.root} has {len(groups)} flight line(s) ({len(manifest.samples)} "
            f"photos); a split by flight line into train/val/test needs at least {need}: "
            "add archives or flight lines"
        )
    members: dict[str, list[int]] = {g: [] for g in groups}
    for i, s in enumerate(manifest.samples):
        members[s.group].append(i)
    order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    n = len(manifest.samples)
    parts: dict[str, list[str]] = {"test": [], "val": []}
    pos = 0
    for part, frac in (("test", test_fraction), ("val", val_fraction)):
        if frac <= 0:
            continue
        count = 0
        # Leave at least one group for each part still to fill and for training.
        still = 1 + (part == "test" and val_fraction > 0)
        while pos < len(order) - still and (count < frac * n or not parts[part]):
            parts[part].append(order[pos])
            count += len(members[order[pos]])
            pos += 1
    train_groups = order[pos:]

    def idx(gs: Iterable[str]) -> tuple[int, ...]:
        return tuple(sorted(i for g in gs for i in members[g]))

    return Split(
        train=idx(train_groups),
        val=idx(parts["val"]),
        test=idx(parts["test"]),
        train_groups=tuple(sorted(train_groups)),
        val_groups=tuple(sorted(parts["val"])),
        test_groups=tuple(sorted(parts["test"])),
    )


# -- building ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Archive:
    archive_id: str
    root: Path
    catalog: Catalog
    reference: Path
    rock_mask: Path | None
    truth: dict[str, dict[str, Any]]
    crs: str
    seed: int | None
    preset: str | None


def _read_archive(root: Path) -> _Archive:
    if not root.is_dir():
        raise MissingFileError(f"archive folder {root} does not exist")
    truth_path = require_file(root / "truth.json", f"truth file of archive {root}")
    try:
        truth = json.loads(truth_path.read_text())
        photos = {str(p["photo_id"]): p for p in truth["photos"]}
        for p in photos.values():
            float(p["center_x"]), float(p["center_y"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{truth_path} is not a truth file: expected JSON with 'photos' = "
            f"[{{photo_id, center_x, center_y}}, ...] ({exc!r})"
        ) from exc
    crs = str(truth.get("crs") or "EPSG:3031")
    cat_path = root / "catalog.gpkg"
    if not cat_path.is_file():
        cat_path = require_file(root / "catalog.csv", f"catalog of archive {root}")
    catalog = read_catalog(cat_path, target_crs=crs)
    reference = require_file(
        root / str(truth.get("reference") or "reference.tif"), f"reference of archive {root}"
    )
    rock = root / str(truth.get("rock_outcrop") or "rock_outcrop.gpkg")
    seed = truth.get("seed")
    preset = truth.get("preset")
    archive_id = f"{preset}-{seed}" if seed is not None and preset else root.name
    return _Archive(
        archive_id=archive_id,
        root=root,
        catalog=catalog,
        reference=reference,
        rock_mask=rock if rock.is_file() else None,
        truth=photos,
        crs=crs,
        seed=None if seed is None else int(seed),
        preset=None if preset is None else str(preset),
    )


def _photo_path(archive: _Archive, record: PhotoRecord) -> Path:
    if record.path is None:
        raise InvalidInputError(f"photo {record.photo_id} has no path in the catalog")
    return record.path if record.path.is_absolute() else archive.root / record.path


def _wrap_deg(a: float) -> float:
    return float((a + 180.0) % 360.0 - 180.0)


def _resize(img: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    h, w = shape_hw
    interp = cv2.INTER_AREA if img.shape[0] >= h and img.shape[1] >= w else cv2.INTER_LINEAR
    return cv2.resize(img.astype(np.float32), (w, h), interpolation=interp)


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _arrays_hash(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _window_nodata(valid: np.ndarray, c: float, r: float, side: float) -> float:
    """NaN share of the axis-aligned window of ``side`` centred on (c, r); 1 outside."""
    c0, r0 = round(c - side / 2), round(r - side / 2)
    s = round(side)
    if c0 < 0 or r0 < 0 or c0 + s > valid.shape[1] or r0 + s > valid.shape[0]:
        return 1.0
    return float(1.0 - valid[r0 : r0 + s, c0 : c0 + s].mean())


def _threshold_of(
    archives: Sequence[_Archive], progress: Progress | None, total: int
) -> AveragedHistogramThreshold:
    """Averaged-histogram threshold over the frame-cropped photos of every archive."""

    def images() -> Iterable[np.ndarray]:
        done = 0
        for a in archives:
            for rec in a.catalog:
                if rec.photo_id not in a.truth:
                    continue
                path = _photo_path(a, rec)
                if not path.is_file():
                    continue
                scan = read_gray(path, what="photo")
                if not np.isfinite(scan).all():
                    scan = np.nan_to_num(scan, nan=float(np.nanmedian(scan)))
                image, _ = crop_frame(scan)
                done += 1
                if progress:
                    progress(done, total, f"histogram {a.archive_id}/{rec.photo_id}")
                yield image

    hists = [gray_histogram(img) for img in images()]
    if not hists:
        raise DataQualityError("no readable photo with a truth record: nothing to build from")
    return AveragedHistogramThreshold.from_histogram(np.mean(hists, axis=0), n_photos=len(hists))


def build_dataset(
    archives: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    buffer_m: float = DEFAULT_BUFFER_M,
    threshold: AveragedHistogramThreshold | None = None,
    max_nodata: float = 0.25,
    workers: int = 2,
    progress: Progress | None = None,
) -> DatasetManifest:
    """Prepare every photo with truth of ``archives`` and store it as a training sample.

    Per photo, as ``locate`` does: catalog record (noisy) → ``build_aoi`` with
    ``buffer_m`` → ``crop_reference`` → ``prepare_pair`` with the catalog
    heading and the ground size from the catalog altitude and focal length,
    the rock mask and the binarisation threshold. The true centre is mapped
    into the rotated AoI; photos whose true window is off the AoI or more than
    ``max_nodata`` NaN are skipped (listed in the manifest with the reason).

    Args:
        archives: archive folders (see the module docstring).
        out: dataset folder (created; existing samples are overwritten).
        buffer_m: AoI buffer, as ``locate --buffer-m``.
        threshold: binarisation threshold; default: averaged over the photos.
        max_nodata: largest NaN share of a true window that is kept.
        workers: photos prepared in parallel threads (output does not depend on it).
        progress: called after each photo with (done, total, label).

    Raises:
        InvalidInputError: no archive, duplicate archives, bad options.
        MissingFileError: an archive lacks truth, catalog or reference.
        DataQualityError: no photo could be prepared.
        OutputError: ``out`` cannot be written.
    """
    if not archives:
        raise InvalidInputError("no archive given: pass at least one archive folder")
    if not 0.0 <= max_nodata < 1.0:
        raise InvalidInputError(f"max_nodata must be in [0, 1), got {max_nodata}")
    AoIConfig(buffer_m=buffer_m)  # validates the buffer
    roots = [Path(a).resolve() for a in archives]
    if len(set(roots)) != len(roots):
        raise InvalidInputError("the same archive is given twice")
    parsed = [_read_archive(r) for r in roots]
    ids = [a.archive_id for a in parsed]
    for i, a in enumerate(parsed):
        if ids.count(a.archive_id) > 1:
            parsed[i] = replace(a, archive_id=f"{a.archive_id}-{i}")
    crs_set = {CRS.from_user_input(a.crs) for a in parsed}
    if len(crs_set) > 1:
        raise InvalidInputError(
            "archives use different CRSs (" + ", ".join(a.crs for a in parsed) + "); "
            "build one dataset per CRS"
        )
    root = Path(out)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create dataset folder {root}: {exc.strerror or exc}") from exc
    total = sum(sum(1 for r in a.catalog if r.photo_id in a.truth) for a in parsed)
    if total == 0:
        raise DataQualityError(
            "no catalog photo has a truth record in " + ", ".join(str(r) for r in roots)
        )
    thr = threshold if threshold is not None else _threshold_of(parsed, progress, total)
    thr.save(root / THRESHOLD_NAME)

    jobs = [(a, rec) for a in parsed for rec in a.catalog if rec.photo_id in a.truth]

    def one(job: tuple[_Archive, PhotoRecord]) -> SampleRecord | dict[str, str]:
        a, rec = job
        try:
            return _build_one(a, rec, root, buffer_m, thr, max_nodata)
        except (DataQualityError, MissingFileError) as exc:
            return {"archive": a.archive_id, "photo_id": rec.photo_id, "reason": str(exc)}

    results: list[SampleRecord | dict[str, str]] = []
    # Threads: the heavy parts (GDAL reads, OpenCV, SciPy) release the GIL.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for (a, rec), res in zip(jobs, pool.map(one, jobs), strict=True):
            results.append(res)
            if progress:
                progress(len(results), total, f"{a.archive_id}/{rec.photo_id}")
    samples = [r for r in results if isinstance(r, SampleRecord)]
    skipped = [r for r in results if isinstance(r, dict)]
    archive_records = [
        ArchiveRecord(
            archive_id=a.archive_id,
            path=str(a.root),
            seed=a.seed,
            preset=a.preset,
            n_photos=sum(1 for j in jobs if j[0] is a),
            n_samples=sum(1 for r in samples if r.archive == a.archive_id),
        )
        for a in parsed
    ]
    if not samples:
        reasons = "; ".join(f"{s['photo_id']}: {s['reason']}" for s in skipped[:3])
        raise DataQualityError(f"no photo could be made into a sample ({reasons})")
    manifest = DatasetManifest(
        root=root,
        samples=tuple(samples),
        archives=tuple(archive_records),
        skipped=tuple(skipped),
        store_window_px=STORE_WINDOW_PX,
        buffer_m=float(buffer_m),
        crs=parsed[0].crs,
        threshold=int(thr.threshold),
        data_hash=dataset_hash(samples),
    )
    write_json(root / MANIFEST_NAME, manifest.to_dict())
    return manifest


def dataset_hash(samples: Sequence[SampleRecord]) -> str:
    """sha256 over every sample's array hash and true geometry (order-independent)."""
    h = hashlib.sha256()
    for s in sorted(samples, key=lambda s: s.sample_id):
        h.update(
            json.dumps(
                [s.sample_id, s.sha256, s.group, list(s.true_center), list(s.aoi_shape)]
            ).encode()
        )
    return h.hexdigest()


def _build_one(
    a: _Archive,
    rec: PhotoRecord,
    root: Path,
    buffer_m: float,
    thr: AveragedHistogramThreshold,
    max_nodata: float,
) -> SampleRecord:
    truth = a.truth[rec.photo_id]
    if rec.altitude_m is None or rec.azimuth_deg is None:
        raise DataQualityError(
            f"photo {rec.photo_id} has no catalog altitude or heading; locate needs both"
        )
    photo_path = _photo_path(a, rec)
    with warnings.catch_warnings():
        # Part of an AoI may lie off the reference; those pixels are NaN and handled below.
        warnings.simplefilter("ignore")
        aoi = build_aoi(rec, AoIConfig(buffer_m=buffer_m))
        raster = crop_reference(a.reference, aoi)
        ground_m = rec.camera().ground_size_m(rec.altitude_m)[0]
        pp = prepare_pair(
            require_file(photo_path, f"photo {rec.photo_id}"),
            raster,
            azimuth_deg=rec.azimuth_deg,
            ground_size_m=ground_m,
            rock_mask_path=a.rock_mask,
            threshold=thr,
        )
    tx, ty = float(truth["center_x"]), float(truth["center_y"])
    col, row = pp.aoi.forward @ (tx, ty)
    gray = pp.aoi_gray
    valid = np.isfinite(gray)
    native_nodata = _window_nodata(valid, col, row, pp.window_px)
    if native_nodata > max_nodata:
        raise DataQualityError(
            f"the true window of {rec.photo_id} is {native_nodata:.0%} off the AoI or nodata "
            f"(catalog centre {math.hypot(rec.x - tx, rec.y - ty):.0f} m off); "
            "a larger buffer_m would keep it"
        )
    s = STORE_WINDOW_PX / pp.window_px
    h, w = gray.shape
    out_h, out_w = max(1, round(h * s)), max(1, round(w * s))
    fill = float(gray[valid].mean())
    aoi_s = np.clip(_resize(np.where(valid, gray, fill), (out_h, out_w)), 0.0, 1.0)
    valid_s = _resize(valid.astype(np.float32), (out_h, out_w)) >= 0.99
    arrays: dict[str, np.ndarray] = {
        "photo": _to_u8(_resize(pp.photo, (STORE_WINDOW_PX, STORE_WINDOW_PX))),
        "aoi": np.where(valid_s, _to_u8(aoi_s), 0).astype(np.uint8),
        "valid": valid_s,
    }
    if pp.photo_binary is not None:
        pb = _resize(pp.photo_binary, (STORE_WINDOW_PX, STORE_WINDOW_PX))
        arrays["photo_binary"] = pb >= 0.5
    if pp.rock is not None:
        arrays["rock"] = (_resize(pp.rock.astype(np.float32), (out_h, out_w)) >= 0.5) & valid_s
    sx, sy = out_w / w, out_h / h
    true_center = (float(col * sx), float(row * sy))
    stored_nodata = _window_nodata(valid_s, *true_center, STORE_WINDOW_PX)
    if stored_nodata > max_nodata:
        raise DataQualityError(
            f"the true window of {rec.photo_id} is {stored_nodata:.0%} nodata at the stored scale"
        )
    sha = _arrays_hash(arrays)
    rel = Path("samples") / a.archive_id / f"{_safe(rec.photo_id)}.npz"
    try:
        with atomic_output(root / rel) as tmp, open(tmp, "wb") as f:
            _savez(f, arrays)
    except OSError as exc:
        if isinstance(exc, AeroLocError):
            raise
        raise OutputError(f"cannot write sample {root / rel}: {exc.strerror or exc}") from exc
    az_err = None
    if truth.get("azimuth_deg") is not None:
        az_err = _wrap_deg(rec.azimuth_deg - float(truth["azimuth_deg"]))
    size_ratio = None
    if truth.get("gsd_m") is not None and truth.get("image_box_px") is not None:
        box = truth["image_box_px"]
        size_ratio = float(pp.ground_size_m / (float(truth["gsd_m"]) * (box[2] - box[0])))
    line = rec.flight_line or ""
    return SampleRecord(
        sample_id=f"{a.archive_id}/{rec.photo_id}",
        file=rel.as_posix(),
        archive=a.archive_id,
        photo_id=rec.photo_id,
        flight_line=line,
        group=f"{a.archive_id}/{line or rec.photo_id}",
        window_px=int(pp.window_px),
        scale_x=float(sx),
        scale_y=float(sy),
        aoi_shape=(out_h, out_w),
        true_center=true_center,
        true_nodata=float(stored_nodata),
        center_error_m=float(math.hypot(rec.x - tx, rec.y - ty)),
        azimuth_error_deg=az_err,
        size_ratio=size_ratio,
        sha256=sha,
    )


def _savez(f: Any, arrays: dict[str, np.ndarray]) -> None:
    savez: Any = np.savez_compressed  # its stub types **kwds as its own options
    savez(f, **arrays)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


# -- loading ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class Sample:
    """One sample in memory.

    Attributes:
        record: its manifest record.
        photo: ``[S x S]`` uint8, the prepared photo.
        aoi: ``[H x W]`` uint8, the rotated enhanced gray AoI (0 where not valid).
        valid: ``[H x W]`` bool.
        rock: ``[H x W]`` bool rotated rock mask, or None.
        photo_binary: ``[S x S]`` bool (True = not rock), or None.
    """

    record: SampleRecord
    photo: np.ndarray
    aoi: np.ndarray
    valid: np.ndarray
    rock: np.ndarray | None
    photo_binary: np.ndarray | None

    def photo_image(self, mode: str) -> np.ndarray:
        """The photo ``[S x S]`` float32 in [0, 1] as the model sees it (gray or binary)."""
        if mode == "binary":
            if self.photo_binary is None:
                raise DataQualityError(f"sample {self.record.sample_id} has no binary photo")
            return self.photo_binary.astype(np.float32)
        return self.photo.astype(np.float32) / 255.0

    def rock_mask(self) -> np.ndarray:
        """``[H x W]`` bool rock mask, or DataQualityError when the archive had no polygons."""
        if self.rock is None:
            raise DataQualityError(
                f"sample {self.record.sample_id} has no rock mask: no binary AoI for SigNet"
            )
        return self.rock

    def aoi_image(self, mode: str) -> np.ndarray:
        """The AoI ``[H x W]`` float32 in [0, 1], NaN outside ``valid`` (gray or binary)."""
        if mode == "binary":
            img = (~self.rock_mask()).astype(np.float32)
        else:
            img = self.aoi.astype(np.float32) / 255.0
        return np.where(self.valid, img, np.nan).astype(np.float32)


def load_sample(manifest: DatasetManifest, index: int, *, verify: bool = False) -> Sample:
    """Read sample ``index`` of ``manifest`` (``verify`` checks its hash)."""
    rec = manifest.samples[index]
    path = require_file(manifest.root / rec.file, f"sample {rec.sample_id}")
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise DataQualityError(f"sample file {path} is unreadable: {exc}") from exc
    if verify and _arrays_hash(arrays) != rec.sha256:
        raise DataQualityError(f"sample file {path} does not match its hash in the manifest")
    return Sample(
        record=rec,
        photo=arrays["photo"],
        aoi=arrays["aoi"],
        valid=arrays["valid"],
        rock=arrays.get("rock"),
        photo_binary=arrays.get("photo_binary"),
    )


def load_samples(
    manifest: DatasetManifest, indices: Sequence[int] | None = None, *, verify: bool = False
) -> list[Sample]:
    """Read several samples (default: all)."""
    idx = range(len(manifest.samples)) if indices is None else indices
    return [load_sample(manifest, i, verify=verify) for i in idx]


# -- sampling ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AugmentConfig:
    """Training-time augmentation.

    Attributes:
        rot90: turn the whole triplet by a random multiple of 90°.
        max_rotation_deg: windows turn by up to ± this (on top of the catalog's
            own heading error, which is in the data already).
        max_scale: windows are cut up to ± this fraction larger or smaller
            (altitude error).
        max_shift: the positive's centre moves by up to ± this fraction of a
            window along each axis (triplets only: the rank loss of
            :mod:`aeroloc.train` scores every window).
        brightness: photo brightness offset up to ± this.
        contrast: photo contrast factor within ``1 ± contrast``.
        gamma: photo gamma ``exp(± gamma)``.
        grain: photo grain (Gaussian) standard deviation up to this.
        window_photometric: windows get this share of the photo's photometric changes.
    """

    rot90: bool = True
    max_rotation_deg: float = 6.0
    max_scale: float = 0.06
    max_shift: float = 0.125
    brightness: float = 0.08
    contrast: float = 0.2
    gamma: float = 0.25
    grain: float = 0.03
    window_photometric: float = 0.3

    def __post_init__(self) -> None:
        for name in ("max_rotation_deg", "brightness", "grain"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"augment {name} must be ≥ 0, got {getattr(self, name)}")
        for name in ("max_scale", "max_shift", "contrast", "gamma", "window_photometric"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"augment {name} must be in [0, 1), got {getattr(self, name)}")

    @classmethod
    def none(cls) -> AugmentConfig:
        """No augmentation at all (validation)."""
        return cls(
            rot90=False,
            max_rotation_deg=0.0,
            max_scale=0.0,
            max_shift=0.0,
            brightness=0.0,
            contrast=0.0,
            gamma=0.0,
            grain=0.0,
            window_photometric=0.0,
        )


@dataclass(frozen=True, kw_only=True)
class SamplerConfig:
    """Which negatives a triplet gets.

    Attributes:
        negatives: negatives per anchor.
        blank_fraction: share of negatives that are blank windows.
        hard_fraction: share of negatives taken from the mined pool (once mined).
        min_distance: negatives' centres lie at least this many windows from the truth.
        grid_fraction: candidate windows lie on a grid of this fraction of a window.
        max_nodata: largest NaN share of a negative window.
        blank_rock_max: a blank window holds at most this share of rock.
        blank_std_quantile: ... and its gray standard deviation is in this lowest quantile.
        hard_pool: hardest windows kept per photo by :func:`mine_hard_negatives`.
    """

    negatives: int = 2
    blank_fraction: float = 0.25
    hard_fraction: float = 0.5
    min_distance: float = 0.5
    grid_fraction: float = 0.25
    max_nodata: float = 0.25
    blank_rock_max: float = 0.01
    blank_std_quantile: float = 0.3
    hard_pool: int = 8

    def __post_init__(self) -> None:
        if not (isinstance(self.negatives, int) and self.negatives >= 1):
            raise ConfigError(f"negatives must be an integer ≥ 1, got {self.negatives!r}")
        if not (isinstance(self.hard_pool, int) and self.hard_pool >= 1):
            raise ConfigError(f"hard_pool must be an integer ≥ 1, got {self.hard_pool!r}")
        for name in ("blank_fraction", "hard_fraction", "blank_rock_max", "blank_std_quantile"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.blank_fraction + self.hard_fraction > 1:
            raise ConfigError("blank_fraction + hard_fraction must be ≤ 1")
        if not 0 < self.grid_fraction <= 1:
            raise ConfigError(f"grid_fraction must be in (0, 1], got {self.grid_fraction}")
        if not self.min_distance >= 0:
            raise ConfigError(f"min_distance must be ≥ 0, got {self.min_distance}")
        if not 0 <= self.max_nodata < 1:
            raise ConfigError(f"max_nodata must be in [0, 1), got {self.max_nodata}")


def _box_sums(img: np.ndarray, side: int, stride: int, shape: tuple[int, int]) -> np.ndarray:
    """``[R x C]`` sums of ``img`` over every window of the grid (summed-area table)."""
    return box_sums(img, side, np.arange(shape[0]) * stride, np.arange(shape[1]) * stride)


def rotate_point(x: float, y: float, shape_hw: tuple[int, int], k: int) -> tuple[float, float]:
    """Where pixel point (x, y) of an ``[H x W]`` image lands after ``np.rot90(image, k)``."""
    h, w = shape_hw
    for _ in range(k % 4):
        x, y = y, w - x
        h, w = w, h
    return x, y


def window_nodata(
    valid: np.ndarray, window_px: int, stride_px: int, shape: tuple[int, int]
) -> np.ndarray:
    """``[R x C]`` NaN share of every grid window (as the heatmap engines count it)."""
    area = float(window_px * window_px)
    return 1.0 - _box_sums(valid, window_px, stride_px, shape) / area


@dataclass(frozen=True, kw_only=True, eq=False)
class WindowGrid:
    """Candidate negative windows of one sample, on a grid of ``stride_px``.

    Attributes:
        stride_px: grid step in stored pixels (window at (r, c) starts at
            ``(r, c) * stride_px``).
        shape: (R, C) of the grid (the heatmap grid at the same stride).
        random: ``[N x 2]`` (row, col) of valid windows far enough from the truth.
        blank: ``[M x 2]`` the blank ones among them (may be empty).
    """

    stride_px: int
    shape: tuple[int, int]
    random: np.ndarray
    blank: np.ndarray
    distance: np.ndarray = field(repr=False)


def window_grid(sample: Sample, config: SamplerConfig) -> WindowGrid:
    """Classify the grid windows of ``sample`` into random and blank negatives."""
    s = STORE_WINDOW_PX
    stride = max(1, round(s * config.grid_fraction))
    h, w = sample.aoi.shape
    shape = grid_shape(h, w, s, stride)
    area = float(s * s)
    nodata = window_nodata(sample.valid, s, stride, shape)
    g = sample.aoi.astype(np.float64) / 255.0 * sample.valid
    mean = _box_sums(g, s, stride, shape) / area
    sq = _box_sums(g * g, s, stride, shape) / area
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    rock = (
        np.zeros(shape) if sample.rock is None else _box_sums(sample.rock, s, stride, shape) / area
    )
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    tc, tr = sample.record.true_center
    dist = np.hypot(cc * stride + s / 2 - tc, rr * stride + s / 2 - tr) / s
    ok = (nodata <= config.max_nodata) & (dist >= config.min_distance)
    random = np.argwhere(ok)
    blank = np.empty((0, 2), dtype=np.int64)
    if random.size:
        flat = ok & (rock <= config.blank_rock_max)
        if flat.any():
            limit = np.quantile(std[ok], config.blank_std_quantile)
            blank = np.argwhere(flat & (std <= limit))
    return WindowGrid(stride_px=stride, shape=shape, random=random, blank=blank, distance=dist)


def crop_window(
    image: np.ndarray,
    valid: np.ndarray,
    center: tuple[float, float],
    *,
    out_hw: tuple[int, int],
    side_px: float = STORE_WINDOW_PX,
    angle_deg: float = 0.0,
) -> np.ndarray:
    """Cut a (rotated) square window and resize it to the model input, as the engines do.

    Args:
        image: ``[H x W]`` uint8 (0–255) or float32 (0–1), meaningful where ``valid``.
        valid: ``[H x W]`` bool.
        center: (col, row) of the window centre (pixel corners at integers).
        out_hw: model input (h, w).
        side_px: window side in ``image`` pixels.
        angle_deg: the window turns counter-clockwise on the image by this.

    Returns:
        ``[h x w]`` float32 in [0, 1]; pixels outside ``valid`` take the
        window's mean (as the ``batched`` engine does).
    """
    s = STORE_WINDOW_PX
    k = side_px / s
    a = math.radians(angle_deg)
    ca, sa = math.cos(a) * k, math.sin(a) * k
    # OpenCV puts pixel centres at integers: shift the centre and the half side by 0.5.
    cx, cy = center[0] - 0.5, center[1] - 0.5
    half = s / 2 - 0.5
    # Output pixel (u, v) → image (x, y): rotate and scale about the window centre.
    m = np.array(
        [
            [ca, sa, cx - ca * half - sa * half],
            [-sa, ca, cy + sa * half - ca * half],
        ],
        dtype=np.float64,
    )
    src = image if image.dtype == np.uint8 else image.astype(np.float32)
    crop = cv2.warpAffine(src, m, (s, s), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    crop = crop.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    ok = cv2.warpAffine(
        valid.astype(np.uint8), m, (s, s), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    ).astype(bool)
    if not ok.all():
        fill = float(crop[ok].mean()) if ok.any() else 0.5
        crop = np.where(ok, crop, fill)
    h, w = out_hw
    out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA if h <= s else cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def augment_photo(
    photo: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, *, binary: bool = False
) -> np.ndarray:
    """A photo ``[h x w]`` in [0, 1] with small rotation/scale, photometric changes and grain.

    The rotation (± ``max_rotation_deg``) and scale (± ``max_scale``) act like
    the catalog's heading and altitude errors; borders are mirrored.
    """
    h, w = photo.shape
    ang = rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)
    scale = math.exp(rng.uniform(-1, 1) * math.log1p(cfg.max_scale))
    out = photo.astype(np.float32)
    if ang or scale != 1.0:
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), ang, scale)
        out = np.asarray(
            cv2.warpAffine(
                out, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
            ),
            dtype=np.float32,
        )
    if binary:
        return _flip_noise((out >= 0.5).astype(np.float32), rng, cfg.grain / 3)
    return _photometric(out, rng, cfg, 1.0)


def _photometric(
    x: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, strength: float
) -> np.ndarray:
    if strength <= 0:
        return x
    g = math.exp(rng.uniform(-cfg.gamma, cfg.gamma) * strength)
    c = 1.0 + rng.uniform(-cfg.contrast, cfg.contrast) * strength
    b = rng.uniform(-cfg.brightness, cfg.brightness) * strength
    y = np.power(np.clip(x, 0.0, 1.0), g)
    m = float(y.mean())
    y = (y - m) * c + m + b
    sigma = rng.uniform(0.0, cfg.grain) * strength
    if sigma > 0:
        y = y + rng.normal(0.0, sigma, size=y.shape)
    return np.clip(y, 0.0, 1.0).astype(np.float32)


def _flip_noise(x: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    if p <= 0:
        return x
    flips = rng.random(x.shape) < p
    return np.where(flips, 1.0 - x, x).astype(np.float32)


class TripletDataset(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Triplets cut on the fly from loaded samples; deterministic in (seed, epoch, index).

    Item ``i`` belongs to sample ``i % len(samples)``; an epoch of
    ``len(samples) * items_per_sample`` items visits every photo that often.

    Each item is a dict of float tensors in [0, 1]: ``anchor`` ``[1 x h x w]``,
    ``positive`` ``[1 x h x w]``, ``negatives`` ``[K x 1 x h x w]`` and
    ``kinds`` ``[K]`` (0 random, 1 blank, 2 hard).
    """

    KINDS = ("random", "blank", "hard")

    def __init__(
        self,
        samples: Sequence[Sample],
        *,
        mode: str,
        input_hw: tuple[int, int],
        augment: AugmentConfig | None = None,
        sampler: SamplerConfig | None = None,
        items_per_sample: int = 1,
        seed: int = 0,
    ) -> None:
        if not samples:
            raise InvalidInputError("no samples: a triplet dataset needs at least one photo")
        if mode not in ("gray", "binary"):
            raise ConfigError(f"mode must be 'gray' or 'binary', got {mode!r}")
        if items_per_sample < 1:
            raise ConfigError(f"items_per_sample must be ≥ 1, got {items_per_sample}")
        self.samples = list(samples)
        self.mode = mode
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.augment = augment or AugmentConfig()
        self.sampler = sampler or SamplerConfig()
        self.items_per_sample = items_per_sample
        self.seed = int(seed)
        self.epoch = 0
        self.grids = [window_grid(s, self.sampler) for s in self.samples]
        for s, g in zip(self.samples, self.grids, strict=True):
            if not len(g.random):
                raise DataQualityError(
                    f"sample {s.record.sample_id}: no window of its AoI lies "
                    f"{self.sampler.min_distance} windows from the truth; enlarge the buffer"
                )
        self.hard: dict[int, np.ndarray] = {}
        self._photos = [s.photo_image(mode) for s in self.samples]
        self._aois = [
            s.aoi if mode == "gray" else np.where(s.rock_mask(), 0, 255).astype(np.uint8)
            for s in self.samples
        ]

    def __len__(self) -> int:
        return len(self.samples) * self.items_per_sample

    def set_epoch(self, epoch: int) -> None:
        """Items of another epoch get other random draws."""
        self.epoch = int(epoch)

    def set_hard_negatives(self, pools: dict[int, np.ndarray]) -> None:
        """Hard windows per sample index: ``[M x 2]`` (row, col) on that sample's grid."""
        self.hard = {int(k): np.asarray(v, dtype=np.int64).reshape(-1, 2) for k, v in pools.items()}

    def _negative_center(self, i: int, kind: int, rng: np.random.Generator) -> tuple[float, float]:
        g = self.grids[i]
        pool = {0: g.random, 1: g.blank, 2: self.hard.get(i, np.empty((0, 2)))}[kind]
        if not len(pool):
            pool = g.random
        r, c = pool[rng.integers(len(pool))]
        s = STORE_WINDOW_PX
        tc, tr = self.samples[i].record.true_center
        base = (c * g.stride_px + s / 2, r * g.stride_px + s / 2)
        for _ in range(4):
            dx, dy = rng.uniform(-0.5, 0.5, size=2) * g.stride_px
            cand = (base[0] + dx, base[1] + dy)
            if math.hypot(cand[0] - tc, cand[1] - tr) >= self.sampler.min_distance * s:
                return cand
        return base

    def _kinds(self, rng: np.random.Generator, i: int) -> list[int]:
        # Each negative's kind is drawn with the configured odds; hard only once mined.
        blank = self.sampler.blank_fraction
        hard = self.sampler.hard_fraction if len(self.hard.get(i, ())) else 0.0
        u = rng.random(self.sampler.negatives)
        return [1 if x < blank else 2 if x < blank + hard else 0 for x in u]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        i = index % len(self.samples)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        cfg = self.augment
        sample = self.samples[i]
        aoi, valid = self._aois[i], sample.valid
        hw = self.input_hw
        s = STORE_WINDOW_PX

        def geo() -> tuple[float, float]:
            ang = rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)
            scale = math.exp(rng.uniform(-1, 1) * math.log1p(cfg.max_scale))
            return ang, s * scale

        tc, tr = sample.record.true_center
        shift = rng.uniform(-cfg.max_shift, cfg.max_shift, size=2) * s
        ang, side = geo()
        pos = crop_window(
            aoi, valid, (tc + shift[0], tr + shift[1]), out_hw=hw, side_px=side, angle_deg=ang
        )
        kinds = self._kinds(rng, i)
        negs = []
        for kind in kinds:
            ang, side = geo()
            center = self._negative_center(i, kind, rng)
            negs.append(crop_window(aoi, valid, center, out_hw=hw, side_px=side, angle_deg=ang))
        photo = self._photos[i]
        interp = cv2.INTER_AREA if hw[0] <= s else cv2.INTER_LINEAR
        anchor = np.clip(cv2.resize(photo, (hw[1], hw[0]), interpolation=interp), 0, 1)
        if self.mode == "gray":
            anchor = _photometric(anchor, rng, cfg, 1.0)
            pos = _photometric(pos, rng, cfg, cfg.window_photometric)
            negs = [_photometric(n, rng, cfg, cfg.window_photometric) for n in negs]
        else:
            anchor = _flip_noise(anchor, rng, cfg.grain / 3)
        k90 = int(rng.integers(4)) if cfg.rot90 and hw[0] == hw[1] else 0
        if cfg.rot90 and hw[0] != hw[1]:
            k90 = 2 * int(rng.integers(2))  # non-square inputs only turn by 180°

        def t(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(np.rot90(x, k90)))[None].float()

        return {
            "anchor": t(anchor),
            "positive": t(pos),
            "negatives": torch.stack([t(n) for n in negs]),
            "kinds": torch.tensor(kinds, dtype=torch.int64),
            "sample": torch.tensor(i, dtype=torch.int64),
        }


# -- scoring the stored AoIs ------------------------------------------------------------


def sample_heatmap(
    model: Embedder,
    sample: Sample,
    *,
    mode: str | None = None,
    engine: str = "dense",
    stride_fraction: float = 0.25,
    context_cells: int | None = None,
) -> Heatmap:
    """The heatmap of a stored sample, as ``locate`` computes it (stored-pixel coordinates).

    ``pixel_to_map`` is the identity: cells map to stored AoI pixels.
    ``context_cells`` None keeps the engine's default padding.
    """
    m = mode or model.spec.preprocessing
    context = {} if context_cells is None else {"context_cells": context_cells}
    return compute_heatmap(
        sample.photo_image(m),
        sample.aoi_image(m),
        model=model,
        window_px=STORE_WINDOW_PX,
        pixel_to_map=Affine.identity(),
        crs=CRS.from_epsg(3031),
        config=HeatmapConfig(engine=engine, stride_fraction=stride_fraction, **context),
    )


@dataclass(frozen=True, kw_only=True)
class SampleScore:
    """Localisation quality of one photo's heatmap.

    Attributes:
        sample_id: the sample.
        confidence: confidence level (%).
        rank: rank (1 = best) of the first NMS candidate within half a window
            of the truth, or 0 if none of the candidates is.
        hits: k → the truth lies within half a window of one of the top-k candidates.
        error_windows: distance of the top candidate from the truth, in windows.
    """

    sample_id: str
    confidence: float
    rank: int
    hits: dict[int, bool]
    error_windows: float


def score_heatmap(
    heatmap: Heatmap,
    center: tuple[float, float],
    *,
    sample_id: str = "",
    ks: Sequence[int] = (1, 5),
    max_candidates: int = 20,
) -> SampleScore:
    """Confidence level and recall@k of a heatmap whose cells map to stored pixels."""
    _, conf = heatmap_truth(heatmap, center)
    cands = find_candidates(heatmap, max_candidates=max(max_candidates, *ks))
    s = heatmap.window_px
    dists = [math.hypot(c.x - center[0], c.y - center[1]) / s for c in cands]
    rank = rank_of_truth(dists, 0.5)
    return SampleScore(
        sample_id=sample_id,
        confidence=conf,
        rank=rank or 0,
        hits=recall_at(rank, ks),
        error_windows=dists[0] if dists else float("nan"),
    )


def score_sample(
    model: Embedder,
    sample: Sample,
    *,
    ks: Sequence[int] = (1, 5),
    engine: str = "dense",
    stride_fraction: float = 0.25,
    max_candidates: int = 20,
) -> SampleScore:
    """Confidence level and recall@k of one stored sample (heatmap as ``locate`` computes it)."""
    hm = sample_heatmap(model, sample, engine=engine, stride_fraction=stride_fraction)
    return score_heatmap(
        hm,
        sample.record.true_center,
        sample_id=sample.record.sample_id,
        ks=ks,
        max_candidates=max_candidates,
    )


def hard_cells(
    scores: np.ndarray, grid: WindowGrid, *, pool: int = 8, min_distance: float = 0.5
) -> np.ndarray:
    """The ``pool`` best-scoring grid windows at least ``min_distance`` windows from the truth.

    Args:
        scores: ``[R x C]`` heatmap on ``grid`` (NaN = not scored).
        grid: the sample's window grid.
        pool: how many to keep; picks lie at least half a window apart.
        min_distance: in windows.

    Returns:
        ``[M x 2]`` (row, col), best first (M ≤ pool).
    """
    if scores.shape != grid.shape:
        raise DataQualityError(
            f"heatmap grid {scores.shape} differs from the window grid {grid.shape}"
        )
    masked = np.where(grid.distance >= min_distance, scores, np.nan)
    flat = np.where(np.isfinite(masked), masked, -np.inf).ravel()
    frac = grid.stride_px / STORE_WINDOW_PX
    picked: list[tuple[int, int]] = []
    for k in np.argsort(-flat, kind="stable"):
        if not np.isfinite(flat[k]) or len(picked) >= pool:
            break
        r, c = divmod(int(k), grid.shape[1])
        # Keep picks apart (half a window) so the pool is diverse.
        if all(math.hypot(r - pr, c - pc) * frac >= 0.5 for pr, pc in picked):
            picked.append((r, c))
    return np.asarray(picked, dtype=np.int64).reshape(-1, 2)


def mine_hard_negatives(
    model: Embedder,
    samples: Sequence[Sample],
    grids: Sequence[WindowGrid],
    *,
    pool: int = 8,
    min_distance: float = 0.5,
    engine: str = "dense",
    heatmap: Callable[[int, float], Heatmap] | None = None,
) -> dict[int, np.ndarray]:
    """The windows the current model confuses most with the truth, per sample.

    Scores every grid window (a heatmap at the grid's stride, without
    gradients) and keeps the ``pool`` best-scoring windows at least
    ``min_distance`` windows from the truth (:func:`hard_cells`).

    Args:
        model: the model being trained.
        samples: the training samples.
        grids: their window grids (:func:`window_grid`).
        pool: windows kept per sample.
        min_distance: in windows.
        engine: heatmap engine.
        heatmap: ``(sample index, stride fraction) → Heatmap``, to replace
            :func:`sample_heatmap` (e.g. with cached trunk features).

    Returns:
        sample index → ``[M x 2]`` (row, col) grid cells, best first.
    """
    out: dict[int, np.ndarray] = {}
    was_training = model.training
    model.eval()
    try:
        for i, (sample, grid) in enumerate(zip(samples, grids, strict=True)):
            frac = grid.stride_px / STORE_WINDOW_PX
            hm = (
                heatmap(i, frac)
                if heatmap is not None
                else sample_heatmap(model, sample, engine=engine, stride_fraction=frac)
            )
            picks = hard_cells(hm.scores, grid, pool=pool, min_distance=min_distance)
            if len(picks):
                out[i] = picks
    finally:
        model.train(was_training)
    return out


# -- CLI --------------------------------------------------------------------------------


def triplets_command(
    archives: Sequence[Path],
    out: Path,
    *,
    buffer_m: float = DEFAULT_BUFFER_M,
    threshold: int | None = None,
    echo: Callable[[str], None] | None = None,
) -> DatasetManifest:
    """Body of ``aeroloc triplets``: build a dataset with a progress bar and print a summary.

    Args:
        archives: ``--archive`` folders (repeatable).
        out: ``--out`` dataset folder.
        buffer_m: ``--buffer-m``.
        threshold: ``--threshold`` fixed gray level (default: averaged histogram).
        echo: where the summary lines go (default ``click.echo``).
    """
    import click
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    say = echo or click.echo
    thr = None if threshold is None else AveragedHistogramThreshold.fixed(threshold)
    with Progress(
        TextColumn("[bold]triplets"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def progress(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=label)

        manifest = build_dataset(archives, out, buffer_m=buffer_m, threshold=thr, progress=progress)
    groups = manifest.groups
    say(
        f"dataset {manifest.root}: {len(manifest.samples)} photos in {len(groups)} flight lines "
        f"from {len(manifest.archives)} archive(s); {len(manifest.skipped)} skipped"
    )
    for s in manifest.skipped:
        say(f"  skipped {s['archive']}/{s['photo_id']}: {s['reason']}")
    say(f"  threshold {manifest.threshold} (threshold.json), data hash {manifest.data_hash[:16]}")
    say(f"  manifest  {manifest.root / MANIFEST_NAME}")
    return manifest


__all__ = [
    "STORE_WINDOW_PX",
    "ArchiveRecord",
    "AugmentConfig",
    "DatasetManifest",
    "Sample",
    "SampleRecord",
    "SampleScore",
    "SamplerConfig",
    "Split",
    "TripletDataset",
    "WindowGrid",
    "augment_photo",
    "build_dataset",
    "combine_datasets",
    "crop_window",
    "dataset_hash",
    "hard_cells",
    "load_sample",
    "load_samples",
    "mine_hard_negatives",
    "read_manifest",
    "rotate_point",
    "sample_heatmap",
    "score_heatmap",
    "score_sample",
    "split_by_group",
    "triplets_command",
    "window_grid",
    "window_nodata",
]
