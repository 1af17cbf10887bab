"""The walk over a photo's candidates: verify each window best-first, choose one.

For each candidate :func:`verify_candidates` cuts the candidate window grown
by a margin out of the rotated, enhanced AoI and matches the photo (resampled
to the AoI pixel size and histogram-matched, as the heatmap saw it) against it
with :func:`aeroloc.verify.check.verify_candidate`; it stops at the first
accepted candidate. When the first pass accepts none, a second pass retries
the best candidates at other rotations (a wrong heading). The fitted photo →
window transform is composed into photo scan pixel → map::

    scan px ─(frame crop, resample)→ matched photo px ─(fit)→ window px
            ─(window offset)→ rotated-AoI px ─(RotatedAoI.inverse)→ map

What the matcher or the geometry makes of the data never raises: a candidate
without matches, with a degenerate fit or an absurd scale is ``rejected`` with
the reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np
from affine import Affine
from shapely.geometry import Polygon

from aeroloc.errors import AeroLocError, ConfigError, InvalidInputError
from aeroloc.georef import PhotoTransform, affine_matrix
from aeroloc.heatmap.candidates import Candidate, search_box
from aeroloc.heatmap.grid import Heatmap
from aeroloc.preprocess.prepare import PreparedPair
from aeroloc.verify.accept import STATUS_ORDER, AcceptanceRules, Calibration
from aeroloc.verify.check import CandidateCheck, verify_candidate
from aeroloc.verify.decoys import (
    DEFAULT_DECOYS,
    MAX_BLANKED_SHARE,
    blank_polygon,
    blanked_share,
    box_polygon,
    decoy_candidates,
    decoy_reason,
)
from aeroloc.verify.fit import project
from aeroloc.verify.matching import DEFAULT_MATCHER, Matcher, get_matcher


@dataclass(frozen=True, kw_only=True)
class VerifyConfig:
    """How ``locate`` verifies its candidates.

    Attributes:
        matcher: matcher name (see ``aeroloc.verify.list_matchers``)
            or a matcher object (a :class:`~aeroloc.verify.Matcher`: ``name``,
            ``fit_kinds`` and ``match(a, b)``); None for the default. A
            learned matcher whose package is missing falls back to SIFT with
            a warning.
        max_candidates: candidates verified at most, best first.
        margin_frac: each candidate window is grown by this fraction of its
            side on every side before matching (0.5: a box twice the window).
        rotations_deg: photo rotations tried on every candidate (relative to
            the catalog heading, to which the AoI is already rotated; 0 is
            right unless the heading is wrong).
        retry_rotations_deg: tried in a second pass over the best
            ``retry_candidates`` candidates when the first pass accepts none
            (a heading off by 90° or 180°).
        retry_candidates: how many candidates the second pass retries (a
            wrong heading also spoils the heatmap, so only its best candidate
            is worth a retry by default; each retry costs three matches).
        stop_at_accept: stop at the first accepted candidate (False verifies
            all ``max_candidates``, e.g. to collect calibration data).
        decoys: an accepted fit is tested against this many decoys, the
            other candidates whose boxes do not touch its footprint
            (:mod:`aeroloc.verify.decoys`); 0 turns the test off.
        warp: also write the north-up resampled photo.
        calibration: ``aeroloc.verify.Calibration`` for ``p_correct``; None
            for the shipped one.
        acceptance: the thresholds that decide accepted / review / rejected
            (the defaults expect a near-vertical photo against an orthoimage).
    """

    matcher: Matcher | str | None = None
    max_candidates: int = 10
    margin_frac: float = 0.5
    rotations_deg: tuple[float, ...] = (0.0,)
    retry_rotations_deg: tuple[float, ...] = (90.0, 180.0, 270.0)
    retry_candidates: int = 1
    stop_at_accept: bool = True
    decoys: int = DEFAULT_DECOYS
    warp: bool = False
    calibration: Calibration | None = None
    acceptance: AcceptanceRules = field(default_factory=AcceptanceRules)

    def __post_init__(self) -> None:
        if self.max_candidates < 1:
            raise ConfigError(f"max_candidates must be ≥ 1, got {self.max_candidates}")
        if self.retry_candidates < 0:
            raise ConfigError(f"retry_candidates must be ≥ 0, got {self.retry_candidates}")
        if self.decoys < 0:
            raise ConfigError(f"decoys must be ≥ 0, got {self.decoys}")
        if not (math.isfinite(self.margin_frac) and 0.0 <= self.margin_frac <= 5.0):
            raise ConfigError(f"margin_frac must be between 0 and 5, got {self.margin_frac}")
        if not self.rotations_deg:
            raise ConfigError("rotations_deg must hold at least one angle")
        angles = (*self.rotations_deg, *self.retry_rotations_deg)
        if not all(math.isfinite(float(a)) for a in angles):
            raise ConfigError(f"rotation angles must be finite, got {angles}")
        if not (self.matcher is None or isinstance(self.matcher, str | Matcher)):
            raise ConfigError(
                f"matcher must be a name or a Matcher (name, fit_kinds, match(a, b)); "
                f"got {type(self.matcher).__name__}"
            )


@dataclass(frozen=True, kw_only=True, eq=False)
class TriedCandidate:
    """One candidate window matched against the photo.

    Attributes:
        candidate: the heatmap candidate.
        status: ``accepted``, ``review`` or ``rejected``.
        reasons: why (from the assessment, or why verification failed).
        p_correct: calibrated probability that the fit is right (NaN on failure).
        features: assessment features (for calibration).
        transform: photo scan pixel → map, or None when no fit was possible.
        footprint: image area mapped by ``transform``, or None.
        box_px: matched AoI box ``(col0, row0, col1, row1)`` in rotated-AoI pixels.
        kind: fitted model (similarity / affine / homography) or "".
        n_matches, n_inliers, inlier_ratio, rmse_px: match statistics.
        rotation_deg: photo rotation at which the fit was found.
        seconds: time spent on this candidate.
        tie_pixel_xy: ``[K x 2]`` inlier tie points in photo scan pixels.
        tie_map_xy: ``[K x 2]`` their positions in the reference (map).
    """

    candidate: Candidate
    status: str
    reasons: tuple[str, ...]
    p_correct: float
    features: dict[str, float]
    transform: PhotoTransform | None
    footprint: Polygon | None
    box_px: tuple[int, int, int, int]
    kind: str = ""
    n_matches: int = 0
    n_inliers: int = 0
    inlier_ratio: float = 0.0
    rmse_px: float = math.nan
    rotation_deg: float = 0.0
    seconds: float = 0.0
    tie_pixel_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    tie_map_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


@dataclass(frozen=True, kw_only=True, eq=False)
class Verification:
    """The candidates tried and the chosen one.

    Attributes:
        tried: every candidate matched, in the order tried.
        chosen: the first accepted candidate; else the most probable one for
            review; else None (all rejected).
        matcher: matcher name actually used (after any fallback).
        n_windows: scored windows of the heatmap.
        area_searched: share of the valid AoI inside the matched boxes.
    """

    tried: tuple[TriedCandidate, ...]
    chosen: TriedCandidate | None
    matcher: str
    n_windows: int
    area_searched: float

    @property
    def status(self) -> str:
        """Status of the chosen candidate, ``rejected`` when none."""
        return "rejected" if self.chosen is None else self.chosen.status

    @property
    def windows_tried(self) -> int:
        return len(self.tried)

    @property
    def search_reduction(self) -> float:
        """1 − windows tried / scored windows."""
        return 1.0 - self.windows_tried / self.n_windows if self.n_windows else math.nan


def frame_box(prepared: PreparedPair) -> tuple[int, int, int, int]:
    """Image area ``(col0, row0, col1, row1)`` of the scan (exclusive ends)."""
    f = prepared.frame
    return f.col0, f.row0, f.col1, f.row1


def photo_scan_to_matched(prepared: PreparedPair) -> np.ndarray:
    """``[3 x 3]`` scan pixel → pixel of ``prepared.photo`` (frame crop, then resample)."""
    c0, r0, c1, r1 = frame_box(prepared)
    n = prepared.photo.shape[1], prepared.photo.shape[0]
    return affine_matrix(
        Affine.scale(n[0] / (c1 - c0), n[1] / (r1 - r0)) @ Affine.translation(-c0, -r0)
    )


def _matcher(config: VerifyConfig) -> Matcher:
    if config.matcher is None or isinstance(config.matcher, str):
        return get_matcher(config.matcher or DEFAULT_MATCHER)
    return config.matcher


def _passes(config: VerifyConfig) -> list[tuple[tuple[float, ...], int]]:
    """``(rotations, candidates)`` of the first pass and, if any, the retry pass."""
    passes = [(config.rotations_deg, config.max_candidates)]
    if config.retry_rotations_deg and config.retry_candidates:
        retry = min(config.retry_candidates, config.max_candidates)
        passes.append((config.retry_rotations_deg, retry))
    return passes


def verify_candidates(
    prepared: PreparedPair,
    heatmap: Heatmap,
    candidates: Sequence[Candidate],
    config: VerifyConfig,
) -> Verification:
    """Match the photo against candidate windows best-first (see the module docstring).

    A candidate tried in both passes keeps its better outcome (:func:`_better`).
    """
    matcher = _matcher(config)
    aoi = prepared.aoi_gray
    valid = np.isfinite(aoi)
    searched = np.zeros(aoi.shape, dtype=bool)
    tried: dict[int, TriedCandidate] = {}

    def box_of(cand: Candidate) -> tuple[int, int, int, int]:
        return search_box(heatmap, cand, margin_frac=config.margin_frac, shape=aoi.shape)

    for k, (rotations, n_candidates) in enumerate(_passes(config)):
        if k > 0 and any(t.status == "accepted" for t in tried.values()):
            break
        earlier = dict(tried)
        this_pass: dict[int, TriedCandidate] = {}

        def attempt(
            cand: Candidate,
            rotations: tuple[float, ...] = rotations,
            this_pass: dict[int, TriedCandidate] = this_pass,
            earlier: dict[int, TriedCandidate] = earlier,
        ) -> TriedCandidate:
            if cand.rank not in this_pass:
                box = box_of(cand)
                searched[box[1] : box[3], box[0] : box[2]] = True
                this_pass[cand.rank] = _verify_one(prepared, cand, box, matcher, rotations, config)
                _keep(tried, earlier, this_pass[cand.rank])
            return this_pass[cand.rank]

        def blanked(
            cand: Candidate, footprint: Polygon, rotations: tuple[float, ...] = rotations
        ) -> TriedCandidate:
            return _verify_one(
                prepared, cand, box_of(cand), matcher, rotations, config, blank=footprint
            )

        for cand in candidates[:n_candidates]:
            one = attempt(cand)
            if one.status == "accepted":
                one = _against_decoys(one, candidates, attempt, blanked, box_of, prepared, config)
                this_pass[cand.rank] = one
                _keep(tried, earlier, one)
            if one.status == "accepted" and config.stop_at_accept:
                break
    n_valid = int(np.isfinite(heatmap.scores).sum())
    order = tuple(tried.values())
    return Verification(
        tried=order,
        chosen=_choose(order),
        matcher=str(matcher.name),
        n_windows=n_valid,
        area_searched=float((searched & valid).sum() / max(1, int(valid.sum()))),
    )


def _keep(
    tried: dict[int, TriedCandidate],
    earlier: dict[int, TriedCandidate],
    one: TriedCandidate,
) -> None:
    """Record ``one``; a candidate tried in an earlier pass keeps its better outcome."""
    previous = earlier.get(one.candidate.rank)
    tried[one.candidate.rank] = one if previous is None or _better(one, previous) else previous


def _against_decoys(
    accepted: TriedCandidate,
    candidates: Sequence[Candidate],
    attempt: Callable[[Candidate], TriedCandidate],
    blanked: Callable[[Candidate, Polygon], TriedCandidate],
    box_of: Callable[[Candidate], tuple[int, int, int, int]],
    prepared: PreparedPair,
    config: VerifyConfig,
) -> TriedCandidate:
    """``accepted`` if it beats its decoys (:mod:`aeroloc.verify.decoys`), else sent to review.

    A decoy whose box misses the accepted footprint is matched as a candidate
    (``attempt``: the walk's own try, reused); one whose box covers part of it
    is matched with that part blanked (``blanked``), so that it cannot find
    the accepted place again.
    """
    if config.decoys == 0 or accepted.footprint is None:
        return accepted
    footprint = accepted.footprint
    counts: list[tuple[int, int]] = []
    for cand in decoy_candidates(footprint, candidates, exclude_rank=accepted.candidate.rank):
        if len(counts) == config.decoys:
            break
        box = box_of(cand)
        if not box_polygon(box, prepared.pixel_to_map).intersects(footprint):
            counts.append((cand.rank, attempt(cand).n_inliers))
        elif blanked_share(prepared, box, footprint) <= MAX_BLANKED_SHARE:
            counts.append((cand.rank, blanked(cand, footprint).n_inliers))
    best = max((n for _, n in counts), default=0)
    features = {
        **accepted.features,
        "decoys": float(len(counts)),
        "decoy_inliers": float(best),
    }
    reason = decoy_reason(accepted.n_inliers, counts, config.acceptance)
    if reason is None:
        return replace(accepted, features=features)
    return replace(
        accepted, status="review", reasons=(*accepted.reasons, reason), features=features
    )


def _better(a: TriedCandidate, b: TriedCandidate) -> bool:
    """True when ``a`` is a better outcome for the same candidate than ``b``."""
    key_a = (STATUS_ORDER[a.status], np.nan_to_num(a.p_correct, nan=-1.0), a.n_inliers)
    key_b = (STATUS_ORDER[b.status], np.nan_to_num(b.p_correct, nan=-1.0), b.n_inliers)
    return key_a > key_b


def _choose(tried: Sequence[TriedCandidate]) -> TriedCandidate | None:
    """The first accepted candidate; else the most probable for review; else None."""
    for t in tried:
        if t.status == "accepted":
            return t
    review = [t for t in tried if t.status == "review"]
    if review:
        return max(review, key=lambda t: (np.nan_to_num(t.p_correct, nan=-1.0), -t.candidate.rank))
    return None


@dataclass(frozen=True, kw_only=True, eq=False)
class _Placement:
    """Where a fit puts the photo on the map.

    Attributes:
        transform: scan pixel → map, None when none was fitted or it is degenerate.
        footprint: the scan's image area on the map, None unless ``transform`` passed its check.
        problem: why the fit cannot place the photo, None when it can (or when
            there was no fit at all).
        keeps_p_correct: whether a rejection for ``problem`` keeps the fit's ``p_correct``.
    """

    transform: PhotoTransform | None = None
    footprint: Polygon | None = None
    problem: str | None = None
    keeps_p_correct: bool = True


def _place(
    prepared: PreparedPair,
    check: CandidateCheck,
    kind: str,
    target_to_map: np.ndarray,
    scan_to_matched: np.ndarray,
) -> _Placement:
    """Compose the fitted photo → window transform into scan pixel → map and check it."""
    if check.photo_to_target is None or not np.isfinite(check.photo_to_target).all():
        return _Placement()
    matrix = target_to_map @ np.asarray(check.photo_to_target, dtype=np.float64) @ scan_to_matched
    try:
        transform = PhotoTransform(matrix=matrix, kind=kind or "homography", crs=prepared.aoi.crs)
    except InvalidInputError as exc:
        return _Placement(problem=f"degenerate transform: {exc}", keeps_p_correct=False)
    problem = transform.check(frame_box(prepared))
    if problem is not None:
        return _Placement(transform=transform, problem=problem)
    return _Placement(transform=transform, footprint=transform.footprint(frame_box(prepared)))


def _fit_stats(check: CandidateCheck) -> dict[str, Any]:
    """The match statistics a :class:`TriedCandidate` records."""
    fit = check.fit
    return {
        "kind": str(fit.kind or ""),
        "n_matches": int(check.n_matches),
        "n_inliers": int(fit.n_inliers),
        "inlier_ratio": float(fit.inlier_ratio),
        "rmse_px": float(fit.rmse_px) if fit.rmse_px is not None else math.nan,
        "rotation_deg": float(check.rotation_deg),
    }


def candidate_rotations(cand: Candidate, rotations_deg: Sequence[float]) -> tuple[float, ...]:
    """Photo rotations to try on ``cand``: the given ones, then each turned to the heading found.

    The catalog heading comes first (the search resolves the heading only to
    about a step: on the default synthetic preset, whose headings are at most
    10° off, it is often the better start); the heading the pose search found
    is tried next, when it differs by more than a degree. Verification stops at
    the first angle accepted with a high ``p_correct``, so the second costs
    only where the first did not convince.
    """
    out = [float(r) for r in rotations_deg]
    offset = cand.heading_offset_deg
    if abs(offset) > 1.0:
        out += [float(r) + offset for r in rotations_deg]
    return tuple(out)


def _check_window(
    prepared: PreparedPair,
    cand: Candidate,
    target: np.ndarray,
    matcher: Matcher,
    rotations_deg: Sequence[float],
    config: VerifyConfig,
) -> CandidateCheck | str:
    """The check of one window, or why it could not be made."""
    if np.count_nonzero(np.isfinite(target)) < 0.25 * target.size:
        return "the candidate window holds almost no reference data"
    try:
        return verify_candidate(
            prepared.photo,
            target,
            matcher=matcher,
            expected_scale=cand.scale,
            rotations_deg=candidate_rotations(cand, rotations_deg),
            # The AoI is rotated to the catalog heading and the photo resampled
            # to the ground size its altitude gives: the prior is (0°, 1).
            prior_rotation_deg=0.0,
            prior_scale=1.0,
            calibration=config.calibration,
            rules=config.acceptance,
        )
    except (AeroLocError, cv2.error, np.linalg.LinAlgError, RuntimeError) as exc:
        # RuntimeError: torch inside a (learned) matcher; the candidate is
        # rejected with the reason instead of ending the whole run.
        return f"verification failed: {exc}"


def _verify_one(
    prepared: PreparedPair,
    cand: Candidate,
    box: tuple[int, int, int, int],
    matcher: Matcher,
    rotations_deg: Sequence[float],
    config: VerifyConfig,
    blank: Polygon | None = None,
) -> TriedCandidate:
    """Verify one candidate window ``box`` (rotated-AoI pixels) and place the photo.

    ``blank`` (map coordinates) is set to nodata in the window first: a decoy
    must not find the place already accepted.
    """
    c0, r0, c1, r1 = box
    target = prepared.aoi_gray[r0:r1, c0:c1]
    if blank is not None:
        target = blank_polygon(target, blank, ~prepared.pixel_to_map, (c0, r0))
    t0 = time.perf_counter()

    def rejected(reason: str, **kw: Any) -> TriedCandidate:
        return TriedCandidate(
            candidate=cand,
            status="rejected",
            reasons=(reason,),
            p_correct=kw.pop("p_correct", math.nan),
            features=kw.pop("features", {}),
            transform=None,
            footprint=None,
            box_px=box,
            seconds=time.perf_counter() - t0,
            **kw,
        )

    check = _check_window(prepared, cand, target, matcher, rotations_deg, config)
    if isinstance(check, str):
        return rejected(check)
    assessment = check.assessment
    stats = _fit_stats(check)
    features = {k: float(v) for k, v in dict(assessment.features).items()}
    p_correct = float(assessment.p_correct)
    status = str(assessment.status)
    target_to_map = affine_matrix(prepared.pixel_to_map @ Affine.translation(c0, r0))
    scan_to_matched = photo_scan_to_matched(prepared)
    placed = _place(prepared, check, stats["kind"], target_to_map, scan_to_matched)
    if status != "rejected":
        if placed.problem is not None:
            p = p_correct if placed.keeps_p_correct else math.nan
            return rejected(placed.problem, p_correct=p, features=features, **stats)
        if placed.footprint is None:
            return rejected("no transform was fitted", features=features, **stats)
    tie_pixel = tie_map = np.zeros((0, 2))
    if placed.footprint is not None and len(check.inliers_photo):
        tie_pixel = project(np.linalg.inv(scan_to_matched), check.inliers_photo)
        tie_map = project(target_to_map, check.inliers_target)
    return TriedCandidate(
        candidate=cand,
        status=status,
        reasons=tuple(str(r) for r in assessment.reasons),
        p_correct=p_correct,
        features=features,
        transform=placed.transform,
        footprint=placed.footprint,
        box_px=box,
        seconds=time.perf_counter() - t0,
        tie_pixel_xy=tie_pixel,
        tie_map_xy=tie_map,
        **stats,
    )
