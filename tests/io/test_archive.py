"""The archive contract: what the generator writes is what read_archive and read_truth read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aeroloc.errors import InvalidInputError, MissingFileError
from aeroloc.io.archive import (
    CATALOG_CSV_FILE,
    CATALOG_FILE,
    REFERENCE_FILE,
    ROCK_MASK_FILE,
    TRUTH_FILE,
    TruthRecord,
    is_archive,
    photo_file,
    read_archive,
    read_truth,
    refuse_test_only,
    write_truth,
)
from archive_helpers import write_minimal_archive

SEED = 21  # tests use archive seeds 0-99


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aeroloc.synth import make_archive

    out = tmp_path_factory.mktemp("archive")
    make_archive(out, seed=SEED, preset="tiny")
    return out


def test_a_synthetic_archive_reads_through_the_contract(synthetic):
    a = read_archive(synthetic)
    assert is_archive(synthetic) and a.archive_id == f"tiny-{SEED}"
    assert (a.seed, a.preset, a.crs) == (SEED, "tiny", "EPSG:3031")
    assert a.reference == synthetic / REFERENCE_FILE and a.rock_mask == synthetic / ROCK_MASK_FILE
    assert a.truth_path == synthetic / TRUTH_FILE
    ids = [r.photo_id for r in a.catalog]
    assert len(ids) == 3 and set(ids) == set(a.truth)
    for rec in a.catalog:
        truth = a.truth[rec.photo_id]
        assert a.photo_path(rec).is_file()
        assert a.photo_path(rec) == synthetic / photo_file(rec.photo_id) == synthetic / truth.path
        assert truth.footprint is not None and len(truth.footprint) == 4
        assert truth.pixel_to_map is not None and len(truth.pixel_to_map) == 6


def test_truth_records_round_trip_to_the_file(synthetic):
    raw = json.loads((synthetic / TRUTH_FILE).read_text())["photos"]
    records = read_truth(synthetic).photos
    assert [r.to_json() for r in records.values()] == raw
    assert [TruthRecord.from_json(r) for r in raw] == list(records.values())


def test_write_truth_names_the_standard_files(tmp_path):
    rec = TruthRecord(photo_id="p", center_x=1.0, center_y=2.0, flight_line="L1")
    path = write_truth(tmp_path, [rec], crs="EPSG:3031", seed=4, preset="tiny", extra={"k": 1})
    data = json.loads(path.read_text())
    assert path == tmp_path / TRUTH_FILE
    assert (data["reference"], data["rock_outcrop"]) == (REFERENCE_FILE, ROCK_MASK_FILE)
    assert data["k"] == 1 and list(data)[-1] == "photos"
    assert data["photos"] == [
        {"photo_id": "p", "flight_line": "L1", "center_x": 1.0, "center_y": 2.0}
    ]
    truth = read_truth(path)
    assert truth.photos == {"p": rec} and (truth.seed, truth.preset) == (4, "tiny")


def test_a_csv_catalog_and_no_rock_mask_are_fine(synthetic, tmp_path):
    root = tmp_path / "a"
    shutil.copytree(synthetic, root)
    (root / CATALOG_FILE).unlink()
    (root / ROCK_MASK_FILE).unlink()
    a = read_archive(root)
    assert a.rock_mask is None and len(a.catalog) == 3


def test_bad_archives_raise_one_line_errors(synthetic, tmp_path):
    with pytest.raises(MissingFileError, match=r"archive folder .* does not exist"):
        read_archive(tmp_path / "nope")
    with pytest.raises(MissingFileError, match="truth file of archive"):
        read_archive(tmp_path)
    root = tmp_path / "a"
    shutil.copytree(synthetic, root)
    (root / REFERENCE_FILE).unlink()
    with pytest.raises(MissingFileError, match="reference of archive"):
        read_archive(root)
    (root / CATALOG_FILE).unlink()
    (root / CATALOG_CSV_FILE).unlink()
    with pytest.raises(MissingFileError, match="catalog of archive"):
        read_archive(root)
    with pytest.raises(MissingFileError, match="truth file not found"):
        read_truth(tmp_path / "none.json")
    (tmp_path / TRUTH_FILE).write_text(json.dumps({"photos": [{"photo_id": "x"}]}))
    with pytest.raises(InvalidInputError, match="is not a truth file"):
        read_truth(tmp_path)
    (tmp_path / TRUTH_FILE).write_text("{")
    with pytest.raises(InvalidInputError, match="is not a truth file"):
        read_truth(tmp_path / TRUTH_FILE)


def test_test_only_is_written_read_and_refused(tmp_path):
    plain = write_minimal_archive(tmp_path / "plain")
    assert "test_only" not in json.loads((plain / TRUTH_FILE).read_text())
    assert not read_truth(plain).test_only and not read_archive(plain).test_only
    refuse_test_only(read_archive(plain))  # a synthetic-like archive passes

    real = write_minimal_archive(tmp_path / "real", test_only=True)
    assert json.loads((real / TRUTH_FILE).read_text())["test_only"] is True
    assert read_truth(real).test_only and read_archive(real).test_only
    for what in (read_archive(real), read_truth(real)):
        with pytest.raises(InvalidInputError, match="holds real imagery marked test_only"):
            refuse_test_only(what)


def test_a_test_only_flag_must_be_a_boolean(tmp_path):
    root = write_minimal_archive(tmp_path / "a")
    data = json.loads((root / TRUTH_FILE).read_text())
    (root / TRUTH_FILE).write_text(json.dumps({**data, "test_only": "yes"}))
    with pytest.raises(InvalidInputError, match="test_only must be true or false"):
        read_truth(root)
    with pytest.raises(InvalidInputError, match="own argument"):
        write_truth(tmp_path / "b", [], crs="EPSG:3031", extra={"test_only": True})
