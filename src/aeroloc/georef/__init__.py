"""Georeferenced outputs of a located photo (stage after verification).

* :mod:`~aeroloc.georef.transform` — :class:`PhotoTransform`, scan pixel → map;
* :mod:`~aeroloc.georef.gcps` — ground control points from tie points or a grid;
* :mod:`~aeroloc.georef.outputs` — the files: ``gcps.points`` (QGIS),
  ``photo_gcps.tif``, ``photo_warped.tif`` and ``footprint.gpkg``;
* :mod:`~aeroloc.georef.warp` — ``photo_warped.tif``: GDAL's warp of the
  photo as a Cloud-Optimised GeoTIFF (:class:`WarpConfig`).
"""

from aeroloc.georef.gcps import (
    MIN_MATCH_GCPS,
    GroundControlPoints,
    gcps_from_matches,
    gcps_from_transform,
)
from aeroloc.georef.outputs import (
    FOOTPRINT_FILE,
    GCP_TIFF_FILE,
    POINTS_FILE,
    POINTS_HEADER,
    WARPED_FILE,
    GeorefOutputs,
    read_footprint_gpkg,
    read_gcp_geotiff,
    read_points,
    write_footprint_gpkg,
    write_gcp_geotiff,
    write_georef_outputs,
    write_points,
    write_warped_geotiff,
)
from aeroloc.georef.transform import (
    TRANSFORM_KINDS,
    PhotoTransform,
    affine_matrix,
)
from aeroloc.georef.warp import (
    MAX_WARP_PX,
    RESAMPLING_METHODS,
    WarpConfig,
    write_warped_cog,
)

__all__ = [
    "FOOTPRINT_FILE",
    "GCP_TIFF_FILE",
    "MAX_WARP_PX",
    "MIN_MATCH_GCPS",
    "POINTS_FILE",
    "POINTS_HEADER",
    "RESAMPLING_METHODS",
    "TRANSFORM_KINDS",
    "WARPED_FILE",
    "GeorefOutputs",
    "GroundControlPoints",
    "PhotoTransform",
    "WarpConfig",
    "affine_matrix",
    "gcps_from_matches",
    "gcps_from_transform",
    "read_footprint_gpkg",
    "read_gcp_geotiff",
    "read_points",
    "write_footprint_gpkg",
    "write_gcp_geotiff",
    "write_georef_outputs",
    "write_points",
    "write_warped_cog",
    "write_warped_geotiff",
]
