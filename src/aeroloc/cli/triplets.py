"""``aeroloc triplets``: a training dataset from synthetic archives."""

from __future__ import annotations

from pathlib import Path

import click

from aeroloc.cli.options import PATH, buffer_option, out_dir_option


@click.command()
@click.option(
    "--archive",
    "archives",
    multiple=True,
    required=True,
    type=PATH,
    help="Synthetic archive folder (repeat).",
)
@out_dir_option()
@buffer_option(default=None, help="AoI buffer around each photo (default: the dataset builder's).")
@click.option(
    "--threshold",
    type=int,
    default=None,
    help="Fixed gray threshold for the binary variant (default: averaged histogram).",
)
def triplets(
    archives: tuple[Path, ...], out_dir: Path, buffer_m: float | None, threshold: int | None
) -> None:
    """Build a training dataset (photo, true window, AoI) from synthetic archives.

    Every photo is prepared exactly as `locate` prepares it (noisy catalog
    centre, altitude and heading); triplets are sampled from it at training time.
    """
    from aeroloc.training.commands import DEFAULT_BUFFER_M, triplets_command

    triplets_command(
        list(archives),
        out_dir,
        buffer_m=DEFAULT_BUFFER_M if buffer_m is None else buffer_m,
        threshold=threshold,
    )
