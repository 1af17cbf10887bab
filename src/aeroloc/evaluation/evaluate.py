"""Score ``locate`` results against ground truth, in the seed thesis's terms.

Per photo: the score of the true window, its **confidence level** (percentile
rank of the true score among all window scores; the true score is the mean
over the true cell and its 4-neighbours), the rank of the first candidate that
hits the truth, **recall@k** (the truth lies within ``hit_radius`` of one of
the top-k candidates; default half a window) and the error of the best
candidate. Means and variances are reported as the thesis does.

When ``locate`` verified the candidates (``best.status`` is ``accepted``,
``review`` or ``rejected``), each row also gets the **localization error**
(distance between the verified footprint's centre and the true footprint's
centre), the **footprint IoU**, the **GCP residuals** against the truth (the
photo pixels of ``gcps.points`` mapped by the truth's ``pixel_to_map``,
compared with the GCPs' map positions; RMSE in metres), ``windows_tried`` and
``search_reduction``. A photo is **correct** when its footprint IoU is at
least 0.5; a **false accept** is an accepted photo that is not correct. The
summary gives the share of photos accepted and correct and the false-accept
rate, both over all verified photos.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aeroloc.errors import InvalidInputError
from aeroloc.evaluation.metrics import heatmap_truth, rank_of_truth, recall_at
from aeroloc.files import atomic_output, write_png
from aeroloc.heatmap.grid import Heatmap
from aeroloc.io.archive import Truth, TruthRecord, read_truth
from aeroloc.io.results import LocateRecord, heatmap_from_result, read_result

RECALL_KS = (1, 5, 10)
#: Footprint IoU from which a georeferenced photo counts as correct.
CORRECT_IOU = 0.5
VERIFIED_STATUSES = ("accepted", "review", "rejected")


@dataclass(frozen=True, kw_only=True)
class PhotoEvaluation:
    """One row of the evaluation table."""

    flight_line: str
    photo_id: str
    true_score: float
    confidence_level: float
    rank_of_truth: int | None
    recall_at_1: bool
    recall_at_5: bool
    recall_at_10: bool
    error_m: float
    n_windows: int
    status: str = "unverified"
    p_correct: float = math.nan
    centre_error_m: float = math.nan
    iou: float = math.nan
    gcp_rmse_m: float = math.nan
    n_gcps: int = 0
    windows_tried: int = 0
    search_reduction: float = math.nan

    @property
    def verified(self) -> bool:
        """True when ``locate`` ran verification on this photo."""
        return self.status in VERIFIED_STATUSES

    @property
    def correct(self) -> bool:
        """Accepted with a footprint IoU of at least :data:`CORRECT_IOU`."""
        return self.status == "accepted" and self.iou >= CORRECT_IOU

    @property
    def false_accept(self) -> bool:
        """Accepted, but the footprint IoU is below :data:`CORRECT_IOU` (or unknown)."""
        return self.status == "accepted" and not self.iou >= CORRECT_IOU


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """All rows plus the summary statistics."""

    rows: tuple[PhotoEvaluation, ...]
    hit_radius_m: float | None

    @property
    def verified(self) -> bool:
        """True when at least one photo was verified."""
        return any(r.verified for r in self.rows)

    def summary(self) -> dict[str, float]:
        cl = np.array([r.confidence_level for r in self.rows], dtype=float) / 100.0
        cl = cl[np.isfinite(cl)]
        err = np.array([r.error_m for r in self.rows], dtype=float)
        out = {
            "photos": float(len(self.rows)),
            "mean_confidence_level": float(cl.mean() * 100) if cl.size else math.nan,
            "variance_confidence_level": float(cl.var()) if cl.size else math.nan,
            "recall_at_1": _share(r.recall_at_1 for r in self.rows),
            "recall_at_5": _share(r.recall_at_5 for r in self.rows),
            "recall_at_10": _share(r.recall_at_10 for r in self.rows),
            "median_error_m": _nanmedian(err),
        }
        if self.verified:
            out.update(verification_summary(self.rows))
        return out

    def to_csv(self) -> str:
        buf = io.StringIO()
        names = [*PhotoEvaluation.__dataclass_fields__, "correct", "false_accept"]
        writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({**asdict(r), "correct": r.correct, "false_accept": r.false_accept})
        return buf.getvalue()

    def to_markdown(self) -> str:
        if self.verified:
            return self._verified_markdown()
        head = (
            "| flight line | photo | true score | confidence level | rank of truth "
            "| R@1 | R@5 | R@10 | error (m) |\n|---|---|---|---|---|---|---|---|---|\n"
        )
        body = "".join(
            f"| {r.flight_line} | {r.photo_id} | {r.true_score:.3f} | {r.confidence_level:.1f} % "
            f"| {r.rank_of_truth if r.rank_of_truth is not None else '–'} "
            f"| {_yn(r.recall_at_1)} | {_yn(r.recall_at_5)} | {_yn(r.recall_at_10)} "
            f"| {r.error_m:.0f} |\n"
            for r in self.rows
        )
        s = self.summary()
        foot = (
            f"\n{_heatmap_sentence(s)}; median error of the best candidate "
            f"{s['median_error_m']:.0f} m over {int(s['photos'])} photos.\n"
        )
        return head + body + foot

    def _verified_markdown(self) -> str:
        head = (
            "| flight line | photo | confidence level | rank of truth | R@1 | status "
            "| p(correct) | centre error (m) | IoU | GCP RMSE (m) | windows tried "
            "| search reduction |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        )
        body = "".join(
            f"| {r.flight_line} | {r.photo_id} | {r.confidence_level:.1f} % "
            f"| {r.rank_of_truth if r.rank_of_truth is not None else '–'} "
            f"| {_yn(r.recall_at_1)} | {_status(r)} | {_num(r.p_correct, '.2f')} "
            f"| {_num(r.centre_error_m, '.1f')} | {_num(r.iou, '.2f')} "
            f"| {_num(r.gcp_rmse_m, '.1f')} | {r.windows_tried} "
            f"| {_num(r.search_reduction * 100, '.1f')} % |\n"
            for r in self.rows
        )
        s = self.summary()
        foot = (
            f"\n{_heatmap_sentence(s)} over {int(s['photos'])} photos.\n\n"
            f"Verified {int(s['verified'])} photos: **{s['accepted_and_correct']:.0%} accepted "
            f"and correct** (footprint IoU ≥ {CORRECT_IOU}), false-accept rate "
            f"**{s['false_accept_rate']:.0%}** ({int(s['false_accepts'])} photos), "
            f"{s['accepted']:.0%} accepted, {s['review']:.0%} for review; median centre "
            f"error of accepted footprints {_num(s['median_centre_error_m'], '.1f')} m, "
            f"median IoU {_num(s['median_iou'], '.2f')}, median GCP RMSE "
            f"{_num(s['median_gcp_rmse_m'], '.1f')} m; mean search reduction "
            f"{_num(s['mean_search_reduction'] * 100, '.1f')} % "
            f"({s['mean_windows_tried']:.1f} windows tried per photo).\n"
        )
        return head + body + foot


def verification_summary(rows: Sequence[PhotoEvaluation]) -> dict[str, float]:
    """Summary of the verified rows: shares over all verified photos, medians over accepted."""
    ver = [r for r in rows if r.verified]
    acc = [r for r in ver if r.status == "accepted"]
    return {
        "verified": float(len(ver)),
        "accepted": _share(r.status == "accepted" for r in ver),
        "review": _share(r.status == "review" for r in ver),
        "accepted_and_correct": _share(r.correct for r in ver),
        "false_accepts": float(sum(r.false_accept for r in ver)),
        "false_accept_rate": _share(r.false_accept for r in ver),
        "median_centre_error_m": _nanmedian([r.centre_error_m for r in acc]),
        "median_iou": _nanmedian([r.iou for r in acc]),
        "median_gcp_rmse_m": _nanmedian([r.gcp_rmse_m for r in acc]),
        "mean_search_reduction": _nanmean([r.search_reduction for r in ver]),
        "mean_windows_tried": _nanmean([r.windows_tried for r in ver]),
    }


def _nanmedian(values: Any) -> float:
    a = np.asarray(list(values), dtype=float)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else math.nan


def _nanmean(values: Any) -> float:
    a = np.asarray(list(values), dtype=float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def _heatmap_sentence(s: dict[str, float]) -> str:
    """Mean confidence level (bold), its variance and recall@1/5/10 from a summary."""
    return (
        f"Mean confidence level **{s['mean_confidence_level']:.1f} %** "
        f"(variance {s['variance_confidence_level']:.4f}); recall@1 "
        f"{s['recall_at_1']:.0%}, recall@5 {s['recall_at_5']:.0%}, recall@10 "
        f"{s['recall_at_10']:.0%}"
    )


def _num(v: float, fmt: str) -> str:
    return format(v, fmt) if math.isfinite(v) else "–"


def _status(r: PhotoEvaluation) -> str:
    if r.status == "accepted":
        return "accepted ✓" if r.correct else "accepted ✗"
    return r.status


def _share(values: Any) -> float:
    vals = list(values)
    return float(np.mean(vals)) if vals else math.nan


def _yn(v: bool) -> str:
    return "✓" if v else "·"


def evaluate_photo(
    result: LocateRecord,
    heatmap: Heatmap,
    truth: TruthRecord,
    *,
    hit_radius_m: float,
    folder: str | os.PathLike[str] | None = None,
) -> PhotoEvaluation:
    """One table row from a locate result, its heatmap and the truth record.

    ``folder`` (the result folder) is needed for the GCP residuals of a
    verified result; without it they are NaN.
    """
    tx, ty = truth.center_x, truth.center_y
    ts, cl = heatmap_truth(heatmap, (tx, ty))
    dists = [math.hypot(c.x - tx, c.y - ty) for c in result.candidates]
    first = rank_of_truth(dists, hit_radius_m)
    hit = recall_at(first, RECALL_KS)
    return PhotoEvaluation(
        flight_line=truth.flight_line,
        photo_id=truth.photo_id,
        true_score=ts,
        confidence_level=cl,
        rank_of_truth=first,
        recall_at_1=hit[1],
        recall_at_5=hit[5],
        recall_at_10=hit[10],
        error_m=dists[0] if dists else math.nan,
        n_windows=heatmap.n_windows,
        **verification_metrics(result, truth, folder),
    )


def verification_metrics(
    result: LocateRecord, truth: TruthRecord, folder: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Status, p_correct, centre error, IoU, GCP RMSE and search counts of one result.

    Footprint metrics need a verified footprint (``best.transform`` present);
    GCP residuals also need ``folder`` and the truth's ``pixel_to_map``.
    """
    from shapely.geometry import Polygon, shape

    best = result.best
    ver = result.verification
    out: dict[str, Any] = {
        "status": best.status,
        "p_correct": _float(best.p_correct),
        "windows_tried": 0 if ver is None else ver.windows_tried,
        "search_reduction": math.nan if ver is None else _float(ver.search_reduction),
    }
    if not best.transform or not best.footprint:
        return out
    try:
        found = shape(dict(best.footprint))
        if truth.footprint is None:
            raise KeyError("footprint")
        true = Polygon(truth.footprint)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInputError(f"photo {truth.photo_id}: bad footprint ({exc})") from exc
    out["centre_error_m"] = float(found.centroid.distance(true.centroid))
    out["iou"] = footprint_iou(found, true)
    gcp_file = best.files.get("gcps")
    if folder is not None and gcp_file and truth.pixel_to_map is not None:
        rmse, n = gcp_truth_rmse(Path(folder) / gcp_file, truth.pixel_to_map)
        out["gcp_rmse_m"], out["n_gcps"] = rmse, n
    return out


def footprint_iou(a: Any, b: Any) -> float:
    """Intersection over union of two polygons (0 when either is empty or invalid)."""
    if a.is_empty or b.is_empty or not a.is_valid or not b.is_valid:
        return 0.0
    union = a.union(b).area
    return float(a.intersection(b).area / union) if union > 0 else 0.0


def gcp_truth_rmse(
    points_path: str | os.PathLike[str], pixel_to_map: Sequence[float]
) -> tuple[float, int]:
    """RMSE (m) of GCP map positions against the truth, and the number of GCPs.

    Each GCP's photo pixel is mapped by the true ``pixel_to_map`` (scan pixel
    → map affine, six numbers) and compared with the GCP's map position.
    """
    from affine import Affine

    from aeroloc.georef import read_points

    gcps = read_points(points_path)
    if len(gcps) == 0:
        return math.nan, 0
    t = Affine(*[float(v) for v in pixel_to_map][:6])
    c, r = gcps.pixel_xy[:, 0], gcps.pixel_xy[:, 1]
    tx, ty = t.a * c + t.b * r + t.c, t.d * c + t.e * r + t.f
    d2 = (tx - gcps.map_xy[:, 0]) ** 2 + (ty - gcps.map_xy[:, 1]) ** 2
    return float(math.sqrt(float(d2.mean()))), len(gcps)


def _float(v: Any) -> float:
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def evaluate(
    truth_path: str | os.PathLike[str] | Truth,
    result_dirs: Sequence[str | os.PathLike[str]],
    *,
    hit_radius_m: float | None = None,
) -> tuple[Evaluation, list[Heatmap]]:
    """Evaluate locate result folders against a truth file.

    Args:
        truth_path: ``truth.json`` (or the archive folder), or the truth read already.
        result_dirs: folders written by ``aeroloc locate`` (each with result.json).
        hit_radius_m: distance that counts as found; default half the window's
            ground size of each photo.
    """
    if hit_radius_m is not None and not (math.isfinite(hit_radius_m) and hit_radius_m > 0):
        raise InvalidInputError(f"hit_radius_m must be a positive number, got {hit_radius_m}")
    truth = (truth_path if isinstance(truth_path, Truth) else read_truth(truth_path)).photos
    rows: list[PhotoEvaluation] = []
    heatmaps: list[Heatmap] = []
    for folder in result_dirs:
        result = read_result(folder)
        pid = result.photo_id
        if pid not in truth:
            raise InvalidInputError(
                f"photo {pid!r} of {folder} is not in the truth file {truth_path}"
            )
        heatmap = heatmap_from_result(result, folder)
        radius = hit_radius_m or heatmap.window_px * heatmap.pixel_size_m / 2
        rows.append(evaluate_photo(result, heatmap, truth[pid], hit_radius_m=radius, folder=folder))
        heatmaps.append(heatmap)
    if not rows:
        raise InvalidInputError("no result folders to evaluate")
    rows_sorted = sorted(
        zip(rows, heatmaps, strict=True), key=lambda t: (t[0].flight_line, t[0].photo_id)
    )
    return (
        Evaluation(rows=tuple(r for r, _ in rows_sorted), hit_radius_m=hit_radius_m),
        [h for _, h in rows_sorted],
    )


def write_evaluation(
    evaluation: Evaluation, heatmaps: Sequence[Heatmap], out_dir: str | os.PathLike[str]
) -> dict[str, Path]:
    """Write evaluation.csv, evaluation.md and one score histogram per photo."""
    out = Path(out_dir)
    paths: dict[str, Path] = {}
    with atomic_output(out / "evaluation.csv") as tmp:
        tmp.write_text(evaluation.to_csv())
    paths["table (CSV)"] = out / "evaluation.csv"
    with atomic_output(out / "evaluation.md") as tmp:
        tmp.write_text("# Evaluation\n\n" + evaluation.to_markdown())
    paths["table (Markdown)"] = out / "evaluation.md"
    for row, hm in zip(evaluation.rows, heatmaps, strict=True):
        p = out / "histograms" / f"{row.photo_id}.png"
        write_score_histogram(hm.scores, row, p)
    paths["histograms"] = out / "histograms"
    return paths


def write_score_histogram(
    scores: np.ndarray, row: PhotoEvaluation, path: str | os.PathLike[str]
) -> Path:
    """Histogram of all window scores with the true score marked (thesis Fig. 4.21)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3))
    ax = fig.subplots()
    finite = scores[np.isfinite(scores)]
    ax.hist(finite, bins=40, color="0.6")
    if math.isfinite(row.true_score):
        ax.axvline(row.true_score, color="red", lw=2)
        ax.text(
            row.true_score,
            ax.get_ylim()[1] * 0.9,
            f" truth {row.true_score:.3f}\n {row.confidence_level:.1f} %",
            color="red",
            fontsize=8,
            va="top",
        )
    ax.set_xlabel("similarity score")
    ax.set_ylabel("windows")
    ax.set_title(f"{row.photo_id} ({finite.size} windows)", fontsize=9)
    return write_png(path, fig)
