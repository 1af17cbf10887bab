"""The built-in demonstration: synthesise an archive, locate every photo, evaluate.

``aeroloc demo --out DIR`` (and ``make demo``) runs the whole pipeline on a
synthetic archive whose seed is disjoint from the training seeds, with the
shipped default model, verifies the candidates by image matching, and writes
``DIR/report.md``: the summary table and, per photo, the heatmap with its
candidates, the accepted footprint and the true footprint. Finished photos
are skipped on a rerun.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from aeroloc.batch.loop import (
    LocateSettings,
    PhotoOutcome,
    archive_jobs,
    locate_job,
    run_jobs,
)
from aeroloc.evaluation.evaluate import (
    CORRECT_IOU,
    Evaluation,
    PhotoEvaluation,
    evaluate,
    write_evaluation,
)
from aeroloc.files import atomic_output
from aeroloc.heatmap.engines import HeatmapConfig
from aeroloc.heatmap.poses import SINGLE_POSE, PoseGrid
from aeroloc.io.archive import is_archive, read_archive
from aeroloc.pipeline import LocateResult, load_model
from aeroloc.verify.walk import VerifyConfig

DEMO_SEED = 100


@dataclass(frozen=True, kw_only=True)
class DemoSummary:
    """What the demo produced."""

    out_dir: Path
    evaluation: Evaluation
    report: Path
    seconds: float


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
    out = Path(out_dir)
    root = out / "archive"
    if not is_archive(root):
        say(f"synthesising a {preset} archive (seed {seed}) into {root} ...")
        make_archive(root, seed=seed, preset=preset, progress=say)
    archive = read_archive(root)
    net, label = load_model(model)
    say(f"model: {label}")
    settings = LocateSettings(
        model=net,
        model_label=label,
        buffer_m=buffer_m,
        heatmap_config=HeatmapConfig(engine=engine, poses=poses or SINGLE_POSE),
        verify=VerifyConfig(matcher=matcher, max_candidates=max_candidates) if verify else None,
    )
    jobs = archive_jobs(archive, out / "results")
    run_jobs(jobs, partial(locate_job, settings=settings), progress=lambda o: say(_progress(o)))
    folders = [j.out_dir for j in jobs if j.out_dir is not None]
    evaluation, heatmaps = evaluate(archive.truth_path, folders)
    write_evaluation(evaluation, heatmaps, out / "evaluation")
    seconds = time.perf_counter() - t0
    report = write_report(out, evaluation, label, seconds, buffer_m)
    return DemoSummary(out_dir=out, evaluation=evaluation, report=report, seconds=seconds)


def _progress(outcome: PhotoOutcome[LocateResult | None]) -> str:
    """The demo's one line per photo."""
    job, result = outcome.job, outcome.value
    head = f"[{job.index}/{job.total}] {job.photo_id}"
    if result is None:
        return f"{head}: already done"
    verified = (
        ""
        if result.verification is None
        else f"; {result.status} after {result.verification.windows_tried} candidate(s) "
        f"in {result.timings_s.get('verify', 0.0):.1f} s"
    )
    seconds = result.timings_s["heatmap"]
    return f"{head}: {result.heatmap.n_windows} windows in {seconds:.1f} s{verified}"


def write_report(
    out: Path, evaluation: Evaluation, model_label: str, seconds: float, buffer_m: float
) -> Path:
    """``report.md``: summary, table, and each photo's heatmap picture."""
    lines = [
        "# aeroloc demo",
        "",
        f"Synthetic archive in `archive/` (truth in `archive/truth.json`), model "
        f"**{model_label}**, {len(evaluation.rows)} photos, {seconds:.0f} s in all "
        f"(AoI buffer {buffer_m / 1000:g} km).",
        "",
        evaluation.to_markdown(),
        "",
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
