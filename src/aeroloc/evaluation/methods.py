"""Per-method accuracy and cost of a batch with flight lines, against the truth.

A batch records how it placed each photo (``result.json`` ``method``:
``search``, ``propagated``, ``neighbour``, ``line``). :func:`method_summary`
counts, per method, the photos, their statuses, the accepted photos that are
correct (footprint IoU ≥ :data:`~aeroloc.evaluation.evaluate.CORRECT_IOU`
against the true footprint) and the false accepts (accepted, IoU below it),
the photos whose footprint, whatever their status, overlaps the truth that
well (a ``line`` placement is ``unverified`` but has a footprint), the mean
seconds per photo (the sum of its attempts), and how many photos no full-AoI
search placed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from shapely.geometry import Polygon, shape

from aeroloc.evaluation.evaluate import CORRECT_IOU, footprint_iou
from aeroloc.io.archive import read_truth
from aeroloc.io.results import METHODS, has_result, read_result


@dataclass(frozen=True, kw_only=True)
class MethodRow:
    """One method's photos (see the module docstring).

    Attributes:
        method: ``search``, ``propagated``, ``neighbour``, ``line`` or ``all``.
        photos: photos placed by it.
        accepted, review, unverified, rejected: photos per status.
        correct: accepted with IoU ≥ ``CORRECT_IOU``.
        false_accepts: accepted with IoU below it.
        footprint_correct: photos of any status whose footprint has IoU ≥ ``CORRECT_IOU``.
        without_full_search: photos no full-AoI search ran for.
        mean_seconds: mean time per photo (s), NaN without photos.
        median_error_m: median centre error of the correct accepted photos (m).
    """

    method: str
    photos: int
    accepted: int
    correct: int
    false_accepts: int
    review: int
    unverified: int
    rejected: int
    footprint_correct: int
    without_full_search: int
    mean_seconds: float
    median_error_m: float


@dataclass(frozen=True, kw_only=True)
class _Photo:
    method: str
    status: str
    iou: float
    error_m: float
    seconds: float
    full_search: bool


def _photo(folder: str | os.PathLike[str], truth_footprint: Sequence[Sequence[float]]) -> _Photo:
    record = read_result(folder)
    iou, error = math.nan, math.nan
    if record.best.footprint is not None and record.status in ("accepted", "review", "unverified"):
        found = shape(dict(record.best.footprint))
        true = Polygon(truth_footprint)
        placed = record.best.verified or record.method == "line"
        if placed:
            iou = footprint_iou(found, true)
            error = float(found.centroid.distance(true.centroid))
    placement = record.placement
    if placement is not None and placement.attempts:
        seconds = float(sum(a.seconds for a in placement.attempts))
    else:
        seconds = float(record.timings_s.get("total", math.nan))
    return _Photo(
        method=record.method,
        status=record.status,
        iou=iou,
        error_m=error,
        seconds=seconds,
        full_search=placement is None or placement.full_search,
    )


def _row(method: str, photos: Sequence[_Photo]) -> MethodRow:
    acc = [p for p in photos if p.status == "accepted"]
    good = [p for p in acc if p.iou >= CORRECT_IOU]
    secs = [p.seconds for p in photos if math.isfinite(p.seconds)]
    return MethodRow(
        method=method,
        photos=len(photos),
        accepted=len(acc),
        correct=len(good),
        false_accepts=len(acc) - len(good),
        review=sum(p.status == "review" for p in photos),
        unverified=sum(p.status == "unverified" for p in photos),
        rejected=sum(p.status == "rejected" for p in photos),
        footprint_correct=sum(p.iou >= CORRECT_IOU for p in photos),
        without_full_search=sum(not p.full_search for p in photos),
        mean_seconds=float(np.mean(secs)) if secs else math.nan,
        median_error_m=float(np.median([p.error_m for p in good])) if good else math.nan,
    )


def method_summary(
    truth_path: str | os.PathLike[str], folders: Sequence[str | os.PathLike[str]]
) -> tuple[MethodRow, ...]:
    """One row per method present (in :data:`METHODS` order), then ``all``.

    Folders without a ``result.json`` (failed, pending) are left out.
    """
    truth = read_truth(truth_path).photos
    photos = []
    for folder in folders:
        if not has_result(folder):
            continue
        record = read_result(folder)
        rec = truth.get(record.photo_id)
        if rec is None or rec.footprint is None:
            continue
        photos.append(_photo(folder, rec.footprint))
    rows = [_row(m, [p for p in photos if p.method == m]) for m in METHODS]
    return (*(r for r in rows if r.photos), _row("all", photos))


def method_markdown(rows: Sequence[MethodRow]) -> str:
    """The rows as a Markdown table."""
    head = (
        "| method | photos | accepted | accepted and correct | false accepts | review "
        "| unverified | rejected | footprint IoU ≥ 0.5 | no full-AoI search | mean s/photo "
        "| median error (m) |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        err = "–" if not math.isfinite(r.median_error_m) else f"{r.median_error_m:.1f}"
        sec = "–" if not math.isfinite(r.mean_seconds) else f"{r.mean_seconds:.1f}"
        name = f"**{r.method}**" if r.method == "all" else r.method
        lines.append(
            f"| {name} | {r.photos} | {r.accepted} | {r.correct} | {r.false_accepts} "
            f"| {r.review} | {r.unverified} | {r.rejected} | {r.footprint_correct} "
            f"| {r.without_full_search} | {sec} | {err} |"
        )
    return "\n".join(lines)
