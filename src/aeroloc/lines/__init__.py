"""Flight lines: line geometry, predictions for the gaps, neighbour matching, a joint solve.

The modules, in the order data flows (see ``docs/lines.md``):

- :mod:`~aeroloc.lines.inputs` — :class:`FlightLine` of :class:`LinePhoto`, some
  with a :class:`LocatedPhoto`.
- :mod:`~aeroloc.lines.track` — :func:`fit_track` (robust straight track,
  interval, heading, GSD) and :meth:`LineTrack.predict` (a :class:`Prediction`
  with its uncertainty).
- :mod:`~aeroloc.lines.search` — :func:`shrunken_request`: the search area
  around a prediction, as a ``LocateRequest``.
- :mod:`~aeroloc.lines.neighbour` — :func:`match_neighbour`: place a photo by
  matching it to a located neighbour and chaining the transforms.
- :mod:`~aeroloc.lines.solve` — :func:`solve_line`: one smooth track through
  a line's accepted photos; contradicting photos go to ``review`` with the
  reason; gaps get ``method = "line"`` placements.
- :mod:`~aeroloc.lines.read` — :func:`read_lines`: the lines of a catalog with
  the ``result.json`` of a results folder.
- :mod:`~aeroloc.lines.plot` — :func:`plot_line`: a PNG of one line.

:mod:`~aeroloc.lines.plot` is not imported here (it loads matplotlib).
"""

from aeroloc.lines.inputs import METHODS, FlightLine, LinePhoto, LocatedPhoto
from aeroloc.lines.neighbour import (
    NeighbourConfig,
    NeighbourResult,
    expected_window,
    match_neighbour,
    match_neighbour_files,
)
from aeroloc.lines.read import CatalogLines, located_from_record, read_lines
from aeroloc.lines.search import SearchConfig, search_bounds, shrunken_request
from aeroloc.lines.solve import (
    LINE_STATUS,
    LineSolution,
    PhotoPlacement,
    SolveConfig,
    solve_line,
)
from aeroloc.lines.track import (
    LineTrack,
    Prediction,
    TrackConfig,
    fit_track,
    predict_line,
)

__all__ = [
    "LINE_STATUS",
    "METHODS",
    "CatalogLines",
    "FlightLine",
    "LinePhoto",
    "LineSolution",
    "LineTrack",
    "LocatedPhoto",
    "NeighbourConfig",
    "NeighbourResult",
    "PhotoPlacement",
    "Prediction",
    "SearchConfig",
    "SolveConfig",
    "TrackConfig",
    "expected_window",
    "fit_track",
    "located_from_record",
    "match_neighbour",
    "match_neighbour_files",
    "predict_line",
    "read_lines",
    "search_bounds",
    "shrunken_request",
    "solve_line",
]
