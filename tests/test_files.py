"""Atomic outputs and the error hierarchy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from aeroloc import errors
from aeroloc.files import atomic_output, parse_crs, read_gray, write_geotiff, write_json


def test_error_classes_share_one_root_and_builtins():
    assert issubclass(errors.InvalidInputError, ValueError)
    assert issubclass(errors.RasterReadError, OSError)
    assert issubclass(errors.MissingFileError, FileNotFoundError)
    for name in dir(errors):
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, errors.AeroLocError)


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "result.json"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_replaces_only_when_complete(tmp_path):
    target = write_json(tmp_path / "a.json", {"x": np.float32(1.5)})
    assert target.read_text().strip().endswith("}")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_unwritable_folder_is_an_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(errors.OutputError, match="cannot write"):
        write_json(blocker / "out" / "result.json", {})


def test_geotiff_round_trip_and_crs_parsing(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = write_geotiff(
        tmp_path / "x.tif",
        arr,
        crs="EPSG:3031",
        transform=rasterio.transform.from_origin(0, 0, 10, 10),
    )
    assert np.array_equal(read_gray(path), arr)
    assert parse_crs("3031").to_epsg() == 3031
    with pytest.raises(errors.CRSError, match="unknown CRS"):
        parse_crs("EPSG:999999")


def test_a_full_disk_is_recognised_in_each_writer_s_wording():
    import errno

    from aeroloc.files import is_disk_full

    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(
        RuntimeError("sqlite3_exec(CREATE TABLE ...) failed: database or disk is full")
    )
    wrapped = ValueError("write failed")
    wrapped.__cause__ = OSError(errno.EDQUOT, "Disk quota exceeded")
    assert is_disk_full(wrapped)
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))


def test_a_failed_write_to_a_full_disk_is_one_output_error_and_leaves_nothing(tmp_path):
    import errno

    from aeroloc.errors import OutputError
    from aeroloc.files import atomic_output

    final = tmp_path / "candidates.gpkg"
    with pytest.raises(OutputError, match="no space left on device"), atomic_output(final) as tmp:
        tmp.write_bytes(b"half")
        Path(str(tmp) + "-journal").write_bytes(b"journal")  # as SQLite leaves it
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []
