"""File I/O shared by every stage: atomic writes, raster opening with clear errors.

Every output goes through :func:`atomic_output`: it is written to a hidden
temporary file in the destination folder and renamed into place only when
complete, so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import CRSError as RioCRSError
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from aeroloc.errors import (
    CRSError,
    DataQualityError,
    InvalidInputError,
    MissingFileError,
    OutputError,
    OutputInUseError,
    RasterReadError,
)

logger = logging.getLogger(__name__)

#: The name :func:`atomic_output` gives its temporary file: ``.<stem>.<random>.tmp<suffix>``
#: (the random part is :func:`tempfile.mkstemp`'s eight characters).
#: A GeoPackage's SQLite journal beside it (``-journal``, ``-wal``, ``-shm``) counts too.
TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?(-journal|-wal|-shm)?$")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary name keeps the suffix so that format drivers (GeoTIFF,
    GeoPackage, PNG) recognise it. On any exception the temporary file is
    removed and ``path`` is left untouched.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent
        )
    except OSError as exc:
        raise OutputError(f"cannot write into {final.parent}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    # Some drivers refuse to open an existing empty file for writing.
    tmp.unlink()
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"nothing was written for {final}")
        os.replace(tmp, final)
    except BaseException as exc:
        # SQLite (GeoPackage) may leave its journal beside a write that failed.
        for leftover in (tmp, *(tmp.with_name(tmp.name + s) for s in _SQLITE_SIDE_FILES)):
            with contextlib.suppress(OSError):
                leftover.unlink()
        if is_disk_full(exc):
            raise OutputError(
                f"cannot write {final}: no space left on device; free some space "
                "(or choose another --out) and rerun: finished files are kept"
            ) from exc
        raise


#: The files SQLite keeps beside a database while it writes.
_SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")

#: How GDAL, SQLite and the C library word a full disk in the errors they raise.
_DISK_FULL_WORDS = ("no space left on device", "disk is full", "free disk space")


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the disk is full.

    Writers report it in their own way: Python as ``OSError`` with ``ENOSPC``
    (or ``EDQUOT``, a full quota), GDAL and SQLite (rasterio, pyogrio) in the
    message of their own exception types.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(word in str(current).lower() for word in _DISK_FULL_WORDS):
            return True
        current = current.__cause__ or current.__context__
    return False


def remove_temp_files(folder: str | os.PathLike[str]) -> int:
    """Delete temporary files :func:`atomic_output` left in ``folder`` (a killed run).

    Only regular files whose name matches :data:`TEMP_NAME` are removed; the
    folder's subfolders are not visited. Returns how many were removed.
    """
    root = Path(folder)
    n = 0
    try:
        entries = list(root.iterdir())
    except OSError:
        return 0
    for entry in entries:
        if TEMP_NAME.match(entry.name) and entry.is_file() and not entry.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                n += 1
    if n:
        logger.info("removed %d unfinished temporary file(s) from %s", n, root)
    return n


#: The lock file :func:`output_lock` keeps in an output folder while a run writes there.
LOCK_NAME = ".aeroloc.lock"


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike[str], option: str = "--out") -> Iterator[Path]:
    """Hold the exclusive lock of output ``folder`` for the ``with`` block; yield the folder.

    The lock is an ``fcntl.flock`` on ``folder/.aeroloc.lock``, which holds the
    owner's process id. The kernel drops the lock when its process dies, so a
    lock file left by a killed run is stale: it is taken over with a warning
    naming the dead process. The lock file is removed on exit (also on an
    exception), and so is ``folder`` if this call created it and it is still
    empty. Clean up temporary files (:func:`remove_temp_files`) only while
    holding the lock: the other run's temporary files are its unfinished work.

    Raises:
        OutputInUseError: another process holds the lock.
        OutputError: the folder or its lock file cannot be created.
    """
    root = Path(folder)
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {option} {root}: {exc.strerror or exc}") from exc
    path = root / LOCK_NAME
    try:
        fd = _acquire(path, root, option)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                root.rmdir()
        raise
    try:
        yield root
    finally:
        # Unlink before unlocking: a process waiting on this inode then sees
        # that the path no longer names it and starts again (see _acquire).
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                root.rmdir()


def _acquire(path: Path, root: Path, option: str) -> int:
    """Open and lock ``path``; return its descriptor, holding the lock with our pid in it."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot lock {option} {root}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = _lock_owner(fd)
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise OutputError(f"cannot lock {option} {root}: {exc.strerror or exc}") from exc
            who = f"pid {owner}" if owner is not None else "pid unknown"
            raise OutputInUseError(
                f"{option} {root} is in use by another aeroloc run ({who}): "
                f"wait for it to finish, or choose another {option}"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the previous owner removed the file while we waited for it
            os.close(fd)
            continue
        previous = _lock_owner(fd)
        if previous is not None and previous != os.getpid():
            state = "still running, as another program" if _alive(previous) else "no longer running"
            logger.warning(
                "%s %s: taking over the lock of an aeroloc run that did not finish (pid %d, %s)",
                option,
                root,
                previous,
                state,
            )
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise OutputError(f"cannot lock {option} {root}: {exc.strerror or exc}") from exc
        return fd


def _lock_owner(fd: int) -> int | None:
    """The process id written in an open lock file, or None (empty, garbage)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    return Path(path)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def require_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise :class:`MissingFileError` naming ``what``.

    A folder where a file is expected, or an empty file, is
    :class:`InvalidInputError` (it exists: "not found" or a reader's "not a
    supported format" would name the wrong problem).
    """
    p = Path(path)
    if p.is_dir():
        raise InvalidInputError(f"{what} {p} is a folder: give the file itself")
    if not p.is_file():
        raise MissingFileError(f"{what} not found: {p}")
    if p.stat().st_size == 0:
        raise InvalidInputError(f"{what} {p} is empty (0 bytes): an interrupted copy or download?")
    return p


def read_vector_info(
    path: str | os.PathLike[str], what: str, *, layer: str | int | None = None
) -> dict[str, Any]:
    """``pyogrio.read_info`` of a vector file, or a one-line error naming ``what``.

    Cheap (no feature is read), so commands call it before any heavy work.

    Raises:
        MissingFileError, InvalidInputError: missing, a folder, empty or not a
            readable vector layer (a GeoPackage without layers included).
        CRSError: the layer has no CRS.
    """
    import pyogrio
    from pyogrio.errors import DataLayerError, DataSourceError

    p = require_file(path, what)
    try:
        info: dict[str, Any] = pyogrio.read_info(p, layer=layer)
    except (DataSourceError, DataLayerError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "no layers" in reason.lower() or "not recognized" in reason.lower():
            reason = "not a vector file with a layer (GeoPackage, shapefile, GeoJSON...)"
        raise InvalidInputError(f"cannot read {what} {p}: {reason}") from exc
    if not info.get("crs"):
        raise CRSError(f"{what} {p} have no CRS: assign one (e.g. ogr2ogr -a_srs EPSG:3031)")
    return info


def check_output_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Fail at once unless folder ``path`` exists or can be created, and is writable.

    Commands call it before any work, so that an unwritable output is found in
    the first second, not after minutes of computing. Nothing is created: the
    nearest existing folder on the way up must be writable.

    Raises:
        OutputError: ``path`` is a file, lies under a file, or is not writable.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{option} {p} exists and is not a folder: give a folder")
    ancestor = p
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"cannot create {option} {p}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        what = f"{option} {p}" if ancestor == p else f"{ancestor} (on the way to {option} {p})"
        raise OutputError(f"{what} is not writable: choose another {option}")
    return p


def check_output_file(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Fail at once unless file ``path`` can be written (see :func:`check_output_dir`).

    Raises:
        OutputError: ``path`` is a folder, or its folder cannot be created or written.
    """
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{option} {p} is a folder: give a file name")
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputError(f"{option} {p} is not writable: choose another {option}")
    ancestor = p.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"cannot write {option} {p}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {option} {p}: {ancestor} is not writable")
    return p


def parse_crs(value: str | int | CRS) -> CRS:
    """Parse ``EPSG:3031``, ``3031``, a WKT or PROJ string into a CRS, or raise CRSError."""
    if isinstance(value, CRS):
        return value
    text = str(value).strip()
    try:
        if text.isdigit():
            return CRS.from_epsg(int(text))
        return CRS.from_user_input(text)
    except (RioCRSError, ValueError) as exc:
        raise CRSError(f"unknown CRS {text!r}: use e.g. EPSG:3031") from exc


def open_raster(
    path: str | os.PathLike[str], *, what: str = "raster", need_crs: bool = False
) -> rasterio.DatasetReader:
    """Open a raster for reading, mapping every failure to an aeroloc error.

    Args:
        path: raster file.
        what: how the message names the file ("reference raster", "photo").
        need_crs: raise :class:`CRSError` when the raster has no CRS.
    """
    p = require_file(path, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(p)
    except RasterioIOError as exc:
        raise RasterReadError(f"cannot read {what} {p}: not a readable raster ({exc})") from exc
    if need_crs and ds.crs is None:
        ds.close()
        raise CRSError(f"{what} {p} has no CRS: assign one (e.g. gdal_edit.py -a_srs EPSG:3031)")
    return ds


def read_gray(path: str | os.PathLike[str], *, what: str = "photo") -> np.ndarray:
    """Read a raster as one float32 gray band ``[H x W]`` in its native value range.

    RGB(A) is converted with ITU-R 601 weights; nodata becomes NaN, and so do
    NaN and ±Inf pixels of a float raster (see :func:`finite_or_nan`).
    """
    with open_raster(path, what=what) as ds:
        try:
            data = ds.read(masked=True)
        except RasterioIOError as exc:
            raise RasterReadError(f"cannot read {what} {path}: corrupt data ({exc})") from exc
    arr = finite_or_nan(np.ma.filled(data.astype(np.float32), np.nan))
    gray = 0.299 * arr[0] + 0.587 * arr[1] + 0.114 * arr[2] if arr.shape[0] >= 3 else arr[0]
    return np.asarray(gray, dtype=np.float32)


def require_photo_contrast(scan: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Raise :class:`DataQualityError` when a scan has no valid pixel or one value everywhere."""
    finite = np.isfinite(scan)
    if not finite.any():
        raise DataQualityError(f"photo {path} has no valid pixel (all nodata)")
    lo, hi = float(scan[finite].min()), float(scan[finite].max())
    if hi - lo < 1e-6:
        raise DataQualityError(
            f"photo {path} is one constant value ({lo:g}) everywhere: "
            "give the scanned photo, not a blank image"
        )


def finite_or_nan(data: np.ndarray) -> np.ndarray:
    """``data`` (float) with every NaN and ±Inf set to NaN, aeroloc's one nodata value.

    Float rasters often mark holes with NaN or Inf instead of (or besides) a
    declared nodata value; every reader of raster pixels passes them through
    here so that a hole is nodata, never a number. Changes ``data`` in place
    and returns it.
    """
    bad = ~np.isfinite(data)
    if bad.any():
        data[bad] = np.nan
    return data


def write_geotiff(
    path: str | os.PathLike[str],
    array: np.ndarray,
    *,
    transform: Any = None,
    crs: CRS | str | None = None,
    nodata: float | None = None,
    compress: str = "deflate",
) -> Path:
    """Write ``array`` (``[H x W]`` or ``[B x H x W]``) as a tiled GeoTIFF, atomically.

    ``transform``/``crs`` may be None for a plain (un-referenced) TIFF such as a
    scanned photo.
    """
    arr = array[np.newaxis] if array.ndim == 2 else array
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": arr.shape[1],
        "width": arr.shape[2],
        "count": arr.shape[0],
        "dtype": arr.dtype.name,
        "compress": compress,
    }
    if arr.shape[1] >= 256 and arr.shape[2] >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if transform is not None:
        profile["transform"] = transform
    if crs is not None:
        profile["crs"] = parse_crs(crs) if not isinstance(crs, CRS) else crs
    if nodata is not None:
        profile["nodata"] = nodata
    with atomic_output(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(arr)
    return Path(path)


def write_png(path: str | os.PathLike[str], figure: Any, *, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically and close it.

    Prefer ``matplotlib.figure.Figure`` over ``pyplot`` figures: they need no
    GUI backend and hold no global state.
    """
    try:
        with atomic_output(path) as tmp:
            figure.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    finally:
        if getattr(figure.canvas, "manager", None) is not None:
            import matplotlib.pyplot as plt

            plt.close(figure)
    return Path(path)
