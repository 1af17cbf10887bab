"""Joint solve of a flight line: one smooth track through all its accepted photos.

Each accepted photo ``i`` (frame ``fᵢ``, located centre ``cᵢ``, 1-σ ``σᵢ``)
should lie on a smooth track ``c(f) = (Pₓ(t), P_y(t))``, two polynomials of
degree ``d`` in the normalised frame ``t = (f − f_ref) / f_scale``, and share
the line's heading and scale. :func:`solve_line`:

1. **Start**: the RANSAC straight line of :func:`~aeroloc.lines.track.robust_line`
   with ``init_threshold_m`` picks the initial inliers.
2. **Robust polynomial**: iteratively reweighted least squares with weights
   ``wᵢ = ψ(rᵢ / (c · s)) / (σᵢ² + s²)`` (Tukey's biweight ψ, ``c = tukey_c``),
   where ``rᵢ`` is the 2-D residual and ``s`` the track scatter,
   ``s = max(track_sigma_floor_m, sqrt(median(rᵢ²) · 2 / ln 4))`` over the
   photos still weighted (the radial RMS of a 2-D Gaussian from its median).
   ``d = min(degree, n − 2)`` (at least 1) keeps one redundant photo.
3. **Verdicts** (only with n ≥ 3 accepted photos: two always fit a line):
   photo ``i`` contradicts its line when its leave-one-out residual
   ``r̃ᵢ = rᵢ / (1 − hᵢᵢ)`` (``hᵢᵢ`` the hat-matrix diagonal; ``r̃ᵢ = rᵢ``
   for a photo the fit gave no weight) exceeds both
   ``k_sigma · hypot(σᵢ, s)`` and ``min_offset_m``; or its heading is more
   than ``max_heading_dev_deg`` from the line's circular median; or its
   ground scale (GSD, else footprint width) more than
   ``max_scale_dev_frac`` from the line's median. Such a photo becomes
   ``review`` with a reason naming the offset and the bound, and the track
   is refitted without it.
4. **Line placements**: a photo no method placed, at most ``max_gap_frames``
   from a kept accepted frame, gets ``method = "line"``, status
   :data:`LINE_STATUS`, centre ``c(f)`` (outside the fitted frames, the
   tangent at the nearest end: polynomials diverge), the line's heading and
   footprint size, and ``σ(f) = hypot(s, se(f), d_f · σ_frame)``, with
   ``se(f)`` the fit's standard error at ``f``, ``d_f`` the frame distance to
   the nearest kept accepted frame and
   ``σ_frame = max(sigma_per_frame_m, sigma_per_frame_frac · interval)``.

With fewer than 2 accepted photos there is no solve: nothing is contradicted
and nothing is placed (the placements pass every photo through unchanged).
Photos in ``review`` are neither fitted nor judged; their residual to the
track is reported.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.polynomial import polynomial as npoly
from rasterio.crs import CRS
from shapely.geometry import Polygon

from aeroloc.errors import ConfigError, InvalidInputError
from aeroloc.lines.inputs import FlightLine, LinePhoto, circular_median_deg, wrap_deg
from aeroloc.lines.track import rectangle, robust_line

log = logging.getLogger(__name__)

#: Status of a photo placed by its line alone: no image confirmed it.
LINE_STATUS = "unverified"


@dataclass(frozen=True, kw_only=True)
class SolveConfig:
    """Settings of :func:`solve_line` (see the module docstring).

    Attributes:
        degree: polynomial degree of the track in frame (1 = straight).
        init_threshold_m: inlier distance of the initial straight line (m).
        tukey_c: Tukey biweight cut-off, in track scatters.
        track_sigma_floor_m: smallest track scatter (m).
        k_sigma: a residual beyond ``k_sigma`` σ contradicts the line ...
        min_offset_m: ... if it is also larger than this (m).
        max_heading_dev_deg: largest heading deviation from the line's.
        max_scale_dev_frac: largest relative scale deviation from the line's.
        max_gap_frames: farthest frame from a kept accepted one the line places.
        sigma_per_frame_m, sigma_per_frame_frac: floors of the per-frame
            growth of a line placement's uncertainty (m; share of the interval).
    """

    degree: int = 2
    init_threshold_m: float = 1000.0
    tukey_c: float = 4.685
    track_sigma_floor_m: float = 10.0
    k_sigma: float = 3.0
    min_offset_m: float = 150.0
    max_heading_dev_deg: float = 10.0
    max_scale_dev_frac: float = 0.1
    max_gap_frames: int = 5
    sigma_per_frame_m: float = 10.0
    sigma_per_frame_frac: float = 0.03

    def __post_init__(self) -> None:
        if not (isinstance(self.degree, int) and 1 <= self.degree <= 5):
            raise ConfigError(f"degree must be an integer in 1..5, got {self.degree}")
        if not (isinstance(self.max_gap_frames, int) and self.max_gap_frames >= 0):
            raise ConfigError(f"max_gap_frames must be an integer >= 0, got {self.max_gap_frames}")
        for name in (
            "init_threshold_m",
            "tukey_c",
            "track_sigma_floor_m",
            "k_sigma",
            "max_heading_dev_deg",
            "max_scale_dev_frac",
        ):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be > 0, got {v}")
        for name in ("min_offset_m", "sigma_per_frame_m", "sigma_per_frame_frac"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be >= 0, got {v}")


@dataclass(frozen=True, kw_only=True, eq=False)
class PhotoPlacement:
    """One photo of a solved line.

    Attributes:
        photo_id, frame: the photo.
        method: how it is placed (``search``, ``propagated``, ``neighbour``,
            ``line``), or ``none``.
        status: ``accepted``, ``review``, :data:`LINE_STATUS` for a line
            placement, or the photo's own status when it stays unplaced.
        previous_status: its status before the solve.
        x, y: centre (map CRS, m), None when unplaced.
        heading_deg: heading of its top edge, None when unplaced.
        footprint: its footprint (located, or predicted by the line), or None.
        sigma_m: 1-σ of the centre (m), None when unplaced.
        residual_m: distance from the solved track (m) for a located photo
            (leave-one-out for a fitted one), else None.
        reasons: why the status (contradictions, line placement, not placed).
    """

    photo_id: str
    frame: int
    method: str
    status: str
    previous_status: str
    x: float | None = None
    y: float | None = None
    heading_deg: float | None = None
    footprint: Polygon | None = None
    sigma_m: float | None = None
    residual_m: float | None = None
    reasons: tuple[str, ...] = ()

    @property
    def contradicted(self) -> bool:
        """True when the solve turned an accepted photo into ``review``."""
        return self.previous_status == "accepted" and self.status == "review"


@dataclass(frozen=True, kw_only=True, eq=False)
class LineSolution:
    """The solved track of one flight line and every photo's placement.

    Attributes:
        line_id, crs: the line and its map CRS.
        placements: one per photo of the line, by frame.
        solved: False when the line had fewer than 2 accepted photos.
        degree: polynomial degree used (0 when not solved).
        ref_frame, frame_scale: ``t = (f − ref_frame) / frame_scale``.
        coef_x, coef_y: polynomial coefficients in ``t``, lowest power first.
        frame_range: ``(first, last)`` kept accepted frame.
        track_sigma_m: the track scatter ``s`` (m).
        heading_deg: the line's heading (circular median of the kept photos).
        interval_m: mean track length per frame over ``frame_range`` (m).
        n_fit: accepted photos kept in the fit.
        reasons: line-level notes (e.g. why there is no solve).
    """

    line_id: str
    crs: CRS
    placements: tuple[PhotoPlacement, ...]
    solved: bool
    degree: int = 0
    ref_frame: float = 0.0
    frame_scale: float = 1.0
    coef_x: tuple[float, ...] = ()
    coef_y: tuple[float, ...] = ()
    frame_range: tuple[int, int] = (0, 0)
    track_sigma_m: float = math.nan
    heading_deg: float = math.nan
    interval_m: float = math.nan
    n_fit: int = 0
    reasons: tuple[str, ...] = ()

    @property
    def contradicted(self) -> tuple[str, ...]:
        """Ids of accepted photos the solve sent to ``review``."""
        return tuple(p.photo_id for p in self.placements if p.contradicted)

    @property
    def placed_by_line(self) -> tuple[str, ...]:
        """Ids of photos placed by the line (``method = "line"``)."""
        return tuple(p.photo_id for p in self.placements if p.method == "line")

    def placement(self, photo_id: str) -> PhotoPlacement:
        """The placement of ``photo_id``.

        Raises:
            InvalidInputError: not a photo of this line.
        """
        for p in self.placements:
            if p.photo_id == photo_id:
                return p
        raise InvalidInputError(f"flight line {self.line_id} has no photo {photo_id!r}")

    def centre(self, frame: float) -> tuple[float, float]:
        """The solved track at ``frame`` (tangent extension outside ``frame_range``).

        Raises:
            InvalidInputError: the line is not solved.
        """
        if not self.solved:
            raise InvalidInputError(f"flight line {self.line_id} has no solved track")
        lo, hi = self.frame_range
        f = min(max(float(frame), lo), hi)
        t = (f - self.ref_frame) / self.frame_scale
        x, y = npoly.polyval(t, self.coef_x), npoly.polyval(t, self.coef_y)
        if f != frame:
            dx, dy = self.velocity(f)
            x, y = x + (frame - f) * dx, y + (frame - f) * dy
        return float(x), float(y)

    def velocity(self, frame: float) -> tuple[float, float]:
        """Track displacement per frame ``dc/df`` at ``frame`` (clamped to ``frame_range``)."""
        if not self.solved:
            raise InvalidInputError(f"flight line {self.line_id} has no solved track")
        lo, hi = self.frame_range
        t = (min(max(float(frame), lo), hi) - self.ref_frame) / self.frame_scale
        dx = npoly.polyval(t, npoly.polyder(self.coef_x)) / self.frame_scale
        dy = npoly.polyval(t, npoly.polyder(self.coef_y)) / self.frame_scale
        return float(dx), float(dy)

    def offsets(self, x: float, y: float, frame: float) -> tuple[float, float]:
        """``(along, across)`` of ``(x, y)`` from the track at ``frame`` (m; across: rightwards)."""
        cx, cy = self.centre(frame)
        vx, vy = self.velocity(frame)
        norm = math.hypot(vx, vy) or 1.0
        ux, uy = vx / norm, vy / norm
        dx, dy = x - cx, y - cy
        return dx * ux + dy * uy, dx * uy - dy * ux


@dataclass(frozen=True)
class _Fit:
    coef: np.ndarray  # [d+1 x 2]
    weights: np.ndarray  # [N]
    scatter: float
    cov: np.ndarray  # [d+1 x d+1], parameter covariance (per axis)
    hat: np.ndarray  # [N] hat-matrix diagonal


def _design(t: np.ndarray, degree: int) -> np.ndarray:
    return np.asarray(npoly.polyvander(t, degree))


def _scatter(r: np.ndarray, floor: float) -> float:
    if r.size == 0:
        return floor
    return max(floor, math.sqrt(float(np.median(r**2)) * 2.0 / math.log(4.0)))


def _wls(x: np.ndarray, xy: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted LS ``xy ≈ x @ coef``: coefficients, their covariance and the hat diagonal."""
    sw = np.sqrt(w)[:, None]
    a = x * sw
    normal = a.T @ a
    cov = np.linalg.pinv(normal)
    coef = cov @ (a.T @ (xy * sw))
    hat = np.einsum("ij,jk,ik->i", a, cov, a)
    return coef, cov, hat


def _robust_fit(
    t: np.ndarray,
    xy: np.ndarray,
    sigma: np.ndarray,
    start: np.ndarray,
    degree: int,
    cfg: SolveConfig,
    allowed: np.ndarray | None = None,
) -> _Fit:
    """IRLS from the ``start`` inliers; photos outside ``allowed`` never get weight."""
    x = _design(t, degree)
    allow = np.ones(len(t), bool) if allowed is None else allowed
    keep = start.copy()
    coef, _, _ = _wls(x[keep], xy[keep], 1.0 / sigma[keep] ** 2)
    s = cfg.track_sigma_floor_m
    w = keep / (sigma**2 + s**2)
    for _ in range(20):
        r = np.linalg.norm(xy - x @ coef, axis=1)
        s = _scatter(r[w > 0], cfg.track_sigma_floor_m)
        u = r / (cfg.tukey_c * np.hypot(sigma, s))
        psi = np.where(u < 1, (1 - u**2) ** 2, 0.0)
        new_w = allow * psi / (sigma**2 + s**2)
        if (new_w > 0).sum() < degree + 1:
            break
        coef_new, _, _ = _wls(x, xy, new_w)
        converged = np.allclose(coef_new, coef, atol=1e-3, rtol=0)
        coef, w = coef_new, new_w
        if converged:
            break
    coef, cov, hat_all = _wls(x, xy, w)
    hat = np.where(w > 0, hat_all, 0.0)
    r = np.linalg.norm(xy - x @ coef, axis=1)
    return _Fit(
        coef=coef, weights=w, scatter=_scatter(r[w > 0], cfg.track_sigma_floor_m), cov=cov, hat=hat
    )


def _scale_of(photo: LinePhoto) -> float:
    loc = photo.located
    if loc is None:
        return math.nan
    return loc.gsd_m if loc.gsd_m is not None else loc.ground_width_m


def solve_line(line: FlightLine, config: SolveConfig | None = None) -> LineSolution:
    """Fit ``line``'s accepted photos jointly, judge them and place the gaps (module docstring)."""
    cfg = config or SolveConfig()
    accepted = line.accepted
    if len(accepted) < 2:
        note = f"{len(accepted)} accepted photo(s): at least 2 are needed for a joint solve"
        return LineSolution(
            line_id=line.line_id,
            crs=line.crs,
            placements=tuple(
                _unchanged(p, reason=None if p.located else note) for p in line.photos
            ),
            solved=False,
            reasons=(note,),
        )
    frames = np.array([p.frame for p in accepted], dtype=np.float64)
    xy = np.array([(p.located.x, p.located.y) for p in accepted if p.located])
    sigma = np.array([p.located.sigma_m for p in accepted if p.located])
    ref = float(np.mean(frames))
    scale = max(1.0, float(np.ptp(frames)) / 2)
    t = (frames - ref) / scale
    start = robust_line(frames, xy, sigma, threshold_m=cfg.init_threshold_m).inliers
    n = len(accepted)
    degree = max(1, min(cfg.degree, int(start.sum()) - 2))
    fit = _robust_fit(t, xy, sigma, start, degree, cfg)

    verdicts: dict[str, list[str]] = {}
    loo = _loo_residuals(fit, t, xy, degree)
    if n >= 3:
        verdicts = _judge(accepted, fit, loo, sigma, cfg)
        if verdicts:
            log.info("flight line %s: %s contradict the line", line.line_id, ", ".join(verdicts))
            keep = np.array([p.photo_id not in verdicts for p in accepted]) & (fit.weights > 0)
            if keep.sum() >= 2:
                degree = max(1, min(cfg.degree, int(keep.sum()) - 2))
                fit = _robust_fit(t, xy, sigma, keep, degree, cfg, allowed=keep)
    kept = [
        p
        for p, w in zip(accepted, fit.weights, strict=True)
        if w > 0 and p.photo_id not in verdicts
    ]
    kept_frames = np.array([p.frame for p in kept])
    headings = [p.located.heading_deg for p in kept if p.located]
    widths = [p.located.ground_width_m for p in kept if p.located]
    heights = [p.located.ground_height_m for p in kept if p.located]
    lo, hi = int(kept_frames.min()), int(kept_frames.max())
    solution = LineSolution(
        line_id=line.line_id,
        crs=line.crs,
        placements=(),
        solved=True,
        degree=degree,
        ref_frame=ref,
        frame_scale=scale,
        coef_x=tuple(float(c) for c in fit.coef[:, 0]),
        coef_y=tuple(float(c) for c in fit.coef[:, 1]),
        frame_range=(lo, hi),
        track_sigma_m=fit.scatter,
        heading_deg=circular_median_deg(headings),
        n_fit=len(kept),
    )
    interval = _mean_interval(solution)
    sigma_frame = max(cfg.sigma_per_frame_m, cfg.sigma_per_frame_frac * interval)
    width, height = float(np.median(widths)), float(np.median(heights))
    loo_of = {p.photo_id: float(r) for p, r in zip(accepted, loo, strict=True)}

    placements = []
    for p in line.photos:
        if p.located is not None and p.photo_id in loo_of:
            reasons = verdicts.get(p.photo_id)
            placements.append(
                _unchanged(p, residual_m=loo_of[p.photo_id])
                if not reasons
                else _contradicted(p, loo_of[p.photo_id], reasons)
            )
        elif p.located is not None:
            cx, cy = solution.centre(p.frame)
            placements.append(
                _unchanged(p, residual_m=math.hypot(p.located.x - cx, p.located.y - cy))
            )
        else:
            gap = int(np.min(np.abs(kept_frames - p.frame)))
            if gap > cfg.max_gap_frames:
                note = (
                    f"{gap} frames from the nearest accepted photo "
                    f"(the line places ≤ {cfg.max_gap_frames})"
                )
                placements.append(_unchanged(p, reason=note))
                continue
            se = _standard_error(fit, p.frame, solution)
            s_f = math.hypot(fit.scatter, se, gap * sigma_frame)
            cx, cy = solution.centre(p.frame)
            placements.append(
                PhotoPlacement(
                    photo_id=p.photo_id,
                    frame=p.frame,
                    method="line",
                    status=LINE_STATUS,
                    previous_status=p.status,
                    x=cx,
                    y=cy,
                    heading_deg=solution.heading_deg,
                    footprint=rectangle(cx, cy, width, height, solution.heading_deg),
                    sigma_m=s_f,
                    reasons=(
                        f"placed from its flight line ({gap} frame(s) from an accepted photo), "
                        f"not verified against the reference: ±{s_f:.0f} m (1σ)",
                    ),
                )
            )
    return replace(solution, placements=tuple(placements), interval_m=interval)


def _loo_residuals(fit: _Fit, t: np.ndarray, xy: np.ndarray, degree: int) -> np.ndarray:
    """``[N]`` leave-one-out residuals ``r / (1 − h)`` (``r`` for photos without weight)."""
    r = np.linalg.norm(xy - _design(t, degree) @ fit.coef, axis=1)
    denom = np.clip(1.0 - fit.hat, 1e-6, None)
    return np.where(fit.weights > 0, r / denom, r)


def _judge(
    accepted: Sequence[LinePhoto], fit: _Fit, loo: np.ndarray, sigma: np.ndarray, cfg: SolveConfig
) -> dict[str, list[str]]:
    """Reasons per photo that contradicts its line (see the module docstring)."""
    out: dict[str, list[str]] = {}
    good = fit.weights > 0
    ref_photos = [p for p, g in zip(accepted, good, strict=True) if g] or list(accepted)
    heading = circular_median_deg([p.located.heading_deg for p in ref_photos if p.located])
    scales = np.array([_scale_of(p) for p in ref_photos])
    scale = float(np.nanmedian(scales)) if np.isfinite(scales).any() else math.nan
    for i, p in enumerate(accepted):
        loc = p.located
        if loc is None:
            continue
        reasons = []
        bound = max(cfg.k_sigma * math.hypot(sigma[i], fit.scatter), cfg.min_offset_m)
        if loo[i] > bound:
            reasons.append(
                f"centre {_distance(loo[i])} off its flight line (expected ≤ {bound:.0f} m)"
            )
        dev = wrap_deg(loc.heading_deg - heading)
        if abs(dev) > cfg.max_heading_dev_deg:
            reasons.append(
                f"heading {loc.heading_deg:.1f}° is {abs(dev):.1f}° off its line's {heading:.1f}° "
                f"(expected ≤ {cfg.max_heading_dev_deg:g}°)"
            )
        own = _scale_of(p)
        if (
            math.isfinite(scale)
            and math.isfinite(own)
            and abs(own / scale - 1) > cfg.max_scale_dev_frac
        ):
            reasons.append(
                f"scale {own / scale:.2f} × its line's "
                f"(expected within ±{cfg.max_scale_dev_frac:.0%})"
            )
        if reasons:
            out[p.photo_id] = reasons
    return out


def _distance(m: float) -> str:
    return f"{m / 1000:.1f} km" if m >= 1000 else f"{m:.0f} m"


def _standard_error(fit: _Fit, frame: int, solution: LineSolution) -> float:
    """2-D standard error of the track at ``frame`` (m); at the nearest end outside the range."""
    lo, hi = solution.frame_range
    t = (min(max(frame, lo), hi) - solution.ref_frame) / solution.frame_scale
    x = _design(np.array([t]), solution.degree)[0]
    return math.sqrt(2.0 * max(float(x @ fit.cov @ x), 0.0))


def _mean_interval(solution: LineSolution) -> float:
    """Track length per frame between the first and last kept frames (m)."""
    lo, hi = solution.frame_range
    if hi == lo:
        return float(math.hypot(*solution.velocity(lo)))
    pts = np.array([solution.centre(float(f)) for f in range(lo, hi + 1)])
    return float(np.sum(np.linalg.norm(np.diff(pts, axis=0), axis=1))) / (hi - lo)


def _unchanged(
    p: LinePhoto, *, residual_m: float | None = None, reason: str | None = None
) -> PhotoPlacement:
    loc = p.located
    if loc is None:
        return PhotoPlacement(
            photo_id=p.photo_id,
            frame=p.frame,
            method="none",
            status=p.status,
            previous_status=p.status,
            reasons=() if reason is None else (f"not placed: {reason}",),
        )
    return PhotoPlacement(
        photo_id=p.photo_id,
        frame=p.frame,
        method=loc.method,
        status=loc.status,
        previous_status=loc.status,
        x=loc.x,
        y=loc.y,
        heading_deg=loc.heading_deg,
        footprint=loc.footprint,
        sigma_m=loc.sigma_m,
        residual_m=residual_m,
    )


def _contradicted(p: LinePhoto, residual_m: float, reasons: Sequence[str]) -> PhotoPlacement:
    base = _unchanged(p, residual_m=residual_m)
    return PhotoPlacement(**{**base.__dict__, "status": "review", "reasons": tuple(reasons)})
