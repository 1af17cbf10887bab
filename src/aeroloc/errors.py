"""One exception root for everything aeroloc raises on bad input or bad data.

Each subclass also inherits the matching built-in, so callers that catch
``ValueError`` or ``OSError`` keep working. The CLI turns any
:class:`AeroLocError` into a one-line message and exit code 2.
"""

from __future__ import annotations


class AeroLocError(Exception):
    """Root of all aeroloc errors. The message is one line and says how to fix it."""


class InvalidInputError(AeroLocError, ValueError):
    """A value given by the user is out of range, malformed or inconsistent."""


class ConfigError(InvalidInputError):
    """A configuration has an unknown key, a bad value or an unknown preset."""


class MissingFileError(AeroLocError, FileNotFoundError):
    """An input file does not exist."""


class RasterReadError(AeroLocError, OSError):
    """A raster cannot be opened or read (corrupt, not a raster, unreadable)."""


class OutputError(AeroLocError, OSError):
    """An output cannot be written (folder not writable, disk full...)."""


class OutputInUseError(OutputError):
    """An output folder is locked by another running aeroloc process."""


class CRSError(InvalidInputError):
    """A CRS string is unknown, or a raster/vector that needs one has none."""


class CatalogError(InvalidInputError):
    """A photo catalog lacks a column or has an invalid value (names row and column)."""


class NoOverlapError(InvalidInputError):
    """An area of interest or a camera centre lies outside the reference data."""


class DataQualityError(InvalidInputError):
    """Data is present but unusable: all nodata, no texture, too small for a window."""


class ModelError(AeroLocError, ValueError):
    """Unknown model name, incompatible checkpoint, or mismatched weights."""


class ClusterError(AeroLocError, ConnectionError):
    """A Dask scheduler cannot be reached, or a cluster cannot be started."""
