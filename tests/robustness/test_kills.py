"""``locate`` and ``demo`` killed with SIGKILL at several points, then rerun.

A kill leaves whole files or none (each output is a temporary file renamed
into place). The rerun removes the killed run's temporary files and ends with
the result an uninterrupted run gives.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aeroloc.files import LOCK_NAME
from robustness.processes import (
    aeroloc,
    environment,
    leftovers,
    locate_args,
    located,
    run_to_end,
    whole_outputs,
)


def kill_when(command: list[str], ready: Callable[[], bool], timeout_s: float = 600.0) -> bool:
    """Run ``command``; SIGKILL it as soon as ``ready()``. False when it ended first."""
    proc = subprocess.Popen(
        command, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + timeout_s
    try:
        while proc.poll() is None:
            if ready():
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return True
            if time.monotonic() > deadline:
                raise AssertionError(f"{command[3:]} did not reach its kill point")
            time.sleep(0.01)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def locate_command(tiny_archive: Path) -> Callable[[Path], list[str]]:
    return lambda out: locate_args(tiny_archive, out)


@pytest.fixture(scope="module")
def uninterrupted(locate_command, tmp_path_factory) -> object:
    out = tmp_path_factory.mktemp("uninterrupted") / "out"
    run_to_end(locate_command(out))
    return located(out)


#: Kill points of a locate run: the file whose appearance triggers the kill.
#: (Not after candidates.gpkg: the two small files that follow it are written
#: within the poll interval on an idle machine, so the run may end first.)
LOCATE_POINTS = {
    "holding the lock, before any output": LOCK_NAME,
    "after the heatmap raster": "heatmap.tif",
}


@pytest.mark.slow
@pytest.mark.parametrize("point", list(LOCATE_POINTS))
def test_a_killed_locate_reruns_to_the_uninterrupted_result(
    locate_command, uninterrupted, tmp_path, point
):
    out = tmp_path / "out"
    trigger = out / LOCATE_POINTS[point]
    killed = kill_when(locate_command(out), trigger.exists)
    assert killed, f"locate finished before {point}"
    assert not (out / "result.json").exists()  # result.json is written last
    whole_outputs(out)
    run_to_end(locate_command(out))
    assert leftovers(out) == []
    assert located(out) == uninterrupted


def demo_summary(out: Path) -> object:
    """What a demo rerun must reproduce: every photo's candidates and the evaluation table."""
    photos = sorted((out / "results").glob("*/result.json"))
    per_photo = [located(p.parent) for p in photos]
    table = (out / "evaluation" / "evaluation.csv").read_text()
    return [p.parent.name for p in photos], per_photo, table


@pytest.mark.slow
def test_a_demo_killed_in_synthesis_and_in_locating_reruns_to_the_same_report(tmp_path):
    def command(out: Path) -> list[str]:
        return aeroloc("-q", "demo", "--preset", "tiny", "--no-verify", "--out", out)

    reference = tmp_path / "whole"
    run_to_end(command(reference))
    out = tmp_path / "killed"
    archive = out / "archive"
    # First while the archive is synthesised, then once a photo has its result.
    assert kill_when(command(out), lambda: archive.is_dir() and any(archive.iterdir()))
    assert not (archive / "truth.json").exists()
    assert kill_when(command(out), lambda: any((out / "results").glob("*/result.json")))
    run_to_end(command(out))
    assert leftovers(out) == []
    assert demo_summary(out) == demo_summary(reference)
