"""One photo through the pipeline: AoI → prepare → heatmap → candidates → verify → files.

``locate_photo`` writes, into its output folder, the files DESIGN.md lists:
``heatmap.tif``, ``heatmap.png``, ``candidates.gpkg``, and, when a candidate
is verified (accepted or for review), ``footprint.gpkg``, ``gcps.points``,
``photo_gcps.tif`` (and ``photo_warped.tif`` with ``warp``); last,
``result.json``. Each is written atomically; ``result.json`` only once
everything else is in place, so its presence means the photo is done (a rerun
skips it unless asked to overwrite).

Verification walks the candidates best-first. For each it cuts the candidate
window grown by a margin out of the rotated, enhanced AoI and matches the
photo (resampled to the AoI pixel size and histogram-matched, as the heatmap
saw it) against it with :func:`aeroloc.verify.verify_candidate`; it stops at
the first accepted candidate. The fitted photo → window transform is
composed into photo scan pixel → map::

    scan px ─(frame crop, resample)→ matched photo px ─(fit)→ window px
            ─(window offset)→ rotated-AoI px ─(RotatedAoI.inverse)→ map

``windows_tried`` is the number of candidate windows verified and
``search_reduction`` = 1 − windows_tried / scored windows of the heatmap
(what an exhaustive verification of every window, with the same margin, would
have tried). ``area_searched`` is the share of the valid AoI covered by the
matched (grown) boxes, a stricter measure of the same saving.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from affine import Affine
from shapely.geometry import Polygon, mapping

from aeroloc import __version__
from aeroloc.aoi import AoI, AoIConfig, build_aoi, check_center_in_reference
from aeroloc.candidates import Candidate, find_candidates, search_box
from aeroloc.catalog import PhotoRecord
from aeroloc.errors import AeroLocError, ConfigError, InvalidInputError, ModelError
from aeroloc.files import atomic_output, write_json
from aeroloc.georef import GeorefOutputs, PhotoTransform, affine_matrix, write_georef_outputs
from aeroloc.heatmap.engines import HeatmapConfig, compute_heatmap
from aeroloc.heatmap.grid import Heatmap
from aeroloc.heatmap.io import save_heatmap_png, save_heatmap_tif
from aeroloc.models import (
    Embedder,
    default_model,
    get_model,
    list_models,
    load_checkpoint,
)
from aeroloc.preprocess import AveragedHistogramThreshold
from aeroloc.preprocess.prepare import PreparedPair, enhance_aoi_preview, prepare_request

RESULT_FILE = "result.json"
CELLS_FILE = "heatmap_cells.npy"


def load_model(spec: str | os.PathLike[str] | None = None) -> tuple[Embedder, str]:
    """A model from a registry name or a checkpoint path, and a label for reports.

    ``None`` gives the shipped default checkpoint (the adaptively trained
    ``effnet-lite0-siamese``), or, when the package has none, the ImageNet
    ``effnet-lite0-siamese``.
    """
    if spec is None:
        return default_model()
    text = str(spec)
    if text in list_models():
        return get_model(text), text
    path = Path(text)
    if path.suffix in (".pt", ".pth", ".ckpt") or path.exists():
        return load_checkpoint(path), str(path)
    raise ModelError(
        f"unknown model {text!r}: give a checkpoint file or one of {', '.join(list_models())}"
    )


@dataclass(frozen=True, kw_only=True)
class LocateRequest:
    """Everything needed to search for one photo.

    Attributes:
        photo_path: the scanned photo.
        references: reference rasters (mosaic, first wins).
        aoi: the area of interest.
        azimuth_deg: heading used to rotate the AoI.
        ground_size_m: the photo's footprint side; or None with ``gsd_m``.
        gsd_m: scan pixel size on the ground, when ``ground_size_m`` is None.
        rock_mask_path: rock-outcrop polygons for the enhancement.
        photo_id: name used in reports.
    """

    photo_path: Path
    references: tuple[Path, ...]
    aoi: AoI
    azimuth_deg: float
    ground_size_m: float | None = None
    gsd_m: float | None = None
    rock_mask_path: Path | None = None
    photo_id: str = ""

    def __post_init__(self) -> None:
        if (self.ground_size_m is None) == (self.gsd_m is None):
            raise InvalidInputError("give the photo's ground size (altitude) or its GSD")
        if not math.isfinite(self.azimuth_deg):
            raise InvalidInputError(f"azimuth must be finite, got {self.azimuth_deg}")


def request_from_record(
    record: PhotoRecord,
    references: Sequence[Path],
    *,
    aoi_config: AoIConfig | None = None,
    photo_path: Path | None = None,
    rock_mask_path: Path | None = None,
) -> LocateRequest:
    """A :class:`LocateRequest` from a catalog record (AoI around its rough footprint)."""
    cfg = aoi_config or AoIConfig()
    path = photo_path or record.path
    if path is None:
        raise InvalidInputError(f"photo {record.photo_id} has no path in the catalog")
    if record.azimuth_deg is None:
        raise InvalidInputError(
            f"photo {record.photo_id} has no azimuth_deg: add the heading to the catalog"
        )
    area = build_aoi(record, cfg)
    check_center_in_reference(record, references)
    return LocateRequest(
        photo_path=Path(path),
        references=tuple(Path(p) for p in references),
        aoi=area,
        azimuth_deg=record.azimuth_deg,
        ground_size_m=area.ground_width_m,
        rock_mask_path=rock_mask_path,
        photo_id=record.photo_id,
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class LocateResult:
    """What ``locate_photo`` found and wrote."""

    out_dir: Path
    heatmap: Heatmap
    candidates: tuple[Candidate, ...]
    window_px: int
    timings_s: dict[str, float] = field(default_factory=dict)
    skipped: bool = False
    verification: Verification | None = None
    georef: GeorefOutputs | None = None

    def paths(self) -> dict[str, Path]:
        names = (RESULT_FILE, "heatmap.tif", "heatmap.png", "candidates.gpkg", CELLS_FILE)
        out = {n: self.out_dir / n for n in names}
        if self.georef is not None:
            out.update({p.name: p for p in self.georef.paths.values()})
        return out

    @property
    def status(self) -> str:
        """``accepted``, ``review``, ``rejected``, or ``unverified`` without verification."""
        return "unverified" if self.verification is None else self.verification.status


def locate_photo(
    request: LocateRequest,
    out_dir: str | os.PathLike[str],
    *,
    model: Embedder,
    model_label: str = "",
    heatmap_config: HeatmapConfig | None = None,
    max_candidates: int = 20,
    threshold: AveragedHistogramThreshold | None = None,
    truth_footprint: Any = None,
    overwrite: bool = True,
    progress: Callable[[int, int], None] | None = None,
    verify: VerifyConfig | None = None,
) -> LocateResult | None:
    """Search one photo; verify its candidates; write the files (see the module docstring).

    Args:
        request: photo, references, AoI, heading and ground size.
        out_dir: folder to write into.
        model: similarity model for the heatmap.
        model_label: how reports name the model.
        heatmap_config: engine and stride.
        max_candidates: candidates kept after non-maximum suppression.
        threshold: binarisation threshold for binary models.
        truth_footprint: true footprint to draw on heatmap.png (synthetic data).
        overwrite: False skips a folder that already holds a result (resume).
        progress: called with (windows done, windows) while scoring.
        verify: verification settings; None skips verification (every
            candidate stays ``unverified``).

    Returns:
        The result, or None when ``overwrite`` is False and the folder already
        holds one.
    """
    out = Path(out_dir)
    if not overwrite and (out / RESULT_FILE).is_file():
        return None
    hcfg = heatmap_config or HeatmapConfig()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    binary = model.spec.preprocessing == "binary"
    raster, prepared = prepare_request(
        request,
        threshold=(threshold or AveragedHistogramThreshold.fixed()) if binary else None,
        timings=timings,
    )
    photo, aoi_img = _model_inputs(prepared, binary)
    t = time.perf_counter()
    heatmap = compute_heatmap(
        photo,
        aoi_img,
        model=model,
        window_px=prepared.window_px,
        pixel_to_map=prepared.pixel_to_map,
        crs=prepared.aoi.crs,
        config=hcfg,
        model_label=model_label or model.spec.name,
        progress=progress,
    )
    timings["heatmap"] = time.perf_counter() - t
    candidates = find_candidates(heatmap, max_candidates=max_candidates)
    verification: Verification | None = None
    georef: GeorefOutputs | None = None
    if verify is not None:
        t = time.perf_counter()
        verification = verify_candidates(prepared, heatmap, candidates, verify)
        timings["verify"] = time.perf_counter() - t
        chosen = verification.chosen
        if chosen is not None and chosen.transform is not None and chosen.footprint is not None:
            t = time.perf_counter()
            georef = write_georef_outputs(
                request.photo_path,
                out,
                chosen.transform,
                frame_box(prepared),
                tie_pixel_xy=chosen.tie_pixel_xy,
                tie_map_xy=chosen.tie_map_xy,
                warp=verify.warp,
                properties={
                    "photo_id": request.photo_id,
                    "status": chosen.status,
                    "p_correct": chosen.p_correct,
                    "rank": chosen.candidate.rank,
                    "score": chosen.candidate.score,
                    "matcher": verification.matcher,
                    "n_inliers": chosen.n_inliers,
                    "rmse_px": chosen.rmse_px,
                },
            )
            timings["georef"] = time.perf_counter() - t
    _remove_stale_georef(out, georef)
    t = time.perf_counter()
    save_heatmap_tif(heatmap, out / "heatmap.tif")
    background, background_transform = enhance_aoi_preview(raster)
    save_heatmap_png(
        heatmap,
        out / "heatmap.png",
        background=background,
        background_transform=background_transform,
        candidates=[(c.rank, c.polygon) for c in candidates[:5]],
        footprint=(
            verification.chosen.footprint
            if verification is not None
            and verification.chosen is not None
            and verification.status == "accepted"
            else None
        ),
        truth=truth_footprint,
        title=f"{request.photo_id or request.photo_path.name}: {heatmap.model}",
    )
    write_candidates_gpkg(candidates, heatmap, out / "candidates.gpkg")
    save_cells(heatmap, out / CELLS_FILE)
    timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    result = _result_json(request, prepared, heatmap, candidates, timings)
    if verification is not None:
        extra, best = _verification_json(verification, georef)
        result.update(extra)
        # no candidate verified: best stays the top candidate, with the reasons
        result["best"] = best if verification.chosen is not None else {**result["best"], **best}
    write_json(out / RESULT_FILE, result)
    return LocateResult(
        out_dir=out,
        heatmap=heatmap,
        candidates=candidates,
        window_px=prepared.window_px,
        timings_s=timings,
        verification=verification,
        georef=georef,
    )


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True, kw_only=True)
class VerifyConfig:
    """How ``locate`` verifies its candidates.

    Attributes:
        matcher: matcher name (see ``aeroloc.verify.list_matchers``)
            or a matcher object (anything with ``name`` and ``match(a, b)``);
            None for the default. A learned matcher whose package is missing
            falls back to SIFT with a warning.
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
        warp: also write the north-up resampled photo.
        calibration: ``aeroloc.verify.Calibration`` for ``p_correct``; None
            for the shipped one.
    """

    matcher: Any = None
    max_candidates: int = 10
    margin_frac: float = 0.5
    rotations_deg: tuple[float, ...] = (0.0,)
    retry_rotations_deg: tuple[float, ...] = (90.0, 180.0, 270.0)
    retry_candidates: int = 1
    stop_at_accept: bool = True
    warp: bool = False
    calibration: Any = None

    def __post_init__(self) -> None:
        if self.max_candidates < 1:
            raise ConfigError(f"max_candidates must be ≥ 1, got {self.max_candidates}")
        if self.retry_candidates < 0:
            raise ConfigError(f"retry_candidates must be ≥ 0, got {self.retry_candidates}")
        if not (math.isfinite(self.margin_frac) and 0.0 <= self.margin_frac <= 5.0):
            raise ConfigError(f"margin_frac must be between 0 and 5, got {self.margin_frac}")
        if not self.rotations_deg:
            raise ConfigError("rotations_deg must hold at least one angle")
        angles = (*self.rotations_deg, *self.retry_rotations_deg)
        if not all(math.isfinite(float(a)) for a in angles):
            raise ConfigError(f"rotation angles must be finite, got {angles}")


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

    def as_dict(self) -> dict[str, Any]:
        """JSON-able record."""
        return {
            "rank": self.candidate.rank,
            "status": self.status,
            "reasons": list(self.reasons),
            "p_correct": _finite_or_none(self.p_correct, 4),
            "kind": self.kind,
            "n_matches": self.n_matches,
            "n_inliers": self.n_inliers,
            "inlier_ratio": round(self.inlier_ratio, 4),
            "rmse_px": _finite_or_none(self.rmse_px, 4),
            "rotation_deg": self.rotation_deg,
            "box_px": list(self.box_px),
            "seconds": round(self.seconds, 4),
            "features": {k: _finite_or_none(v, 6) for k, v in self.features.items()},
            "footprint": None if self.footprint is None else mapping(self.footprint),
        }


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


def verify_candidates(
    prepared: PreparedPair,
    heatmap: Heatmap,
    candidates: Sequence[Candidate],
    config: VerifyConfig,
) -> Verification:
    """Match the photo against candidate windows best-first (see the module docstring).

    Never raises on what the matcher or the geometry makes of the data: a
    candidate without matches, with a degenerate fit or an absurd scale is
    ``rejected`` with the reason.
    """
    from aeroloc.verify import DEFAULT_MATCHER, get_matcher

    if config.matcher is None or isinstance(config.matcher, str):
        matcher = get_matcher(config.matcher or DEFAULT_MATCHER)
    else:
        matcher = config.matcher
    aoi = prepared.aoi_gray
    valid = np.isfinite(aoi)
    searched = np.zeros(aoi.shape, dtype=bool)
    tried: dict[int, TriedCandidate] = {}
    passes = [(config.rotations_deg, config.max_candidates)]
    if config.retry_rotations_deg and config.retry_candidates:
        retry = min(config.retry_candidates, config.max_candidates)
        passes.append((config.retry_rotations_deg, retry))
    for k, (rotations, n_candidates) in enumerate(passes):
        if k > 0 and any(t.status == "accepted" for t in tried.values()):
            break
        for cand in candidates[:n_candidates]:
            box = search_box(heatmap, cand, margin_frac=config.margin_frac, shape=aoi.shape)
            searched[box[1] : box[3], box[0] : box[2]] = True
            one = _verify_one(prepared, cand, box, matcher, rotations, config)
            previous = tried.get(cand.rank)
            if previous is None or _better(one, previous):
                tried[cand.rank] = one
            if one.status == "accepted" and config.stop_at_accept:
                break
    n_valid = int(np.isfinite(heatmap.scores).sum())
    order = tuple(tried.values())
    return Verification(
        tried=order,
        chosen=_choose(order),
        matcher=str(getattr(matcher, "name", type(matcher).__name__)),
        n_windows=n_valid,
        area_searched=float((searched & valid).sum() / max(1, int(valid.sum()))),
    )


_STATUS_ORDER = {"rejected": 0, "review": 1, "accepted": 2}


def _better(a: TriedCandidate, b: TriedCandidate) -> bool:
    """True when ``a`` is a better outcome for the same candidate than ``b``."""
    key_a = (_STATUS_ORDER[a.status], np.nan_to_num(a.p_correct, nan=-1.0), a.n_inliers)
    key_b = (_STATUS_ORDER[b.status], np.nan_to_num(b.p_correct, nan=-1.0), b.n_inliers)
    return key_a > key_b


def _choose(tried: Sequence[TriedCandidate]) -> TriedCandidate | None:
    for t in tried:
        if t.status == "accepted":
            return t
    review = [t for t in tried if t.status == "review"]
    if review:
        return max(review, key=lambda t: (np.nan_to_num(t.p_correct, nan=-1.0), -t.candidate.rank))
    return None


def _verify_one(
    prepared: PreparedPair,
    cand: Candidate,
    box: tuple[int, int, int, int],
    matcher: Any,
    rotations_deg: Sequence[float],
    config: VerifyConfig,
) -> TriedCandidate:
    from aeroloc.verify import verify_candidate

    c0, r0, c1, r1 = box
    target = prepared.aoi_gray[r0:r1, c0:c1]
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

    if np.count_nonzero(np.isfinite(target)) < 0.25 * target.size:
        return rejected("the candidate window holds almost no reference data")
    try:
        check = verify_candidate(
            prepared.photo,
            target,
            matcher=matcher,
            expected_scale=cand.scale,
            rotations_deg=rotations_deg,
            calibration=config.calibration,
        )
    except (AeroLocError, cv2.error, np.linalg.LinAlgError, RuntimeError) as exc:
        # RuntimeError: torch inside a (learned) matcher; the candidate is
        # rejected with the reason instead of ending the whole run.
        return rejected(f"verification failed: {exc}")
    fit, assessment = check.fit, check.assessment
    stats: dict[str, Any] = {
        "kind": str(fit.kind or ""),
        "n_matches": int(check.n_matches),
        "n_inliers": int(fit.n_inliers),
        "inlier_ratio": float(fit.inlier_ratio),
        "rmse_px": float(fit.rmse_px) if fit.rmse_px is not None else math.nan,
        "rotation_deg": float(check.rotation_deg),
    }
    features = {k: float(v) for k, v in dict(assessment.features).items()}
    p_correct = float(assessment.p_correct)
    reasons = tuple(str(r) for r in assessment.reasons)
    status = str(assessment.status)
    transform = footprint = None
    target_to_map = affine_matrix(prepared.pixel_to_map @ Affine.translation(c0, r0))
    scan_to_matched = photo_scan_to_matched(prepared)
    if check.photo_to_target is not None and np.isfinite(check.photo_to_target).all():
        try:
            matrix = (
                target_to_map
                @ np.asarray(check.photo_to_target, dtype=np.float64)
                @ scan_to_matched
            )
            transform = PhotoTransform(
                matrix=matrix, kind=stats["kind"] or "homography", crs=prepared.aoi.crs
            )
        except InvalidInputError as exc:
            if status != "rejected":
                return rejected(f"degenerate transform: {exc}", features=features, **stats)
        if transform is not None:
            problem = transform.check(frame_box(prepared))
            if problem is None:
                footprint = transform.footprint(frame_box(prepared))
            elif status != "rejected":
                return rejected(problem, p_correct=p_correct, features=features, **stats)
    if status != "rejected" and footprint is None:
        return rejected("no transform was fitted", features=features, **stats)
    tie_pixel = tie_map = np.zeros((0, 2))
    if footprint is not None and len(check.inliers_photo):
        tie_pixel = _project(np.linalg.inv(scan_to_matched), check.inliers_photo)
        tie_map = _project(target_to_map, check.inliers_target)
    return TriedCandidate(
        candidate=cand,
        status=status,
        reasons=reasons,
        p_correct=p_correct,
        features=features,
        transform=transform,
        footprint=footprint,
        box_px=box,
        seconds=time.perf_counter() - t0,
        tie_pixel_xy=tie_pixel,
        tie_map_xy=tie_map,
        **stats,
    )


def _project(matrix: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """``[N x 2]`` points through a ``[3 x 3]`` homogeneous matrix."""
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    hom = np.column_stack([pts, np.ones(len(pts))]) @ matrix.T
    return hom[:, :2] / hom[:, 2:3]


def _finite_or_none(v: float, digits: int) -> float | None:
    v = float(v)
    return round(v, digits) if math.isfinite(v) else None


def _verification_json(
    verification: Verification, georef: GeorefOutputs | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Search counts and tried candidates of a verified result, and its ``best`` fields."""
    chosen = verification.chosen
    best: dict[str, Any] = {"status": verification.status, "matcher": verification.matcher}
    if chosen is None:
        reasons = [f"rank {t.candidate.rank}: {'; '.join(t.reasons)}" for t in verification.tried]
        best["reasons"] = [
            f"none of the {verification.windows_tried} candidates verified",
            *reasons,
        ]
        best["p_correct"] = max(
            (t.p_correct for t in verification.tried if math.isfinite(t.p_correct)),
            default=None,
        )
    else:
        best.update(chosen.candidate.as_dict())
        best.update(
            {
                "status": chosen.status,
                "reasons": list(chosen.reasons),
                "p_correct": _finite_or_none(chosen.p_correct, 4),
                "kind": chosen.kind,
                "n_matches": chosen.n_matches,
                "n_inliers": chosen.n_inliers,
                "inlier_ratio": round(chosen.inlier_ratio, 4),
                "rmse_px": _finite_or_none(chosen.rmse_px, 4),
                "rotation_deg": chosen.rotation_deg,
                "transform": None if chosen.transform is None else chosen.transform.to_json(),
                "footprint": None if chosen.footprint is None else mapping(chosen.footprint),
            }
        )
        if georef is not None:
            best["files"] = georef.files()
            best["gcp_source"] = georef.gcp_source
            best["n_gcps"] = len(georef.gcps)
    extra: dict[str, Any] = {
        "windows_tried": verification.windows_tried,
        "search_reduction": round(verification.search_reduction, 6),
        "area_searched": round(verification.area_searched, 6),
        "verification": {
            "matcher": verification.matcher,
            "n_windows": verification.n_windows,
            "tried": [t.as_dict() for t in verification.tried],
        },
    }
    return extra, best


def _remove_stale_georef(out: Path, georef: GeorefOutputs | None) -> None:
    """Delete georeferenced files of an earlier run that this run did not write."""
    from aeroloc.georef import FOOTPRINT_FILE, GCP_TIFF_FILE, POINTS_FILE, WARPED_FILE

    written = set() if georef is None else {p.name for p in georef.paths.values()}
    for name in (FOOTPRINT_FILE, POINTS_FILE, GCP_TIFF_FILE, WARPED_FILE):
        if name not in written:
            (out / name).unlink(missing_ok=True)


def _model_inputs(prepared: PreparedPair, binary: bool) -> tuple[np.ndarray, np.ndarray]:
    if not binary:
        return prepared.photo, prepared.aoi_gray
    if prepared.photo_binary is None or prepared.aoi_binary is None:
        raise ModelError(
            "this model compares binary images (rock = black): give rock-outcrop polygons "
            "with --rock-mask, or choose a gray model"
        )
    return prepared.photo_binary, prepared.aoi_binary


def write_candidates_gpkg(
    candidates: Sequence[Candidate], heatmap: Heatmap, path: str | os.PathLike[str]
) -> Path:
    """Window polygons with rank, score and percentile, as a GeoPackage layer."""
    import geopandas as gpd

    frame = gpd.GeoDataFrame(
        [c.as_dict() for c in candidates],
        geometry=[c.polygon for c in candidates],
        crs=heatmap.crs.to_wkt(),
    )
    with atomic_output(path) as tmp:
        frame.to_file(tmp, layer="candidates", driver="GPKG")
    return Path(path)


def _result_json(
    request: LocateRequest,
    prepared: PreparedPair,
    heatmap: Heatmap,
    candidates: Sequence[Candidate],
    timings: dict[str, float],
) -> dict[str, Any]:
    best = candidates[0]
    crs = heatmap.crs.to_string()
    return {
        "aeroloc_version": __version__,
        "photo_id": request.photo_id,
        "photo": str(request.photo_path),
        "inputs": {
            "references": [str(p) for p in request.references],
            "rock_mask": str(request.rock_mask_path) if request.rock_mask_path else None,
            "crs": crs,
            "aoi_bounds": list(request.aoi.bounds),
            "azimuth_deg": request.azimuth_deg,
            "ground_size_m": prepared.ground_size_m,
            "frame_box_px": [
                prepared.frame.col0,
                prepared.frame.row0,
                prepared.frame.col1,
                prepared.frame.row1,
            ],
        },
        "model": heatmap.model,
        "engine": heatmap.engine,
        "window_px": heatmap.window_px,
        "stride_px": heatmap.stride_px,
        "grid": {
            "shape": list(heatmap.shape),
            "pixel_to_map": list(heatmap.pixel_to_map)[:6],
            "cells_file": CELLS_FILE,
        },
        "aoi_pixel_m": heatmap.pixel_size_m,
        "n_windows": heatmap.n_windows,
        "n_valid_windows": int(heatmap.valid.sum()),
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        "candidates": [c.as_dict() for c in candidates],
        "best": {
            **best.as_dict(),
            "status": "unverified",
            "footprint": mapping(best.polygon),
        },
    }


def save_cells(heatmap: Heatmap, path: str | os.PathLike[str]) -> Path:
    """The raw ``[R x C]`` window scores (rotated grid) as ``.npy``, for evaluation."""
    with atomic_output(path) as tmp, tmp.open("wb") as fh:
        np.save(fh, heatmap.scores.astype(np.float32))
    return Path(path)


def heatmap_from_result(result: dict[str, Any], folder: str | os.PathLike[str]) -> Heatmap:
    """Rebuild the :class:`Heatmap` of a ``locate`` run from its result and cells file."""
    from affine import Affine

    from aeroloc.files import parse_crs

    grid = result["grid"]
    scores = np.load(Path(folder) / grid["cells_file"])
    return Heatmap(
        scores=scores,
        window_px=int(result["window_px"]),
        stride_px=int(result["stride_px"]),
        pixel_to_map=Affine(*grid["pixel_to_map"]),
        crs=parse_crs(result["inputs"]["crs"]),
        model=str(result["model"]),
        engine=str(result["engine"]),
    )


def read_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``result.json`` (or the one inside a folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULT_FILE
    try:
        data: dict[str, Any] = json.loads(p.read_text())
    except FileNotFoundError:
        from aeroloc.errors import MissingFileError

        raise MissingFileError(
            f"no {RESULT_FILE} in {p.parent}: run aeroloc locate first"
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{p} is not valid JSON: {exc}") from exc
    return data
