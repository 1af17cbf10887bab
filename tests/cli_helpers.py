"""Shared by the command-line tests: invoke the CLI, synthesise a tiny archive through it."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from aeroloc.cli import cli

#: Files ``aeroloc locate`` always writes (verified runs add the georeferenced ones).
LOCATE_OUTPUTS = (
    "result.json",
    "heatmap.tif",
    "heatmap.png",
    "candidates.gpkg",
    "heatmap_cells.npy",
)


def run(*args: object) -> Result:
    """Invoke ``aeroloc`` with ``args`` (stringified); exceptions propagate."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def synth_tiny(out: Path, seed: int) -> Path:
    """``aeroloc synth --preset tiny`` into ``out``; fails the test on a non-zero exit."""
    result = run("synth", "--out", out, "--seed", seed, "--preset", "tiny")
    assert result.exit_code == 0, result.output
    return out


def assert_one_line_error(result: Result, *fragments: str) -> str:
    """Exit code 2 and exactly one stderr line, ``aeroloc: error: ...`` holding ``fragments``."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("aeroloc: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def files_under(folder: Path) -> list[Path]:
    """Every file under ``folder`` (none when it does not exist)."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
