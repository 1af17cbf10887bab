"""Flight-line geometry: a robust straight track, and predicted footprints for the gaps.

Along one flight line the camera centres follow, to first order, a straight
track at a constant interval per frame::

    c(f) = c(f_ref) + (f - f_ref) · s            (c, s in map metres; f the frame)

:func:`fit_track` estimates the step vector ``s`` (its length is the photo
interval, its bearing the line direction) and the line's photo heading, GSD
and footprint size:

1. **Which positions.** The accepted photos' located centres when there are
   at least two (``source = "located"``); else the catalog centres
   (``"catalog"``); with one located photo and fewer than two catalog
   positions, the step is the located heading times the nominal interval
   ``ground height × (1 − nominal_overlap)`` (``"heading"``).
2. **Robust fit.** RANSAC over pairs of photos (each pair fixes ``s`` and the
   origin), keeping the pair with the most photos within ``threshold`` of its
   line (``outlier_threshold_m`` for located centres, ``catalog_threshold_m``
   for catalog ones; ties: the lower truncated squared residual), then
   weighted least squares on those inliers with weights ``1/σᵢ²``, inliers
   re-selected twice. An accepted photo outside the final inliers is listed
   in :attr:`LineTrack.outliers` and never used as an anchor.
3. **Heading, GSD, footprint size**: circular median of the inliers'
   headings (else of the catalog headings, else the track bearing), median of
   their GSDs and footprint sides (else the catalog's ground size).

The fit's scatter is ``scatter = sqrt(Σ rᵢ² / (n − 2))`` over the n inliers
(``rᵢ`` the 2-D residual; 0 when n ≤ 2), and the step's standard error is
``se(s) = √2 · σ_pt / sqrt(Σ (fᵢ − f̄)²)`` with ``σ_pt = hypot(median σᵢ, scatter)``.

:meth:`LineTrack.predict` places a frame ``f`` at most ``max_gap_frames``
from an inlier anchor: between two anchors it interpolates linearly between
them (which follows the local interval and any slow drift); outside them it
extrapolates from the nearest anchor with the fitted step. Its uncertainty
grows with the frame distance ``d`` to the nearest anchor::

    σ(f) = hypot(σ₀, d · σ_frame)
    σ₀ = hypot(σ_anchor, scatter)
    σ_frame = max(sigma_per_frame_m, sigma_per_frame_frac · interval, se(s))
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field

import numpy as np
from rasterio.crs import CRS
from shapely.geometry import Polygon

from aeroloc.errors import ConfigError, InvalidInputError
from aeroloc.geometry import footprint_corners, heading_unit
from aeroloc.lines.inputs import FlightLine, LocatedPhoto, circular_median_deg

log = logging.getLogger(__name__)

TRACK_SOURCES = ("located", "catalog", "heading")


@dataclass(frozen=True, kw_only=True)
class TrackConfig:
    """How :func:`fit_track` fits a line and how far :meth:`LineTrack.predict` reaches.

    Attributes:
        max_gap_frames: frames farther than this from every anchor get no prediction.
        outlier_threshold_m: a located centre farther than this from the
            track is an outlier of the fit.
        catalog_threshold_m: the same for catalog centres (a few km off).
        catalog_sigma_m: 1-σ error assumed for a catalog centre.
        sigma_per_frame_m, sigma_per_frame_frac: floors of the per-frame growth
            of the prediction uncertainty, in metres and as a share of the interval.
        nominal_overlap: forward overlap assumed when the interval cannot be
            fitted (``source = "heading"``).
        max_pairs: RANSAC tries at most this many pairs (a seeded sample when
            the line has more).
        seed: seeds that sample.
    """

    max_gap_frames: int = 5
    outlier_threshold_m: float = 250.0
    catalog_threshold_m: float = 2500.0
    catalog_sigma_m: float = 500.0
    sigma_per_frame_m: float = 10.0
    sigma_per_frame_frac: float = 0.03
    nominal_overlap: float = 0.6
    max_pairs: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.max_gap_frames, int) and self.max_gap_frames >= 1):
            raise ConfigError(f"max_gap_frames must be an integer >= 1, got {self.max_gap_frames}")
        for name in (
            "outlier_threshold_m",
            "catalog_threshold_m",
            "catalog_sigma_m",
            "sigma_per_frame_m",
        ):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be > 0, got {v}")
        if not (math.isfinite(self.sigma_per_frame_frac) and 0 <= self.sigma_per_frame_frac < 1):
            raise ConfigError(
                f"sigma_per_frame_frac must be in [0, 1), got {self.sigma_per_frame_frac}"
            )
        if not (0 <= self.nominal_overlap < 0.95):
            raise ConfigError(f"nominal_overlap must be in [0, 0.95), got {self.nominal_overlap}")
        if self.max_pairs < 1:
            raise ConfigError(f"max_pairs must be >= 1, got {self.max_pairs}")


@dataclass(frozen=True, kw_only=True, eq=False)
class Prediction:
    """Predicted pose and footprint of one frame of a line.

    Attributes:
        photo_id: the photo at that frame ("" when the line has none).
        frame: frame number.
        x, y: predicted photo centre (map CRS, m).
        heading_deg: predicted heading of the photo's top edge.
        gsd_m: the line's scan GSD (m), or None when no located photo gave one.
        ground_width_m, ground_height_m: predicted footprint size (m).
        sigma_m: 1-σ uncertainty of the centre (m), see the module docstring.
        frame_gap: frames to the nearest anchor.
        anchor_frames: the anchor (extrapolation) or the two anchors
            (interpolation) the prediction comes from.
        footprint: predicted footprint polygon (TL, TR, BR, BL).
        crs: map CRS.
    """

    photo_id: str
    frame: int
    x: float
    y: float
    heading_deg: float
    gsd_m: float | None
    ground_width_m: float
    ground_height_m: float
    sigma_m: float
    frame_gap: int
    anchor_frames: tuple[int, ...]
    footprint: Polygon
    crs: CRS


@dataclass(frozen=True, kw_only=True)
class Anchor:
    """An accepted photo the track trusts: its frame, located centre and 1-σ (m)."""

    photo_id: str
    frame: int
    x: float
    y: float
    sigma_m: float


@dataclass(frozen=True, kw_only=True, eq=False)
class LineTrack:
    """A fitted flight line (see the module docstring for the model).

    Attributes:
        line_id, crs: the line and its map CRS.
        source: ``located``, ``catalog`` or ``heading`` (what the step came from).
        ref_frame: frame of the origin (the mean frame of the fit, rounded).
        x_ref, y_ref: track position at ``ref_frame`` (m).
        step_x, step_y: track displacement per frame (m).
        heading_deg: the line's photo heading (clockwise from grid north).
        gsd_m: median scan GSD of the anchors (m), or None.
        ground_width_m, ground_height_m: footprint size (m).
        scatter_m: residual scatter of the fit (m).
        step_se_m: standard error of the step (m per frame).
        n_fit: positions in the final fit.
        anchors: accepted photos that are inliers of the track, by frame.
        outliers: ids of accepted photos the fit rejected.
        config: the settings used.
    """

    line_id: str
    crs: CRS
    source: str
    ref_frame: int
    x_ref: float
    y_ref: float
    step_x: float
    step_y: float
    heading_deg: float
    gsd_m: float | None
    ground_width_m: float
    ground_height_m: float
    scatter_m: float
    step_se_m: float
    n_fit: int
    anchors: tuple[Anchor, ...]
    outliers: tuple[str, ...] = ()
    config: TrackConfig = field(default_factory=TrackConfig)

    @property
    def interval_m(self) -> float:
        """Photo interval: track length per frame (m)."""
        return math.hypot(self.step_x, self.step_y)

    @property
    def direction_deg(self) -> float:
        """Bearing of increasing frames, clockwise from grid north, in [0, 360)."""
        return math.degrees(math.atan2(self.step_x, self.step_y)) % 360.0

    @property
    def sigma_per_frame_m(self) -> float:
        """Growth of the prediction uncertainty per frame of distance (m)."""
        cfg = self.config
        return max(
            cfg.sigma_per_frame_m, cfg.sigma_per_frame_frac * self.interval_m, self.step_se_m
        )

    def centre(self, frame: float) -> tuple[float, float]:
        """The straight track at ``frame`` (map CRS, m)."""
        d = float(frame) - self.ref_frame
        return self.x_ref + d * self.step_x, self.y_ref + d * self.step_y

    def predict(self, frame: int, *, photo_id: str = "") -> Prediction | None:
        """Predicted footprint at ``frame``; None beyond ``max_gap_frames`` of every anchor."""
        if not self.anchors:
            return None
        frames = np.array([a.frame for a in self.anchors])
        gaps = np.abs(frames - frame)
        near = int(np.argmin(gaps))
        gap = int(gaps[near])
        if gap > self.config.max_gap_frames:
            return None
        below = [a for a in self.anchors if a.frame < frame]
        above = [a for a in self.anchors if a.frame > frame]
        used: tuple[int, ...]
        if gap == 0:
            a = self.anchors[near]
            x, y, used = a.x, a.y, (a.frame,)
        elif below and above:
            lo, hi = below[-1], above[0]
            t = (frame - lo.frame) / (hi.frame - lo.frame)
            x, y = lo.x + t * (hi.x - lo.x), lo.y + t * (hi.y - lo.y)
            used = (lo.frame, hi.frame)
        else:
            a = self.anchors[near]
            x = a.x + (frame - a.frame) * self.step_x
            y = a.y + (frame - a.frame) * self.step_y
            used = (a.frame,)
        sigma0 = math.hypot(self.anchors[near].sigma_m, self.scatter_m)
        sigma = math.hypot(sigma0, gap * self.sigma_per_frame_m)
        return Prediction(
            photo_id=photo_id,
            frame=int(frame),
            x=float(x),
            y=float(y),
            heading_deg=self.heading_deg,
            gsd_m=self.gsd_m,
            ground_width_m=self.ground_width_m,
            ground_height_m=self.ground_height_m,
            sigma_m=float(sigma),
            frame_gap=gap,
            anchor_frames=used,
            footprint=rectangle(x, y, self.ground_width_m, self.ground_height_m, self.heading_deg),
            crs=self.crs,
        )


def rectangle(x: float, y: float, width_m: float, height_m: float, heading_deg: float) -> Polygon:
    """Rectangle centred on ``(x, y)``, top edge along ``heading_deg`` (TL, TR, BR, BL)."""
    corners = footprint_corners(
        center_x=x, center_y=y, width_m=width_m, height_m=height_m, azimuth_deg=heading_deg
    )
    return Polygon(corners)


@dataclass(frozen=True)
class RobustLine:
    """Result of :func:`robust_line`: ``c(f) = origin + (f − ref_frame) · step``."""

    ref_frame: int
    origin: np.ndarray  # [2]
    step: np.ndarray  # [2]
    inliers: np.ndarray  # [N] bool
    residuals_m: np.ndarray  # [N]
    scatter_m: float
    step_se_m: float


def _pairs(n: int, max_pairs: int, seed: int) -> list[tuple[int, int]]:
    pairs = list(itertools.combinations(range(n), 2))
    if len(pairs) <= max_pairs:
        return pairs
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(pairs), size=max_pairs, replace=False)
    return [pairs[int(i)] for i in sorted(pick)]


def _wls(
    frames: np.ndarray, xy: np.ndarray, w: np.ndarray, ref: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares origin (at ``ref``) and step of ``xy [N x 2]`` against ``frames``."""
    t = frames - ref
    design = np.column_stack([np.ones_like(t), t]) * np.sqrt(w)[:, None]
    sol, *_ = np.linalg.lstsq(design, xy * np.sqrt(w)[:, None], rcond=None)
    return sol[0], sol[1]


def robust_line(
    frames: np.ndarray,
    xy: np.ndarray,
    sigma_m: np.ndarray,
    *,
    threshold_m: float,
    max_pairs: int = 2000,
    seed: int = 0,
) -> RobustLine:
    """Fit ``xy [N x 2] ≈ origin + (frames − ref) · step`` robustly (RANSAC over pairs, then WLS).

    Args:
        frames: ``[N]`` distinct frame numbers, N ≥ 2.
        xy: ``[N x 2]`` positions (m).
        sigma_m: ``[N]`` 1-σ of each position (m), > 0.
        threshold_m: inlier distance to the line (m).
        max_pairs: pairs tried at most.
        seed: seeds the pair sample.

    Raises:
        InvalidInputError: fewer than 2 positions, repeated frames, shapes differ.
    """
    f = np.asarray(frames, dtype=np.float64).reshape(-1)
    p = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    s = np.asarray(sigma_m, dtype=np.float64).reshape(-1)
    if not (len(f) == len(p) == len(s)):
        raise InvalidInputError(
            f"frames, xy and sigma_m need equal lengths, got {len(f)}, {len(p)}, {len(s)}"
        )
    if len(f) < 2:
        raise InvalidInputError(f"a line fit needs at least 2 positions, got {len(f)}")
    if len(np.unique(f)) != len(f):
        raise InvalidInputError("a line fit needs distinct frames")
    n = len(f)
    ref = round(float(f.mean()))
    best: tuple[int, float, np.ndarray] | None = None
    for i, j in _pairs(n, max_pairs, seed):
        step = (p[j] - p[i]) / (f[j] - f[i])
        res = np.linalg.norm(p - (p[i] + np.outer(f - f[i], step)), axis=1)
        inl = res <= threshold_m
        cost = float(np.sum(np.minimum(res, threshold_m) ** 2))
        key = (int(inl.sum()), -cost)
        if best is None or key > (best[0], best[1]):
            best = (key[0], key[1], inl)
    if best is None:  # pragma: no cover - n >= 2 always gives a pair
        raise InvalidInputError("no pair of positions to fit a line through")
    inliers = best[2]
    w = 1.0 / s**2
    origin, step = _wls(f[inliers], p[inliers], w[inliers], ref)
    for _ in range(2):
        res = np.linalg.norm(p - (origin + np.outer(f - ref, step)), axis=1)
        new = res <= threshold_m
        if new.sum() < 2 or np.array_equal(new, inliers):
            break
        inliers = new
        origin, step = _wls(f[inliers], p[inliers], w[inliers], ref)
    res = np.linalg.norm(p - (origin + np.outer(f - ref, step)), axis=1)
    k = int(inliers.sum())
    scatter = float(math.sqrt(np.sum(res[inliers] ** 2) / (k - 2))) if k > 2 else 0.0
    spread = float(np.sum((f[inliers] - f[inliers].mean()) ** 2))
    sigma_pt = math.hypot(float(np.median(s[inliers])), scatter)
    step_se = math.sqrt(2.0) * sigma_pt / math.sqrt(spread) if spread > 0 else math.inf
    return RobustLine(
        ref_frame=ref,
        origin=origin,
        step=step,
        inliers=inliers,
        residuals_m=res,
        scatter_m=scatter,
        step_se_m=step_se,
    )


def fit_track(line: FlightLine, config: TrackConfig | None = None) -> LineTrack:
    """Fit ``line``'s track, heading, GSD and footprint size (see the module docstring).

    Raises:
        InvalidInputError: the line has no photo; or no footprint size is
            known (no located photo and no catalog ``ground_size_m``); or there
            is nothing to fit a direction from (one photo, not located).
    """
    cfg = config or TrackConfig()
    if not line.photos:
        raise InvalidInputError(f"flight line {line.line_id} has no photos")
    accepted = line.accepted
    outliers: tuple[str, ...] = ()
    anchors_in = accepted
    if len(accepted) >= 2:
        source = "located"
        fit = robust_line(
            np.array([p.frame for p in accepted]),
            np.array([(p.located.x, p.located.y) for p in accepted if p.located]),
            np.array([p.located.sigma_m for p in accepted if p.located]),
            threshold_m=cfg.outlier_threshold_m,
            max_pairs=cfg.max_pairs,
            seed=cfg.seed,
        )
        anchors_in = tuple(p for p, ok in zip(accepted, fit.inliers, strict=True) if ok)
        outliers = tuple(p.photo_id for p, ok in zip(accepted, fit.inliers, strict=True) if not ok)
        if outliers:
            log.info("flight line %s: %s off the track", line.line_id, ", ".join(outliers))
    elif len(line.photos) >= 2:
        source = "catalog"
        fit = robust_line(
            np.array(line.frames),
            np.array([(p.catalog_x, p.catalog_y) for p in line.photos]),
            np.full(len(line.photos), cfg.catalog_sigma_m),
            threshold_m=cfg.catalog_threshold_m,
            max_pairs=cfg.max_pairs,
            seed=cfg.seed,
        )
    else:
        source = "heading"
        fit = None
    located = [p.located for p in anchors_in if p.located is not None]
    heading = _heading(line, located, fit)
    width, height = _ground_size(line, located)
    gsds = [loc.gsd_m for loc in located if loc.gsd_m is not None]
    if fit is None:
        if not located:
            raise InvalidInputError(
                f"flight line {line.line_id} has one photo and it is not located: "
                "no direction to fit"
            )
        ux, uy = heading_unit(heading)
        interval = height * (1 - cfg.nominal_overlap)
        step = np.array([ux, uy]) * interval
        origin = np.array([located[0].x, located[0].y])
        ref, scatter, step_se, n_fit = line.photos[0].frame, 0.0, 0.25 * interval, 1
    else:
        step, origin, ref = fit.step, fit.origin, fit.ref_frame
        scatter, step_se, n_fit = fit.scatter_m, fit.step_se_m, int(fit.inliers.sum())
    anchors = tuple(
        Anchor(
            photo_id=p.photo_id,
            frame=p.frame,
            x=p.located.x,
            y=p.located.y,
            sigma_m=p.located.sigma_m,
        )
        for p in anchors_in
        if p.located is not None
    )
    return LineTrack(
        line_id=line.line_id,
        crs=line.crs,
        source=source,
        ref_frame=int(ref),
        x_ref=float(origin[0]),
        y_ref=float(origin[1]),
        step_x=float(step[0]),
        step_y=float(step[1]),
        heading_deg=heading,
        gsd_m=float(np.median(gsds)) if gsds else None,
        ground_width_m=width,
        ground_height_m=height,
        scatter_m=scatter,
        step_se_m=float(step_se),
        n_fit=n_fit,
        anchors=anchors,
        outliers=outliers,
        config=cfg,
    )


def _heading(line: FlightLine, located: list[LocatedPhoto], fit: RobustLine | None) -> float:
    if located:
        return circular_median_deg([loc.heading_deg for loc in located])
    catalog = [p.catalog_heading_deg for p in line.photos if p.catalog_heading_deg is not None]
    if catalog:
        return circular_median_deg(catalog)
    if fit is not None:
        return math.degrees(math.atan2(float(fit.step[0]), float(fit.step[1]))) % 360.0
    return 0.0


def _ground_size(line: FlightLine, located: list[LocatedPhoto]) -> tuple[float, float]:
    if located:
        return (
            float(np.median([loc.ground_width_m for loc in located])),
            float(np.median([loc.ground_height_m for loc in located])),
        )
    sizes = [p.ground_size_m for p in line.photos if p.ground_size_m is not None]
    if not sizes:
        raise InvalidInputError(
            f"flight line {line.line_id}: no located photo and no catalog altitude, so no "
            "footprint size: add altitude_m to the catalog"
        )
    side = float(np.median(sizes))
    return side, side


def predict_line(track: LineTrack, line: FlightLine) -> tuple[Prediction, ...]:
    """Predictions for the photos of ``line`` that are not accepted and are near an anchor."""
    out = []
    for p in line.photos:
        if p.accepted:
            continue
        pred = track.predict(p.frame, photo_id=p.photo_id)
        if pred is not None:
            out.append(pred)
    return tuple(out)
