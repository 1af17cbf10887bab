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
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shapely.geometry import Polygon

from aeroloc.aoi import AoIConfig, PartialOverlapWarning
from aeroloc.catalog import read_catalog
from aeroloc.evaluate import (
    CORRECT_IOU,
    Evaluation,
    PhotoEvaluation,
    evaluate,
    load_truth,
    write_evaluation,
)
from aeroloc.files import atomic_output
from aeroloc.heatmap.engines import HeatmapConfig
from aeroloc.pipeline import load_model, locate_photo, request_from_record
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
    buffer_m: float = 5_000.0,
    verify: bool = True,
    matcher: str | None = None,
    max_candidates: int = 5,
    say: Callable[[str], None] = lambda _: None,
) -> DemoSummary:
    """Run the demonstration into ``out_dir`` (see the module docstring).

    The synthetic catalog's camera centres are off by at most 3 km, so a 5 km
    buffer always holds the photo; real TMA work uses 10 km. ``verify=False``
    stops at the ranked candidates; ``matcher`` picks the verification matcher
    and ``max_candidates`` how many candidates it may try per photo.
    """
    from aeroloc.synth import make_archive

    t0 = time.perf_counter()
    out = Path(out_dir)
    archive = out / "archive"
    if not (archive / "truth.json").is_file():
        say(f"synthesising a {preset} archive (seed {seed}) into {archive} ...")
        make_archive(archive, seed=seed, preset=preset, progress=say)
    truth = load_truth(archive)
    catalog = read_catalog(archive / "catalog.gpkg")
    net, label = load_model(model)
    say(f"model: {label}")
    folders = []
    cfg = HeatmapConfig(engine=engine)
    verify_config = VerifyConfig(matcher=matcher, max_candidates=max_candidates) if verify else None
    for i, record in enumerate(catalog, 1):
        folder = out / "results" / record.photo_id
        folders.append(folder)
        true = truth.get(record.photo_id)
        footprint = Polygon(true["footprint"]) if true else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PartialOverlapWarning)
            request = request_from_record(
                record,
                [archive / "reference.tif"],
                aoi_config=AoIConfig(buffer_m=buffer_m),
                rock_mask_path=archive / "rock_outcrop.gpkg",
            )
            result = locate_photo(
                request,
                folder,
                model=net,
                model_label=label,
                heatmap_config=cfg,
                truth_footprint=footprint,
                overwrite=False,
                verify=verify_config,
            )
        if result is None:
            say(f"[{i}/{len(catalog)}] {record.photo_id}: already done")
        else:
            verified = (
                ""
                if result.verification is None
                else f"; {result.status} after {result.verification.windows_tried} candidate(s) "
                f"in {result.timings_s.get('verify', 0.0):.1f} s"
            )
            say(
                f"[{i}/{len(catalog)}] {record.photo_id}: {result.heatmap.n_windows} windows "
                f"in {result.timings_s['heatmap']:.1f} s{verified}"
            )
    evaluation, heatmaps = evaluate(archive / "truth.json", folders)
    write_evaluation(evaluation, heatmaps, out / "evaluation")
    seconds = time.perf_counter() - t0
    report = write_report(out, evaluation, label, seconds, buffer_m)
    return DemoSummary(out_dir=out, evaluation=evaluation, report=report, seconds=seconds)


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
