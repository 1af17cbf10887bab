"""Held-out synthetic evaluation of ``locate`` with verification (issue 5 targets).

For each matcher, every photo of synthetic archives with held-out seeds
(500–599 for the ``tiny``, ``default`` and ``large`` presets, 700–799 for
``hard``; the tests use 0–99, the demo 100–199, calibration 600–699, training
≥ 1000) goes through ``locate`` exactly as the CLI runs it (AoI, heatmap with
the default model, candidates, verification best-first), then
``aeroloc.evaluation.evaluate`` scores the result folders against the truth.

Reported per matcher: the heatmap's recall@1/5/10 and mean confidence level
(the candidates before verification), photos accepted and correct (footprint
IoU ≥ 0.5), false accepts (accepted, IoU < 0.5), review and rejected counts,
median centre error of accepted footprints, mean search reduction, and
seconds per photo including the heatmap.

Usage::

    python bench/verify_pipeline.py --archives 2 --preset tiny --matcher sift disk-lightglue
    python bench/verify_pipeline.py --preset hard --first-seed 700 --archives 4

Archives and result folders are kept in ``--work``; finished photos are
skipped on a rerun.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

PRESETS = ("tiny", "default", "large", "hard")
HELD_OUT_SEEDS = {"hard": (700, 799)}
"""Held-out seed range per preset; the others use :data:`DEFAULT_HELD_OUT`."""
DEFAULT_HELD_OUT = (500, 599)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archives", type=int, default=2)
    p.add_argument("--first-seed", type=int, default=None, help="default: 500 (hard: 700)")
    p.add_argument("--preset", default="tiny", choices=PRESETS)
    p.add_argument("--matcher", nargs="+", default=["effnet-dense"], help="matchers to compare")
    p.add_argument("--model", default=None, help="heatmap model (default: the shipped one)")
    p.add_argument("--engine", default="dense", choices=["batched", "dense", "naive"])
    p.add_argument("--max-candidates", type=int, default=10)
    p.add_argument(
        "--poses",
        choices=("single", "search"),
        default="single",
        help="heatmap poses: the given heading and scale (locate's default), or "
        "aeroloc.heatmap.poses.SEARCH_POSES",
    )
    p.add_argument("--buffer-m", type=float, default=None, help="AoI buffer (default per preset)")
    p.add_argument("--work", type=Path, default=Path("bench-verify"))
    p.add_argument("--json", type=Path, default=None, help="also write the summaries here")
    args = p.parse_args(argv)
    lo, hi = HELD_OUT_SEEDS.get(args.preset, DEFAULT_HELD_OUT)
    if args.first_seed is None:
        args.first_seed = lo
    if not lo <= args.first_seed <= args.first_seed + args.archives - 1 <= hi:
        p.error(f"held-out seeds of preset {args.preset} must stay within {lo}..{hi}")
    return args


def run_matcher(args: argparse.Namespace, matcher: str, net: Any, label: str) -> dict[str, Any]:
    """Locate and verify every photo with ``matcher``; evaluate; return the summary."""
    from aeroloc.batch.loop import (
        LocateSettings,
        PhotoOutcome,
        archive_jobs,
        locate_job,
        run_jobs,
    )
    from aeroloc.evaluation.evaluate import Evaluation, evaluate
    from aeroloc.heatmap.engines import HeatmapConfig
    from aeroloc.heatmap.poses import SEARCH_POSES, SINGLE_POSE
    from aeroloc.io.archive import is_archive, read_archive
    from aeroloc.io.results import read_result
    from aeroloc.synth import make_archive
    from aeroloc.verify.walk import VerifyConfig

    settings = LocateSettings(
        model=net,
        model_label=label,
        buffer_m=args.buffer_m or (1500.0 if args.preset == "tiny" else 5000.0),
        heatmap_config=HeatmapConfig(
            engine=args.engine, poses=SEARCH_POSES if args.poses == "search" else SINGLE_POSE
        ),
        verify=VerifyConfig(matcher=matcher, max_candidates=args.max_candidates),
        ignore_warnings=True,
    )
    seconds: list[float] = []
    summaries = []

    def report(outcome: PhotoOutcome[Any]) -> None:
        job = outcome.job
        res = read_result(job.out_dir)
        seconds.append(res.timings_s["total"])
        windows = None if res.verification is None else res.verification.windows_tried
        print(
            f"  {matcher} {job.archive_root.name} {job.photo_id}: {res.status} after "
            f"{windows} window(s), {res.timings_s['total']:.1f} s",
            flush=True,
        )

    for seed in range(args.first_seed, args.first_seed + args.archives):
        root = args.work / f"{args.preset}-{seed}"
        if not is_archive(root):
            make_archive(root, seed=seed, preset=args.preset)
        archive = read_archive(root)
        jobs = archive_jobs(archive, args.work / "results" / matcher / root.name)
        run_jobs(jobs, functools.partial(locate_job, settings=settings), progress=report)
        evaluation, _ = evaluate(archive.truth_path, [j.out_dir for j in jobs])
        summaries.append(evaluation)
    rows = [r for ev in summaries for r in ev.rows]
    s = Evaluation(rows=tuple(rows), hit_radius_m=None).summary()
    ranks = [r.rank_of_truth for r in rows if r.rank_of_truth is not None]
    return {
        "matcher": matcher,
        "photos": len(rows),
        "recall_at_1": s["recall_at_1"],
        "recall_at_5": s["recall_at_5"],
        "recall_at_10": s["recall_at_10"],
        "mean_confidence_level": s["mean_confidence_level"],
        "truth_not_in_candidates": len(rows) - len(ranks),
        "accepted": int(sum(r.status == "accepted" for r in rows)),
        "review": int(sum(r.status == "review" for r in rows)),
        "rejected": int(sum(r.status == "rejected" for r in rows)),
        "accepted_and_correct": s["accepted_and_correct"],
        "accepted_and_correct_n": int(sum(r.correct for r in rows)),
        "false_accepts": int(s["false_accepts"]),
        "false_accept_rate": s["false_accept_rate"],
        "median_centre_error_m": s["median_centre_error_m"],
        "median_gcp_rmse_m": s["median_gcp_rmse_m"],
        "mean_search_reduction": s["mean_search_reduction"],
        "mean_windows_tried": s["mean_windows_tried"],
        "seconds_per_photo": float(np.mean(seconds)) if seconds else float("nan"),
    }


def to_markdown(results: list[dict[str, Any]], args: argparse.Namespace, label: str) -> str:
    head = (
        f"Held-out synthetic archives: {args.archives} × preset `{args.preset}` (seeds "
        f"{args.first_seed}–{args.first_seed + args.archives - 1}), model {label}, engine "
        f"{args.engine} ({args.poses} poses), up to {args.max_candidates} candidates verified.\n\n"
        "| matcher | photos | recall@1 | recall@5 | recall@10 | mean confidence "
        "| accepted and correct | false accepts | review | rejected | median centre error (m) "
        "| median GCP RMSE (m) | mean search reduction | windows tried | s / photo |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['matcher']} | {r['photos']} | {r['recall_at_1']:.1%} | {r['recall_at_5']:.1%} "
        f"| {r['recall_at_10']:.1%} | {r['mean_confidence_level']:.1f} % "
        f"| {r['accepted_and_correct']:.1%} ({r['accepted_and_correct_n']}) "
        f"| {r['false_accepts']} ({r['false_accept_rate']:.0%}) "
        f"| {r['review']} | {r['rejected']} "
        f"| {r['median_centre_error_m']:.1f} | {r['median_gcp_rmse_m']:.1f} "
        f"| {r['mean_search_reduction']:.1%} | {r['mean_windows_tried']:.1f} "
        f"| {r['seconds_per_photo']:.1f} |\n"
        for r in results
    )
    return head + body


def main(argv: list[str] | None = None) -> int:
    from aeroloc.pipeline import load_model

    args = parse_args(argv)
    net, label = load_model(args.model)
    results = []
    t0 = time.perf_counter()
    for matcher in args.matcher:
        print(f"matcher {matcher}:", flush=True)
        results.append(run_matcher(args, matcher, net, label))
    print(to_markdown(results, args, label))
    print(f"({time.perf_counter() - t0:.0f} s in all)")
    if args.json is not None:
        from aeroloc.files import write_json

        write_json(args.json, {"args": vars(args), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
