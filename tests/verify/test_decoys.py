"""An accepted fit must beat the photo's own wrong places (aeroloc.verify.decoys)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from affine import Affine
from shapely.geometry import Point, Polygon

from aeroloc.errors import ConfigError, InvalidInputError
from aeroloc.heatmap.candidates import Candidate, search_box
from aeroloc.pipeline import prepare_request
from aeroloc.verify import AcceptanceRules, Matches
from aeroloc.verify.decoys import blank_polygon, box_polygon, decoy_reason
from aeroloc.verify.matching import MODEL_KINDS
from aeroloc.verify.walk import VerifyConfig, verify_candidates
from verify_helpers import OracleMatcher, heatmap_and_candidate, request_for, tiny_archive


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    archive = tiny_archive(tmp_path_factory)
    photos = json.loads((archive / "truth.json").read_text())["photos"]
    true = sorted(photos, key=lambda p: p["photo_id"])[1]
    _, pair = prepare_request(request_for(archive, true["photo_id"], buffer_m=3000.0))
    return pair, true


class TwoPlaces:
    """The oracle's matches in the true window; ``n_decoy`` clean, consistent ties anywhere else."""

    name = "two-places"
    fit_kinds = MODEL_KINDS

    def __init__(self, oracle: OracleMatcher, true_shape: tuple[int, int], n_decoy: int) -> None:
        self.oracle, self.true_shape, self.n_decoy = oracle, true_shape, n_decoy
        self.calls = 0

    def match(self, a: np.ndarray, b: np.ndarray) -> Matches:
        self.calls += 1
        if b.shape == self.true_shape and self.calls == 1:
            return self.oracle.match(a, b)
        rng = np.random.default_rng(self.calls)
        xy_a = rng.uniform(5, min(a.shape) - 5, size=(self.n_decoy, 2))
        return Matches(xy_a=xy_a, xy_b=xy_a + 3.0, scores=np.ones(self.n_decoy), matcher=self.name)


def _far_candidate(pair, hm, rank: int, true: dict) -> Candidate:
    """The window farthest from the truth whose box holds reference data and misses the photo."""
    footprint = Polygon(true["footprint"])
    rows, cols = hm.scores.shape
    best = None
    for r in range(rows):
        for c in range(cols):
            x, y = hm.center_map(r, c)
            cand = Candidate(
                rank=rank,
                score=0.8,
                percentile=98.0,
                row=r,
                col=c,
                x=x,
                y=y,
                polygon=hm.window_polygon(r, c),
            )
            box = search_box(hm, cand, margin_frac=0.5, shape=pair.aoi_gray.shape)
            inside = np.isfinite(pair.aoi_gray[box[1] : box[3], box[0] : box[2]]).mean()
            if inside < 0.5 or box_polygon(box, pair.pixel_to_map).intersects(footprint):
                continue
            d = footprint.centroid.distance(Point(x, y))
            if best is None or d > best[0]:
                best = (d, cand)
    assert best is not None, "the AoI has no window away from the photo"
    return best[1]


def _walk(prepared, n_decoy: int, *, decoys: int = 3, rules: AcceptanceRules | None = None):
    pair, true = prepared
    hm, cand = heatmap_and_candidate(pair, true["center_x"], true["center_y"])
    box = search_box(hm, cand, margin_frac=0.5, shape=pair.aoi_gray.shape)
    far = _far_candidate(pair, hm, 2, true)
    matcher = TwoPlaces(OracleMatcher(pair, true, box), (box[3] - box[1], box[2] - box[0]), n_decoy)
    config = VerifyConfig(
        matcher=matcher,
        decoys=decoys,
        retry_candidates=0,
        acceptance=rules or AcceptanceRules(),
    )
    return verify_candidates(pair, hm, [cand, far], config), matcher


def test_a_fit_that_a_wrong_place_nearly_equals_goes_to_review(prepared):
    ver, _ = _walk(prepared, n_decoy=40)  # the oracle gives 64 matches, 54+ inliers: < 2 × 40
    first = ver.tried[0]
    assert first.candidate.rank == 1 and first.status == "review"
    assert any("at a wrong place (candidate 2" in r for r in first.reasons), first.reasons
    assert first.features["decoy_inliers"] == 40 and first.features["decoys"] == 1
    assert ver.status != "accepted"
    # the decoy, itself a clean fit, is no more trusted than the place it contradicts
    assert all(t.status != "accepted" for t in ver.tried)


def test_a_fit_that_beats_its_decoys_stays_accepted_and_records_them(prepared):
    ver, matcher = _walk(prepared, n_decoy=12)
    assert ver.status == "accepted" and ver.chosen is ver.tried[0]
    assert ver.chosen.features["decoy_inliers"] == 12
    assert matcher.calls == 2  # the true window, then one decoy
    assert ver.windows_tried == 2


def test_no_decoys_means_no_extra_matching(prepared):
    ver, matcher = _walk(prepared, n_decoy=40, decoys=0)
    assert ver.status == "accepted" and matcher.calls == 1
    assert "decoy_inliers" not in ver.chosen.features


def test_ratio_zero_turns_the_test_off(prepared):
    ver, _ = _walk(prepared, n_decoy=40, rules=AcceptanceRules(min_decoy_ratio=0.0))
    assert ver.tried[0].status == "accepted"


def test_a_candidate_centred_on_the_fit_is_no_decoy(prepared):
    pair, true = prepared
    hm, cand = heatmap_and_candidate(pair, true["center_x"], true["center_y"])
    box = search_box(hm, cand, margin_frac=0.5, shape=pair.aoi_gray.shape)
    near = Candidate(  # the neighbouring cell: centred inside the accepted footprint
        rank=2,
        score=0.8,
        percentile=98.0,
        row=cand.row,
        col=cand.col + 1,
        x=hm.center_map(cand.row, cand.col + 1)[0],
        y=hm.center_map(cand.row, cand.col + 1)[1],
        polygon=hm.window_polygon(cand.row, cand.col + 1),
    )
    matcher = TwoPlaces(OracleMatcher(pair, true, box), (box[3] - box[1], box[2] - box[0]), 40)
    ver = verify_candidates(
        pair, hm, [cand, near], VerifyConfig(matcher=matcher, retry_candidates=0)
    )
    assert ver.status == "accepted" and matcher.calls == 1
    assert ver.chosen.features["decoys"] == 0


@pytest.mark.parametrize(
    ("n", "decoys", "ratio", "passes"),
    [
        (60, [(2, 29), (3, 0)], 2.0, True),  # 60 ≥ 2 × 29
        (50, [(2, 29), (3, 0)], 2.0, False),
        (22, [(4, 29)], 2.0, False),  # the real-raster false accepts' pattern
        (22, [(4, 7)], 2.0, True),  # a decoy below min_inliers (8) is no evidence
        (22, [], 2.0, True),
        (22, [(4, 29)], 0.0, True),
    ],
)
def test_decoy_reason_known_answers(n, decoys, ratio, passes):
    reason = decoy_reason(n, decoys, AcceptanceRules(min_decoy_ratio=ratio))
    assert (reason is None) == passes
    if not passes:
        assert f"{n} inliers here" in reason and "candidate" in reason


def test_box_polygon_maps_pixel_corners():
    poly = box_polygon((0, 0, 10, 20), Affine(2.0, 0, 100.0, 0, -2.0, 50.0))
    assert poly.bounds == (100.0, 10.0, 120.0, 50.0)


def test_decoy_settings_are_validated():
    with pytest.raises(ConfigError, match="decoys"):
        VerifyConfig(decoys=-1)
    with pytest.raises(InvalidInputError, match="min_decoy_ratio"):
        AcceptanceRules(min_decoy_ratio=-1.0)


def test_blank_polygon_sets_the_polygon_to_nodata_and_nothing_else():
    window = np.ones((40, 60), np.float32)
    to_map = Affine(10.0, 0, 1000.0, 0, -10.0, 2000.0)  # AoI pixel → map
    # the polygon covers AoI columns 30..50 and rows 10..30; the window starts at (20, 5)
    poly = Polygon([to_map @ p for p in ((30, 10), (50, 10), (50, 30), (30, 30))])
    out = blank_polygon(window, poly, ~to_map, (20, 5))
    blank = ~np.isfinite(out)
    assert blank[5:25, 10:30].all()  # rows 10..30 → 5..25, cols 30..50 → 10..30
    assert blank.sum() == pytest.approx(20 * 20, rel=0.15)
    assert np.isfinite(window).all()  # the input is left as it was


def test_a_decoy_box_touching_the_fit_is_matched_with_the_fit_blanked(prepared):
    pair, true = prepared
    hm, cand = heatmap_and_candidate(pair, true["center_x"], true["center_y"])
    box = search_box(hm, cand, margin_frac=0.5, shape=pair.aoi_gray.shape)
    footprint = Polygon(true["footprint"])
    side = footprint.length / 4
    # a window one footprint side east: centred outside, its box overlapping the footprint
    r, c = hm.nearest_cell(footprint.centroid.x + side, footprint.centroid.y) or (0, 0)
    x, y = hm.center_map(r, c)
    east = Candidate(
        rank=2,
        score=0.8,
        percentile=98.0,
        row=r,
        col=c,
        x=x,
        y=y,
        polygon=hm.window_polygon(r, c),
    )
    east_box = search_box(hm, east, margin_frac=0.5, shape=pair.aoi_gray.shape)
    assert box_polygon(east_box, pair.pixel_to_map).intersects(footprint)
    assert not footprint.contains(Point(x, y))
    seen: list[float] = []

    class Recording(TwoPlaces):
        def match(self, a, b):
            seen.append(float(np.isnan(b).mean()))
            return super().match(a, b)

    matcher = Recording(OracleMatcher(pair, true, box), (box[3] - box[1], box[2] - box[0]), 40)
    ver = verify_candidates(
        pair, hm, [cand, east], VerifyConfig(matcher=matcher, retry_candidates=0)
    )
    assert seen[1] > seen[0] + 0.1  # the second call saw the accepted footprint blanked
    assert ver.tried[0].features["decoys"] == 1
    assert ver.tried[0].status == "review"  # 40 ties at the decoy; the truth has < 80
    # the walk goes on to candidate 2 as a candidate of its own (its 40 clean ties are
    # no more unique than the 64 of candidate 1); neither is accepted
    assert [t.candidate.rank for t in ver.tried] == [1, 2]
    assert ver.status != "accepted"
