"""Options shared by more than one command, each defined once.

Help texts that differ between commands are passed in, so every command's
``--help`` reads as before; names, types and defaults live here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aeroloc.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from aeroloc.catalog import CatalogQuery
    from aeroloc.georef.warp import WarpConfig
    from aeroloc.heatmap.poses import PoseGrid

Decorator = Callable[[Any], Any]

PATH = click.Path(path_type=Path)
#: Synthetic archive presets (``aeroloc synth`` and ``aeroloc demo``): three sizes and
#: ``hard`` (the default size with a harder catalog and past); the names of
#: ``aeroloc.synth.config.PRESETS``, not imported here to keep the CLI start light.
ARCHIVE_PRESETS = click.Choice(["tiny", "default", "large", "hard"])
#: Heatmap engines ``locate`` and ``demo`` offer.
ENGINES = click.Choice(["dense", "batched", "naive"])
#: Resampling of ``photo_warped.tif``: the names of ``aeroloc.georef.warp.RESAMPLING_METHODS``,
#: not imported here to keep the CLI start light (a test keeps the two equal).
WARP_RESAMPLING = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode")
#: Statuses ``--fail-on`` accepts.
FAIL_ON_STATUSES = ("rejected", "review")
#: Exit code of a command whose photo ended in a ``--fail-on`` status.
EXIT_FAIL_ON = 3


def _stack(*options: Decorator) -> Decorator:
    """Apply ``options`` so that ``--help`` lists them in the order given."""

    def add(f: Any) -> Any:
        for option in reversed(options):
            f = option(f)
        return f

    return add


def positive_number(ctx: click.Context, param: click.Parameter, value: float | None) -> Any:
    """Click callback: a finite number > 0 (or None), else a one-line ConfigError at once."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{_name(param)} must be a positive number, got {value:g}")
    return value


def non_negative_number(ctx: click.Context, param: click.Parameter, value: float | None) -> Any:
    """Click callback: a finite number >= 0 (or None), else a one-line ConfigError at once."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{_name(param)} must be a number >= 0, got {value:g}")
    return value


def finite_number(ctx: click.Context, param: click.Parameter, value: float | None) -> Any:
    """Click callback: a finite number (or None), else a one-line ConfigError at once."""
    if value is not None and not math.isfinite(value):
        raise ConfigError(f"{_name(param)} must be a finite number, got {value:g}")
    return value


def positive_integer(ctx: click.Context, param: click.Parameter, value: int | None) -> Any:
    """Click callback: an integer >= 1 (or None), else a one-line ConfigError at once."""
    if value is not None and value < 1:
        raise ConfigError(f"{_name(param)} must be an integer >= 1, got {value}")
    return value


def fraction(ctx: click.Context, param: click.Parameter, value: float | None) -> Any:
    """Click callback: a number in (0, 1] (or None), else a one-line ConfigError at once."""
    if value is not None and not (math.isfinite(value) and 0 < value <= 1):
        raise ConfigError(f"{_name(param)} must be a fraction in (0, 1], got {value:g}")
    return value


def output_folder(ctx: click.Context, param: click.Parameter, value: Path | None) -> Any:
    """Click callback: an output folder that can be written (see
    :func:`aeroloc.files.check_output_dir`), checked before any work."""
    if value is None:
        return None
    from aeroloc.files import check_output_dir

    return check_output_dir(value, _name(param))


def output_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Any:
    """Click callback: an output file that can be written (see
    :func:`aeroloc.files.check_output_file`), checked before any work."""
    if value is None:
        return None
    from aeroloc.files import check_output_file

    return check_output_file(value, _name(param))


def _name(param: click.Parameter) -> str:
    """How messages name an option: its longest flag (``--hit-radius-m``)."""
    opts = getattr(param, "opts", None) or [param.name or "?"]
    return max(opts, key=len)


def out_dir_option(help: str | None = None) -> Decorator:
    """The required ``--out`` folder (parameter ``out_dir``), checked to be writable at once."""
    return click.option(
        "--out", "out_dir", required=True, type=PATH, callback=output_folder, help=help
    )


def references_option(
    *,
    required: bool = True,
    help: str = "Georeferenced reference raster (repeat for a mosaic; first wins).",
) -> Decorator:
    """``--reference`` (repeatable; parameter ``references``)."""
    return click.option(
        "--reference", "references", multiple=True, required=required, type=PATH, help=help
    )


reference_option = references_option()

#: ``--columns``: the catalog's column map.
columns_option = click.option(
    "--columns",
    default=None,
    metavar="FIELD=COL,...",
    help="Map catalog columns, e.g. photo_id=ENTITY_ID,x=LON,y=LAT.",
)
#: ``--crs``: the CRS of the catalog's x/y (parameter ``catalog_crs``).
catalog_crs_option = click.option(
    "--crs",
    "catalog_crs",
    default=None,
    help="CRS of the catalog's x/y values (default: layer CRS, WGS84 for "
    "lon/lat, else the reference CRS).",
)

#: The four options that pick one photo record from a catalog.
_catalog_option_list = _stack(
    click.option(
        "--catalog",
        type=PATH,
        default=None,
        help="Photo catalog (CSV, GeoPackage or shapefile).",
    ),
    click.option("--photo-id", default=None, help="Photo to process (catalog row)."),
    columns_option,
    catalog_crs_option,
)


def catalog_options(f: Any) -> Any:
    """``--catalog``, ``--photo-id``, ``--columns`` and ``--crs``, passed to the
    command as one ``catalog: CatalogQuery | None`` (None without ``--catalog``)."""

    @functools.wraps(f)
    def command(
        *args: Any,
        catalog: Path | None,
        photo_id: str | None,
        columns: str | None,
        catalog_crs: str | None,
        **kwargs: Any,
    ) -> Any:
        from aeroloc.catalog import CatalogQuery  # pandas: only when a command runs

        query: CatalogQuery | None = (
            None
            if catalog is None
            else CatalogQuery(path=catalog, photo_id=photo_id, columns=columns, crs=catalog_crs)
        )
        return f(*args, catalog=query, **kwargs)

    return _catalog_option_list(command)


def photo_argument() -> Decorator:
    """The optional PHOTO argument (default: the catalog's path)."""
    return click.argument("photo", required=False, type=PATH)


def buffer_option(*, default: float | None, help: str | None = None) -> Decorator:
    """``--buffer-m``: the AoI buffer around the rough footprint (m)."""
    return click.option(
        "--buffer-m",
        type=float,
        default=default,
        show_default=default is not None,
        callback=non_negative_number,
        help=help,
    )


def azimuth_option(help: str) -> Decorator:
    """``--azimuth-deg``: the flight heading, overriding the catalog's."""
    return click.option(
        "--azimuth-deg", type=float, default=None, callback=finite_number, help=help
    )


def rock_mask_option(help: str) -> Decorator:
    """``--rock-mask``: rock-outcrop polygons for the reference enhancement."""
    return click.option("--rock-mask", type=PATH, default=None, help=help)


def seed_option(*, default: int, help: str) -> Decorator:
    """``--seed`` of a synthetic archive."""
    return click.option("--seed", type=int, default=default, show_default=True, help=help)


def preset_option(help: str | None = None) -> Decorator:
    """``--preset``: the synthetic archive's preset (size, or ``hard``)."""
    return click.option(
        "--preset", type=ARCHIVE_PRESETS, default="default", show_default=True, help=help
    )


def search_options(*, max_verify: int, per_photo: str) -> Decorator:
    """The model, engine and verification options ``locate`` and ``demo`` share."""
    return _stack(
        click.option(
            "--model",
            "model_spec",
            default=None,
            help="Model name or checkpoint file (default: the shipped effnet-lite0-siamese).",
        ),
        click.option(
            "--engine", type=ENGINES, default="dense", show_default=True, help="Heatmap engine."
        ),
        click.option(
            "--heading-search",
            type=float,
            default=0.0,
            show_default=True,
            help="Also score headings up to this many degrees either side of the given "
            "one, for a rough catalog (e.g. 16; 0: the given heading only). Costs about "
            "one heatmap per pose.",
        ),
        click.option(
            "--heading-step",
            type=float,
            default=8.0,
            show_default=True,
            help="Step of --heading-search (degrees).",
        ),
        click.option(
            "--scale-search",
            type=float,
            default=0.0,
            show_default=True,
            help="Also score footprints this fraction larger and smaller than the "
            "altitude says (e.g. 0.15; 0: the given scale only).",
        ),
        click.option(
            "--verify/--no-verify",
            default=True,
            show_default=True,
            help=f"Verify candidates by image matching and georeference {per_photo}.",
        ),
        click.option(
            "--matcher",
            default=None,
            help="Matcher for verification: effnet-dense (default; CNN feature "
            "correlation, robust to a changed sun), sift, orb, akaze, "
            "xfeat-lighterglue, disk-lightglue, aliked-lightglue.",
        ),
        click.option(
            "--max-candidates",
            "max_verify",
            type=int,
            default=max_verify,
            callback=positive_integer,
            show_default=True,
            help="Verify at most this many candidates, best first (stops at the first accepted).",
        ),
    )


stride_option = click.option(
    "--stride",
    "stride_fraction",
    type=float,
    default=0.25,
    callback=fraction,
    show_default=True,
    help="Window step as a fraction of the window.",
)
candidates_option = click.option(
    "--candidates",
    "max_candidates",
    type=int,
    default=20,
    callback=positive_integer,
    show_default=True,
    help="Candidates kept from the heatmap (ranked, in result.json and candidates.gpkg).",
)
warp_option = click.option(
    "--warp",
    is_flag=True,
    default=False,
    help="Also write photo_warped.tif: the photo warped north-up onto the map, clipped "
    "to its footprint, as a Cloud-Optimised GeoTIFF with an alpha band.",
)


def _check_t_srs(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Parse ``--t-srs`` while the options are read: a bad CRS fails before any work."""
    if value is None:
        return None
    from aeroloc.errors import CRSError
    from aeroloc.files import parse_crs

    try:
        parse_crs(value)
    except CRSError as exc:
        raise CRSError(f"--t-srs: {exc}") from None
    return value


#: ``--t-srs`` and ``--resampling``: how ``photo_warped.tif`` is warped (with ``--warp``).
warp_target_options = _stack(
    click.option(
        "--t-srs",
        "t_srs",
        default=None,
        metavar="CRS",
        callback=_check_t_srs,
        help="CRS of photo_warped.tif (EPSG code, WKT or PROJ string; default: the "
        "reference's). Needs --warp.",
    ),
    click.option(
        "--resampling",
        type=click.Choice(WARP_RESAMPLING),
        default=None,
        help="Resampling of photo_warped.tif and its overviews [default: bilinear]. Needs --warp.",
    ),
)

#: ``--fail-on``: exit with :data:`EXIT_FAIL_ON` when the photo ends in one of these statuses.
fail_on_option = click.option(
    "--fail-on",
    "fail_on",
    type=click.Choice(FAIL_ON_STATUSES),
    multiple=True,
    help=f"Exit with code {EXIT_FAIL_ON} (after writing every file) when the photo ends "
    "with this status (repeat for both; default: exit 0 whatever the status).",
)


def warp_config(*, warp: bool, t_srs: str | None, resampling: str | None) -> WarpConfig | None:
    """The :class:`~aeroloc.georef.WarpConfig` of ``--t-srs`` and ``--resampling``.

    None when neither is given; a ConfigError when one is given without ``--warp``.
    """
    if t_srs is None and resampling is None:
        return None
    if not warp:
        given = "--t-srs" if t_srs is not None else "--resampling"
        raise ConfigError(f"{given} sets how photo_warped.tif is made: add --warp")
    from aeroloc.georef.warp import WarpConfig

    return WarpConfig(t_srs=t_srs, resampling=resampling or "bilinear")


def fail_on_exit_code(status: str, fail_on: tuple[str, ...]) -> int:
    """:data:`EXIT_FAIL_ON` when ``status`` is one of ``fail_on``, else 0."""
    return EXIT_FAIL_ON if status in fail_on else 0


def pose_grid(heading_search: float, heading_step: float, scale_search: float) -> PoseGrid:
    """The heatmap's :class:`~aeroloc.heatmap.poses.PoseGrid` from ``--heading-search``,
    ``--heading-step`` and ``--scale-search`` (ConfigError when out of range)."""
    from aeroloc.heatmap.poses import PoseGrid

    if not (math.isfinite(scale_search) and 0.0 <= scale_search < 1.0):
        raise ConfigError(f"--scale-search must be in [0, 1), got {scale_search}")
    return PoseGrid.span(
        heading_deg=heading_search,
        heading_step_deg=heading_step,
        scale_max=1.0 + scale_search,
        scale_steps=1 if scale_search > 0 else 0,
    )


#: Suffixes that make a ``--model`` value a checkpoint file rather than a registry name.
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def check_model_spec(spec: str | None) -> None:
    """Fail at once on a ``--model`` that names a checkpoint file which is not there.

    Runs before torch is imported; a registry name is checked when the model
    loads (the registry needs torch).
    """
    if spec is None:
        return
    path = Path(spec)
    if path.suffix in CHECKPOINT_SUFFIXES or "/" in spec or path.exists():
        from aeroloc.files import require_file

        require_file(path, "checkpoint (--model)")


def check_matcher(name: str) -> None:
    """Fail on an unknown ``--matcher`` before any work is done."""
    from aeroloc.verify import list_matchers  # the matchers import torch: only when given

    if name.strip().lower() not in list_matchers():
        raise ModelError(f"unknown matcher {name!r}: choose one of {', '.join(list_matchers())}")
