"""A picture of one flight line: catalog positions, footprints, predictions, the solve.

The left panel is the map (line CRS, metres): catalog camera centres (grey
crosses), located footprints (green: accepted, orange: review), predictions
with their 1-σ circles (blue, dashed), line placements (purple, dashed) and
photos the solve contradicted (red, labelled). The right panel, when the
line is solved, shows each placed photo's along- and across-track offset from
the solved track at its frame (triangles, circles; symmetric log scale beyond
the solve's ±3σ band) against its frame.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from shapely.geometry import Polygon

from aeroloc.files import write_png
from aeroloc.lines.inputs import FlightLine
from aeroloc.lines.solve import LineSolution
from aeroloc.lines.track import Prediction

_COLOURS = {
    "accepted": "tab:green",
    "review": "tab:orange",
    "prediction": "tab:blue",
    "line": "tab:purple",
    "contradicted": "tab:red",
    "catalog": "0.5",
}


def _outline(ax: Axes, poly: Polygon, **style: Any) -> None:
    xs, ys = poly.exterior.xy
    ax.plot(np.asarray(xs), np.asarray(ys), **style)


def line_figure(
    line: FlightLine,
    *,
    predictions: Sequence[Prediction] = (),
    solution: LineSolution | None = None,
) -> Figure:
    """The figure (see the module docstring); :func:`plot_line` writes it."""
    solved = solution is not None and solution.solved
    fig = Figure(figsize=(12 if solved else 7, 6))
    ax = fig.add_subplot(1, 2 if solved else 1, 1)
    cx = [p.catalog_x for p in line.photos]
    cy = [p.catalog_y for p in line.photos]
    ax.plot(cx, cy, "x:", color=_COLOURS["catalog"], label="catalog centre")
    contradicted = set(solution.contradicted) if solution is not None else set()
    labelled: set[str] = set()

    def label(kind: str, text: str) -> str | None:
        if kind in labelled:
            return None
        labelled.add(kind)
        return text

    for p in line.photos:
        loc = p.located
        if loc is None:
            continue
        kind = "contradicted" if p.photo_id in contradicted else loc.status
        text = {"contradicted": "contradicts its line", "review": "review"}.get(kind, "accepted")
        _outline(
            ax,
            loc.footprint,
            color=_COLOURS[kind],
            lw=2 if kind == "contradicted" else 1.2,
            label=label(kind, text),
        )
        ax.annotate(
            str(p.frame), (loc.x, loc.y), fontsize=7, ha="center", va="center", color=_COLOURS[kind]
        )
    for pred in predictions:
        _outline(
            ax,
            pred.footprint,
            color=_COLOURS["prediction"],
            ls="--",
            lw=1,
            label=label("prediction", "prediction (±1σ)"),
        )
        ax.add_patch(
            Circle((pred.x, pred.y), pred.sigma_m, fill=False, color=_COLOURS["prediction"])
        )
    if solution is not None:
        for pl in solution.placements:
            if pl.method == "line" and pl.footprint is not None:
                _outline(
                    ax,
                    pl.footprint,
                    color=_COLOURS["line"],
                    ls="--",
                    lw=1,
                    label=label("line", "placed by the line"),
                )
        if solved:
            lo, hi = solution.frame_range
            frames = np.linspace(min(lo, *line.frames), max(hi, *line.frames), 100)
            track = np.array([solution.centre(float(f)) for f in frames])
            ax.plot(track[:, 0], track[:, 1], "k-", lw=0.8, label="solved track")
    ax.set_aspect("equal")
    ax.set_xlabel(f"x (m, {line.crs.to_string()})")
    ax.set_ylabel(f"y (m, {line.crs.to_string()})")
    ax.set_title(f"flight line {line.line_id}: {len(line)} photos")
    ax.legend(fontsize=7, loc="best")
    ax.ticklabel_format(useOffset=False, style="plain")
    if solved and solution is not None:
        _offsets_panel(fig.add_subplot(1, 2, 2), solution)
    return fig


def _offsets_panel(ax: Axes, solution: LineSolution) -> None:
    frames, along, across, colours = [], [], [], []
    for pl in solution.placements:
        if pl.x is None or pl.y is None:
            continue
        a, c = solution.offsets(pl.x, pl.y, pl.frame)
        frames.append(pl.frame)
        along.append(a)
        across.append(c)
        kind = "contradicted" if pl.contradicted else ("line" if pl.method == "line" else pl.status)
        colours.append(_COLOURS.get(kind, _COLOURS["catalog"]))
    band = 3 * solution.track_sigma_m
    lo, hi = min(frames), max(frames)
    ax.fill_between([lo, hi], [-band, -band], [band, band], color="0.9", label="±3σ of the track")
    ax.scatter(frames, along, c=colours, marker="^", s=30, zorder=3, label="along track")
    ax.scatter(frames, across, c=colours, marker="o", s=20, zorder=3, label="across track")
    ax.axhline(0.0, color="k", lw=0.8)
    # offsets span metres to kilometres: linear within the band, logarithmic beyond
    ax.set_yscale("symlog", linthresh=max(band, 1.0))
    ax.set_xlabel("frame")
    ax.set_ylabel("offset from the solved track (m)")
    ax.set_title(
        f"solve: degree {solution.degree}, interval {solution.interval_m:.0f} m, "
        f"scatter {solution.track_sigma_m:.0f} m"
    )
    ax.legend(fontsize=7)


def plot_line(
    line: FlightLine,
    path: str | os.PathLike[str],
    *,
    predictions: Sequence[Prediction] = (),
    solution: LineSolution | None = None,
) -> Path:
    """Write :func:`line_figure` as a PNG, atomically."""
    return write_png(path, line_figure(line, predictions=predictions, solution=solution))
