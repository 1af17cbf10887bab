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
"""

from aeroloc.lines.inputs import METHODS, FlightLine, LinePhoto, LocatedPhoto
from aeroloc.lines.neighbour import (
    NeighbourConfig,
    NeighbourResult,
    expected_window,
    match_neighbour,
    match_neighbour_files,
)
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
    "match_neighbour",
    "match_neighbour_files",
    "predict_line",
    "search_bounds",
    "shrunken_request",
    "solve_line",
]
