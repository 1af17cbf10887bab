"""``aeroloc batch``: bad input is one line and exit 2 before torch is imported; an archive
or a catalog file runs in-process, resumes, records a failed photo and retries it on request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

import aeroloc
from cli_helpers import run


def bad_cases(archive: Path, tmp: Path) -> dict[str, tuple[list[object], str]]:
    ref = archive / "reference.tif"
    a_file = tmp / "a-file"
    a_file.write_text("")
    return {
        "missing catalog": ([tmp / "nope.csv", "--reference", ref], "catalog not found: "),
        "missing reference": (
            [archive, "--reference", tmp / "nope.tif"],
            "reference raster not found: ",
        ),
        "catalog without reference": (
            [archive / "catalog.csv"],
            "is a catalog file: give --reference REF.tif",
        ),
        "folder not an archive": ([tmp], "is a folder but not an archive"),
        "bad scheduler": ([archive, "--scheduler", "localhost"], "is not tcp://HOST:PORT"),
        "workers and scheduler": (
            [archive, "--workers", 2, "--scheduler", "tcp://localhost:8786"],
            "give --workers or --scheduler, not both",
        ),
        "negative workers": ([archive, "--workers", -1], "--workers must be ≥ 0, got -1"),
        "out is a file": ([archive, "--out", a_file], "exists and is not a folder"),
        "out under a file": ([archive, "--out", a_file / "sub"], "cannot create --out"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing catalog",
        "missing reference",
        "catalog without reference",
        "folder not an archive",
        "bad scheduler",
        "workers and scheduler",
        "negative workers",
        "out is a file",
        "out under a file",
    ],
)
def test_bad_input_is_one_line_and_exit_2(archive, tmp_path, case):
    args, message = bad_cases(archive, tmp_path)[case]
    if "--out" not in args:
        args = [*args, "--out", tmp_path / "out"]
    result = run("batch", *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aeroloc: error: "), result.stderr
    assert message in lines[0]


def test_argument_checks_come_before_torch(archive, tmp_path):
    script = (
        "import sys\n"
        "from aeroloc.cli import cli\n"
        "try:\n"
        f"    cli(['batch', {str(archive)!r}, '--workers', '-3', '--out', {str(tmp_path)!r}])\n"
        "except SystemExit as exc:\n"
        "    print(exc.code, 'torch' in sys.modules, 'distributed' in sys.modules)\n"
    )
    src = str(Path(aeroloc.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.split() == ["2", "False", "False"], done.stderr


def test_an_archive_runs_in_process_then_resumes(archive, tmp_path):
    out = tmp_path / "out"
    args = ("batch", archive, "--out", out, "--workers", 0, "--no-verify", "--buffer-m", 1500)
    first = run("-v", *args)
    assert first.exit_code == 0, first.output
    ids = [p["photo_id"] for p in json.loads((archive / "truth.json").read_text())["photos"]]
    for pid in ids:
        assert (out / pid / "result.json").is_file() and (out / pid / "heatmap.png").is_file()
        assert f"aeroloc: photo {pid}: unverified in " in first.stderr
    assert "3 photo(s): 3 unverified. Methods: 3 search; 0 placed without" in first.stdout
    assert "This run located 3 (0 failed)" in first.stdout
    assert str(out / "results.gpkg") in first.stdout
    assert f"Report: {out / 'report.html'}." in first.stdout
    page = (out / "report.html").read_text()
    assert all(pid in page for pid in ids) and "data:image/png;base64," in page
    feet = gpd.read_file(out / "results.gpkg", layer="footprints")
    assert list(feet.photo_id) == ids and set(feet.status) == {"unverified"}
    assert feet.geometry.isna().all()  # unverified: no footprint

    again = run("-q", *args)
    assert again.exit_code == 0, again.output
    assert "This run located 0 (0 failed) and skipped 3 already processed" in again.stdout
    assert again.stderr == ""


def test_a_failed_photo_is_recorded_skipped_and_retried_on_request(archive, tmp_path):
    catalog = pd.read_csv(archive / "catalog.csv")
    catalog["path"] = [str(archive / p) for p in catalog["path"]]
    catalog = catalog.iloc[:2].copy()
    broken = catalog["photo_id"].iloc[1]
    catalog.loc[catalog.index[1], "path"] = str(tmp_path / "missing.tif")
    cat = tmp_path / "catalog.csv"
    catalog.to_csv(cat, index=False)
    out = tmp_path / "out"
    args = (
        "batch", cat, "--reference", archive / "reference.tif", "--out", out,
        "--workers", 0, "--no-verify", "--buffer-m", 1500,
    )  # fmt: skip
    first = run("-q", *args)
    assert first.exit_code == 0, first.output
    assert "2 photo(s): 1 unverified, 1 failed. Methods: 1 search;" in first.stdout
    assert "This run located 2 (1 failed)" in first.stdout
    failure = json.loads((out / broken / "failed.json").read_text())
    assert failure["attempts"] == 1 and failure["reason"].startswith("MissingFileError: ")

    skipped = run("-q", *args)
    assert "This run located 0 (0 failed) and skipped 2" in skipped.stdout
    retried = run("-q", *args, "--retry-failed")
    assert "This run located 1 (1 failed) and skipped 1" in retried.stdout
    assert json.loads((out / broken / "failed.json").read_text())["attempts"] == 2
    feet = gpd.read_file(out / "results.gpkg", layer="footprints")
    assert list(feet.status) == ["unverified", "failed"]
