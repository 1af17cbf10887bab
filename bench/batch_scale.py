"""``aeroloc batch`` at scale on this machine: 1 and 2 workers, against full-AoI ``locate``.

One held-out synthetic archive (``aeroloc.synth.make_archive``, default preset
``default``, seed 160 of the benchmark range; calibration seeds 600–699 and
training seeds ≥ 1000 are refused) goes through the library's
:func:`aeroloc.batch.run.run_batch`, the path ``aeroloc batch`` takes:

- with flight lines (``LinesConfig()``), once per ``--workers`` value
  (default 1 and 2): a Dask LocalCluster of that many single-threaded
  worker processes, torch at one thread per worker (0 runs in this process
  without Dask, still one torch thread: for debugging);
- the baseline: every photo located over its full AoI (``lines=None``) on
  ``--baseline-workers`` workers (default 1).

Each run writes into its own folder under ``--work`` (emptied first unless
``--resume``). Every photo's ``result.json`` is scored against the
archive's ``truth.json`` (accepted and correct: footprint IoU ≥ 0.5; false
accept: accepted with IoU < 0.5), and its cost is the sum of its
``placement.attempts`` seconds (a photo without a placement: ``timings_s.total``).

Reported per run: photos, wall seconds, photos/min, the share placed without
a full-AoI search, mean seconds per photo by method, statuses, accepted and
correct, false accepts, median centre error; then the speed-up of N workers
over 1, the ratio of the batch's mean seconds per photo to the full-AoI
baseline's (issue 16's target: ≤ ⅓), the photos per hour of one 2-core
machine, and a paper estimate of the workers × hours the whole archive
(330,000 photos on 2,143 lines) would take at the measured per-photo cost.
Ratios measured in one run are what counts; absolute seconds depend on the
machine and its load (recorded).

Usage::

    python bench/batch_scale.py --work build/bench-batch --out build/bench-batch/report
    python bench/batch_scale.py --preset tiny --workers 1 --max-candidates 1 --out /tmp/bs

Writes ``summary.md`` and ``results.json`` into ``--out`` and prints the summary.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aeroloc.batch.loop import PhotoOutcome
    from aeroloc.batch.worker import LocateSpec, PhotoReport

PRESETS = ("tiny", "default", "large", "hard")
DEFAULT_SEED = 160
#: The benchmark seed range (held out from training and calibration).
BENCH_SEEDS = (100, 199)
#: Seeds this benchmark refuses: calibration, training.
CALIBRATION_SEEDS = (600, 699)
TRAINING_SEED_MIN = 1000
#: The archive issue 16 is about.
ARCHIVE_PHOTOS = 330_000
ARCHIVE_LINES = 2_143
#: Two-core machines (two single-threaded workers each) of the paper estimate.
MACHINES = (1, 10, 50, 100)
#: Statuses a photo can end with, in report order.
STATUSES = ("accepted", "review", "rejected", "unverified", "failed", "pending")
METHODS = ("search", "propagated", "neighbour", "line")
CORRECT_IOU = 0.5


# ---------------------------------------------------------------- arguments


def check_seed(seed: int) -> int:
    """``seed`` unless it is a calibration (600–699) or training (≥ 1000) seed, or negative."""
    if seed < 0:
        raise ValueError(f"seed must be ≥ 0, got {seed}")
    lo, hi = CALIBRATION_SEEDS
    if lo <= seed <= hi:
        raise ValueError(f"seed {seed} is a calibration seed ({lo}–{hi}): use {BENCH_SEEDS}")
    if seed >= TRAINING_SEED_MIN:
        raise ValueError(f"seed {seed} is a training seed (≥ {TRAINING_SEED_MIN})")
    return seed


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument(
        "--work",
        type=Path,
        default=Path("build/bench-batch"),
        help="archives and run folders (an archive there is reused)",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="summary.md and results.json (default: WORK/report)"
    )
    p.add_argument("--preset", default="default", choices=PRESETS)
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"archive seed (benchmark range {BENCH_SEEDS[0]}–{BENCH_SEEDS[1]}; "
        "600–699 and ≥ 1000 are refused)",
    )
    p.add_argument(
        "--photos-per-line",
        type=int,
        default=None,
        help="override the preset's photos per flight line",
    )
    p.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="worker counts of the flight-line runs (0: this process, no Dask)",
    )
    p.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the full-AoI baseline (the batch with flight lines off)",
    )
    p.add_argument("--baseline-workers", type=int, default=1)
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the run folders (finished photos are skipped, so the times "
        "cover only what this run located)",
    )
    p.add_argument(
        "--buffer-m",
        type=float,
        default=None,
        help="AoI buffer (default: batch's 10 km; 1.5 km for tiny)",
    )
    p.add_argument("--model", default=None, help="heatmap model (default: the shipped one)")
    p.add_argument("--engine", default="dense", choices=["batched", "dense", "naive"])
    p.add_argument("--matcher", default=None, help="verification matcher (default: batch's)")
    p.add_argument("--max-candidates", type=int, default=10, help="candidates verified at most")
    p.add_argument("--candidates", type=int, default=20, help="candidates kept from the heatmap")
    args = p.parse_args(argv)
    try:
        check_seed(args.seed)
    except ValueError as exc:
        p.error(str(exc))
    if any(w < 0 for w in args.workers) or args.baseline_workers < 0:
        p.error("worker counts must be ≥ 0")
    if len(set(args.workers)) != len(args.workers):
        p.error("--workers lists a count twice")
    if args.photos_per_line is not None and args.photos_per_line < 1:
        p.error("--photos-per-line must be ≥ 1")
    if args.max_candidates < 1 or args.candidates < 1:
        p.error("--max-candidates and --candidates must be ≥ 1")
    if args.buffer_m is None:
        args.buffer_m = 1500.0 if args.preset == "tiny" else 10_000.0
    if args.out is None:
        args.out = args.work / "report"
    return args


# ---------------------------------------------------------------- the archive and the runs


def ensure_archive(
    work: Path, *, preset: str, seed: int, photos_per_line: int | None = None
) -> Path:
    """The archive ``WORK/archives/<preset>-<seed>[-<n>pl]``, made unless it is already there."""
    from aeroloc.io.archive import is_archive, read_archive
    from aeroloc.synth import get_preset, make_archive

    check_seed(seed)
    name = f"{preset}-{seed}" + ("" if photos_per_line is None else f"-{photos_per_line}pl")
    root = work / "archives" / name
    if is_archive(root):
        archive = read_archive(root)
        if archive.seed == seed and archive.preset == preset:
            print(f"archive {root}: reused ({len(archive.catalog)} photos)", flush=True)
            return root
    config = get_preset(
        preset, **({} if photos_per_line is None else {"photos_per_line": photos_per_line})
    )
    t0 = time.perf_counter()
    make_archive(root, seed=seed, config=config)
    print(f"archive {root}: made in {time.perf_counter() - t0:.0f} s", flush=True)
    return root


@dataclass(frozen=True, kw_only=True)
class RunPlan:
    """One run of the benchmark.

    Attributes:
        name: folder and label (``lines-1w``, ``full-1w``, ...).
        workers: LocalCluster workers (0: this process, no Dask).
        lines: flight lines on (the batch) or off (the full-AoI baseline).
    """

    name: str
    workers: int
    lines: bool


def plan_runs(workers: Sequence[int], *, baseline: bool, baseline_workers: int) -> list[RunPlan]:
    """The flight-line runs (in the given order), then the baseline."""
    plans = [RunPlan(name=f"lines-{w}w", workers=w, lines=True) for w in workers]
    if baseline:
        plans.append(
            RunPlan(name=f"full-{baseline_workers}w", workers=baseline_workers, lines=False)
        )
    return plans


def locate_spec(args: argparse.Namespace) -> LocateSpec:
    """What ``aeroloc batch`` builds from its defaults and these options (one torch thread)."""
    from aeroloc.batch.worker import LocateSpec
    from aeroloc.heatmap.engines import HeatmapConfig
    from aeroloc.verify.walk import VerifyConfig

    return LocateSpec(
        model=args.model,
        buffer_m=args.buffer_m,
        heatmap_config=HeatmapConfig(engine=args.engine),
        verify=VerifyConfig(matcher=args.matcher, max_candidates=args.max_candidates),
        max_candidates=args.candidates,
        torch_threads=1,
    )


def run_plan(
    archive: Path, out: Path, plan: RunPlan, spec: LocateSpec, *, resume: bool = False
) -> dict[str, Any]:
    """Run ``plan`` on ``archive`` into ``out`` (emptied first unless ``resume``); score it."""
    from aeroloc.batch.config import BatchConfig, BatchInputs, LinesConfig
    from aeroloc.batch.run import batch_jobs, outcome_status, run_batch

    if out.exists() and not resume:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs, crs = batch_jobs(BatchInputs(catalog=archive), out)
    config = BatchConfig(out_dir=out, workers=plan.workers)

    def progress(outcome: PhotoOutcome[PhotoReport]) -> None:
        if outcome.skipped:
            return
        method = "" if outcome.value is None else f" ({outcome.value.method})"
        print(
            f"  {plan.name} {outcome.job.photo_id}: {outcome_status(outcome)}{method} "
            f"{outcome.seconds:.1f} s",
            flush=True,
        )

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    summary = run_batch(
        jobs, spec, config, crs=crs, progress=progress, lines=LinesConfig() if plan.lines else None
    )
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    rows = photo_rows(archive / "truth.json", [j.out_dir for j in jobs if j.out_dir is not None])
    return {
        "name": plan.name,
        "workers": plan.workers,
        "lines": plan.lines,
        "where": summary.where,
        "wall_s": wall,
        "n_run": summary.n_run,
        "n_skipped": summary.n_skipped,
        "n_lines": len({j.record.flight_line or j.photo_id for j in jobs}),
        "load_before": list(load_before),
        "load_after": list(load_after),
        "summary": summarise(rows, wall_s=wall, n_run=summary.n_run),
        "photos": rows,
    }


# ---------------------------------------------------------------- scoring


def photo_rows(truth_path: Path, folders: Sequence[Path]) -> list[dict[str, Any]]:
    """One row per photo folder: status, method, attempts, seconds, IoU and centre error."""
    from shapely.geometry import Polygon, shape

    from aeroloc.evaluation.evaluate import footprint_iou
    from aeroloc.io.archive import read_truth
    from aeroloc.io.failures import has_failure, read_failure
    from aeroloc.io.results import has_result, read_result

    truth = read_truth(truth_path).photos
    rows = []
    for folder in folders:
        pid = folder.name
        row: dict[str, Any] = {
            "photo_id": pid,
            "status": "pending",
            "method": None,
            "full_search": None,
            "seed": None,
            "seconds": math.nan,
            "attempts": [],
            "iou": math.nan,
            "centre_error_m": math.nan,
        }
        if has_result(folder):
            rec = read_result(folder)
            row["photo_id"] = pid = rec.photo_id
            row["status"], row["method"] = rec.status, rec.method
            placement = rec.placement
            if placement is not None and placement.attempts:
                row["attempts"] = [
                    {"method": a.method, "status": a.status, "seconds": a.seconds}
                    for a in placement.attempts
                ]
                row["seconds"] = float(sum(a.seconds for a in placement.attempts))
            else:
                row["seconds"] = float(rec.timings_s.get("total", math.nan))
            row["full_search"] = placement is None or placement.full_search
            # a seed: searched over the full AoI straight away (no line attempt before)
            row["seed"] = placement is None or [a.method for a in placement.attempts] == ["search"]
            true = truth.get(pid)
            footprint = rec.best.footprint
            placed = rec.best.verified or rec.method == "line"
            if true is not None and true.footprint is not None and footprint is not None and placed:
                found, known = shape(dict(footprint)), Polygon(true.footprint)
                row["iou"] = footprint_iou(found, known)
                row["centre_error_m"] = float(found.centroid.distance(known.centroid))
        elif has_failure(folder):
            failure = read_failure(folder)
            row["status"], row["seconds"] = "failed", float(failure.seconds or math.nan)
        rows.append(row)
    return rows


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(sum(finite) / len(finite)) if finite else math.nan


def _median(values: Sequence[float]) -> float:
    finite = sorted(v for v in values if math.isfinite(v))
    if not finite:
        return math.nan
    mid = len(finite) // 2
    return finite[mid] if len(finite) % 2 else (finite[mid - 1] + finite[mid]) / 2


def _ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else math.nan


def summarise(rows: Sequence[dict[str, Any]], *, wall_s: float, n_run: int) -> dict[str, Any]:
    """The numbers of one run (see the module docstring) from its photo rows."""
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    accepted = [r for r in rows if r["status"] == "accepted"]
    correct = [r for r in accepted if r["iou"] >= CORRECT_IOU]
    done = [r for r in rows if r["method"] is not None]
    without = [r for r in done if r["full_search"] is False]
    by_method = {
        m: {
            "photos": len(sel := [r for r in done if r["method"] == m]),
            "accepted": sum(r["status"] == "accepted" for r in sel),
            "mean_s": _mean([r["seconds"] for r in sel]),
        }
        for m in METHODS
    }
    classes = {
        "seed": [r for r in done if r["seed"]],
        "fallback": [r for r in done if r["full_search"] and not r["seed"]],
        "line": without,
    }
    return {
        "photos": len(rows),
        **counts,
        "accepted_and_correct": len(correct),
        "false_accepts": len(accepted) - len(correct),
        "placed_by_line_correct": sum(
            r["method"] == "line" and r["iou"] >= CORRECT_IOU for r in rows
        ),
        "share_correct": _ratio(len(correct), len(rows)),
        "without_full_search": len(without),
        "share_without_full_search": _ratio(len(without), len(done)),
        "median_centre_error_m": _median([r["centre_error_m"] for r in accepted]),
        "mean_s_per_photo": _mean([r["seconds"] for r in done]),
        "sum_s": float(sum(r["seconds"] for r in done if math.isfinite(r["seconds"]))),
        "by_method": by_method,
        "by_class": {
            k: {"photos": len(v), "mean_s": _mean([r["seconds"] for r in v])}
            for k, v in classes.items()
        },
        "wall_s": wall_s,
        "n_run": n_run,
        "photos_per_min": _ratio(60.0 * n_run, wall_s),
        "wall_s_per_photo": _ratio(wall_s, n_run),
    }


def compare(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Speed-ups, the cost ratio to the baseline, photos/hour and the paper estimate."""
    lines = {r["workers"]: r for r in runs if r["lines"]}
    full = next((r for r in runs if not r["lines"]), None)
    one = lines.get(1)
    speedup = {
        str(w): _ratio(r["summary"]["photos_per_min"], one["summary"]["photos_per_min"])
        for w, r in sorted(lines.items())
        if one is not None and w != 1
    }
    out: dict[str, Any] = {"speedup_over_1_worker": speedup}
    if full is not None and lines:
        same = lines.get(full["workers"]) or next(iter(lines.values()))
        out["cost_ratio_run"] = same["name"]
        out["cost_ratio"] = _ratio(
            same["summary"]["mean_s_per_photo"], full["summary"]["mean_s_per_photo"]
        )
        out["wall_ratio"] = _ratio(
            same["summary"]["wall_s_per_photo"], full["summary"]["wall_s_per_photo"]
        )
    # one 2-core machine: the 2-worker run as measured, else two 1-worker runs' worth
    if 2 in lines:
        s = lines[2]["summary"]
        out["photos_per_hour_basis"] = f"{lines[2]['name']}, measured"
        out["photos_per_hour_wall"] = 60.0 * s["photos_per_min"]
        worker_s = s["mean_s_per_photo"]
    elif lines:
        r = lines.get(1) or next(iter(lines.values()))
        s = r["summary"]
        out["photos_per_hour_basis"] = f"2 × {r['name']} (no 2-worker run)"
        out["photos_per_hour_wall"] = 2 * 60.0 * s["photos_per_min"] / max(1, r["workers"])
        worker_s = s["mean_s_per_photo"]
    else:
        worker_s = math.nan
    out["photos_per_hour_per_photo_cost"] = _ratio(2 * 3600.0, worker_s)
    if lines:
        basis = lines.get(2) or lines.get(1) or next(iter(lines.values()))
        out["estimate"] = paper_estimate(basis)
    return out


def paper_estimate(
    run: dict[str, Any], *, photos: int = ARCHIVE_PHOTOS, n_lines: int = ARCHIVE_LINES
) -> dict[str, Any]:
    """Worker-hours and hours on ``MACHINES`` 2-core machines for the whole archive.

    ``measured_mix``: every photo at the run's mean cost per photo (its share
    of seeds, which is higher on short synthetic lines). ``archive_mix``: the
    run's seeds per line on ``n_lines`` lines, the run's share of fallbacks
    (full-AoI search after the line failed) among the other photos, each
    class at its measured mean cost. Both leave out the fixed cost of a run
    (cluster start, model load, the joint solve, the table).
    """
    s = run["summary"]
    c = s["by_class"]
    mixes = {"measured_mix": s["mean_s_per_photo"]}
    n_seed = c["seed"]["photos"]
    others = c["fallback"]["photos"] + c["line"]["photos"]
    if n_seed and run["n_lines"]:
        seeds = min(photos, n_lines * n_seed / run["n_lines"])
        fallback = c["fallback"]["photos"] / others if others else 0.0
        per_other = (
            (fallback * c["fallback"]["mean_s"] if fallback else 0.0)
            + ((1 - fallback) * c["line"]["mean_s"] if fallback < 1 else 0.0)
            if others
            else c["seed"]["mean_s"]
        )
        total = seeds * c["seed"]["mean_s"] + (photos - seeds) * per_other
        mixes["archive_mix"] = total / photos
    result: dict[str, Any] = {"basis": run["name"], "photos": photos, "lines": n_lines}
    for name, per_photo in mixes.items():
        worker_h = photos * per_photo / 3600.0 if math.isfinite(per_photo) else math.nan
        result[name] = {
            "s_per_photo": per_photo,
            "worker_hours": worker_h,
            "hours_on_machines": {str(m): worker_h / (2 * m) for m in MACHINES},
        }
    return result


# ---------------------------------------------------------------- the report


def _f(v: float, fmt: str = ".1f", suffix: str = "") -> str:
    return "–" if not (isinstance(v, (int, float)) and math.isfinite(v)) else f"{v:{fmt}}{suffix}"


def to_markdown(report: dict[str, Any]) -> str:
    """``summary.md``: the setup, one row per run, per-method costs, comparisons, estimate."""
    a = report["args"]
    runs = report["runs"]
    lines = [
        f"# `aeroloc batch` scale benchmark ({report['date']})",
        "",
        f"Archive `{report['archive']}` (preset `{a['preset']}`, seed {a['seed']}, "
        f"{runs[0]['summary']['photos'] if runs else 0} photos on "
        f"{runs[0]['n_lines'] if runs else 0} line(s)); buffer {a['buffer_m']:g} m, engine "
        f"{a['engine']}, matcher {a['matcher'] or 'default'}, up to {a['max_candidates']} "
        f"candidates verified; {report['cpus']} cores, torch 1 thread per worker. Times are "
        "of this machine under its load (1-min load average before → after each run); "
        "ratios measured in one run are what counts. Σ photo s: the photos' own seconds "
        "(their attempts); wall s also holds the run's fixed costs (cluster start, model "
        "load per worker, priorities, joint solve, table, report) and idle workers.",
        "",
        "| run | where | photos run | wall s | Σ photo s | photos/min | accepted and correct "
        "| **false accepts** | review | rejected | unverified | failed | no full-AoI search "
        "| mean s/photo | median centre error (m) | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        s = r["summary"]
        lines.append(
            f"| {r['name']} | {r['where']} | {s['n_run']} | {s['wall_s']:.0f} | {s['sum_s']:.0f} "
            f"| {_f(s['photos_per_min'], '.2f')} "
            f"| {s['accepted_and_correct']} ({_f(100 * s['share_correct'], '.0f', ' %')}) "
            f"| **{s['false_accepts']}** | {s['review']} | {s['rejected']} | {s['unverified']} "
            f"| {s['failed']} | {s['without_full_search']} "
            f"({_f(100 * s['share_without_full_search'], '.0f', ' %')}) "
            f"| {_f(s['mean_s_per_photo'])} | {_f(s['median_centre_error_m'])} "
            f"| {r['load_before'][0]:.1f} → {r['load_after'][0]:.1f} |"
        )
    resumed = [f"{r['name']} ({r['n_skipped']})" for r in runs if r["n_skipped"]]
    if resumed:
        lines += [
            "",
            "**Resumed**: photos skipped as already done in "
            + ", ".join(resumed)
            + "; photos/min counts only the photos run, the means all photos.",
        ]
    lines += [
        "",
        "Mean seconds per photo by method (photos, accepted):",
        "",
        "| run | " + " | ".join(METHODS) + " |",
        "|---|" + "---|" * len(METHODS),
    ]
    for r in runs:
        bm = r["summary"]["by_method"]
        cells = [
            f"{_f(bm[m]['mean_s'])} ({bm[m]['photos']}, {bm[m]['accepted']})"
            if bm[m]["photos"]
            else "–"
            for m in METHODS
        ]
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    c = report["comparison"]
    lines += ["", "## Comparisons", ""]
    for w, x in c["speedup_over_1_worker"].items():
        lines.append(
            f"- {w} workers over 1: **{_f(x, '.2f', '×')}** the photos/min (target ≥ 1.7×)."
        )
    if "cost_ratio" in c:
        lines.append(
            f"- Mean seconds per photo of `{c['cost_ratio_run']}` / full-AoI `locate`: "
            f"**{_f(c['cost_ratio'], '.2f')}** (target ≤ 0.33); wall time per photo: "
            f"{_f(c['wall_ratio'], '.2f')}."
        )
    if "photos_per_hour_wall" in c:
        lines.append(
            f"- One 2-core machine ({c['photos_per_hour_basis']}): "
            f"**{_f(c['photos_per_hour_wall'], '.0f')} photos/hour** by wall time, "
            f"{_f(c['photos_per_hour_per_photo_cost'], '.0f')} from the mean cost per photo "
            "(2 workers, no fixed costs) (target ≥ 1,200)."
        )
    est = c.get("estimate")
    if est:
        lines += [
            "",
            f"## Paper estimate: {est['photos']:,} photos on {est['lines']:,} lines "
            f"(from `{est['basis']}`)",
            "",
            "`measured_mix`: every photo at this run's mean cost; `archive_mix`: this run's "
            "seeds per line on the archive's lines, its share of full-AoI fallbacks among "
            "the other photos, each at its measured cost. No fixed costs (cluster start, "
            "model load, solve, table).",
            "",
            "| mix | s/photo | worker-hours | "
            + " | ".join(f"hours on {m} × 2-core" for m in MACHINES)
            + " |",
            "|---|---|---|" + "---|" * len(MACHINES),
        ]
        for mix in ("measured_mix", "archive_mix"):
            if mix not in est:
                continue
            e = est[mix]
            hours = " | ".join(_f(e["hours_on_machines"][str(m)], ".1f") for m in MACHINES)
            lines.append(
                f"| {mix} | {_f(e['s_per_photo'], '.2f')} | {_f(e['worker_hours'], ',.0f')} "
                f"| {hours} |"
            )
    return "\n".join(lines) + "\n"


def run_benchmark(
    archive: Path, work: Path, plans: Sequence[RunPlan], spec: LocateSpec, *, resume: bool = False
) -> list[dict[str, Any]]:
    """Every plan on ``archive``, each into ``WORK/runs/<archive>/<plan>``."""
    runs = []
    for plan in plans:
        print(f"run {plan.name}:", flush=True)
        runs.append(
            run_plan(archive, work / "runs" / archive.name / plan.name, plan, spec, resume=resume)
        )
    return runs


def build_report(
    archive: Path, runs: Sequence[dict[str, Any]], args: dict[str, Any]
) -> dict[str, Any]:
    """``results.json``'s content: the settings, every run, the comparisons."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "archive": str(archive),
        "cpus": os.cpu_count(),
        "args": args,
        "runs": list(runs),
        "comparison": compare(runs),
    }


def write_report(out: Path, report: dict[str, Any]) -> str:
    """``summary.md`` and ``results.json`` in ``out``; the summary's text."""
    from aeroloc.files import write_json

    out.mkdir(parents=True, exist_ok=True)
    text = to_markdown(report)
    (out / "summary.md").write_text(text)
    write_json(out / "results.json", jsonable(report))
    return text


def jsonable(value: Any) -> Any:
    """``value`` with every non-finite float as None (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    archive = ensure_archive(
        args.work, preset=args.preset, seed=args.seed, photos_per_line=args.photos_per_line
    )
    plans = plan_runs(args.workers, baseline=args.baseline, baseline_workers=args.baseline_workers)
    runs = run_benchmark(archive, args.work, plans, locate_spec(args), resume=args.resume)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    text = write_report(args.out, build_report(archive, runs, settings))
    print(text)
    print(f"({time.perf_counter() - t0:.0f} s in all; {args.out}/summary.md, results.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
