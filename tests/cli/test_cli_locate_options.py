"""``aeroloc locate``: --t-srs, --resampling and --fail-on (options checked at the edge,
passed to the pipeline, exit codes)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import aeroloc.pipeline
from aeroloc.cli import cli
from aeroloc.cli.options import EXIT_FAIL_ON, WARP_RESAMPLING
from aeroloc.georef import RESAMPLING_METHODS, WarpConfig


def bounds_args(archive: Path, first_id: str, out: Path, *extra: object) -> list[str]:
    truth = json.loads((archive / "truth.json").read_text())["photos"][0]
    cx, cy = truth["center_x"], truth["center_y"]
    args = (
        "locate",
        archive / "photos" / f"{first_id}.tif",
        "--reference",
        archive / "reference.tif",
        "--aoi",
        f"{cx - 1500},{cy - 1500},{cx + 1500},{cy + 1500}",
        "--gsd-m",
        truth["gsd_m"],
        "--azimuth-deg",
        truth["azimuth_deg"],
        *extra,
        "--out",
        out,
    )
    return [str(a) for a in args]


@pytest.fixture
def fake_locate(monkeypatch):
    """Replace the model and the search: ``locate_photo`` records its keywords and
    returns a result with the status the test sets (no torch work)."""
    calls: list[dict] = []
    state = {"status": "rejected"}

    def locate_photo(request, out_dir, **kwargs):
        calls.append(kwargs)
        status = state["status"]
        verification = SimpleNamespace(chosen=None, windows_tried=2, matcher="fake")
        return SimpleNamespace(
            status=status,
            heatmap=SimpleNamespace(n_windows=9, engine="dense"),
            timings_s={"heatmap": 0.1},
            verification=verification,
            candidates=(),
            paths=lambda: {},
        )

    monkeypatch.setattr(aeroloc.pipeline, "load_model", lambda spec: (object(), "fake"))
    monkeypatch.setattr(aeroloc.pipeline, "locate_photo", locate_photo)
    return SimpleNamespace(calls=calls, state=state)


def invoke(args: list[str]):
    return CliRunner().invoke(cli, args)


@pytest.mark.parametrize(
    ("status", "fail_on", "code"),
    [
        ("rejected", ("rejected",), EXIT_FAIL_ON),
        ("review", ("review",), EXIT_FAIL_ON),
        ("review", ("rejected", "review"), EXIT_FAIL_ON),
        ("rejected", ("review",), 0),
        ("rejected", (), 0),  # off by default
        ("accepted", ("rejected", "review"), 0),
    ],
)
def test_fail_on_exits_3_when_the_photo_ends_in_that_status(
    archive, first_id, tmp_path, fake_locate, status, fail_on, code
):
    fake_locate.state["status"] = status
    extra = [a for s in fail_on for a in ("--fail-on", s)]
    result = invoke(bounds_args(archive, first_id, tmp_path, *extra))
    assert result.exit_code == code, result.output
    assert EXIT_FAIL_ON == 3
    assert (f"is {status} (--fail-on)" in result.stderr) == bool(code)


def test_t_srs_and_resampling_reach_the_warp(archive, first_id, tmp_path, fake_locate):
    fake_locate.state["status"] = "accepted"
    args = bounds_args(
        archive, first_id, tmp_path, "--warp", "--t-srs", "EPSG:3976", "--resampling", "nearest"
    )
    result = invoke(args)
    assert result.exit_code == 0, result.output
    (kwargs,) = fake_locate.calls
    assert kwargs["warp"] == WarpConfig(t_srs="EPSG:3976", resampling="nearest")
    assert kwargs["verify"].warp is True
    # without them: the defaults (the reference CRS, bilinear)
    assert invoke(bounds_args(archive, first_id, tmp_path, "--warp")).exit_code == 0
    assert fake_locate.calls[-1]["warp"] is None


def test_bad_t_srs_is_one_line_and_exit_2_before_any_work(archive, first_id, tmp_path):
    out = tmp_path / "x"
    result = invoke(bounds_args(archive, first_id, out, "--warp", "--t-srs", "EPSG:nope"))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines == ["aeroloc: error: --t-srs: unknown CRS 'EPSG:nope': use e.g. EPSG:3031"]
    assert not out.exists()


def test_warp_options_without_warp_and_unknown_resampling_are_exit_2(
    archive, first_id, tmp_path, fake_locate
):
    result = invoke(bounds_args(archive, first_id, tmp_path, "--t-srs", "EPSG:3031"))
    assert result.exit_code == 2 and "add --warp" in result.stderr
    result = invoke(bounds_args(archive, first_id, tmp_path, "--warp", "--resampling", "sinc"))
    assert result.exit_code == 2 and "--resampling" in result.output
    assert not fake_locate.calls


def test_cli_resampling_names_are_the_warps():
    assert WARP_RESAMPLING == RESAMPLING_METHODS


def test_help_names_the_new_options_and_the_exit_code():
    text = " ".join(CliRunner().invoke(cli, ["locate", "--help"]).output.split())
    for word in ("--t-srs", "--resampling", "--fail-on", "Exit codes", "3 the photo"):
        assert word in text, word
