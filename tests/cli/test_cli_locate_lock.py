"""``aeroloc locate``, ``demo`` and ``batch`` into a folder another run holds: refused, exit 2."""

from __future__ import annotations

import os

from aeroloc.files import LOCK_NAME, output_lock
from cli_helpers import assert_one_line_error, run


def test_locate_into_a_locked_folder_is_refused_in_one_line(archive, catalog_args, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    # The other run's unfinished temporary file: the refused run must not touch it.
    other = out / ".footprint.abcd1234.tmp.gpkg"
    other.write_bytes(b"partial")
    with output_lock(out):
        result = run("locate", *catalog_args(), "--no-verify", "--out", out)
        assert_one_line_error(
            result, f"--out {out} is in use by another aeroloc run (pid {os.getpid()})"
        )
        assert other.read_bytes() == b"partial"
        assert sorted(p.name for p in out.iterdir()) == sorted([LOCK_NAME, other.name])


def test_demo_into_a_locked_folder_is_refused_in_one_line(tmp_path):
    out = tmp_path / "demo"
    with output_lock(out):
        result = run("demo", "--out", out, "--no-verify")
        assert_one_line_error(result, "is in use by another aeroloc run", "choose another --out")
        assert [p.name for p in out.iterdir()] == [LOCK_NAME]  # no archive was synthesised


def test_batch_into_a_locked_folder_is_refused_and_leaves_its_files_alone(archive, tmp_path):
    out = tmp_path / "batch"
    out.mkdir()
    other = out / ".results.abcd1234.tmp.gpkg"  # the running batch's unfinished table
    other.write_bytes(b"partial")
    with output_lock(out):
        result = run("batch", archive, "--out", out, "--workers", "0", "--no-verify")
        assert_one_line_error(result, f"--out {out} is in use by another aeroloc run")
        assert other.read_bytes() == b"partial"
        assert sorted(p.name for p in out.iterdir()) == sorted([LOCK_NAME, other.name])
