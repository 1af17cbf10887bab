"""Every command against every bad input: one line and exit 2, or a documented success.

Never a traceback, never a partially written output: a refused command leaves
its ``--out`` as it found it (absent here).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from aeroloc.cli import cli
from cli_helpers import assert_one_line_error, files_under
from robustness.bad_files import BadFiles
from robustness.cases import CASES, Case


def invoke(case: Case, bad: BadFiles, out: Path):
    args = [str(a) for a in case.args(bad, out)]
    # catch_exceptions=True: an escaped exception must fail the test as a
    # traceback would reach the user, with the exception in the message.
    return CliRunner().invoke(cli, args, catch_exceptions=True)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_gets_one_line_or_a_documented_success(case: Case, bad: BadFiles, tmp_path):
    out = tmp_path / "out"
    before = sorted(bad.root.rglob("*"))
    result = invoke(case, bad, out)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{case.id}: {type(result.exception).__name__}: {result.exception}"
    )
    assert "Traceback" not in result.output
    if case.graceful:
        assert result.exit_code == 0, (case.id, result.output)
        assert files_under(out), f"{case.id}: exit 0 but nothing written"
    else:
        assert_one_line_error(result, *case.expect)
        assert files_under(out) == [], f"{case.id}: refused but wrote {files_under(out)}"
    # No command writes next to its inputs (e.g. a temp file beside a bad raster).
    assert sorted(bad.root.rglob("*")) == before
