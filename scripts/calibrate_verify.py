"""Fit the ``p_correct`` calibration of verification on synthetic archives.

For each archive (seeds 600–699 by default: disjoint from the tests 0–99, the
demo and benchmarks 100–199 and 500–599, and training ≥ 1000) every photo is
located as ``aeroloc locate`` does, and its top candidates are *all* verified
(no stop at the first accept), plus the window at the true position, so that
both correct and wrong fits are seen. Each fit gives one example: its
assessment features and the label *correct* = footprint IoU with the truth
≥ 0.5 (a fit that gives no footprint is not correct). A logistic regression on
``aeroloc.verify.CALIBRATION_FEATURES`` is fitted and written to
``src/aeroloc/verify/calibration.json`` (or ``--out-calibration``), and every
example to ``examples.csv`` in the work folder (``--from-csv`` refits from it
without matching again).

A small data set can give coefficients that extrapolate badly (e.g. a
negative weight on the inlier ratio when the correct fits seen all had low
ratios), so the script reports leave-one-archive-out scores and probes the
fitted model with an ideal fit (many inliers, high ratio, sub-pixel RMSE, the
expected scale, rigid) and a junk fit; it refuses to write a calibration that
does not rank the ideal fit above 0.5 and the junk fit below 0.5 (``--force``
writes it anyway). ``--features`` picks the features; the default leaves out
the RMSE and the inlier ratio, whose signs come out reversed on small
synthetic sets (wrong homographies fit a handful of points tightly; correct
fits on 10 m references keep a low inlier ratio) and then extrapolate badly.

Usage::

    python scripts/calibrate_verify.py --archives 4 --preset tiny --matcher disk-lightglue

Archives are kept in ``--work`` and reused on a rerun.
"""

from __future__ import annotations

import argparse
import csv
import functools
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import Polygon

from aeroloc.aoi import AoIConfig
from aeroloc.batch.loop import PhotoJob, PhotoOutcome, archive_jobs, run_jobs
from aeroloc.errors import InvalidInputError
from aeroloc.evaluation.evaluate import CORRECT_IOU, footprint_iou
from aeroloc.heatmap.candidates import Candidate
from aeroloc.heatmap.engines import HeatmapConfig
from aeroloc.io.archive import Archive, is_archive, read_archive, refuse_test_only
from aeroloc.pipeline import (
    load_model,
    prepare_request,
    request_from_record,
)
from aeroloc.synth.config import PRESETS
from aeroloc.verify.walk import VerifyConfig, verify_candidates

DEFAULT_FEATURES = (
    "log_n_inliers",
    "log_scale_error",
    "anisotropy",
    "perspective",
    "alignment_contrast",
)
FIRST_SEED = 600
LAST_SEED = 699
DEFAULT_OUT = (
    Path(__file__).resolve().parents[1] / "src" / "aeroloc" / "verify" / "calibration.json"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archives", type=int, default=4, help="number of archives (seeds from 600)")
    p.add_argument("--first-seed", type=int, default=FIRST_SEED)
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--matcher", default=None, help="matcher (default: aeroloc's default)")
    p.add_argument("--model", default=None, help="heatmap model (default: the shipped one)")
    p.add_argument("--candidates", type=int, default=3, help="top candidates verified per photo")
    p.add_argument("--buffer-m", type=float, default=None, help="AoI buffer (default per preset)")
    p.add_argument("--stride", type=float, default=0.25, help="heatmap stride (window fraction)")
    p.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the logistic fit")
    p.add_argument(
        "--features",
        default=",".join(DEFAULT_FEATURES),
        help="comma-separated features (default: %(default)s)",
    )
    p.add_argument(
        "--from-csv",
        type=Path,
        nargs="+",
        default=None,
        help="refit from one or more examples.csv (e.g. one per preset: a mixed calibration)",
    )
    p.add_argument("--force", action="store_true", help="write even if the probes fail")
    p.add_argument("--work", type=Path, default=Path("calibration-work"))
    p.add_argument("--out-calibration", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    seeds = range(args.first_seed, args.first_seed + args.archives)
    if args.archives < 1 or seeds[0] < FIRST_SEED or seeds[-1] > LAST_SEED:
        p.error(f"seeds must stay within {FIRST_SEED}..{LAST_SEED}")
    return args


def archive(work: Path, seed: int, preset: str) -> Archive:
    """The synthetic calibration archive of ``seed`` (made on first use; never a test-only one)."""
    from aeroloc.synth import make_archive

    out = work / f"{preset}-{seed}"
    if not is_archive(out):
        make_archive(out, seed=seed, preset=preset)
    found = read_archive(out)
    refuse_test_only(found)
    return found


def examples_of_photo(
    job: PhotoJob, *, net: Any, label: str, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Verify the top candidates and the true window of one photo; one row per fit."""
    from aeroloc.heatmap.candidates import find_candidates
    from aeroloc.heatmap.engines import compute_heatmap

    truth = job.truth
    if truth is None or truth.footprint is None:
        raise InvalidInputError(f"photo {job.photo_id} has no true footprint in the archive")
    buffer_m = args.buffer_m or (1500.0 if args.preset == "tiny" else 5000.0)
    request = request_from_record(
        job.record,
        job.references,
        aoi_config=AoIConfig(buffer_m=buffer_m),
        rock_mask_path=job.rock_mask,
    )
    _, pair = prepare_request(request)
    heatmap = compute_heatmap(
        pair.photo,
        pair.aoi_gray,
        model=net,
        window_px=pair.window_px,
        pixel_to_map=pair.pixel_to_map,
        crs=pair.aoi.crs,
        config=HeatmapConfig(stride_fraction=args.stride),
        model_label=label,
    )
    candidates = list(find_candidates(heatmap, max_candidates=args.candidates))
    cell = heatmap.nearest_cell(truth.center_x, truth.center_y)
    if cell is not None:
        x, y = heatmap.center_map(*cell)
        candidates.append(
            Candidate(
                rank=len(candidates) + 1,
                score=math.nan,
                percentile=math.nan,
                row=cell[0],
                col=cell[1],
                x=x,
                y=y,
                polygon=heatmap.window_polygon(*cell),
            )
        )
    config = VerifyConfig(
        matcher=args.matcher,
        max_candidates=len(candidates),
        stop_at_accept=False,
        retry_rotations_deg=(),
    )
    ver = verify_candidates(pair, heatmap, candidates, config)
    true_fp = Polygon(truth.footprint)
    rows = []
    for t in ver.tried:
        iou = footprint_iou(t.footprint, true_fp) if t.footprint is not None else 0.0
        rows.append(
            {
                "archive": job.archive_root.name,
                "photo_id": job.photo_id,
                "rank": t.candidate.rank,
                "true_window": cell is not None and t.candidate.rank == len(candidates),
                "status": t.status,
                "p_correct_before": t.p_correct,
                "iou": iou,
                "correct": iou >= CORRECT_IOU,
                "seconds": t.seconds,
                **t.features,
            }
        )
    return rows


IDEAL_FIT = {
    "n_inliers": 60.0,
    "log_n_inliers": math.log1p(60.0),
    "inlier_ratio": 0.6,
    "rmse_px": 0.5,
    "scale": 1.0,
    "scale_ratio": 1.0,
    "log_scale_error": 0.0,
    "anisotropy": 0.0,
    "perspective": 0.0,
    "mirrored": 0.0,
    # Keypoint matchers measure no contrast: the ideal fit must pass without it.
    "alignment_contrast": 0.0,
}
JUNK_FIT = {
    "n_inliers": 5.0,
    "log_n_inliers": math.log1p(5.0),
    "inlier_ratio": 0.1,
    "rmse_px": 2.5,
    "scale": 0.3,
    "scale_ratio": 0.3,
    "log_scale_error": abs(math.log(0.3)),
    "anisotropy": 3.0,
    "perspective": 2.0,
    "mirrored": 0.0,
    "alignment_contrast": 0.0,
}


def _quiet_examples(job: PhotoJob, **kw: Any) -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return examples_of_photo(job, **kw)


def collect(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Match every photo of the archives; one row per fit (see the module docstring)."""
    net, label = load_model(args.model)
    rows: list[dict[str, Any]] = []

    def report(outcome: PhotoOutcome[list[dict[str, Any]]]) -> None:
        got = outcome.value or []
        rows.extend(got)
        print(
            f"{outcome.job.archive_root.name} {outcome.job.photo_id}: {len(got)} fits, "
            f"{sum(r['correct'] for r in got)} correct, "
            f"{sum(r['status'] == 'accepted' for r in got)} accepted "
            f"({outcome.seconds:.0f} s)",
            flush=True,
        )

    fn = functools.partial(_quiet_examples, net=net, label=label, args=args)
    for seed in range(args.first_seed, args.first_seed + args.archives):
        run_jobs(archive_jobs(archive(args.work, seed, args.preset)), fn, progress=report)
    table = args.work / "examples.csv"
    with table.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    print(f"examples: {table}")
    return rows


def read_examples(path: Path) -> list[dict[str, Any]]:
    with path.open() as fh:
        rows: list[dict[str, Any]] = list(csv.DictReader(fh))
    for r in rows:
        r["correct"] = r["correct"] in ("True", "true", "1")
    return rows


def scores(model: Any, rows: list[dict[str, Any]]) -> tuple[float, float, float]:
    """Brier score, log loss and accuracy at 0.5 of ``model`` on ``rows``."""
    y = np.asarray([bool(r["correct"]) for r in rows], dtype=float)
    p = np.array([model.predict({k: float(v) for k, v in r.items() if _number(v)}) for r in rows])
    brier = float(np.mean((p - y) ** 2))
    ll = float(-np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)))
    return brier, ll, float(np.mean((p >= 0.5) == (y > 0)))


def _number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return not isinstance(v, bool)


def fit(rows: list[dict[str, Any]], names: tuple[str, ...], l2: float, description: str) -> Any:
    from aeroloc.verify import fit_calibration

    return fit_calibration(
        [{k: float(r[k]) for k in names} for r in rows],
        [bool(r["correct"]) for r in rows],
        feature_names=names,
        l2=l2,
        description=description,
    )


def main(argv: list[str] | None = None) -> int:
    from aeroloc.verify import DEFAULT_CALIBRATION

    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = (
        [r for path in args.from_csv for r in read_examples(path)]
        if args.from_csv
        else collect(args)
    )
    names = tuple(args.features.split(","))
    n_pos = sum(bool(r["correct"]) for r in rows)
    archives = sorted({str(r["archive"]) for r in rows})
    print(f"{len(rows)} fits ({n_pos} correct) from {len(archives)} archives")
    if n_pos == 0 or n_pos == len(rows):
        print("need both correct and wrong fits to calibrate: add archives", file=sys.stderr)
        return 1
    from aeroloc.verify import DEFAULT_MATCHER

    matcher = args.matcher or DEFAULT_MATCHER
    cal = fit(
        rows,
        names,
        args.l2,
        f"logistic fit on {len(rows)} fits ({n_pos} correct, IoU >= {CORRECT_IOU}) of "
        f"{matcher} on {len(archives)} synthetic archives ({', '.join(archives)}), top "
        f"{args.candidates} candidates + the true window per photo, l2={args.l2}",
    )
    for name, model in (("hand-set default", DEFAULT_CALIBRATION), ("fitted (in sample)", cal)):
        brier, ll, acc = scores(model, rows)
        print(f"{name}: Brier {brier:.3f}, log loss {ll:.3f}, accuracy at 0.5 {acc:.1%}")
    held: list[tuple[float, float, float, int]] = []
    for name in archives:
        train = [r for r in rows if r["archive"] != name]
        test = [r for r in rows if r["archive"] == name]
        if 0 < sum(bool(r["correct"]) for r in train) < len(train):
            held.append((*scores(fit(train, names, args.l2, ""), test), len(test)))
    if held:
        w = np.array([h[3] for h in held], dtype=float)
        avg = [float(np.average([h[i] for h in held], weights=w)) for i in range(3)]
        print(
            f"fitted (leave one archive out): Brier {avg[0]:.3f}, log loss {avg[1]:.3f}, "
            f"accuracy at 0.5 {avg[2]:.1%}"
        )
    coefs = zip(names, cal.coefficients, strict=True)
    print("coefficients: " + ", ".join(f"{n} {c:+.3f}" for n, c in coefs))
    ideal, junk = cal.predict(IDEAL_FIT), cal.predict(JUNK_FIT)
    print(f"probes: ideal fit p = {ideal:.3f}, junk fit p = {junk:.3f}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    if not (ideal > 0.5 > junk) and not args.force:
        print(
            "the fitted model does not rank the probes sensibly (too few or too narrow "
            "examples): not written; add archives, change --features, or --force",
            file=sys.stderr,
        )
        return 1
    path = cal.save(args.out_calibration)
    print(f"calibration written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
