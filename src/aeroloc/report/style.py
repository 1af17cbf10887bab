"""What every map aeroloc draws shares: status colours and axes that name the CRS."""

from __future__ import annotations

from rasterio.crs import CRS

#: Colour of each photo status, on maps and in tables (matplotlib names).
STATUS_COLOURS: dict[str, str] = {
    "accepted": "tab:green",
    "review": "tab:orange",
    "rejected": "tab:red",
    "unverified": "tab:blue",
    "failed": "tab:purple",
    "pending": "0.55",
}
#: Statuses in the order reports list them.
STATUS_ORDER: tuple[str, ...] = tuple(STATUS_COLOURS)


def crs_label(crs: CRS | None) -> str:
    """``EPSG:3031 (WGS 84 / Antarctic Polar Stereographic)``, or the CRS's name alone."""
    if crs is None:
        return "no CRS"
    from pyproj import CRS as ProjCRS

    proj = ProjCRS.from_wkt(crs.to_wkt())
    epsg = crs.to_epsg()
    return f"EPSG:{epsg} ({proj.name})" if epsg else proj.name


def crs_axis_labels(crs: CRS | None) -> tuple[str, str]:
    """x and y axis labels naming the CRS and its unit.

    A projected CRS gives ``easting x (m) — EPSG:3031 (WGS 84 / ...)`` and
    ``northing y (m)``; a geographic one ``longitude (°)`` and ``latitude (°)``.
    """
    if crs is None:
        return "x (no CRS)", "y (no CRS)"
    from pyproj import CRS as ProjCRS

    proj = ProjCRS.from_wkt(crs.to_wkt())
    name = crs_label(crs)
    if proj.is_geographic:
        return f"longitude (°) — {name}", "latitude (°)"
    unit = proj.axis_info[0].unit_name if proj.axis_info else "unknown unit"
    unit = {"metre": "m", "meter": "m", "foot": "ft", "US survey foot": "ftUS"}.get(unit, unit)
    return f"easting x ({unit}) — {name}", f"northing y ({unit})"
