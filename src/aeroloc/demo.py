"""The built-in demonstration: synthesise an archive, run the batch along its lines, evaluate.

``aeroloc demo --out DIR`` (and ``make demo``) runs the whole pipeline on a
synthetic archive whose seed is disjoint from the training seeds, with the
shipped default model, through the batch with flight lines
(:func:`aeroloc.batch.run.run_batch`, in this process: each line's most
promising photo is searched over the full AoI, its neighbours are placed by
photo-to-photo matching confirmed against the reference or by a search
around the line's prediction, and each line is solved jointly), and writes
``DIR/report.md``: the summary table, the methods (photos, accuracy against
the truth and seconds per method), the per-line pictures and, per photo, the
heatmap with its candidates, the accepted footprint and the true footprint.
Finished photos are skipped on a rerun.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aeroloc.aoi import AoIConfig
from aeroloc.batch.config import BatchConfig, BatchInputs, LinesConfig
from aeroloc.batch.loop import PhotoOutcome
from aeroloc.batch.run import BatchSummary, batch_jobs, run_batch
from aeroloc.batch.worker import LocateSpec, PhotoReport, worker_model
from aeroloc.evaluation.evaluate import (
    CORRECT_IOU,
    Evaluation,
    PhotoEvaluation,
    evaluate,
    write_evaluation,
)
from aeroloc.evaluation.methods import MethodRow, method_markdown, method_summary
from aeroloc.files import atomic_output, check_output_dir, output_lock, remove_temp_files
from aeroloc.heatmap.engines import HeatmapConfig
from aeroloc.heatmap.poses import SINGLE_POSE, PoseGrid
from aeroloc.io.archive import is_archive, read_archive
from aeroloc.io.results import has_result, read_result
from aeroloc.verify.walk import VerifyConfig

DEMO_SEED = 100


@dataclass(frozen=True, kw_only=True)
class DemoSummary:
    """What the demo produced."""

    out_dir: Path
    evaluation: Evaluation
    report: Path
    seconds: float
    methods: tuple[MethodRow, ...] = ()
    batch: BatchSummary | None = None


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    seed: int = DEMO_SEED,
    preset: str = "default",
    model: str | None = None,
    engine: str = "dense",
    poses: PoseGrid | None = None,
    buffer_m: float = 5_000.0,
    verify: bool = True,
    matcher: str | None = None,
    max_candidates: int = 5,
    say: Callable[[str], None] = lambda _: None,
) -> DemoSummary:
    """Run the demonstration into ``out_dir`` (see the module docstring).

    The synthetic catalog's camera centres are off by at most 3 km, so a 5 km
    buffer always holds the photo; real TMA work uses 10 km. ``verify=False``
    stops at the ranked candidates; ``poses`` are the headings and scales the
    heatmap scores (None: the given heading and scale only);
    ``matcher`` picks the verification matcher
    and ``max_candidates`` how many candidates it may try per photo.
    """
    from aeroloc.synth import make_archive

    t0 = time.perf_counter()
    out = check_output_dir(out_dir)
    root = out / "archive"
    # Every argument is checked before the archive is written: a bad model or
    # buffer must not leave a synthetic archive behind.
    AoIConfig(buffer_m=buffer_m)
    verify_config = VerifyConfig(matcher=matcher, max_candidates=max_candidates) if verify else None
    # One run at a time into ``out``; a killed run's temporary files are
    # removed only under the lock.
    with output_lock(out):
        worker_model(model)  # loads (and caches) the model, or raises
        for folder in (out, root, root / "photos", out / "evaluation"):
            remove_temp_files(folder)  # left by a killed run
        if not is_archive(root):
            say(f"synthesising a {preset} archive (seed {seed}) into {root} ...")
            make_archive(root, seed=seed, preset=preset, progress=say)
        archive = read_archive(root)
        label = model or "the shipped default model"
        say(f"model: {label}")
        results = out / "results"
        jobs, crs = batch_jobs(BatchInputs(catalog=root), results)
        spec = LocateSpec(
            model=model,
            buffer_m=buffer_m,
            heatmap_config=HeatmapConfig(engine=engine, poses=poses or SINGLE_POSE),
            verify=verify_config,
            torch_threads=max(1, os.cpu_count() or 1),
        )
        batch = run_batch(
            jobs,
            spec,
            BatchConfig(out_dir=results, workers=0),
            crs=crs,
            progress=lambda o: say(_progress(o)),
            lines=LinesConfig(),
        )
        say(batch.describe())
        folders = [j.out_dir for j in jobs if j.out_dir is not None]
        evaluation, heatmaps = evaluate(archive.truth_path, folders)
        write_evaluation(evaluation, heatmaps, out / "evaluation")
        methods = method_summary(archive.truth_path, folders)
        seconds = time.perf_counter() - t0
        report = write_report(
            out,
            evaluation,
            label,
            seconds,
            buffer_m,
            methods=methods,
            batch=batch,
            full_aoi=full_aoi_sentence(evaluation, folders),
        )
        return DemoSummary(
            out_dir=out,
            evaluation=evaluation,
            report=report,
            seconds=seconds,
            methods=methods,
            batch=batch,
        )


def full_aoi_sentence(evaluation: Evaluation, folders: Sequence[Path]) -> str:
    """The heatmap numbers over the photos whose heatmap covers their full AoI.

    A photo placed by a neighbour or a prediction keeps the heatmap of its
    small search window, where the percentile of the true window (the
    confidence level) and the rank of the truth measure something else; only
    photos placed by a full-AoI search (``method`` ``search``) compare with a
    plain ``locate``. Empty when every photo was searched over its full AoI.
    """
    method = {}
    for folder in folders:
        if has_result(folder):
            record = read_result(folder)
            method[record.photo_id] = record.method
    full = [r for r in evaluation.rows if method.get(r.photo_id) == "search"]
    if len(full) == len(evaluation.rows):
        return ""
    if not full:
        return (
            "No photo was searched over its full AoI: the confidence levels above are "
            "over the small windows around each photo's prediction or neighbour."
        )
    conf = float(np.mean([r.confidence_level for r in full]))
    r1 = float(np.mean([bool(r.recall_at_1) for r in full]))
    return (
        f"The confidence level and recall above are over each photo's own heatmap. "
        f"Only the {len(full)} photos placed by a full-AoI search have a heatmap over "
        f"the whole AoI; over those, the mean confidence level is **{conf:.1f} %** and "
        f"recall@1 {r1:.0%}. The other {len(evaluation.rows) - len(full)} were scored "
        f"only in the small window around their prediction or neighbour, where the "
        f"percentile of the true window says little."
    )


def _progress(outcome: PhotoOutcome[PhotoReport]) -> str:
    """The demo's one line per photo."""
    job, report = outcome.job, outcome.value
    head = f"[{job.index}/{job.total}] {job.photo_id}"
    if outcome.skipped:
        return f"{head}: already done"
    if outcome.failed or report is None:
        return f"{head}: failed ({outcome.error})"
    search = "" if report.full_search else ", no full-AoI search"
    return f"{head}: {report.status} by {report.method}{search} in {outcome.seconds:.1f} s"


def write_report(
    out: Path,
    evaluation: Evaluation,
    model_label: str,
    seconds: float,
    buffer_m: float,
    *,
    methods: Sequence[MethodRow] = (),
    batch: BatchSummary | None = None,
    full_aoi: str = "",
) -> Path:
    """``report.md``: summary, methods, line pictures, table, and each photo's heatmap.

    ``full_aoi`` (from :func:`full_aoi_sentence`) follows the evaluation table.
    """
    lines = [
        "# aeroloc demo",
        "",
        f"Synthetic archive in `archive/` (truth in `archive/truth.json`), model "
        f"**{model_label}**, {len(evaluation.rows)} photos, {seconds:.0f} s in all "
        f"(AoI buffer {buffer_m / 1000:g} km), run by `aeroloc batch` with flight lines.",
        "",
        evaluation.to_markdown(),
        "",
        *([full_aoi, ""] if full_aoi else []),
        *_methods_section(out, methods, batch),
        _picture_legend(evaluation.verified),
        "",
    ]
    for row in evaluation.rows:
        lines += [
            f"## {row.photo_id} (line {row.flight_line})",
            "",
            f"confidence level {row.confidence_level:.1f} %, rank of truth "
            f"{row.rank_of_truth if row.rank_of_truth is not None else 'not in top 20'}, "
            f"best-candidate error {row.error_m:.0f} m" + _verified_line(row),
            "",
            f"![heatmap](results/{row.photo_id}/heatmap.png) "
            f"![scores](evaluation/histograms/{row.photo_id}.png)",
            "",
        ]
    path = out / "report.md"
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines))
    return path


def _methods_section(
    out: Path, methods: Sequence[MethodRow], batch: BatchSummary | None
) -> list[str]:
    """How the photos were placed: a table per method and the per-line pictures."""
    if not methods:
        return []
    total = methods[-1]
    text = [
        "## Flight lines: how each photo was placed",
        "",
        "`search`: heatmap and verification over the full AoI; `propagated`: the same in a "
        "shrunken AoI around the line's prediction; `neighbour`: matched to an accepted "
        "neighbour, confirmed by verification in the reference around the chained footprint; "
        "`line`: placed by the joint solve of its line alone (unverified, with its σ). "
        f"{total.without_full_search} of {total.photos} photos were placed without a "
        "full-AoI search. The confidence level and recall of `propagated` and `neighbour` "
        "photos above come from their smaller search areas.",
        "",
        method_markdown(methods),
        "",
    ]
    if batch is not None and batch.lines is not None:
        text += [
            f"The joint solve sent {len(batch.lines.contradicted)} accepted photo(s) to review "
            f"({', '.join(batch.lines.contradicted) or 'none'}) and placed "
            f"{len(batch.lines.placed_by_line)} by their line.",
            "",
        ]
        for plot in batch.lines.plots:
            text += [f"![{plot.stem}]({plot.relative_to(out).as_posix()})", ""]
    return text


def _picture_legend(verified: bool) -> str:
    text = (
        "Each picture: the heatmap (50 % alpha) over the enhanced AoI, the top five "
        "candidates (cyan, numbered) and the true footprint (white, dashed)."
    )
    if not verified:
        return text + " Candidates were not verified by image matching (--no-verify)."
    return text + (
        " The footprint of an accepted photo, georeferenced by image matching, is drawn "
        "in green; a photo whose candidates were all rejected or left for review has none."
    )


def _verified_line(row: PhotoEvaluation) -> str:
    if not row.verified:
        return ""
    if not math.isfinite(row.iou):
        return f"; **{row.status}** after {row.windows_tried} candidate(s)"
    verdict = "correct" if row.iou >= CORRECT_IOU else "wrong"
    return (
        f"; **{row.status}** ({verdict}: footprint IoU {row.iou:.2f}, centre error "
        f"{row.centre_error_m:.1f} m, GCP RMSE {row.gcp_rmse_m:.1f} m, p(correct) "
        f"{row.p_correct:.2f}) after {row.windows_tried} candidate(s)"
    )
