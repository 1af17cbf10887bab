"""Running the CLI in a subprocess for the kill and disk-full tests, and reading what it left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from aeroloc.files import LOCK_NAME, TEMP_NAME

_SRC = str(Path(__file__).resolve().parents[2] / "src")


def aeroloc(*args: object) -> list[str]:
    return [sys.executable, "-c", "from aeroloc.cli import main; main()", *map(str, args)]


def environment() -> dict[str, str]:
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([_SRC, env.get("PYTHONPATH", "")])
    return env


def run_to_end(command: list[str]) -> None:
    done = subprocess.run(command, env=environment(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if TEMP_NAME.match(p.name) or p.name == LOCK_NAME]


def located(out: Path) -> object:
    """What a rerun must reproduce: ranked candidates and best window (no timings)."""
    record = json.loads((out / "result.json").read_text())
    return record["candidates"], record["best"], record["n_valid_windows"]


def whole_outputs(out: Path) -> None:
    """Every output file present after a kill is complete: it opens and reads."""
    import geopandas as gpd
    import numpy as np
    import rasterio

    for path in out.iterdir():
        if TEMP_NAME.match(path.name) or path.name == LOCK_NAME:
            continue
        if path.suffix == ".tif":
            with rasterio.open(path) as ds:
                ds.read()
        elif path.suffix == ".gpkg":
            gpd.read_file(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".npy":
            np.load(path)


def locate_args(archive: Path, out: Path) -> list[str]:
    """``aeroloc -q locate`` of the archive's first photo into ``out`` (unverified, 1.5 km)."""
    first = json.loads((archive / "truth.json").read_text())["photos"][0]["photo_id"]
    return aeroloc(
        "-q",
        "locate",
        "--reference",
        archive / "reference.tif",
        "--catalog",
        archive / "catalog.csv",
        "--photo-id",
        first,
        "--buffer-m",
        1500,
        "--no-verify",
        "--out",
        out,
    )
