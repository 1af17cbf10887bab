"""Building a triplet dataset: every photo of the archives prepared as ``locate`` prepares it.

:func:`build_dataset` runs every photo of one or more archives through the
same :func:`~aeroloc.preprocess.prepare.prepare_pair` call that ``locate`` uses, with the
same noisy catalog inputs (centre, altitude, heading), so a model trains on
exactly what it will search. An *archive* is any folder with located photos::

    catalog.gpkg | catalog.csv   noisy metadata (what locate reads)
    reference.tif                reference raster (name from truth.json "reference")
    rock_outcrop.gpkg            rock polygons, optional (truth.json "rock_outcrop")
    truth.json                   {"crs", "seed"?, "preset"?, "photos": [{"photo_id",
                                 "center_x", "center_y", ...}]}: the true centres

which is what :func:`aeroloc.synth.make_archive` writes. The dataset folder is
described in :mod:`aeroloc.training.dataset`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rasterio.crs import CRS

from aeroloc.aoi import DEFAULT_BUFFER_M, AoIConfig, build_aoi
from aeroloc.catalog import PhotoRecord
from aeroloc.errors import (
    AeroLocError,
    DataQualityError,
    InvalidInputError,
    MissingFileError,
    OutputError,
)
from aeroloc.files import atomic_output, check_output_dir, read_gray, require_file, write_json
from aeroloc.io.archive import Archive, read_archive, refuse_test_only
from aeroloc.preprocess import AveragedHistogramThreshold, crop_frame, gray_histogram
from aeroloc.preprocess.prepare import PreparedPair, prepare_request
from aeroloc.request import LocateRequest
from aeroloc.training.dataset import (
    MANIFEST_NAME,
    STORE_WINDOW_PX,
    THRESHOLD_NAME,
    ArchiveRecord,
    DatasetManifest,
    Progress,
    SampleRecord,
    arrays_hash,
    dataset_hash,
)


def _wrap_deg(a: float) -> float:
    return float((a + 180.0) % 360.0 - 180.0)


def _resize(img: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    h, w = shape_hw
    interp = cv2.INTER_AREA if img.shape[0] >= h and img.shape[1] >= w else cv2.INTER_LINEAR
    return cv2.resize(img.astype(np.float32), (w, h), interpolation=interp)


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _window_nodata(valid: np.ndarray, c: float, r: float, side: float) -> float:
    """NaN share of the axis-aligned window of ``side`` centred on (c, r); 1 outside."""
    c0, r0 = round(c - side / 2), round(r - side / 2)
    s = round(side)
    if c0 < 0 or r0 < 0 or c0 + s > valid.shape[1] or r0 + s > valid.shape[0]:
        return 1.0
    return float(1.0 - valid[r0 : r0 + s, c0 : c0 + s].mean())


def _threshold_of(
    archives: Sequence[Archive], progress: Progress | None, total: int
) -> AveragedHistogramThreshold:
    """Averaged-histogram threshold over the frame-cropped photos of every archive."""

    def images() -> Iterable[np.ndarray]:
        done = 0
        for a in archives:
            for rec in a.catalog:
                if rec.photo_id not in a.truth:
                    continue
                path = a.photo_path(rec)
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
        InvalidInputError: no archive, duplicate archives, a test-only archive, bad options.
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
    parsed = _read_archives(roots)
    root = Path(out)
    check_output_dir(root, "dataset folder")
    before = _existing(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create dataset folder {root}: {exc.strerror or exc}") from exc
    total = sum(sum(1 for r in a.catalog if r.photo_id in a.truth) for a in parsed)
    if total == 0:
        raise DataQualityError(
            "no catalog photo has a truth record in " + ", ".join(str(r) for r in roots)
        )
    try:
        return _build_all(
            root,
            parsed,
            buffer_m,
            thr_given=threshold,
            max_nodata=max_nodata,
            workers=workers,
            progress=progress,
            total=total,
        )
    except BaseException:
        # Nothing half-built stays behind: what this run added is removed again.
        _remove_new(root, before)
        raise


def _build_all(
    root: Path,
    parsed: Sequence[Archive],
    buffer_m: float,
    *,
    thr_given: AveragedHistogramThreshold | None,
    max_nodata: float,
    workers: int,
    progress: Progress | None,
    total: int,
) -> DatasetManifest:
    """The body of :func:`build_dataset` once its inputs are checked."""
    thr = thr_given if thr_given is not None else _threshold_of(parsed, progress, total)
    thr.save(root / THRESHOLD_NAME)

    jobs = [(a, rec) for a in parsed for rec in a.catalog if rec.photo_id in a.truth]

    def one(job: tuple[Archive, PhotoRecord]) -> SampleRecord | dict[str, str]:
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
    manifest = _manifest(root, parsed, jobs, results, buffer_m, thr)
    write_json(root / MANIFEST_NAME, manifest.to_dict())
    return manifest


def _read_archives(roots: Sequence[Path]) -> list[Archive]:
    """The archives, with ids made unique; all must share one CRS; none test-only."""
    if len(set(roots)) != len(roots):
        raise InvalidInputError("the same archive is given twice")
    parsed = [read_archive(r) for r in roots]
    for a in parsed:
        refuse_test_only(a)
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
    return parsed


def _existing(root: Path) -> set[Path] | None:
    """Every path under ``root`` now (None: ``root`` does not exist yet)."""
    if not root.exists():
        return None
    return {root, *root.rglob("*")}


def _remove_new(root: Path, before: set[Path] | None) -> None:
    """Delete what appeared under ``root`` since :func:`_existing` (``root`` too if it is new)."""
    if before is not None and not root.exists():
        return
    new = [
        p for p in (root.rglob("*") if root.exists() else ()) if before is None or p not in before
    ]
    for p in sorted(new, key=lambda q: len(q.parts), reverse=True):
        with contextlib.suppress(OSError):
            if p.is_dir() and not p.is_symlink():
                p.rmdir()
            else:
                p.unlink()
    if before is None:
        with contextlib.suppress(OSError):
            root.rmdir()


def _manifest(
    root: Path,
    parsed: Sequence[Archive],
    jobs: Sequence[tuple[Archive, PhotoRecord]],
    results: Sequence[SampleRecord | dict[str, str]],
    buffer_m: float,
    thr: AveragedHistogramThreshold,
) -> DatasetManifest:
    """The manifest of the built samples (raises when none could be built)."""
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
    return DatasetManifest(
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


def _build_one(
    a: Archive,
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
    pp = _prepare(
        a, rec, altitude_m=rec.altitude_m, azimuth_deg=rec.azimuth_deg, buffer_m=buffer_m, thr=thr
    )
    tx, ty = truth.center_x, truth.center_y
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
    sha = arrays_hash(arrays)
    rel = Path("samples") / a.archive_id / f"{_safe(rec.photo_id)}.npz"
    _write_sample(root / rel, arrays)
    az_err = None
    if truth.azimuth_deg is not None:
        az_err = _wrap_deg(rec.azimuth_deg - float(truth.azimuth_deg))
    size_ratio = None
    if truth.gsd_m is not None and truth.image_box_px is not None:
        box = truth.image_box_px
        size_ratio = float(pp.ground_size_m / (float(truth.gsd_m) * (box[2] - box[0])))
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


def _prepare(
    a: Archive,
    rec: PhotoRecord,
    *,
    altitude_m: float,
    azimuth_deg: float,
    buffer_m: float,
    thr: AveragedHistogramThreshold,
) -> PreparedPair:
    """Stage 3 for one catalog photo: :func:`~aeroloc.preprocess.prepare.prepare_request`,
    as ``locate`` runs it (the catalog's altitude and heading, no truth)."""
    request = LocateRequest(
        photo_path=require_file(a.photo_path(rec), f"photo {rec.photo_id}"),
        references=(a.reference,),
        aoi=build_aoi(rec, AoIConfig(buffer_m=buffer_m)),
        azimuth_deg=azimuth_deg,
        ground_size_m=rec.camera().ground_size_m(altitude_m)[0],
        rock_mask_path=a.rock_mask,
        photo_id=rec.photo_id,
    )
    # Part of an AoI may lie off the reference; those pixels are NaN and handled
    # below. Photos are prepared in threads, so no warnings filter (not thread-safe).
    return prepare_request(request, threshold=thr, warn_partial=False)[1]


def _write_sample(path: Path, arrays: dict[str, np.ndarray]) -> None:
    try:
        with atomic_output(path) as tmp, open(tmp, "wb") as f:
            _savez(f, arrays)
    except OSError as exc:
        if isinstance(exc, AeroLocError):
            raise
        raise OutputError(f"cannot write sample {path}: {exc.strerror or exc}") from exc


def _savez(f: Any, arrays: dict[str, np.ndarray]) -> None:
    savez: Any = np.savez_compressed  # its stub types **kwds as its own options
    savez(f, **arrays)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
