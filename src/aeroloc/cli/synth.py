"""``aeroloc synth``: a synthetic TMA archive with ground truth."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from aeroloc.cli.options import PATH, out_dir_option, preset_option, seed_option
from aeroloc.cli.output import report, say

logger = logging.getLogger(__name__)


@click.command()
@out_dir_option(help="Folder to write the archive into (created).")
@seed_option(default=0, help="Random seed.")
@preset_option(
    help="Archive size (tiny, default, large), or hard: the default size with catalog "
    "errors up to 20° / 20 %, the historical sun from any side, much more snow, "
    "thicker glaciers and cloud shadows."
)
@click.option(
    "--dem",
    type=PATH,
    default=None,
    help="Use this DEM (GeoTIFF) instead of fractal terrain.",
)
def synth(out_dir: Path, seed: int, preset: str, dem: Path | None) -> None:
    """Make a synthetic TMA archive with ground truth.

    Writes reference.tif (Sentinel-2-like RGB, 10 m, EPSG:3031), rock_outcrop.gpkg,
    photos/*.tif (scanned historical photos), catalog.gpkg/.csv (noisy metadata)
    and truth.json/.gpkg (exact footprints). Deterministic per seed.
    """
    from aeroloc.synth import make_archive

    logger.debug("synth: seed %d, preset %s, DEM %s, into %s", seed, preset, dem, out_dir)
    manifest = make_archive(out_dir, seed=seed, preset=preset, dem=dem, progress=say)
    report(f"synthetic archive (seed {seed}, preset {preset}) in {out_dir}:", manifest.paths())
