"""The training and calibration scripts never use real (test-only) imagery.

``scripts/make_model.py`` (training and held-out archives) and
``scripts/calibrate_verify.py`` (the ``p_correct`` fit) work on synthetic
archives they make themselves; the real rasters of ``bench/real`` are test
data. These tests hold both scripts to it: their defaults and sources never
point at the sample-data folder or a bench/real archive, the archives they make
are synthetic (no ``dem``), and an archive marked test-only is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from aeroloc.errors import InvalidInputError
from archive_helpers import write_minimal_archive
from script_loader import load_script

REPO = Path(__file__).resolve().parents[2]
#: What a path or a source line naming real imagery would contain.
REAL_DATA_MARKERS = (
    "sample_path",
    "sample_data_dir",
    "AEROLOC_SAMPLE_DATA",
    "aeroloc.samples",
    "sample-data",
    "data/external",
    "bench/real",
    "bench-real",
)


def _load(name: str) -> ModuleType:
    return load_script(f"scripts/{name}.py", f"script_{name}")


@pytest.fixture(scope="module")
def make_model() -> ModuleType:
    return _load("make_model")


@pytest.fixture(scope="module")
def calibrate() -> ModuleType:
    return _load("calibrate_verify")


def _recorder(calls: list[dict[str, Any]]) -> Any:
    """A stand-in for ``make_archive`` that records its call and writes a minimal archive."""

    def fake(out_dir: Path, **kw: Any) -> None:
        calls.append({"out_dir": Path(out_dir), **kw})
        write_minimal_archive(Path(out_dir))

    return fake


@pytest.mark.parametrize("name", ["make_model", "calibrate_verify"])
def test_script_sources_never_name_real_imagery(name: str) -> None:
    text = (REPO / "scripts" / f"{name}.py").read_text()
    assert [m for m in REAL_DATA_MARKERS if m in text] == []


def test_make_model_trains_and_holds_out_on_synthetic_archives_only(
    make_model: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    args = make_model.parse_args([])
    for value in vars(args).values():
        assert not any(m in str(value) for m in REAL_DATA_MARKERS), value
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(make_model, "make_archive", _recorder(calls))
    seeds = make_model.seeds(args.train_seeds) + make_model.seeds(args.heldout_seeds)
    folders = make_model.archives(tmp_path, seeds, 0.0)
    assert [c["seed"] for c in calls] == seeds and len(folders) == len(seeds)
    for call, folder in zip(calls, folders, strict=True):
        assert call.get("dem") is None and call["preset"] == "default"
        assert folder.is_relative_to(tmp_path / "archives")


def test_calibration_works_on_synthetic_archives_only(
    calibrate: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    args = calibrate.parse_args([])
    for value in vars(args).values():
        assert not any(m in str(value) for m in REAL_DATA_MARKERS), value
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("aeroloc.synth.make_archive", _recorder(calls))
    found = calibrate.archive(tmp_path, args.first_seed, args.preset)
    assert found.root == tmp_path / f"{args.preset}-{args.first_seed}"
    assert len(calls) == 1 and calls[0].get("dem") is None


def test_calibration_refuses_a_test_only_archive(calibrate: ModuleType, tmp_path: Path) -> None:
    write_minimal_archive(tmp_path / "tiny-600", test_only=True)
    with pytest.raises(InvalidInputError, match="holds real imagery marked test_only"):
        calibrate.archive(tmp_path, 600, "tiny")


def test_calibration_mixes_presets_from_their_example_tables(
    calibrate: ModuleType, tmp_path: Path
) -> None:
    """One examples.csv per preset (e.g. default and hard) refit into one calibration."""
    header = "archive,photo_id,rank,status,correct,log_n_inliers,log_scale_error,anisotropy,"
    header += "perspective,alignment_contrast,inlier_ratio,rmse_px\n"
    tables = []
    for preset, shift in (("default", 0.0), ("hard", 0.5)):
        rows = [
            f"{preset}-60{i % 2},P{i},1,accepted,{i % 3 != 0},{3 + (i % 3) - shift},0.02,0,0,"
            f"{0.05 * (i % 3)},{0.2 * (i % 3)},1.5"
            for i in range(30)
        ]
        path = tmp_path / f"{preset}.csv"
        path.write_text(header + "\n".join(rows) + "\n")
        tables.append(path)
    out = tmp_path / "cal.json"
    args = ["--preset", "hard", "--from-csv", *map(str, tables), "--out-calibration", str(out)]
    assert calibrate.parse_args(args).preset == "hard"
    assert calibrate.main([*args, "--work", str(tmp_path / "work")]) == 0
    described = json.loads(out.read_text())["description"]
    assert "60 fits" in described and "hard-600" in described and "default-601" in described
