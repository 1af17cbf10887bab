"""``aeroloc synth``, ``demo``, ``triplets`` and ``train``: bad input refused before any output."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from aeroloc.files import write_geotiff
from cli_helpers import assert_one_line_error, files_under, run


def test_a_dem_without_crs_is_refused(tmp_path):
    dem = tmp_path / "dem.tif"
    write_geotiff(
        dem,
        np.random.default_rng(0).random((200, 200), np.float32) * 1000,
        transform=from_origin(0, 2000, 10, 10),
    )
    out = tmp_path / "out"
    result = run("synth", "--out", out, "--preset", "tiny", "--dem", dem)
    assert_one_line_error(result, "DEM", "dem.tif has no CRS")
    assert files_under(out) == []


def test_a_1x1_dem_is_refused(tmp_path):
    dem = tmp_path / "dem1.tif"
    write_geotiff(
        dem, np.ones((1, 1), np.float32), transform=from_origin(0, 10, 10, 10), crs="EPSG:3031"
    )
    out = tmp_path / "out"
    result = run("synth", "--out", out, "--preset", "tiny", "--dem", dem)
    assert_one_line_error(result, "dem1.tif is 1 x 1 pixels")
    assert files_under(out) == []


def test_synth_removes_the_leftovers_of_a_killed_run(tmp_path):
    out = tmp_path / "out"
    (out / "photos").mkdir(parents=True)
    leftovers = [out / ".truth_epoch.abcd1234.tmp.tif", out / "photos" / ".X.abcd1234.tmp.tif"]
    for p in leftovers:
        p.write_bytes(b"")
    result = run("-q", "synth", "--out", out, "--preset", "tiny", "--seed", 3)
    assert result.exit_code == 0, result.output
    assert not any(p.exists() for p in leftovers)
    assert (out / "truth.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no-such-model"], "unknown model 'no-such-model'"),
        (["--model", "garbage.pt"], "checkpoint (--model) not found"),
        (["--buffer-m", "-5"], "--buffer-m must be a number >= 0"),
        (["--buffer-m", "1e9"], "buffer_m must be between 0 and"),
    ],
)
def test_demo_checks_its_arguments_before_writing_the_archive(tmp_path, args, message):
    out = tmp_path / "demo"
    result = run("demo", "--out", out, "--preset", "tiny", *args)
    assert_one_line_error(result, message)
    assert files_under(out) == []


def test_triplets_leaves_nothing_when_no_sample_could_be_made(archive, tmp_path):
    blank = shutil.copytree(archive, tmp_path / "blank")
    for photo in (blank / "photos").glob("*.tif"):
        with rasterio.open(photo) as ds:
            profile, shape = ds.profile, (ds.count, ds.height, ds.width)
        with rasterio.open(photo, "w", **profile) as ds:
            ds.write(np.full(shape, 90, dtype=profile["dtype"]))
    out = tmp_path / "data"
    result = run(
        "triplets", "--archive", blank, "--out", out, "--buffer-m", 1500, "--threshold", 128
    )
    assert_one_line_error(result, "no photo could be made into a sample", "one constant value")
    assert not out.exists()


def test_train_refuses_an_out_under_a_file_at_once(manifest, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    result = run(
        "train", "--model", "signet", "--data", manifest.root, "--out", a_file / "model.pt"
    )
    assert_one_line_error(result, f"cannot write --out {a_file / 'model.pt'}", "is a file")


def test_train_on_corrupt_sample_files_is_one_line(manifest, tmp_path):
    data = shutil.copytree(manifest.root, tmp_path / "data")
    first = json.loads((data / "manifest.json").read_text())["samples"][0]["file"]
    sample = data / first
    sample.write_bytes(sample.read_bytes()[:100])
    out = tmp_path / "model.pt"
    result = run(
        "train", "--model", "signet", "--data", data, "--out", out, "--epochs", 1, "--threads", 1
    )
    assert_one_line_error(result, "is corrupt", "rebuild the dataset with aeroloc triplets")
    assert not out.exists()
