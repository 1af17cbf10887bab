"""Known-answer tests of the flight-line fit and its predictions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from aeroloc.errors import ConfigError, InvalidInputError
from aeroloc.lines.inputs import FlightLine, LinePhoto
from aeroloc.lines.track import TrackConfig, fit_track, predict_line, robust_line
from lines_helpers import GSD_M, make_line, true_centres

INTERVAL_M = 840.0
DIRECTION_DEG = 74.0
HEADING_DEG = 76.5  # heading = track + crab


def _angle_diff(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


def test_noisy_straight_line_recovers_direction_and_interval() -> None:
    rng = np.random.default_rng(3)
    centres = true_centres(12, interval_m=INTERVAL_M, direction_deg=DIRECTION_DEG)
    noisy = centres + rng.normal(0, 20.0, centres.shape)
    track = fit_track(make_line(noisy, heading_deg=HEADING_DEG))
    assert track.source == "located"
    assert _angle_diff(track.direction_deg, DIRECTION_DEG) < 1.0
    assert abs(track.interval_m / INTERVAL_M - 1) < 0.02
    assert _angle_diff(track.heading_deg, HEADING_DEG) < 0.01
    assert track.gsd_m == pytest.approx(GSD_M, rel=1e-9)
    assert track.ground_width_m == pytest.approx(1000 * GSD_M, rel=1e-9)
    assert track.outliers == ()
    # the scatter estimates the noise: 2-D residuals of sigma 20 m per axis
    assert 15.0 < track.scatter_m < 45.0


def test_outlier_located_photo_does_not_drag_the_fit() -> None:
    centres = true_centres(8, interval_m=INTERVAL_M, direction_deg=DIRECTION_DEG)
    wrong = centres.copy()
    wrong[5] += (1800.0, -1500.0)  # a wrong accept, 2.3 km off
    track = fit_track(make_line(wrong, heading_deg=HEADING_DEG))
    assert track.outliers == ("P0015",)
    assert 15 not in [a.frame for a in track.anchors]
    assert _angle_diff(track.direction_deg, DIRECTION_DEG) < 0.1
    assert abs(track.interval_m / INTERVAL_M - 1) < 0.001
    # the outlier's own frame is predicted from its neighbours, near the truth
    pred = track.predict(15, photo_id="P0015")
    assert pred is not None
    assert math.hypot(pred.x - centres[5, 0], pred.y - centres[5, 1]) < 1.0


def test_sigma_grows_with_frame_distance_and_reach_is_limited() -> None:
    centres = true_centres(10, interval_m=INTERVAL_M, direction_deg=DIRECTION_DEG)
    line = make_line(centres, heading_deg=HEADING_DEG, located=[0, 1, 2])
    track = fit_track(line)
    sigmas = []
    for frame in range(13, 18):  # 1..5 frames past the last anchor (frame 12)
        pred = track.predict(frame)
        assert pred is not None
        assert pred.frame_gap == frame - 12
        assert pred.anchor_frames == (12,)
        truth = centres[frame - 10]
        # a perfect line extrapolates exactly
        assert math.hypot(pred.x - truth[0], pred.y - truth[1]) < 1e-6
        assert pred.footprint.area == pytest.approx((1000 * GSD_M) ** 2, rel=1e-6)
        sigmas.append(pred.sigma_m)
    assert all(b > a for a, b in itertools.pairwise(sigmas))
    # sigma(d) = hypot(15 m, d * 3 % of the interval) on a line without scatter
    assert sigmas[0] == pytest.approx(math.hypot(15.0, 0.03 * INTERVAL_M), rel=1e-3)
    assert track.predict(18) is None  # 6 frames away
    assert fit_track(line, TrackConfig(max_gap_frames=6)).predict(18) is not None


def test_interpolation_between_anchors_and_predict_line() -> None:
    centres = true_centres(7, interval_m=INTERVAL_M, direction_deg=DIRECTION_DEG)
    # the truth drifts sideways: interpolation follows the anchors, not the fitted line
    centres[3] += (0.0, 60.0)
    line = make_line(centres, heading_deg=HEADING_DEG, located=[0, 2, 4, 6])
    track = fit_track(line)
    pred = track.predict(13)
    assert pred is not None
    assert pred.anchor_frames == (12, 14)
    mid = (centres[2] + centres[4]) / 2
    assert pred.x == pytest.approx(mid[0]) and pred.y == pytest.approx(mid[1])
    preds = predict_line(track, line)
    assert [p.photo_id for p in preds] == ["P0011", "P0013", "P0015"]


def test_catalog_fit_when_fewer_than_two_located() -> None:
    centres = true_centres(6, interval_m=INTERVAL_M, direction_deg=DIRECTION_DEG)
    # no photo located: the catalog (offset 806 m from the truth) gives direction and interval
    none = fit_track(make_line(centres, heading_deg=HEADING_DEG, located=[]))
    assert none.source == "catalog"
    assert _angle_diff(none.direction_deg, DIRECTION_DEG) < 0.01
    assert none.heading_deg == pytest.approx(HEADING_DEG + 3.0)
    assert none.predict(12) is None  # nothing to anchor a prediction
    # one located photo anchors the catalog's step
    one = fit_track(make_line(centres, heading_deg=HEADING_DEG, located=[2]))
    assert one.source == "catalog"
    pred = one.predict(13)
    assert pred is not None
    assert math.hypot(pred.x - centres[3, 0], pred.y - centres[3, 1]) < 1.0
    assert pred.heading_deg == pytest.approx(HEADING_DEG)
    # catalog steps are uncertain: sigma grows by se(step) per frame (>> the floors)
    assert pred.sigma_m > 100.0


def test_single_photo_line_uses_heading_and_nominal_overlap() -> None:
    centres = true_centres(1, interval_m=INTERVAL_M, direction_deg=DIRECTION_DEG)
    track = fit_track(make_line(centres, heading_deg=HEADING_DEG))
    assert track.source == "heading"
    assert track.interval_m == pytest.approx(0.4 * 1000 * GSD_M)
    assert _angle_diff(track.direction_deg, HEADING_DEG) < 1e-6
    with pytest.raises(InvalidInputError, match="no direction"):
        fit_track(make_line(centres, heading_deg=HEADING_DEG, located=[]))


def test_bad_inputs_and_configs() -> None:
    with pytest.raises(ConfigError, match="max_gap_frames"):
        TrackConfig(max_gap_frames=0)
    with pytest.raises(ConfigError, match="outlier_threshold_m"):
        TrackConfig(outlier_threshold_m=-1.0)
    with pytest.raises(InvalidInputError, match="at least 2"):
        robust_line(np.array([1]), np.zeros((1, 2)), np.ones(1), threshold_m=10.0)
    with pytest.raises(InvalidInputError, match="distinct frames"):
        robust_line(np.array([1, 1]), np.zeros((2, 2)), np.ones(2), threshold_m=10.0)
    a = LinePhoto(photo_id="a", frame=1, catalog_x=0.0, catalog_y=0.0)
    b = LinePhoto(photo_id="b", frame=1, catalog_x=1.0, catalog_y=0.0)
    with pytest.raises(InvalidInputError, match=r"frame\(s\) \[1\] appear twice"):
        FlightLine(line_id="L", crs="EPSG:3031", photos=(a, b))
    no_size = FlightLine(
        line_id="L",
        crs="EPSG:3031",
        photos=(a, LinePhoto(photo_id="b", frame=2, catalog_x=1.0, catalog_y=0.0)),
    )
    with pytest.raises(InvalidInputError, match="add altitude_m"):
        fit_track(no_size)
