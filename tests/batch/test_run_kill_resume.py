"""``aeroloc batch`` killed with SIGKILL mid-run resumes: every photo once, no corrupt file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import pytest

from aeroloc.files import TEMP_NAME
from aeroloc.io.archive import read_archive
from aeroloc.io.results import RESULT_FILE, read_result


def batch_command(archive: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from aeroloc.cli import main; main()",
        "-v",
        "batch",
        str(archive),
        "--out",
        str(out),
        "--workers",
        "0",
        "--buffer-m",
        "1500",
        "--max-candidates",
        "1",
    ]


def environment() -> dict[str, str]:
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    return env


def what_ran(record_path: Path) -> object:
    """What a photo's run left that a rerun of it would change: timings and attempts."""
    record = read_result(record_path)
    attempts = () if record.placement is None else record.placement.attempts
    return (dict(record.timings_s), attempts)


@pytest.mark.slow
def test_a_batch_killed_mid_run_resumes_and_ends_complete(tiny_archive: Path, tmp_path: Path):
    out = tmp_path / "run"
    ids = [r.photo_id for r in read_archive(tiny_archive).catalog]
    proc = subprocess.Popen(
        batch_command(tiny_archive, out),
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while not any((out / pid / RESULT_FILE).is_file() for pid in ids):
            assert proc.poll() is None, "the batch ended before any photo was done"
            assert time.monotonic() < deadline, "no photo finished within 240 s"
            time.sleep(0.2)
        time.sleep(1.0)  # into the flight-line phase: a neighbour is being placed
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    done = {pid: what_ran(out / pid) for pid in ids if (out / pid / RESULT_FILE).is_file()}
    assert 1 <= len(done) < len(ids)
    # what a kill can leave: a temporary file of an atomic write (planted, to be sure)
    pending = next(pid for pid in ids if pid not in done)
    (out / pending).mkdir(parents=True, exist_ok=True)
    planted = out / pending / ".result.k1ll3d00.tmp.json"
    planted.write_text('{"half": ')
    assert TEMP_NAME.match(planted.name)

    rerun = subprocess.run(
        batch_command(tiny_archive, out),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"skipped {len(done)} already processed" in rerun.stdout
    for pid in ids:
        # every photo processed exactly once: the finished ones were not run again
        record = json.loads((out / pid / RESULT_FILE).read_text())
        assert record["photo_id"] == pid and record["method"] in (
            "search",
            "propagated",
            "neighbour",
            "line",
        )
        if pid in done:
            assert what_ran(out / pid) == done[pid]
        leftovers = [p.name for p in (out / pid).iterdir() if p.name.startswith(".")]
        assert leftovers == [], leftovers
    feet = gpd.read_file(out / "results.gpkg", layer="footprints")
    assert sorted(feet.photo_id) == sorted(ids)
    assert "pending" not in set(feet.status) and "failed" not in set(feet.status)
    assert not [p for p in out.iterdir() if TEMP_NAME.match(p.name)]
