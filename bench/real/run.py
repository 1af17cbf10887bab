"""Locate every case of the real-raster benchmark and report the pipeline's accuracy.

Each archive of ``--cases`` (built by ``bench/real/build.py``: one per source
and group, with a ``bench.json``) goes through the library's batch loop
(``aeroloc.batch.loop``: ``archive_jobs``, ``run_jobs``, ``locate_job`` with
``LocateSettings``, as ``bench/verify_pipeline.py`` runs it: AoI with the
archive's search buffer, heatmap with the default model, candidates,
verification best-first), then ``aeroloc.evaluation.evaluate`` scores the
result folders against the truth with its own definitions: the hit radius
of the rank of the truth is half the window's ground size, a photo is
*correct* when it is accepted with a footprint IoU of at least 0.5, a *false
accept* is accepted and not correct, and the centre error is the distance
between the verified and the true footprint centres.

Writes into ``--out``:

- ``results/<archive>/<photo_id>/``: what ``locate`` writes per photo
  (``result.json``, ``heatmap.png`` with the true footprint, ...); finished
  photos are skipped on a rerun;
- ``results.csv``: one row per case (columns in ``bench/real/README.md``);
- ``summary.md``: per group (easy, hard, all) and per source: recall@1/5,
  accepted and correct, false accepts, review, rejected, median centre error
  of accepted photos (m and reference pixels), median time per photo;
- ``reliability.png``: ``p_correct`` of the located photos (accepted or
  review) in bins against the share of them that is correct, with counts;
- ``run.json``: the settings and the aeroloc package that ran.

``--limit N`` runs a stratified subset: the cases are taken round-robin over
the archives (source and group) until N are chosen.

The script uses only aeroloc APIs that exist at commit f50938d, so that
``bench/real/compare.py`` can run it unchanged against an older checkout.

Usage::

    python bench/real/run.py --cases build/bench-real/cases --out build/bench-real/run
        [--model NAME|CKPT] [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import functools
import json
import math
import statistics
import sys
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

BENCH_FILE = "bench.json"
GROUPS = ("easy", "hard")
#: Columns of results.csv, in order.
COLUMNS = (
    "archive",
    "photo_id",
    "source",
    "group",
    "heading_error_given_deg",
    "gsd_error_given",
    "offset_given_m",
    "rank_of_truth",
    "recall_at_1",
    "recall_at_5",
    "confidence_level",
    "status",
    "correct",
    "false_accept",
    "p_correct",
    "iou",
    "centre_error_m",
    "centre_error_ref_px",
    "heading_found_deg",
    "heading_error_found_deg",
    "gsd_found_m",
    "gsd_ratio_found",
    "windows_tried",
    "frame_box_error_px",
    "heatmap_s",
    "verify_s",
    "total_s",
    "error",
)
RELIABILITY_BINS = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=Path, required=True, help="folder of the bench archives")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--model", default=None, help="heatmap model (default: the shipped one)")
    p.add_argument("--limit", type=int, default=None, help="stratified subset of N cases")
    p.add_argument("--engine", default="dense", choices=["batched", "dense", "naive"])
    p.add_argument("--matcher", default=None, help="verification matcher (default: aeroloc's)")
    p.add_argument("--max-candidates", type=int, default=10)
    p.add_argument(
        "--pose-search",
        action="store_true",
        help="search the heatmap over heading and scale (aeroloc.heatmap.poses.SEARCH_POSES; "
        "locate's --heading-search 16 --heading-step 8 --scale-search 0.15)",
    )
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    return args


# --------------------------------------------------------------------------- cases


def bench_archives(cases: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The archive folders under ``cases`` (those with truth.json and bench.json), sorted."""
    found = [
        (d, json.loads((d / BENCH_FILE).read_text()))
        for d in sorted(cases.iterdir())
        if d.is_dir() and (d / "truth.json").is_file() and (d / BENCH_FILE).is_file()
    ]
    if not found:
        raise SystemExit(f"no bench archive (truth.json + {BENCH_FILE}) under {cases}")
    return found


def stratified(per_archive: Sequence[Sequence[Any]], limit: int | None) -> list[list[Any]]:
    """Round-robin over the archives until ``limit`` items are taken (all without a limit)."""
    if limit is None:
        return [list(items) for items in per_archive]
    chosen: list[list[Any]] = [[] for _ in per_archive]
    taken, depth = 0, 0
    while taken < limit and any(depth < len(items) for items in per_archive):
        for i, items in enumerate(per_archive):
            if depth < len(items) and taken < limit:
                chosen[i].append(items[depth])
                taken += 1
        depth += 1
    return chosen


# --------------------------------------------------------------------------- locating


def _quiet_locate(job: Any, *, settings: Any) -> str | None:
    """``locate_job`` that turns an aeroloc error into a message (the case then fails)."""
    from aeroloc.batch.loop import locate_job
    from aeroloc.errors import AeroLocError

    try:
        locate_job(job, settings)
    except AeroLocError as exc:
        return f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a bench reports every failure and goes on
        return f"{type(exc).__name__}: {exc} | {traceback.format_exc(limit=3)!r}"
    return None


def locate_all(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Locate the chosen cases; evaluate them; one results row per case."""
    from aeroloc.batch.loop import LocateSettings, archive_jobs, run_jobs
    from aeroloc.heatmap.engines import HeatmapConfig
    from aeroloc.io.archive import read_archive
    from aeroloc.pipeline import load_model
    from aeroloc.verify.walk import VerifyConfig

    net, label = load_model(args.model)
    heatmap_config = HeatmapConfig(engine=args.engine)
    if args.pose_search:  # needs a tree with aeroloc.heatmap.poses
        from aeroloc.heatmap.poses import SEARCH_POSES

        heatmap_config = HeatmapConfig(engine=args.engine, poses=SEARCH_POSES)
    archives = bench_archives(args.cases)
    parsed = [(read_archive(root), bench) for root, bench in archives]
    all_jobs = [archive_jobs(a, args.out / "results" / a.root.name) for a, _ in parsed]
    chosen = stratified(all_jobs, args.limit)
    total = sum(len(c) for c in chosen)
    rows: list[dict[str, Any]] = []
    done = 0
    for (archive, bench), jobs in zip(parsed, chosen, strict=True):
        if not jobs:
            continue
        settings = LocateSettings(
            model=net,
            model_label=label,
            buffer_m=float(bench["buffer_m"]),
            heatmap_config=heatmap_config,
            verify=VerifyConfig(matcher=args.matcher, max_candidates=args.max_candidates),
            ignore_warnings=True,
        )
        errors: dict[str, str] = {}

        def report(outcome: Any, errors: dict[str, str] = errors) -> None:
            nonlocal done
            done += 1
            if outcome.value is not None:
                errors[outcome.job.photo_id] = outcome.value
            state = "done before" if outcome.skipped else f"{outcome.seconds:.1f} s"
            print(f"[{done}/{total}] {outcome.job.photo_id}: {state}", flush=True)

        run_jobs(jobs, functools.partial(_quiet_locate, settings=settings), progress=report)
        rows.extend(evaluate_archive(archive, bench, jobs, errors))
    info = {"model": label, "engine": args.engine, "matcher": args.matcher}
    return rows, info


def evaluate_archive(
    archive: Any, bench: Mapping[str, Any], jobs: Sequence[Any], errors: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One results row per job: evaluate's metrics plus timings and the found pose."""
    import rasterio

    from aeroloc.evaluation.evaluate import evaluate
    from aeroloc.io.results import has_result

    with rasterio.open(archive.reference) as ds:
        ref_px_m = float(abs(ds.transform.a))
    cases = {c["photo_id"]: c for c in bench.get("cases", [])}
    located = [j for j in jobs if j.out_dir is not None and has_result(j.out_dir)]
    evaluated = {}
    if located:
        ev, _ = evaluate(archive.truth_path, [j.out_dir for j in located])
        evaluated = {r.photo_id: r for r in ev.rows}
    rows = []
    for job in jobs:
        case = cases.get(job.photo_id, {})
        errs = case.get("errors", {})
        row: dict[str, Any] = {
            "archive": archive.root.name,
            "photo_id": job.photo_id,
            "source": case.get("source", bench.get("source", "")),
            "group": case.get("group", bench.get("group", "")),
            "heading_error_given_deg": errs.get("heading_deg"),
            "gsd_error_given": errs.get("gsd_frac"),
            "offset_given_m": errs.get("offset_m"),
            "error": errors.get(job.photo_id, ""),
        }
        r = evaluated.get(job.photo_id)
        if r is None:
            row["status"] = "error"
            rows.append(row)
            continue
        row.update(
            rank_of_truth=r.rank_of_truth,
            recall_at_1=r.recall_at_1,
            recall_at_5=r.recall_at_5,
            confidence_level=_round(r.confidence_level, 2),
            status=r.status,
            correct=r.correct,
            false_accept=r.false_accept,
            p_correct=_round(r.p_correct, 4),
            iou=_round(r.iou, 4),
            centre_error_m=_round(r.centre_error_m, 2),
            centre_error_ref_px=_round(r.centre_error_m / ref_px_m, 2),
            windows_tried=r.windows_tried,
        )
        row.update(_from_result_file(job.out_dir / "result.json", job.truth))
        rows.append(row)
    return rows


def _from_result_file(path: Path, truth: Any) -> dict[str, Any]:
    """Timings, the detected frame's error and the found heading and GSD, from result.json.

    Fields that an older result.json lacks are left out.
    """
    data = json.loads(path.read_text())
    timings = data.get("timings_s") or {}
    out: dict[str, Any] = {
        "heatmap_s": _round(timings.get("heatmap"), 3),
        "verify_s": _round(timings.get("verify"), 3),
        "total_s": _round(timings.get("total"), 3),
    }
    frame = (data.get("inputs") or {}).get("frame_box_px")
    if frame and truth is not None and truth.image_box_px:
        out["frame_box_error_px"] = max(
            abs(int(a) - int(b)) for a, b in zip(frame, truth.image_box_px, strict=False)
        )
    best = data.get("best") or {}
    matrix = (best.get("transform") or {}).get("matrix")
    if not matrix:
        return out
    (a, b, _), (d, e, _) = matrix[0], matrix[1]
    # scan px -> map: a photo row up (-row) points along the heading
    heading = math.degrees(math.atan2(-b, -e)) % 360
    gsd = math.sqrt(abs(a * e - b * d))
    out.update(heading_found_deg=_round(heading, 3), gsd_found_m=_round(gsd, 4))
    if truth is not None and truth.azimuth_deg is not None:
        err = (heading - truth.azimuth_deg + 180) % 360 - 180
        out["heading_error_found_deg"] = _round(err, 3)
    if truth is not None and truth.gsd_m:
        out["gsd_ratio_found"] = _round(gsd / truth.gsd_m, 4)
    return out


def _round(v: Any, digits: int) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return round(f, digits) if math.isfinite(f) else None


# --------------------------------------------------------------------------- summary


def read_rows(path: Path) -> list[dict[str, Any]]:
    """results.csv back into typed rows (empty cells → None)."""
    with path.open() as fh:
        raw = list(csv.DictReader(fh))
    return [{k: _parse(v) for k, v in r.items()} for r in raw]


def _parse(v: str | None) -> Any:
    if v is None or v == "":
        return None
    if v in ("True", "False"):
        return v == "True"
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


def _median(values: Iterable[Any]) -> float:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return statistics.median(vals) if vals else math.nan


def summarise(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The metrics of a set of case rows (see the module docstring)."""
    n = len(rows)
    accepted = [r for r in rows if r.get("status") == "accepted"]

    def count(pred: Any) -> int:
        return sum(1 for r in rows if pred(r))

    rank = [r.get("rank_of_truth") for r in rows]
    return {
        "n": n,
        "recall_at_1": count(lambda r: r.get("recall_at_1") is True) / n if n else math.nan,
        "recall_at_5": count(lambda r: r.get("recall_at_5") is True) / n if n else math.nan,
        "median_rank_of_truth": _median(rank),
        "accepted": len(accepted),
        "accepted_and_correct": count(lambda r: r.get("correct") is True),
        "false_accepts": count(lambda r: r.get("false_accept") is True),
        "review": count(lambda r: r.get("status") == "review"),
        "rejected": count(lambda r: r.get("status") == "rejected"),
        "errors": count(lambda r: r.get("status") == "error"),
        "median_centre_error_m": _median(r.get("centre_error_m") for r in accepted),
        "median_centre_error_ref_px": _median(r.get("centre_error_ref_px") for r in accepted),
        "median_seconds": _median(r.get("total_s") for r in rows),
    }


def subsets(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """(label, rows) for each group, all, and each source (with its groups)."""
    out: list[tuple[str, list[Mapping[str, Any]]]] = [
        (g, [r for r in rows if r.get("group") == g]) for g in GROUPS
    ]
    out.append(("all", list(rows)))
    for source in sorted({str(r.get("source")) for r in rows}):
        for g in (*GROUPS, None):
            sel = [
                r for r in rows if r.get("source") == source and (g is None or r.get("group") == g)
            ]
            if sel:
                out.append((f"{source} {g or 'all'}", sel))
    return out


def _pct(k: float, n: float) -> str:
    return f"{int(k)} ({k / n:.0%})" if n else "–"


def _num(v: float, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, (int, float)) and math.isfinite(v) else "–"


SUMMARY_HEAD = (
    "| cases | n | recall@1 | recall@5 | accepted and correct | false accepts | review "
    "| rejected | errors | median centre error, accepted (m) | (reference px) "
    "| median s / photo |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)


def summary_line(label: str, s: Mapping[str, float]) -> str:
    n = s["n"]
    return (
        f"| {label} | {int(n)} | {_num(s['recall_at_1'] * 100, '.0f')} % "
        f"| {_num(s['recall_at_5'] * 100, '.0f')} % | {_pct(s['accepted_and_correct'], n)} "
        f"| **{_pct(s['false_accepts'], n)}** | {_pct(s['review'], n)} "
        f"| {_pct(s['rejected'], n)} | {int(s['errors'])} "
        f"| {_num(s['median_centre_error_m'], '.1f')} "
        f"| {_num(s['median_centre_error_ref_px'], '.2f')} | {_num(s['median_seconds'], '.1f')} |\n"
    )


def to_markdown(rows: Sequence[Mapping[str, Any]], info: Mapping[str, Any]) -> str:
    parts = subsets(rows)
    subset = f"; stratified subset --limit {info['limit']}" if info.get("limit") else ""
    head = (
        f"# Real-raster benchmark: {len(rows)} cases\n\n"
        f"Run {info.get('date', '')} with aeroloc from `{info.get('aeroloc', '')}`, model "
        f"{info.get('model')}, engine {info.get('engine')}, matcher "
        f"{info.get('matcher') or 'default'}, up to {info.get('max_candidates')} candidates "
        f"verified{subset}"
        ". Correct = accepted with footprint IoU ≥ 0.5; false accept = accepted and not "
        "correct; recall@k: the truth within half a window of one of the top-k candidates; "
        "centre errors are medians over accepted photos.\n\n"
    )
    groups = "## By group\n\n" + SUMMARY_HEAD
    groups += "".join(summary_line(label, summarise(sel)) for label, sel in parts[:3])
    sources = "\n## By source\n\n" + SUMMARY_HEAD
    sources += "".join(summary_line(label, summarise(sel)) for label, sel in parts[3:])
    return head + groups + sources


def reliability(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    """Per ``p_correct`` bin of the located photos (accepted, review): count and share correct."""
    bins: list[dict[str, float]] = []
    located = [
        r
        for r in rows
        if r.get("status") in ("accepted", "review") and r.get("p_correct") is not None
    ]
    for k in range(RELIABILITY_BINS):
        lo, hi = k / RELIABILITY_BINS, (k + 1) / RELIABILITY_BINS
        sel = [
            r
            for r in located
            if lo <= float(r["p_correct"]) < hi
            or (k == RELIABILITY_BINS - 1 and r["p_correct"] == 1)
        ]
        good = sum(1 for r in sel if (r.get("iou") or 0.0) >= 0.5)
        bins.append(
            {
                "lo": lo,
                "hi": hi,
                "n": len(sel),
                "mean_p": statistics.fmean(float(r["p_correct"]) for r in sel) if sel else math.nan,
                "share_correct": good / len(sel) if sel else math.nan,
            }
        )
    return bins


def write_reliability(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    from matplotlib.figure import Figure

    from aeroloc.files import write_png

    bins = reliability(rows)
    fig = Figure(figsize=(5.2, 4.6))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect calibration")
    xs = [b["mean_p"] for b in bins if b["n"]]
    ys = [b["share_correct"] for b in bins if b["n"]]
    ax.bar(
        [(b["lo"] + b["hi"]) / 2 for b in bins],
        [b["share_correct"] if b["n"] else 0 for b in bins],
        width=0.9 / RELIABILITY_BINS,
        color="tab:blue",
        alpha=0.35,
        label="share correct (IoU ≥ 0.5) per bin",
    )
    ax.plot(xs, ys, "o-", color="tab:blue", label="at the bin's mean p_correct")
    for b in bins:
        if b["n"]:
            ax.annotate(
                f"{b['n']}",
                ((b["lo"] + b["hi"]) / 2, min(b["share_correct"], 0.93) + 0.03),
                ha="center",
                fontsize=8,
            )
    n = sum(int(b["n"]) for b in bins)
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.05),
        xlabel="p_correct of the located photo",
        ylabel="observed share correct",
        title=f"Reliability on the real-raster bench ({n} located photos)",
    )
    ax.legend(loc="upper left", fontsize=8)
    return write_png(path, fig)


def write_outputs(out: Path, rows: list[dict[str, Any]], info: Mapping[str, Any]) -> None:
    from aeroloc.files import atomic_output, write_json

    with atomic_output(out / "results.csv") as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    typed = read_rows(out / "results.csv")
    with atomic_output(out / "summary.md") as tmp:
        tmp.write_text(to_markdown(typed, info))
    write_reliability(out / "reliability.png", typed)
    write_json(
        out / "run.json",
        {**info, "reliability": reliability(typed), "summary": summarise(typed)},
    )


def main(argv: list[str] | None = None) -> int:
    import aeroloc

    args = parse_args(argv)
    t0 = time.perf_counter()
    rows, info = locate_all(args)
    info = {
        **info,
        "date": datetime.date.today().isoformat(),
        "aeroloc": str(Path(aeroloc.__file__).resolve().parent),
        "aeroloc_version": getattr(aeroloc, "__version__", ""),
        "cases": str(args.cases),
        "limit": args.limit,
        "max_candidates": args.max_candidates,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    write_outputs(args.out, rows, info)
    print((args.out / "summary.md").read_text())
    print(f"({info['seconds']:.0f} s; {args.out / 'results.csv'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
