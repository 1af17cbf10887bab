"""``locate`` on a disk that fills up at successive points of its writes.

``enospc.c`` (compiled here, loaded with LD_PRELOAD) makes every write under
the output folder fail with ENOSPC once a byte budget is spent, as a full disk
does, for Python, GDAL and SQLite alike. Each run must end with one error line
and exit code 2, leave no temporary file, and keep only whole files; a rerun
with space again completes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from robustness.processes import environment, leftovers, locate_args, located, whole_outputs

_SHIM = Path(__file__).with_name("enospc.c")


@pytest.fixture(scope="module")
def shim(tmp_path_factory) -> Path:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler to build the ENOSPC shim (install gcc)")
    lib = tmp_path_factory.mktemp("enospc") / "enospc.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", lib, _SHIM, "-ldl"], check=True)
    return lib


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env={**environment(), **env}, capture_output=True, text=True)


@pytest.fixture(scope="module")
def uninterrupted(tiny_archive, tmp_path_factory) -> tuple[int, object]:
    """Bytes an uninterrupted run writes (the budgets are shares of it), and its result."""
    out = tmp_path_factory.mktemp("full") / "out"
    done = run(locate_args(tiny_archive, out))
    assert done.returncode == 0, done.stderr
    return sum(p.stat().st_size for p in out.iterdir()), located(out)


@pytest.mark.slow
@pytest.mark.parametrize("share", [0.01, 0.98])
def test_a_full_disk_gives_one_line_and_only_whole_files(
    shim, tiny_archive, uninterrupted, tmp_path, share
):
    full_size, result = uninterrupted
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "out"
    budget = int(share * full_size)
    done = run(
        locate_args(tiny_archive, out),
        LD_PRELOAD=str(shim),
        ENOSPC_DIR=str(disk),
        ENOSPC_BYTES=str(budget),
    )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if not line.startswith("aeroloc: warn")]
    assert len(errors) == 1 and errors[0].startswith("aeroloc: error: "), done.stderr
    assert "no space left on device" in errors[0].lower(), errors[0]
    assert "Traceback" not in done.stderr
    written = leftovers(disk)
    assert written == [], f"budget {budget} B left {written}"
    if out.exists():
        whole_outputs(out)
        assert not (out / "result.json").exists()  # the record is written last
    # Space again: the same folder completes.
    again = run(locate_args(tiny_archive, out))
    assert again.returncode == 0, again.stderr
    assert leftovers(out) == []
    assert located(out) == result
