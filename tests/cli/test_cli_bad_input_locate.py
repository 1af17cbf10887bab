"""``aeroloc locate`` on bad input: the checks needing no model come before torch; exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import aeroloc
from cli_helpers import assert_one_line_error, files_under, run


def test_a_missing_photo_is_answered_before_torch_is_imported(archive, catalog_args, tmp_path):
    out = tmp_path / "out"
    args = [
        "locate",
        str(tmp_path / "nonexistent.tif"),
        *map(str, catalog_args()),
        "--out",
        str(out),
    ]
    script = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "from aeroloc.cli import cli\n"
        "try:\n"
        f"    cli({args!r})\n"
        "except SystemExit as exc:\n"
        "    print(exc.code, 'torch' in sys.modules, round(time.perf_counter() - t, 3))\n"
    )
    src = str(Path(aeroloc.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src}
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    wall = time.perf_counter() - t0
    code, torch_loaded, in_process = done.stdout.split()
    print(f"locate on a missing photo: {float(in_process):.2f} s in the CLI, {wall:.2f} s wall")
    assert (code, torch_loaded) == ("2", "False"), done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [f"aeroloc: error: photo not found: {tmp_path / 'nonexistent.tif'}"]
    assert files_under(out) == []


def test_a_huge_gsd_with_aoi_names_gsd_and_aoi(archive, tmp_path):
    photo = sorted((archive / "photos").glob("*.tif"))[0]
    out = tmp_path / "out"
    args = ["--reference", archive / "reference.tif", "--aoi", "411144,-1281719,416898,-1275965"]
    result = run("locate", photo, *args, "--gsd-m", "1e6", "--azimuth-deg", 10, "--out", out)
    line = assert_one_line_error(result, "at --gsd-m 1e+06 the photo", "larger --aoi")
    assert "buffer" not in line
    assert files_under(out) == []


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_a_bad_gsd_is_refused_at_once(archive, tmp_path, value):
    photo = sorted((archive / "photos").glob("*.tif"))[0]
    result = run(
        "locate",
        photo,
        "--reference",
        archive / "reference.tif",
        "--gsd-m",
        value,
        "--out",
        tmp_path / "out",
    )
    assert_one_line_error(result, "--gsd-m must be a positive number")


def test_a_missing_checkpoint_is_answered_before_torch(archive, catalog_args, tmp_path):
    result = run(
        "locate", *catalog_args(), "--model", tmp_path / "nope.pt", "--out", tmp_path / "o"
    )
    assert_one_line_error(result, f"checkpoint (--model) not found: {tmp_path / 'nope.pt'}")


def test_a_raw_state_dict_as_model_names_a_fix_locate_has(archive, catalog_args, tmp_path):
    torch = pytest.importorskip("torch")
    raw = tmp_path / "raw.pt"
    torch.save({"conv.weight": torch.zeros(2, 2)}, raw)
    out = tmp_path / "out"
    # A killed run's leftovers: a later run into the same folder removes them.
    out.mkdir()
    leftovers = [
        out / ".footprint.abcd1234.tmp.gpkg",
        out / ".candidates.abcd1234.tmp.gpkg-journal",
    ]
    for p in leftovers:
        p.write_bytes(b"")
    result = run("-q", "locate", *catalog_args(), "--model", raw, "--out", out)
    line = assert_one_line_error(result, "raw.pt is not an aeroloc checkpoint", "aeroloc train")
    assert "--weights PATH`" not in line and "(CLI: --weights PATH)" not in line
    assert files_under(out) == []


class _Payload:
    """Not a tensor: ``weights_only`` loading refuses it."""


def test_a_pickle_checkpoint_is_refused_in_one_line(archive, catalog_args, tmp_path):
    torch = pytest.importorskip("torch")
    bad = tmp_path / "pickle.pt"
    torch.save({"format": "aeroloc-checkpoint", "obj": _Payload()}, bad)
    result = run("locate", *catalog_args(), "--model", bad, "--out", tmp_path / "out")
    line = assert_one_line_error(result, "holds Python objects besides tensors (a pickle payload)")
    assert "weights_only=False" not in line
    assert files_under(tmp_path / "out") == []
