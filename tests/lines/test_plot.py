"""The flight-line picture is written as a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from aeroloc.lines.plot import line_figure, plot_line
from aeroloc.lines.solve import solve_line
from aeroloc.lines.track import fit_track, predict_line
from lines_helpers import make_line, true_centres


def test_plot_line_writes_a_png_with_both_panels(tmp_path: Path) -> None:
    centres = true_centres(8, interval_m=800.0, direction_deg=60.0)
    centres[5] += (1500.0, 900.0)  # a contradiction to draw
    line = make_line(centres, heading_deg=62.0, located=[0, 1, 2, 4, 5, 6])
    track = fit_track(line)
    solution = solve_line(line)
    assert solution.contradicted == ("P0015",)
    path = plot_line(
        line, tmp_path / "line.png", predictions=predict_line(track, line), solution=solution
    )
    assert path == tmp_path / "line.png"
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > img.height
        assert np.asarray(img.convert("RGB")).std() > 10  # not blank
    assert not list(tmp_path.glob(".*"))  # no temporary file left
    fig = line_figure(line, predictions=predict_line(track, line), solution=solution)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert {
        "contradicts its line",
        "prediction (±1σ)",
        "placed by the line",
        "solved track",
    } <= set(legend)
    assert len(fig.axes) == 2


def test_unsolved_line_has_the_map_only(tmp_path: Path) -> None:
    line = make_line(
        true_centres(3, interval_m=800.0, direction_deg=10.0), heading_deg=10.0, located=[1]
    )
    fig = line_figure(line, solution=solve_line(line))
    assert len(fig.axes) == 1
    assert plot_line(line, tmp_path / "one.png").is_file()
