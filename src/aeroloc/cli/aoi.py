"""``aeroloc aoi``: crop the reference to one photo's area of interest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from aeroloc.cli.options import (
    buffer_option,
    catalog_options,
    out_dir_option,
    reference_option,
)
from aeroloc.cli.output import report

if TYPE_CHECKING:
    from aeroloc.catalog import CatalogQuery
from aeroloc.errors import CatalogError


@click.command()
@reference_option
@catalog_options
@buffer_option(default=10_000.0, help="Buffer around the rough footprint.")
@click.option(
    "--focal-length-mm",
    type=float,
    default=None,
    help="Focal length when the catalog has none (default 152.4, TMA).",
)
@click.option(
    "--film-mm", type=float, default=228.6, show_default=True, help="Film side (9 in for TMA)."
)
@out_dir_option()
def aoi(
    references: tuple[Path, ...],
    catalog: CatalogQuery | None,
    buffer_m: float,
    focal_length_mm: float | None,
    film_mm: float,
    out_dir: Path,
) -> None:
    """Crop the reference to the area of interest around one photo.

    The AoI is the photo's rough footprint (camera centre, altitude, focal
    length, film format, heading) grown by --buffer-m. Writes aoi.tif (reference
    pixels, NaN outside the data) and aoi.gpkg (AoI and footprint polygons).
    """
    from aeroloc.aoi import AoIConfig
    from aeroloc.geometry import Camera
    from aeroloc.pipeline import catalog_record, write_aoi

    if catalog is None:
        raise CatalogError("aoi needs --catalog and --photo-id")
    record = catalog_record(catalog, references)
    camera = Camera(
        focal_length_mm=focal_length_mm or 152.4, film_width_mm=film_mm, film_height_mm=film_mm
    )
    area, raster, paths = write_aoi(
        record, references, out_dir, config=AoIConfig(buffer_m=buffer_m, camera=camera)
    )
    report(
        f"AoI of photo {record.photo_id}: {area.describe()}, "
        f"{raster.data.shape[2]} x {raster.data.shape[1]} px, "
        f"{raster.valid_fraction:.0%} valid",
        paths,
    )
