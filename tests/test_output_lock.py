"""``files.output_lock``: one aeroloc run at a time per output folder."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import aeroloc
from aeroloc.errors import OutputError, OutputInUseError
from aeroloc.files import LOCK_NAME, output_lock, remove_temp_files

_HOLDER = (
    "import sys, time\n"
    "from aeroloc.files import output_lock\n"
    "with output_lock(sys.argv[1]):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(60)\n"
)


def _hold_in_child(folder: Path) -> subprocess.Popen[str]:
    """A separate process that holds the lock of ``folder`` until it is killed."""
    src = str(Path(aeroloc.__file__).resolve().parents[1])
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": src},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked"
    return child


def test_a_lock_held_by_a_live_process_refuses_a_second_run_then_a_kill_frees_it(tmp_path, caplog):
    out = tmp_path / "out"
    child = _hold_in_child(out)
    try:
        assert (out / LOCK_NAME).read_text().strip() == str(child.pid)
        busy = rf"in use by another aeroloc run \(pid {child.pid}\)"
        with pytest.raises(OutputInUseError, match=busy), output_lock(out):
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # The killed run left its lock file behind: it is stale and taken over.
    assert (out / LOCK_NAME).is_file()
    with caplog.at_level(logging.WARNING, logger="aeroloc"), output_lock(out):
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert f"pid {child.pid}, no longer running" in caplog.text
    assert not (out / LOCK_NAME).exists()


def test_a_stale_lock_file_of_a_dead_pid_is_taken_over_with_a_warning(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(f"{dead.pid}\n")
    with caplog.at_level(logging.WARNING, logger="aeroloc"), output_lock(tmp_path) as folder:
        assert folder == tmp_path
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    assert "taking over the lock" in caplog.text and f"pid {dead.pid}" in caplog.text
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_second_lock_in_the_same_process_is_refused(tmp_path):
    with output_lock(tmp_path, option="--out"):
        busy = r"--out .* is in use .*choose another --out"
        with pytest.raises(OutputInUseError, match=busy), output_lock(tmp_path):
            pass
        assert (tmp_path / LOCK_NAME).is_file()  # the refused call left the holder's file alone
    with output_lock(tmp_path):  # released: free again
        pass


def test_the_lock_is_released_on_an_exception(tmp_path):
    with pytest.raises(RuntimeError, match="boom"), output_lock(tmp_path):
        raise RuntimeError("boom")
    assert not (tmp_path / LOCK_NAME).exists()
    with output_lock(tmp_path):
        assert (tmp_path / LOCK_NAME).is_file()


def test_a_folder_the_lock_created_is_removed_when_left_empty(tmp_path):
    empty, used = tmp_path / "a" / "empty", tmp_path / "used"
    with output_lock(empty):
        assert empty.is_dir()
    assert not empty.exists()
    with output_lock(used):
        (used / "result.json").write_text("{}")
    assert [p.name for p in used.iterdir()] == ["result.json"]


def test_a_lock_under_a_file_is_an_output_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with (
        pytest.raises(OutputError, match="cannot create --out"),
        output_lock(tmp_path / "file" / "out"),
    ):
        pass


def test_temporary_files_are_not_taken_as_the_lock(tmp_path):
    # The lock file is hidden but is not an atomic_output temporary file.
    with output_lock(tmp_path):
        assert remove_temp_files(tmp_path) == 0
        assert (tmp_path / LOCK_NAME).is_file()
