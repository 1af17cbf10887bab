"""Flight lines in the batch: which photo runs next, then each line's joint solve and picture.

**Scheduling** (:func:`run_line_batch`, on the client). Every photo of a
line is ``pending``, ``running``, ``done`` (it has a ``result.json``) or
``failed``. After each outcome the photo's line is looked at again:

1. The track is fitted (:func:`aeroloc.lines.track.fit_track`) from the
   line's accepted photos as they are on disk (before any joint solve).
2. From every anchor (an accepted photo on the track) the line is walked
   outwards, over photos that are done but not accepted and over failed
   ones, to the first photo that is pending, at most ``max_gap_frames``
   frames away; a running photo stops the walk (its outcome may extend the
   line). That photo is submitted as a :class:`~aeroloc.batch.placement.LineJob`
   with the prediction and, when the anchor is one frame away, the anchor as
   its neighbour (:func:`aeroloc.batch.placement.place_line_job`: neighbour,
   shrunken search, full search).
3. A line with no such photo and nothing running, but photos still pending,
   gets a **seed**: its most promising pending photo
   (:func:`aeroloc.batch.priority.job_priority`) searched over the full AoI.
   At the start that is every line's best photo; later it is a photo more
   than ``max_gap_frames`` from every accepted one, or the next best of a
   line whose seeds were all rejected.

Line jobs go before seeds on the workers (Dask priorities), so a line grows
outwards from its first accepted photo one frame per step on each side while
the seeds of other lines run. Photos without a flight line or frame are seeds
of their own.

**Joint solve** (:func:`solve_lines`, at the end). Each line's accepted
photos, as they were before any earlier solve
(:meth:`~aeroloc.io.results.LocateRecord.unsolved`), are solved together
(:func:`aeroloc.lines.solve.solve_line`). An accepted photo that contradicts
its line becomes ``review`` with the reasons; a photo that was tried and not
placed (``rejected``, ``unverified``) within ``max_gap_frames`` of a kept
accepted photo gets ``method = line``, status ``unverified``, the line's
footprint and its σ, and a ``footprint.gpkg``. The photo's ``result.json`` is
rewritten atomically and keeps what it was in ``placement.before_solve``.
Because the solve starts from the records as they were before any solve, a
rerun gives the same records (a record already right is not rewritten), and a
photo an earlier solve changed is restored when the new solve no longer
changes it. Failed and pending photos get no line placement (they have no
``result.json``).

**Pictures**: ``DIR/lines/<line>.png`` per line
(:func:`aeroloc.lines.plot.plot_line`: footprints, predictions, the solve).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Protocol, TypeVar

from aeroloc.batch.config import LinesConfig
from aeroloc.batch.loop import PhotoJob, PhotoOutcome, skipped_outcome
from aeroloc.batch.placement import LineHint, LineJob
from aeroloc.batch.priority import line_key
from aeroloc.errors import AeroLocError
from aeroloc.georef import FOOTPRINT_FILE
from aeroloc.io.results import (
    BestRecord,
    PlacementRecord,
    SolveChange,
    geojson,
    has_result,
    read_result,
    write_result,
)
from aeroloc.lines.inputs import FlightLine, LinePhoto
from aeroloc.lines.read import line_photo
from aeroloc.lines.solve import LINE_STATUS, LineSolution, PhotoPlacement, SolveConfig, solve_line
from aeroloc.lines.track import LineTrack, TrackConfig, fit_track, predict_line

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Folder of the per-line pictures inside the batch's output folder.
LINES_DIR = "lines"
#: Dask priority of a photo placed along its line (beyond a neighbour: + 1) and of a seed.
LINE_PRIORITY = 10
SEED_PRIORITY = 0

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


class JobRunner(Protocol[T]):
    """What :func:`run_line_batch` runs photos on (in-process or Dask)."""

    def submit(self, job: PhotoJob, *, priority: int = 0) -> None: ...

    def pending(self) -> int: ...

    def next_outcome(self) -> PhotoOutcome[T]: ...


class _Line:
    """The scheduling state of one flight line (client side)."""

    def __init__(self, line_id: str, jobs: Sequence[PhotoJob], crs: str) -> None:
        self.line_id = line_id
        self.crs = crs
        self.jobs = sorted(jobs, key=lambda j: (j.record.frame or 0, j.index))
        self.photos: dict[str, LinePhoto] = {j.photo_id: self._read(j) for j in self.jobs}

    @staticmethod
    def _read(job: PhotoJob) -> LinePhoto:
        folder = Path(job.out_dir) if job.out_dir is not None else Path(job.photo_id)
        return line_photo(job.record, folder, before_solve=True)

    def refresh(self, job: PhotoJob) -> None:
        self.photos[job.photo_id] = self._read(job)

    def flight_line(self) -> FlightLine:
        return FlightLine(
            line_id=self.line_id,
            crs=self.crs,
            photos=tuple(self.photos[j.photo_id] for j in self.jobs),
        )

    def track(self, config: LinesConfig) -> LineTrack | None:
        line = self.flight_line()
        if not line.accepted:
            return None
        try:
            return fit_track(line, TrackConfig(max_gap_frames=config.max_gap_frames))
        except AeroLocError as exc:
            log.warning("flight line %s: no track (%s)", self.line_id, exc)
            return None


def _line_job(job: PhotoJob, hint: LineHint | None) -> LineJob:
    return LineJob(**{f.name: getattr(job, f.name) for f in fields(PhotoJob)}, hint=hint)


def next_jobs(
    line: _Line, state: Mapping[str, str], scores: Mapping[str, float], config: LinesConfig
) -> list[tuple[LineJob, int]]:
    """The photos of ``line`` to submit now, with their priority (see the module docstring)."""
    out: list[tuple[LineJob, int]] = []
    track = line.track(config)
    if track is not None:
        anchors = {a.frame for a in track.anchors}
        jobs = line.jobs
        chosen: set[str] = set()
        for i, anchor in enumerate(jobs):
            if anchor.record.frame not in anchors:
                continue
            for step in (-1, 1):
                j = i + step
                while 0 <= j < len(jobs):
                    job = jobs[j]
                    frame = job.record.frame
                    if frame is None or frame in anchors:
                        break
                    if abs(frame - (anchor.record.frame or 0)) > config.max_gap_frames:
                        break
                    st = state[job.photo_id]
                    if st == RUNNING:
                        break
                    if st == PENDING:
                        if job.photo_id not in chosen:
                            hint = _hint(line, track, job, anchor, adjacent=j == i + step)
                            if hint is not None:
                                chosen.add(job.photo_id)
                                bonus = 1 if hint.neighbour_dir is not None else 0
                                out.append((_line_job(job, hint), LINE_PRIORITY + bonus))
                        break
                    j += step
    if out or any(state[j.photo_id] == RUNNING for j in line.jobs):
        return out
    pending = [j for j in line.jobs if state[j.photo_id] == PENDING]
    if not pending:
        return []
    seed = max(pending, key=lambda j: (scores.get(j.photo_id, 0.0), -j.index))
    return [(_line_job(seed, None), SEED_PRIORITY)]


def _hint(
    line: _Line, track: LineTrack, job: PhotoJob, anchor: PhotoJob, *, adjacent: bool
) -> LineHint | None:
    frame = job.record.frame
    if frame is None:
        return None
    prediction = track.predict(frame, photo_id=job.photo_id)
    if prediction is None:
        return None
    neighbour = adjacent and abs(frame - (anchor.record.frame or 0)) == 1
    return LineHint.from_prediction(
        prediction,
        line_id=line.line_id,
        neighbour_id=anchor.photo_id if neighbour else None,
        neighbour_dir=Path(anchor.out_dir) if neighbour and anchor.out_dir is not None else None,
    )


def _group(jobs: Sequence[PhotoJob]) -> tuple[dict[str, list[PhotoJob]], list[PhotoJob]]:
    """Jobs by flight line, and the single photos (no line or no frame)."""
    lines: dict[str, list[PhotoJob]] = {}
    singles: list[PhotoJob] = []
    for job in jobs:
        if job.record.flight_line and job.record.frame is not None:
            lines.setdefault(line_key(job.record), []).append(job)
        else:
            singles.append(job)
    return lines, singles


def run_line_batch(
    jobs: Sequence[PhotoJob],
    runner: JobRunner[T],
    *,
    crs: str,
    config: LinesConfig,
    scores: Mapping[str, float] | None = None,
    retry_failed: bool = False,
    progress: Callable[[PhotoOutcome[T]], None] | None = None,
) -> tuple[PhotoOutcome[T], ...]:
    """Place every pending photo of ``jobs`` along its flight line (see the module docstring).

    Args:
        jobs: the batch's photos (each with an ``out_dir``).
        runner: where photos run (:class:`~aeroloc.batch.loop.InProcessRunner`
            or :class:`~aeroloc.batch.dask.DaskRunner` of
            :func:`~aeroloc.batch.placement.place_line_job`).
        crs: the map CRS (the reference's).
        config: the flight-line settings.
        scores: priority per photo id (higher: seeded first); missing is 0.
        retry_failed: rerun photos that failed before.
        progress: called with each outcome as soon as it is known (skipped ones first).

    Returns:
        One outcome per job: the skipped ones first, then in completion order.
    """
    scores = dict(scores or {})
    outcomes: list[PhotoOutcome[T]] = []

    def report(outcome: PhotoOutcome[T]) -> None:
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)

    state: dict[str, str] = {}
    for job in jobs:
        skipped = skipped_outcome(job, retry_failed=retry_failed)
        if skipped is None:
            state[job.photo_id] = PENDING
        else:
            state[job.photo_id] = FAILED if skipped.failed else DONE
            report(skipped)
    groups, singles = _group(jobs)
    lines = {
        key: _Line(members[0].record.flight_line or key, members, crs)
        for key, members in groups.items()
    }
    line_of = {j.photo_id: key for key, members in groups.items() for j in members}

    def schedule(line: _Line) -> None:
        for job, priority in next_jobs(line, state, scores, config):
            state[job.photo_id] = RUNNING
            runner.submit(job, priority=priority)

    for line in lines.values():
        schedule(line)
    for job in singles:
        if state[job.photo_id] == PENDING:
            state[job.photo_id] = RUNNING
            runner.submit(_line_job(job, None), priority=SEED_PRIORITY)
    while runner.pending():
        outcome = runner.next_outcome()
        pid = outcome.job.photo_id
        state[pid] = FAILED if outcome.failed else DONE
        report(outcome)
        key = line_of.get(pid)
        if key is not None:
            lines[key].refresh(outcome.job)
            schedule(lines[key])
    return tuple(outcomes)


# --------------------------------------------------------------------------- the joint solve


@dataclass(frozen=True, kw_only=True)
class LinesSummary:
    """What the joint solve did.

    Attributes:
        solutions: one per flight line.
        contradicted: photos the solve sent to ``review``.
        placed_by_line: photos placed by their line (``method = line``).
        rewritten: photos whose ``result.json`` this run rewrote.
        plots: the per-line pictures written.
    """

    solutions: tuple[LineSolution, ...]
    contradicted: tuple[str, ...]
    placed_by_line: tuple[str, ...]
    rewritten: tuple[str, ...]
    plots: tuple[Path, ...] = ()


def solve_lines(
    jobs: Sequence[PhotoJob], out_dir: Path, *, crs: str, config: LinesConfig
) -> LinesSummary:
    """Solve every flight line, record verdicts and line placements, draw the lines."""
    groups, _ = _group(jobs)
    solutions: list[LineSolution] = []
    rewritten: list[str] = []
    plots: list[Path] = []
    for members in groups.values():
        line = _Line(members[0].record.flight_line or "", members, crs)
        flight = line.flight_line()
        solution = solve_line(flight, _solve_config(flight, config))
        solutions.append(solution)
        by_id = {j.photo_id: j for j in members}
        for placement in solution.placements:
            job = by_id[placement.photo_id]
            if job.out_dir is not None and apply_placement(placement, Path(job.out_dir)):
                rewritten.append(placement.photo_id)
        if config.plot:
            plots.append(_plot(line, flight, solution, out_dir, config))
    contradicted = tuple(pid for s in solutions for pid in s.contradicted)
    placed = tuple(pid for s in solutions for pid in s.placed_by_line)
    if contradicted:
        log.info(
            "%d accepted photo(s) contradict their line: %s",
            len(contradicted),
            ", ".join(contradicted),
        )
    return LinesSummary(
        solutions=tuple(solutions),
        contradicted=contradicted,
        placed_by_line=placed,
        rewritten=tuple(rewritten),
        plots=tuple(plots),
    )


def _solve_config(line: FlightLine, config: LinesConfig) -> SolveConfig:
    """The solve's settings for ``line``: its offset floor grows with the footprint side."""
    floor = SolveConfig().min_offset_m
    widths = [p.located.ground_width_m for p in line.accepted if p.located is not None]
    if widths:
        floor = max(floor, config.solve_min_offset_frac * float(sorted(widths)[len(widths) // 2]))
    return SolveConfig(max_gap_frames=config.max_gap_frames, min_offset_m=floor)


def apply_placement(placement: PhotoPlacement, folder: Path) -> bool:
    """Record one photo's verdict of the solve in its ``result.json``; True when rewritten.

    The record is rebuilt from what it was before any solve, so applying the
    same solve twice changes nothing the second time.
    """
    from aeroloc.georef.outputs import write_footprint_gpkg

    if not has_result(folder):
        return False
    current = read_result(folder)
    base = current.unsolved()
    before = base.placement or PlacementRecord()
    change = SolveChange(
        method=base.method, best=base.best, sigma_m=before.sigma_m, reasons=placement.reasons
    )
    if placement.contradicted and base.status == "accepted":
        new = replace(
            base,
            best=replace(
                base.best, status="review", reasons=(*placement.reasons, *base.best.reasons)
            ),
            placement=replace(before, before_solve=change),
        )
    elif (
        placement.method == "line"
        and placement.footprint is not None
        and placement.x is not None
        and placement.y is not None
        and base.status not in ("accepted", "review")
    ):
        write_footprint_gpkg(
            folder / FOOTPRINT_FILE,
            placement.footprint,
            base.inputs.crs,
            properties={
                "photo_id": base.photo_id,
                "status": LINE_STATUS,
                "method": "line",
                "sigma_m": placement.sigma_m,
            },
        )
        new = replace(
            base,
            method="line",
            best=BestRecord(
                status=LINE_STATUS,
                x=round(placement.x, 3),
                y=round(placement.y, 3),
                azimuth_deg=placement.heading_deg,
                footprint=geojson(placement.footprint),
                reasons=placement.reasons,
                files={"footprint": FOOTPRINT_FILE},
            ),
            placement=replace(before, sigma_m=placement.sigma_m, before_solve=change),
        )
    else:
        new = base
        if current.method == "line" and not base.best.verified:  # an earlier solve's placement
            (folder / FOOTPRINT_FILE).unlink(missing_ok=True)
    if new.to_json() == current.to_json():
        return False
    write_result(new, folder)
    return True


def _safe_name(line_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", line_id).strip("._") or "line"


def _plot(
    line: _Line, flight: FlightLine, solution: LineSolution, out_dir: Path, config: LinesConfig
) -> Path:
    from aeroloc.lines.plot import plot_line

    track = line.track(config)
    predictions = predict_line(track, flight) if track is not None else ()
    return plot_line(
        flight,
        out_dir / LINES_DIR / f"{_safe_name(line.line_id)}.png",
        predictions=predictions,
        solution=solution,
    )
