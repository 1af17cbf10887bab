"""``aeroloc aoi``: crop the reference to one photo's area of interest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from aeroloc.cli.options import (
    buffer_option,
    catalog_options,
    out_dir_option,
    positive_number,
    reference_option,
)
from aeroloc.cli.output import report

if TYPE_CHECKING:
    from aeroloc.catalog import CatalogQuery
from aeroloc.errors import CatalogError, ConfigError, InvalidInputError


@click.command()
@reference_option
@catalog_options
@buffer_option(default=10_000.0, help="Buffer around the rough footprint.")
@click.option(
    "--focal-length-mm",
    type=float,
    default=None,
    callback=positive_number,
    help="Focal length when the catalog has none (default 152.4, TMA).",
)
@click.option(
    "--film-mm",
    type=float,
    default=228.6,
    show_default=True,
    callback=positive_number,
    help="Film side (9 in for TMA).",
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
    from aeroloc.aoi import AoIConfig, write_aoi
    from aeroloc.geometry import Camera
    from aeroloc.request import catalog_record

    if catalog is None:
        raise CatalogError("aoi needs --catalog and --photo-id")
    focal = {} if focal_length_mm is None else {"focal_length_mm": focal_length_mm}
    try:
        camera = Camera(**focal, film_width_mm=film_mm, film_height_mm=film_mm)
    except InvalidInputError as exc:
        raise ConfigError(f"--focal-length-mm/--film-mm: {exc}") from None
    config = AoIConfig(buffer_m=buffer_m, camera=camera)
    record = catalog_record(catalog, references)
    area, raster, paths = write_aoi(record, references, out_dir, config=config)
    report(
        f"AoI of photo {record.photo_id}: {area.describe()}, "
        f"{raster.data.shape[2]} x {raster.data.shape[1]} px, "
        f"{raster.valid_fraction:.0%} valid",
        paths,
    )
