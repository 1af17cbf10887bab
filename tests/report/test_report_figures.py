"""aeroloc.report.figures and .style: the overview read, the map, the along-track known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from shapely.affinity import rotate
from shapely.geometry import Polygon

from aeroloc.files import write_geotiff
from aeroloc.io.table import FootprintRow
from aeroloc.report.figures import along_track, overview_figure, read_overview
from aeroloc.report.style import crs_axis_labels

EPSG_3031 = CRS.from_epsg(3031)


def square(cx: float, cy: float, half: float = 300.0) -> Polygon:
    corners = ((-1, -1), (1, -1), (1, 1), (-1, 1))
    return Polygon([(cx + dx * half, cy + dy * half) for dx, dy in corners])


def located(photo_id: str, frame: int | None, status: str, poly: Polygon | None) -> FootprintRow:
    return FootprintRow(
        photo_id=photo_id, flight_line="L", frame=frame, status=status, geometry=poly
    )


def test_along_track_of_a_straight_line_is_the_interval_per_frame():
    # 700 m per frame on a heading of 30°, frames 3..9 with 6 missing; one photo off the line
    heading = math.radians(30)
    step = np.array([math.sin(heading), math.cos(heading)]) * 700.0
    rows = [
        located(f"p{f}", f, "accepted", square(*(np.array([1e4, 2e4]) + (f - 3) * step)))
        for f in (3, 4, 5, 7, 8, 9)
    ]
    rows.append(located("x", None, "accepted", square(0, 0)))  # no frame: left out
    rows.append(located("r", 10, "rejected", None))  # no footprint: left out
    track = along_track(rows)
    assert track.frames.tolist() == [3, 4, 5, 7, 8, 9]
    np.testing.assert_allclose(track.along_km, [0, 0.7, 1.4, 2.8, 3.5, 4.2], atol=1e-9)
    assert track.fit == pytest.approx((0.7, -2.1))
    assert along_track(rows[:1]).fit is None


def test_overview_is_a_bounded_windowed_read_in_the_map_crs(tmp_path):
    data = np.add.outer(np.arange(3000), np.arange(2000)).astype(np.uint16)
    ref = write_geotiff(
        tmp_path / "ref.tif", data, transform=Affine(2, 0, 0, 0, -2, 6000), crs=EPSG_3031
    )
    full = read_overview(ref, EPSG_3031, None, max_px=500)
    assert full is not None and full.image.shape == (500, 333)
    assert full.transform.a == pytest.approx(2 * 2000 / 333) and full.transform.f == 6000
    part = read_overview(ref, EPSG_3031, (1000.0, 2000.0, 2000.0, 4000.0), max_px=500)
    assert part is not None and part.image.shape == (500, 250)
    assert (part.transform.c, part.transform.f) == (1000.0, 4000.0)
    assert np.nanmin(part.image) == 0 and np.nanmax(part.image) == 1  # stretched
    # another map CRS goes through a warped view; outside the raster there is nothing
    assert read_overview(ref, CRS.from_epsg(3976), None, max_px=200) is not None
    assert read_overview(ref, EPSG_3031, (1e6, 1e6, 1.1e6, 1.1e6)) is None
    assert read_overview(tmp_path / "missing.tif", EPSG_3031, None) is None


def test_overview_map_colours_by_status_dashes_review_and_names_the_crs():
    rows = [
        located("a", 1, "accepted", square(0, 0)),
        located("b", 2, "review", rotate(square(700, 0), 20)),
        located("c", 3, "rejected", None),
        located("d", 4, "pending", None),
    ]
    fig = overview_figure(rows, EPSG_3031, centres={"c": (1400.0, 0.0)})
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["accepted: 1", "review: 1", "rejected: 1", "pending: 1 (no footprint)"]
    styles = {line.get_linestyle() for line in ax.get_lines() if len(line.get_xdata()) == 5}
    assert styles == {"-", "--"}
    assert any(line.get_marker() == "x" for line in ax.get_lines())  # c at its catalog centre
    assert "EPSG:3031" in ax.get_xlabel() and ax.get_ylabel() == "northing y (m)"
    assert ax.get_title() == "2 of 4 photos located"


def test_axis_labels_name_the_crs_and_its_unit():
    assert crs_axis_labels(EPSG_3031) == (
        "easting x (m) — EPSG:3031 (WGS 84 / Antarctic Polar Stereographic)",
        "northing y (m)",
    )
    assert crs_axis_labels(CRS.from_epsg(4326))[0].startswith("longitude (°) — EPSG:4326")
    assert crs_axis_labels(None) == ("x (no CRS)", "y (no CRS)")
