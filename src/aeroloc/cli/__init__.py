"""The ``aeroloc`` command line: one module per command, shared options in ``options``.

A thin layer: each command parses its options, calls one stage function and
reports what it wrote; :mod:`aeroloc.cli.main` maps errors to exit codes. The
stage modules are imported inside the command bodies because they pull in
torch, rasterio and geopandas (seconds), which ``aeroloc --help``, ``--version``
and a mistyped option should not wait for.
"""

from aeroloc.cli.main import cli, main

__all__ = ["cli", "main"]
