"""``aeroloc evaluate``: result folders that are missing or empty exit 2 (scoring is
covered with real results in test_cli_locate.py)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from aeroloc.cli import cli


@pytest.mark.parametrize(
    ("make_folder", "message"),
    [(False, "results folder not found:"), (True, "no result.json under")],
)
def test_missing_results_exit_2_with_one_line(archive, tmp_path, make_folder, message):
    results = tmp_path / "results"
    if make_folder:
        (results / "photo-1").mkdir(parents=True)
    argv = ["evaluate", "--truth", str(archive), "--results", str(results)]
    result = CliRunner().invoke(cli, [*argv, "--out", str(tmp_path / "ev")])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"aeroloc: error: {message} {results}"
    assert not (tmp_path / "ev").exists()
