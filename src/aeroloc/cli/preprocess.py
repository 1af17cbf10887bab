"""``aeroloc preprocess``: a photo and its AoI prepared, with a before/after preview."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from aeroloc.cli.options import (
    PATH,
    azimuth_option,
    buffer_option,
    catalog_options,
    out_dir_option,
    photo_argument,
    reference_option,
    rock_mask_option,
)
from aeroloc.cli.output import report

if TYPE_CHECKING:
    from aeroloc.catalog import CatalogQuery


@click.command()
@photo_argument()
@reference_option
@catalog_options
@azimuth_option("Flight heading (clockwise from grid north); default: the catalog's.")
@buffer_option(default=10_000.0)
@rock_mask_option("Rock-outcrop polygons (e.g. ADD) to lift shadows and darken rock.")
@click.option(
    "--binarize/--no-binarize",
    default=False,
    show_default=True,
    help="Also write a binary photo (averaged-histogram threshold).",
)
@click.option(
    "--threshold",
    "threshold_path",
    type=PATH,
    default=None,
    help="Averaged-histogram threshold JSON to reuse (implies --binarize).",
)
@out_dir_option()
def preprocess(
    photo: Path | None,
    references: tuple[Path, ...],
    catalog: CatalogQuery | None,
    azimuth_deg: float | None,
    buffer_m: float,
    rock_mask: Path | None,
    binarize: bool,
    threshold_path: Path | None,
    out_dir: Path,
) -> None:
    """Preprocess a scanned photo and its AoI; write rasters and a before/after PNG.

    Crops the fiducial frame, optionally binarises the photo, enhances the
    reference (gray, rock mask), rotates the AoI to the heading and
    histogram-matches the photo to it. PHOTO defaults to the catalog's path.
    """
    from aeroloc.errors import CatalogError
    from aeroloc.pipeline import request_from_catalog
    from aeroloc.preprocess.run import preprocess_photo

    if catalog is None:
        raise CatalogError("preprocess needs --catalog and --photo-id to place the AoI")
    request = request_from_catalog(
        catalog,
        references,
        azimuth_deg=azimuth_deg,
        buffer_m=buffer_m,
        photo_path=photo,
        rock_mask_path=rock_mask,
    )
    outputs = preprocess_photo(request, out_dir, threshold_path=threshold_path, binarize=binarize)
    report(f"preprocessed photo {request.photo_id}:", outputs.paths())
