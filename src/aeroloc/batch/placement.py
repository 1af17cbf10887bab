"""One photo placed along its flight line, on a worker: neighbour, shrunken search, full search.

A :class:`LineJob` is a :class:`~aeroloc.batch.loop.PhotoJob` with a
:class:`LineHint`: where its flight line predicts the photo (plain numbers)
and, when an accepted photo lies one frame away, that neighbour's folder.
:func:`place_line_job` (the per-photo function of a batch with flight lines)
tries, in order, and stops at the first ``accepted``:

1. **neighbour** — match the photo to the accepted neighbour
   (:func:`aeroloc.lines.neighbour.match_neighbour_files`) and chain the
   transforms. The chained footprint must lie within
   ``consistency_k_sigma`` σ of the prediction (σ of the prediction and of the
   chain combined, at least ``neighbour_margin_m``). It is then **confirmed
   against the reference**: ``locate_photo`` searches and verifies the photo
   in the chained footprint's bounding box grown by ``neighbour_margin_m``,
   with the chain's heading and GSD. Accepted there: ``method = neighbour``.
2. **propagated** — ``locate_photo`` in the shrunken AoI around the
   prediction (:func:`aeroloc.lines.search.shrunken_request`, clipped to the
   full AoI). Accepted: ``method = propagated``.
3. **search** — ``locate_photo`` over the full AoI around the catalog
   position, as without flight lines. ``method = search``, whatever its status.

When no attempt is accepted, the best status wins (``review`` before
``rejected``; the narrower search on a tie). If that is not ``review`` either
and the neighbour chain passed its checks, the photo is recorded as
``review`` with ``method = neighbour`` and the chained footprint: photo-to-photo
matching placed it, the reference did not confirm it.

Every attempt writes into ``<photo>/.attempts/<method>/``; the chosen one's
files are moved into the photo's folder and its ``result.json`` (with
``method`` and ``placement``: every attempt, whether a full-AoI search ran,
the neighbour, σ) is written there last. A photo cut off mid-way has no
``result.json`` and starts again from scratch next time.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from shapely.geometry import Polygon

from aeroloc.aoi import AoIConfig, PartialOverlapWarning
from aeroloc.batch.config import LinesConfig
from aeroloc.batch.loop import PhotoJob
from aeroloc.batch.worker import LocateSpec, PhotoReport, set_torch_threads, worker_model
from aeroloc.errors import AeroLocError, InvalidInputError
from aeroloc.files import TEMP_NAME, parse_crs
from aeroloc.georef import FOOTPRINT_FILE, GCP_TIFF_FILE, POINTS_FILE, WARPED_FILE
from aeroloc.io.results import (
    RESULT_FILE,
    AttemptRecord,
    LocateRecord,
    PlacementRecord,
    geojson,
    has_result,
    read_result,
    write_result,
)
from aeroloc.lines.track import Prediction, rectangle

log = logging.getLogger(__name__)

#: Hidden folder, inside a photo's folder, where its attempts are written.
ATTEMPTS_DIR = ".attempts"
#: Status preference when no attempt is accepted (earlier is better).
_PREFERENCE = ("accepted", "review", "unverified", "rejected")


@dataclass(frozen=True, kw_only=True)
class LineHint:
    """Where the flight line predicts a photo (plain numbers and paths: it travels to workers).

    Attributes:
        line_id: the flight line.
        crs: map CRS of the numbers.
        frame: the photo's frame.
        x, y: predicted centre (m).
        heading_deg: predicted heading of the photo's top edge.
        gsd_m: the line's scan GSD (m), or None.
        ground_width_m, ground_height_m: predicted footprint size (m).
        sigma_m: 1-σ of the predicted centre (m).
        frame_gap: frames to the nearest accepted photo.
        anchor_frames: the accepted frames the prediction comes from.
        neighbour_id: an accepted photo one frame away, or None.
        neighbour_dir: its output folder (its ``result.json``), or None.
    """

    line_id: str
    crs: str
    frame: int
    x: float
    y: float
    heading_deg: float
    gsd_m: float | None
    ground_width_m: float
    ground_height_m: float
    sigma_m: float
    frame_gap: int
    anchor_frames: tuple[int, ...] = ()
    neighbour_id: str | None = None
    neighbour_dir: Path | None = None

    @classmethod
    def from_prediction(
        cls,
        prediction: Prediction,
        *,
        line_id: str,
        neighbour_id: str | None = None,
        neighbour_dir: Path | None = None,
    ) -> LineHint:
        return cls(
            line_id=line_id,
            crs=prediction.crs.to_string(),
            frame=prediction.frame,
            x=prediction.x,
            y=prediction.y,
            heading_deg=prediction.heading_deg,
            gsd_m=prediction.gsd_m,
            ground_width_m=prediction.ground_width_m,
            ground_height_m=prediction.ground_height_m,
            sigma_m=prediction.sigma_m,
            frame_gap=prediction.frame_gap,
            anchor_frames=prediction.anchor_frames,
            neighbour_id=neighbour_id,
            neighbour_dir=neighbour_dir,
        )

    def prediction(self, photo_id: str = "") -> Prediction:
        """The :class:`~aeroloc.lines.track.Prediction` these numbers describe."""
        return Prediction(
            photo_id=photo_id,
            frame=self.frame,
            x=self.x,
            y=self.y,
            heading_deg=self.heading_deg,
            gsd_m=self.gsd_m,
            ground_width_m=self.ground_width_m,
            ground_height_m=self.ground_height_m,
            sigma_m=self.sigma_m,
            frame_gap=self.frame_gap,
            anchor_frames=self.anchor_frames,
            footprint=rectangle(
                self.x, self.y, self.ground_width_m, self.ground_height_m, self.heading_deg
            ),
            crs=parse_crs(self.crs),
        )


@dataclass(frozen=True, kw_only=True)
class LineJob(PhotoJob):
    """A photo of a batch with what its flight line knows (``hint``; None: full search only)."""

    hint: LineHint | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class _Attempt:
    method: str
    record: AttemptRecord
    folder: Path | None = None
    result: LocateRecord | None = None


def attempts_dir(out_dir: Path) -> Path:
    """``<photo folder>/.attempts``."""
    return Path(out_dir) / ATTEMPTS_DIR


def clear_attempts(out_dir: Path) -> None:
    """Delete what unfinished attempts left in a photo's folder."""
    shutil.rmtree(attempts_dir(out_dir), ignore_errors=True)


def place_line_job(job: PhotoJob, spec: LocateSpec, lines: LinesConfig) -> PhotoReport:
    """Place one photo (see the module docstring); return a small report.

    Raises:
        InvalidInputError: the job has no output folder; what
            :func:`aeroloc.pipeline.locate_photo` raises for the full-AoI search.
    """
    from aeroloc.pipeline import request_from_record

    if job.out_dir is None:
        raise InvalidInputError(f"photo {job.photo_id}: the job has no output folder")
    out = Path(job.out_dir)
    if has_result(out):  # finished by another run since the job was submitted
        done = read_result(out)
        return PhotoReport(
            photo_id=job.photo_id, status=done.status, method=done.method, already_done=True
        )
    set_torch_threads(spec.torch_threads)
    clear_attempts(out)
    hint = job.hint if isinstance(job, LineJob) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialOverlapWarning)
        full = request_from_record(
            job.record,
            job.references,
            aoi_config=AoIConfig(buffer_m=spec.buffer_m),
            rock_mask_path=job.rock_mask,
        )
        tried: list[_Attempt] = []
        chain: Any = None
        if hint is not None and hint.neighbour_dir is not None and lines.neighbour:
            chain, attempt = _neighbour(job, hint, full, spec, lines)
            tried.append(attempt)
        if hint is not None and not _accepted(tried):
            tried.append(_propagated(job, hint, full, spec, lines))
        if not _accepted(tried):
            tried.append(_search(job, full, spec))
    chosen = _choose(tried)
    if chosen.result is None or chosen.folder is None:  # pragma: no cover - search always runs
        raise InvalidInputError(f"photo {job.photo_id}: no attempt produced a result")
    placement = PlacementRecord(
        attempts=tuple(a.record for a in tried),
        full_search=any(a.method == "search" and a.folder is not None for a in tried),
        neighbour_id=hint.neighbour_id if chosen.method == "neighbour" and hint else None,
    )
    record = replace(chosen.result, method=chosen.method, placement=placement)
    if record.status not in ("accepted", "review") and chain is not None:
        record = _chain_review(record, chain, chosen.folder, job, hint)
    _promote(chosen.folder, out, record)
    log.debug(
        "photo %s: %s by %s (%s)",
        job.photo_id,
        record.status,
        record.method,
        ", ".join(f"{a.method} {a.record.status}" for a in tried),
    )
    return PhotoReport(
        photo_id=job.photo_id,
        status=record.status,
        p_correct=record.best.p_correct,
        method=record.method,
        full_search=placement.full_search,
    )


def _accepted(tried: Sequence[_Attempt]) -> bool:
    return any(a.record.status == "accepted" for a in tried)


def _choose(tried: Sequence[_Attempt]) -> _Attempt:
    """The first accepted attempt; else the best status, the narrower search on ties."""
    located = [a for a in tried if a.result is not None]
    return min(
        located,
        key=lambda a: (
            _PREFERENCE.index(a.record.status)
            if a.record.status in _PREFERENCE
            else len(_PREFERENCE)
        ),
    )


def _locate(job: PhotoJob, request: Any, method: str, spec: LocateSpec, t0: float) -> _Attempt:
    """``locate_photo`` of ``request`` into the attempt folder of ``method``."""
    from aeroloc.pipeline import locate_photo

    model, label = worker_model(spec.model)
    folder = attempts_dir(Path(job.out_dir or ".")) / method
    truth = None
    if job.truth is not None and job.truth.footprint is not None:
        truth = Polygon(job.truth.footprint)
    locate_photo(
        request,
        folder,
        model=model,
        model_label=label,
        heatmap_config=spec.heatmap_config,
        max_candidates=spec.max_candidates,
        truth_footprint=truth,
        overwrite=True,
        verify=spec.verify,
    )
    record = read_result(folder)
    bounds = record.inputs.aoi_bounds
    area = (bounds[2] - bounds[0]) * (bounds[3] - bounds[1]) / 1e6 if len(bounds) == 4 else None
    return _Attempt(
        method=method,
        record=AttemptRecord(
            method=method,
            status=record.status,
            seconds=round(time.perf_counter() - t0, 3),
            reasons=() if record.status == "accepted" else record.best.reasons[:2],
            area_km2=None if area is None else round(area, 3),
        ),
        folder=folder,
        result=record,
    )


def _failed_attempt(method: str, t0: float, reasons: Sequence[str]) -> _Attempt:
    return _Attempt(
        method=method,
        record=AttemptRecord(
            method=method,
            status="rejected",
            seconds=round(time.perf_counter() - t0, 3),
            reasons=tuple(reasons),
        ),
    )


def _neighbour(
    job: PhotoJob, hint: LineHint, full: Any, spec: LocateSpec, lines: LinesConfig
) -> tuple[Any, _Attempt]:
    """Chain through the neighbour; confirm in the reference. Returns (chain or None, attempt)."""
    from aeroloc.lines.inputs import heading_of
    from aeroloc.lines.neighbour import NeighbourConfig, expected_window, match_neighbour_files
    from aeroloc.lines.read import located_from_record
    from aeroloc.pipeline import request_from_bounds

    t0 = time.perf_counter()
    if hint.neighbour_dir is None:  # pragma: no cover - checked by the caller
        return None, _failed_attempt("neighbour", t0, ["no neighbour"])
    try:
        neighbour = read_result(hint.neighbour_dir)
        located = located_from_record(neighbour)
        if located is None or located.transform is None or located.status != "accepted":
            return None, _failed_attempt(
                "neighbour", t0, [f"neighbour {hint.neighbour_id} is not accepted"]
            )
        chain = match_neighbour_files(
            full.photo_path,
            neighbour.photo,
            located.transform,
            neighbour_sigma_m=located.sigma_m,
            neighbour_box=neighbour.inputs.frame_box_px,
            photo_id=job.photo_id,
            neighbour_id=hint.neighbour_id or neighbour.photo_id,
            config=NeighbourConfig(matcher=lines.neighbour_matcher),
        )
    except AeroLocError as exc:
        return None, _failed_attempt("neighbour", t0, [f"no neighbour match: {exc}"])
    if not chain.accepted or chain.transform is None or chain.footprint is None:
        return None, _failed_attempt("neighbour", t0, chain.reasons)
    centre = chain.footprint.centroid
    offset = math.hypot(centre.x - hint.x, centre.y - hint.y)
    bound = max(
        lines.consistency_k_sigma * math.hypot(hint.sigma_m, chain.sigma_m),
        lines.neighbour_margin_m,
    )
    if offset > bound:
        return None, _failed_attempt(
            "neighbour",
            t0,
            [f"chained centre {offset:.0f} m off the prediction (expected ≤ {bound:.0f} m)"],
        )
    box = chain.image_box_px
    cc, rc = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    window = expected_window(chain.transform, box, margin_m=lines.neighbour_margin_m)
    aoi = full.aoi.bounds
    window = (
        max(window[0], aoi[0]),
        max(window[1], aoi[1]),
        min(window[2], aoi[2]),
        min(window[3], aoi[3]),
    )
    try:
        request = request_from_bounds(
            full.photo_path,
            full.references,
            window,
            gsd_m=chain.transform.pixel_size_m(cc, rc),
            azimuth_deg=heading_of(chain.transform, cc, rc),
            rock_mask_path=full.rock_mask_path,
        )
        attempt = _locate(job, replace(request, photo_id=job.photo_id), "neighbour", spec, t0)
    except AeroLocError as exc:
        return chain, _failed_attempt("neighbour", t0, [f"no confirmation: {exc}"])
    return chain, attempt


def _propagated(
    job: PhotoJob, hint: LineHint, full: Any, spec: LocateSpec, lines: LinesConfig
) -> _Attempt:
    """``locate_photo`` in the shrunken AoI around the prediction."""
    from aeroloc.lines.search import SearchConfig, shrunken_request

    t0 = time.perf_counter()
    try:
        request = shrunken_request(
            hint.prediction(job.photo_id),
            photo_path=full.photo_path,
            references=full.references,
            config=SearchConfig(
                k_sigma=lines.search_k_sigma, min_margin_m=lines.search_min_margin_m
            ),
            within=full.aoi.bounds,
            rock_mask_path=full.rock_mask_path,
        )
        small, big = _area(request.aoi.bounds), _area(full.aoi.bounds)
        if small >= 0.9 * big:
            return _failed_attempt(
                "propagated",
                t0,
                [f"the prediction's area ({small / 1e6:.0f} km²) is about the full AoI's"],
            )
        return _locate(job, request, "propagated", spec, t0)
    except AeroLocError as exc:
        return _failed_attempt("propagated", t0, [f"no shrunken search: {exc}"])


def _area(bounds: Sequence[float]) -> float:
    return float((bounds[2] - bounds[0]) * (bounds[3] - bounds[1]))


def _search(job: PhotoJob, full: Any, spec: LocateSpec) -> _Attempt:
    """``locate_photo`` over the full AoI (its errors are the photo's)."""
    return _locate(job, full, "search", spec, time.perf_counter())


def _chain_review(
    record: LocateRecord, chain: Any, folder: Path, job: PhotoJob, hint: LineHint | None
) -> LocateRecord:
    """``record`` turned into the neighbour chain's placement, for review."""
    from aeroloc.georef.outputs import write_footprint_gpkg

    footprint = chain.footprint
    write_footprint_gpkg(
        folder / FOOTPRINT_FILE,
        footprint,
        chain.transform.crs,
        properties={"photo_id": job.photo_id, "status": "review", "method": "neighbour"},
    )
    centre = footprint.centroid
    reason = (
        f"placed by matching to its neighbour {chain.neighbour_id} "
        f"({chain.n_inliers} inliers, ±{chain.sigma_m:.0f} m), not confirmed against the reference"
    )
    best = replace(
        record.best,
        status="review",
        x=round(float(centre.x), 3),
        y=round(float(centre.y), 3),
        footprint=geojson(footprint),
        reasons=(reason, *record.best.reasons[:1]),
        p_correct=None,
        kind=chain.kind,
        n_matches=chain.n_matches,
        n_inliers=chain.n_inliers,
        inlier_ratio=round(chain.inlier_ratio, 4),
        rmse_px=None,
        rotation_deg=None,
        transform=chain.transform.to_json(),
        files={"footprint": FOOTPRINT_FILE},
        gcp_source=None,
        n_gcps=0,
    )
    placement = replace(
        record.placement or PlacementRecord(),
        neighbour_id=chain.neighbour_id or (hint.neighbour_id if hint else None),
        sigma_m=float(chain.sigma_m),
    )
    return replace(record, best=best, method="neighbour", placement=placement)


def _promote(folder: Path, out: Path, record: LocateRecord) -> None:
    """Move the attempt's files into the photo's folder; ``result.json`` last."""
    out.mkdir(parents=True, exist_ok=True)
    moved = set()
    for entry in folder.iterdir():
        if entry.is_file() and entry.name != RESULT_FILE and not TEMP_NAME.match(entry.name):
            os.replace(entry, out / entry.name)
            moved.add(entry.name)
    for name in (FOOTPRINT_FILE, POINTS_FILE, GCP_TIFF_FILE, WARPED_FILE):
        if name not in moved:
            (out / name).unlink(missing_ok=True)
    write_result(record, out)
    clear_attempts(out)
