"""Known-answer tests of the joint solve of a flight line."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import Polygon

from aeroloc.errors import ConfigError, InvalidInputError
from aeroloc.io.archive import Truth
from aeroloc.lines.inputs import FlightLine, LocatedPhoto
from aeroloc.lines.solve import LINE_STATUS, SolveConfig, solve_line
from lines_helpers import BOX, iou, line_from_truth, make_line, true_centres, true_transform

INTERVAL_M = 840.0
HEADING_DEG = 76.0


def _curved(n: int, seed: int = 4, noise_m: float = 8.0) -> np.ndarray:
    """Centres on a gently curving track (60 m of sideways bow over the line), with noise."""
    centres = true_centres(n, interval_m=INTERVAL_M, direction_deg=74.0)
    k = np.arange(n) - (n - 1) / 2
    bow = 60.0 * (1 - (k / k.max()) ** 2)
    normal = np.array([math.cos(math.radians(74.0)), -math.sin(math.radians(74.0))])
    rng = np.random.default_rng(seed)
    return centres + bow[:, None] * normal + rng.normal(0, noise_m, centres.shape)


def _with_located(line: FlightLine, index: int, located: LocatedPhoto) -> FlightLine:
    photos = list(line.photos)
    photos[index] = replace(photos[index], located=located, status=located.status)
    return FlightLine(line_id=line.line_id, crs=line.crs, photos=tuple(photos))


def test_a_planted_wrong_accept_is_flagged_and_the_others_stay() -> None:
    centres = _curved(10)
    wrong = centres.copy()
    wrong[6] += (1800.0, -1500.0)  # 2.3 km off
    solution = solve_line(make_line(wrong, heading_deg=HEADING_DEG))
    assert solution.solved and solution.degree == 2
    assert solution.contradicted == ("P0016",)
    bad = solution.placement("P0016")
    assert bad.status == "review" and bad.previous_status == "accepted"
    assert bad.method == "search"
    assert len(bad.reasons) == 1
    assert re.fullmatch(
        r"centre 2\.[34] km off its flight line \(expected ≤ 150 m\)", bad.reasons[0]
    )
    others = [p for p in solution.placements if p.photo_id != "P0016"]
    assert all(p.status == "accepted" and not p.reasons for p in others)
    # the kept photos fit the curved track to their noise
    assert all(p.residual_m is not None and p.residual_m < 40.0 for p in others)
    assert solution.n_fit == 9
    assert solution.interval_m == pytest.approx(INTERVAL_M, rel=0.01)
    # the wrong photo's frame on the solved track is near its truth
    x, y = solution.centre(16)
    assert math.hypot(x - centres[6, 0], y - centres[6, 1]) < 25.0


def test_heading_and_scale_contradictions_are_reviewed_with_reasons() -> None:
    centres = _curved(8, noise_m=5.0)
    line = make_line(centres, heading_deg=HEADING_DEG)
    turned = LocatedPhoto.from_transform(
        true_transform(*centres[2], HEADING_DEG + 25.0), BOX, sigma_m=15.0
    )
    scaled = LocatedPhoto.from_transform(
        true_transform(*centres[5], HEADING_DEG, gsd_m=2.5), BOX, sigma_m=15.0
    )
    line = _with_located(_with_located(line, 2, turned), 5, scaled)
    solution = solve_line(line)
    assert set(solution.contradicted) == {"P0012", "P0015"}
    (heading_reason,) = solution.placement("P0012").reasons
    assert "heading 101.0° is 25.0° off its line's 76.0°" in heading_reason
    (scale_reason,) = solution.placement("P0015").reasons
    assert scale_reason.startswith("scale 1.25 × its line's")


def test_gap_frames_are_placed_by_the_line_with_growing_sigma() -> None:
    centres = _curved(14, noise_m=5.0)
    located = [0, 1, 2, 3, 5, 6, 7, 8, 9]  # frame 14 missing, 20-23 past the end
    solution = solve_line(make_line(centres, heading_deg=HEADING_DEG, located=located))
    assert solution.placed_by_line == ("P0014", "P0020", "P0021", "P0022", "P0023")
    gap = solution.placement("P0014")
    assert gap.method == "line" and gap.status == LINE_STATUS and gap.previous_status == "rejected"
    assert gap.x is not None and gap.y is not None and gap.sigma_m is not None
    err = math.hypot(gap.x - centres[4, 0], gap.y - centres[4, 1])
    assert err < 3 * gap.sigma_m and err < 30.0
    assert gap.footprint is not None and gap.footprint.area == pytest.approx(2000.0**2, rel=1e-3)
    assert "placed from its flight line" in gap.reasons[0]
    sigmas = [solution.placement(f"P{f:04d}").sigma_m for f in (20, 21, 22, 23)]
    assert all(b > a for a, b in itertools.pairwise(sigmas))  # type: ignore[operator]
    # extrapolation follows the tangent: within a few sigma of the bowed truth
    far = solution.placement("P0023")
    assert far.x is not None and far.y is not None and far.sigma_m is not None
    assert math.hypot(far.x - centres[13, 0], far.y - centres[13, 1]) < 3 * far.sigma_m
    # beyond max_gap_frames: not placed, with the reason
    short = solve_line(
        make_line(centres, heading_deg=HEADING_DEG, located=located), SolveConfig(max_gap_frames=2)
    )
    unplaced = short.placement("P0023")
    assert unplaced.method == "none" and unplaced.footprint is None
    assert unplaced.reasons == (
        "not placed: 4 frames from the nearest accepted photo (the line places ≤ 2)",
    )


def test_fewer_than_two_accepted_photos_contradict_and_place_nothing() -> None:
    centres = _curved(5)
    one = solve_line(make_line(centres, heading_deg=HEADING_DEG, located=[1]))
    assert not one.solved and one.contradicted == () and one.placed_by_line == ()
    assert one.reasons == ("1 accepted photo(s): at least 2 are needed for a joint solve",)
    assert one.placement("P0011").status == "accepted"
    assert one.placement("P0012").method == "none"
    with pytest.raises(InvalidInputError, match="no solved track"):
        one.centre(12)
    # two accepted photos, one of them far off: two always fit a line, so neither is judged
    wrong = centres.copy()
    wrong[4] += (3000.0, 0.0)
    two = solve_line(make_line(wrong, heading_deg=HEADING_DEG, located=[0, 4]))
    assert two.solved and two.degree == 1 and two.contradicted == ()
    assert len(two.placed_by_line) == 3


def test_review_photos_are_not_fitted_but_get_a_residual() -> None:
    centres = _curved(6, noise_m=3.0)
    line = make_line(centres, heading_deg=HEADING_DEG)
    review = LocatedPhoto.from_transform(
        true_transform(centres[3, 0] + 500.0, centres[3, 1], HEADING_DEG),
        BOX,
        sigma_m=15.0,
        status="review",
    )
    solution = solve_line(_with_located(line, 3, review))
    p = solution.placement("P0013")
    assert p.status == "review" and p.previous_status == "review" and not p.contradicted
    assert p.residual_m == pytest.approx(500.0, abs=40.0)
    assert solution.n_fit == 5


def test_synthetic_middle_frame_from_its_neighbours_truth(
    line_truth: Truth, line_archive: Path
) -> None:
    recs = sorted(line_truth.photos.values(), key=lambda r: r.frame or 0)
    line = line_from_truth(line_truth, located={recs[0].photo_id, recs[2].photo_id})
    solution = solve_line(line)
    placed = solution.placement(recs[1].photo_id)
    assert placed.method == "line"
    assert placed.x is not None and placed.y is not None and placed.sigma_m is not None
    err = math.hypot(placed.x - recs[1].center_x, placed.y - recs[1].center_y)
    assert err < 3 * placed.sigma_m
    assert placed.footprint is not None and recs[1].footprint is not None
    assert iou(placed.footprint, Polygon(recs[1].footprint)) > 0.9
    assert (line_archive / "truth.json").is_file()


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="degree"):
        SolveConfig(degree=0)
    with pytest.raises(ConfigError, match="k_sigma"):
        SolveConfig(k_sigma=-1.0)
    with pytest.raises(ConfigError, match="max_gap_frames"):
        SolveConfig(max_gap_frames=-1)
