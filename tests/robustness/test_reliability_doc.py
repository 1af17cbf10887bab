"""docs/reliability.md counts the robustness cases per command: the count must stay true."""

from __future__ import annotations

import re
from pathlib import Path

from robustness.cases import CASES, counts

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


def documented_counts() -> dict[str, int]:
    rows = re.findall(r"^\| (\w+) \| (\d+) \|$", DOC.read_text(encoding="utf-8"), re.M)
    return {command: int(n) for command, n in rows}


def test_the_page_counts_the_cases_of_every_command():
    assert documented_counts() == dict(counts())
    total = re.search(r"^\| \*\*all\*\* \| \*\*(\d+)\*\* \|$", DOC.read_text(), re.M)
    assert total is not None and int(total.group(1)) == len(CASES)


def test_every_command_of_the_cli_has_cases():
    from aeroloc.cli import cli

    assert set(counts()) == set(cli.commands)
