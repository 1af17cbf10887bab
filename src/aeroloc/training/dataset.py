"""The triplet dataset on disk: its manifest, one stored sample per photo, loading.

The dataset folder (written by :func:`aeroloc.training.build.build_dataset`)::

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
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS

from aeroloc import __version__
from aeroloc.errors import ConfigError, DataQualityError, InvalidInputError
from aeroloc.files import require_file

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


def arrays_hash(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


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
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataQualityError(
            f"sample file {path} is corrupt ({exc}): rebuild the dataset with aeroloc triplets"
        ) from None
    missing = [k for k in ("photo", "aoi", "valid") if k not in arrays]
    if missing:
        raise DataQualityError(
            f"sample file {path} lacks {', '.join(missing)}: rebuild the dataset with "
            "aeroloc triplets"
        )
    if verify and arrays_hash(arrays) != rec.sha256:
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
