"""Flight lines: line geometry, predictions for the gaps, neighbour matching, a joint solve.

The modules, in the order data flows (see ``docs/lines.md``):

- :mod:`~aeroloc.lines.inputs` — :class:`FlightLine` of :class:`LinePhoto`, some
  with a :class:`LocatedPhoto`.
- :mod:`~aeroloc.lines.track` — :func:`fit_track` (robust straight track,
  interval, heading, GSD) and :meth:`LineTrack.predict` (a :class:`Prediction`
  with its uncertainty).
"""

from aeroloc.lines.inputs import METHODS, FlightLine, LinePhoto, LocatedPhoto
from aeroloc.lines.track import (
    LineTrack,
    Prediction,
    TrackConfig,
    fit_track,
    predict_line,
)

__all__ = [
    "METHODS",
    "FlightLine",
    "LinePhoto",
    "LineTrack",
    "LocatedPhoto",
    "Prediction",
    "TrackConfig",
    "fit_track",
    "predict_line",
]
