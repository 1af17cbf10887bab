"""The ``aeroloc`` group: ``--version``, one-line errors with exit 2, ``-v``/``-q`` logging."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from aeroloc import __version__
from aeroloc.cli import cli
from cli_helpers import run


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            "locate missing.tif --reference nope.tif --aoi 0,0,1,1 --gsd-m 2 --azimuth-deg 0 "
            "--out x",
            "not found",
        ),
        (
            "locate --reference {ref} --catalog {cat} --photo-id {pid} --model vgg --out {tmp}",
            "unknown model",
        ),
        (
            "aoi --reference {ref} --catalog {cat} --photo-id {pid} --columns photo_id=ENTITY "
            "--out {tmp}",
            "ENTITY",
        ),
        ("aoi --reference {ref} --catalog {cat} --photo-id nobody --out {tmp}", "nobody"),
        ("aoi --reference {corrupt} --catalog {cat} --photo-id {pid} --out {tmp}", "cannot read"),
        ("synth --out {tmp} --preset tiny --dem nope.tif", "not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(archive, first_id, tmp_path, argv, message):
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00garbage" * 10)
    values = {
        "ref": archive / "reference.tif",
        "cat": archive / "catalog.gpkg",
        "pid": first_id,
        "tmp": tmp_path / "out",
        "corrupt": corrupt,
    }
    result = CliRunner().invoke(cli, [a.format(**values) for a in argv.split()])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line]
    assert lines[-1].startswith("aeroloc: error:") or "Error" in lines[-1]
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "result.json").exists()


class _Manifest:
    def paths(self) -> dict[str, Path]:
        return {"truth (json)": Path("truth.json")}


@pytest.fixture
def logging_synth(monkeypatch):
    """``aeroloc synth`` whose archive maker only reports progress and logs one INFO line."""

    def make_archive(out_dir, *, seed, preset, dem, progress):
        progress("photo 1/1: P1")
        logging.getLogger("aeroloc.synth").info("terrain ready")
        return _Manifest()

    monkeypatch.setattr("aeroloc.synth.make_archive", make_archive)
    return lambda *flags: run(*flags, "synth", "--out", "arch", "--seed", "3", "--preset", "tiny")


def test_default_logs_info_and_progress_but_not_debug(logging_synth):
    result = logging_synth()
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == ["photo 1/1: P1", "aeroloc: terrain ready"]
    assert "truth.json" in result.stdout


def test_verbose_adds_the_debug_lines(logging_synth):
    result = logging_synth("-v")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        "aeroloc: synth: seed 3, preset tiny, DEM None, into arch"
    )
    assert "aeroloc: terrain ready" in result.stderr


def test_quiet_drops_info_and_progress_but_keeps_the_report(logging_synth):
    result = logging_synth("-q")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.startswith("synthetic archive (seed 3, preset tiny) in arch:")


def test_logging_is_restored_after_the_command(logging_synth):
    logger = logging.getLogger("aeroloc")
    level, handlers = logger.level, list(logger.handlers)
    logging_synth("-v")
    assert logger.level == level and logger.handlers == handlers


def test_verbose_and_quiet_exclude_each_other():
    result = CliRunner().invoke(cli, ["-v", "-q", "synth", "--out", "x"])
    assert result.exit_code == 2
    assert "exclude each other" in result.output


@pytest.fixture
def warning_synth(monkeypatch):
    """``aeroloc synth`` whose archive maker raises one user warning and one library deprecation."""

    def make_archive(out_dir, *, seed, preset, dem, progress):
        warnings.warn("Use `@` matmul instead of `*`", PendingDeprecationWarning, stacklevel=1)
        warnings.warn("30% of the AoI is nodata", UserWarning, stacklevel=1)
        return _Manifest()

    monkeypatch.setattr("aeroloc.synth.make_archive", make_archive)
    return lambda *flags: run(*flags, "synth", "--out", "arch", "--seed", "3", "--preset", "tiny")


def test_a_library_deprecation_warning_is_not_shown_to_the_user(warning_synth):
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        result = warning_synth()
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == ["aeroloc: warning: 30% of the AoI is nodata"]


def test_verbose_shows_a_library_deprecation_warning(warning_synth):
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        result = warning_synth("-v")
    assert "PendingDeprecationWarning: Use `@` matmul" in result.stderr
