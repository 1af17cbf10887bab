"""Place a photo by matching it to an already located neighbour on its flight line.

Consecutive frames of a line overlap by ~60 % and share epoch, sun, film and
scanner, so photo-to-photo keypoint matching works where photo-to-reference
matching struggles. For an unlocated photo ``p`` and a located neighbour
``n`` with its scan → map transform ``T_n``:

1. Both image areas (frame boxes) are cropped and, when larger than
   ``work_px``, shrunk to it (matching at full scan resolution is slow and
   gains nothing for a footprint); keypoints are matched
   (:func:`aeroloc.verify.matching.get_matcher`, SIFT by default).
2. :func:`aeroloc.verify.fit.fit_transform` fits ``H``: photo scan pixel →
   neighbour scan pixel (models in ``kinds``, simplest first).
3. The chain is ``T_p = T_n · H`` (photo scan pixel → map), and the photo's
   footprint is ``T_p`` of its image box.
4. The placement is ``accepted`` when the fit has at least ``min_inliers``
   inliers and ``min_inlier_ratio`` of the matches; the footprints overlap
   by a share of the photo's footprint within ``overlap_range`` (consecutive
   frames: ~0.6); the photo's ground scale is within ``max_scale_change`` of
   the neighbour's (same altitude and scanner); and its heading turns by at
   most ``max_rotation_deg`` from the neighbour's. Otherwise it is
   ``rejected`` with the reasons.

The position uncertainty is ``σ_p = hypot(σ_n, rmse_px · gsd_n)``: the
neighbour's, plus the fit's residual on the ground (a chain of k neighbours
accumulates k such terms).

Confirmation against the reference is the caller's: :func:`expected_window`
gives the reference bounds the chained footprint should cover.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from affine import Affine
from shapely.geometry import Polygon

from aeroloc.errors import ConfigError, DataQualityError, InvalidInputError
from aeroloc.files import read_gray
from aeroloc.georef.transform import PhotoTransform, affine_matrix
from aeroloc.lines.inputs import LocatedPhoto, heading_of, wrap_deg
from aeroloc.preprocess.frame import detect_frame
from aeroloc.verify.fit import fit_transform
from aeroloc.verify.matching import MODEL_KINDS, Matcher, Matches, get_matcher, list_matchers

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]


@dataclass(frozen=True, kw_only=True)
class NeighbourConfig:
    """How a photo is matched to a neighbour and when the result is accepted.

    Attributes:
        matcher: registry name (:func:`aeroloc.verify.matching.list_matchers`);
            SIFT needs no extra package, ``disk-lightglue`` etc. do.
        kinds: transform models tried for photo → neighbour, simplest first.
        threshold_px: inlier threshold of the fit, in working-image pixels.
        work_px: longest side the image areas are matched at (px).
        min_inliers: fewest inliers for ``accepted``.
        min_inlier_ratio: smallest share of the matches that are inliers.
        overlap_range: ``(min, max)`` share of the photo's footprint covered
            by the neighbour's (consecutive frames at 60 % overlap: 0.6).
        max_scale_change: largest relative change of the ground scale.
        max_rotation_deg: largest heading change; None: no check.
        seed: seeds the robust fit.
    """

    matcher: str = "sift"
    kinds: tuple[str, ...] = ("similarity", "homography")
    threshold_px: float = 3.0
    work_px: int = 1200
    min_inliers: int = 30
    min_inlier_ratio: float = 0.1
    overlap_range: tuple[float, float] = (0.3, 0.9)
    max_scale_change: float = 0.15
    max_rotation_deg: float | None = 20.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.matcher not in list_matchers():
            raise ConfigError(
                f"unknown matcher {self.matcher!r}; valid names: {', '.join(list_matchers())}"
            )
        if not self.kinds or any(k not in MODEL_KINDS for k in self.kinds):
            raise ConfigError(f"kinds must be a subset of {MODEL_KINDS}, got {self.kinds}")
        if not (math.isfinite(self.threshold_px) and self.threshold_px > 0):
            raise ConfigError(f"threshold_px must be > 0, got {self.threshold_px}")
        if self.work_px < 64:
            raise ConfigError(f"work_px must be >= 64, got {self.work_px}")
        if self.min_inliers < 4:
            raise ConfigError(f"min_inliers must be >= 4, got {self.min_inliers}")
        if not 0 <= self.min_inlier_ratio <= 1:
            raise ConfigError(f"min_inlier_ratio must be in [0, 1], got {self.min_inlier_ratio}")
        lo, hi = self.overlap_range
        if not 0 <= lo < hi <= 1:
            raise ConfigError(
                f"overlap_range must be (min, max) in [0, 1], got {self.overlap_range}"
            )
        if not (math.isfinite(self.max_scale_change) and self.max_scale_change > 0):
            raise ConfigError(f"max_scale_change must be > 0, got {self.max_scale_change}")
        if self.max_rotation_deg is not None and not 0 < self.max_rotation_deg <= 180:
            raise ConfigError(f"max_rotation_deg must be in (0, 180], got {self.max_rotation_deg}")


@dataclass(frozen=True, kw_only=True, eq=False)
class NeighbourResult:
    """A photo placed (or not) through a located neighbour.

    Attributes:
        photo_id, neighbour_id: the photo placed and the neighbour it was matched to.
        method: always ``"neighbour"``.
        status: ``accepted`` or ``rejected``.
        reasons: why (each failed check; empty when accepted).
        transform: photo scan pixel → map (``T_n · H``), or None without a fit.
        footprint: the photo's image box through ``transform``, or None.
        image_box_px: the photo's image box in its scan.
        kind: the photo → neighbour model (``none`` without a fit).
        n_matches, n_inliers, inlier_ratio, rmse_px: the fit (rmse in working pixels).
        overlap: share of the photo's footprint inside the neighbour's (NaN without one).
        scale_ratio: photo ground scale / neighbour's (NaN without a fit).
        rotation_deg: photo heading − neighbour heading (NaN without a fit).
        sigma_m: 1-σ of the centre (m), NaN without a footprint.
        seconds: time taken.
    """

    photo_id: str
    neighbour_id: str
    status: str
    reasons: tuple[str, ...]
    image_box_px: Box
    transform: PhotoTransform | None = None
    footprint: Polygon | None = None
    kind: str = "none"
    n_matches: int = 0
    n_inliers: int = 0
    inlier_ratio: float = 0.0
    rmse_px: float = math.nan
    overlap: float = math.nan
    scale_ratio: float = math.nan
    rotation_deg: float = math.nan
    sigma_m: float = math.nan
    seconds: float = 0.0
    method: str = field(default="neighbour", init=False)

    @property
    def accepted(self) -> bool:
        """True when every check passed."""
        return self.status == "accepted"

    def located(self) -> LocatedPhoto:
        """The placement as a :class:`LocatedPhoto` (``method = "neighbour"``).

        Raises:
            InvalidInputError: the result is not accepted.
        """
        if not self.accepted or self.transform is None:
            raise InvalidInputError(
                f"photo {self.photo_id} was not placed by its neighbour: {'; '.join(self.reasons)}"
            )
        return LocatedPhoto.from_transform(
            self.transform, self.image_box_px, sigma_m=self.sigma_m, method="neighbour"
        )


def _check_box(box: Sequence[int], shape: tuple[int, ...], what: str) -> Box:
    if len(box) != 4:
        raise InvalidInputError(f"{what} image box must be (col0, row0, col1, row1), got {box}")
    c0, r0, c1, r1 = (int(v) for v in box)
    h, w = shape[:2]
    if not (0 <= c0 < c1 <= w and 0 <= r0 < r1 <= h):
        raise InvalidInputError(f"{what} image box {box} does not fit its {w} x {h} scan")
    return c0, r0, c1, r1


def _work_image(scan: np.ndarray, box: Box, work_px: int) -> tuple[np.ndarray, np.ndarray]:
    """The image area shrunk to ``work_px`` and the ``[3 x 3]`` scan pixel → working pixel map."""
    c0, r0, c1, r1 = box
    crop: np.ndarray = np.asarray(scan[r0:r1, c0:c1], dtype=np.float32)
    f = min(1.0, work_px / max(crop.shape))
    if f < 1.0:
        size = (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f)))
        crop = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA))
    fx = crop.shape[1] / (c1 - c0)
    fy = crop.shape[0] / (r1 - r0)
    return crop, affine_matrix(Affine.scale(fx, fy) @ Affine.translation(-c0, -r0))


def _chain_kind(fit_kind: str, neighbour_kind: str) -> str:
    order = ("similarity", "affine", "homography")
    return order[max(order.index(fit_kind), order.index(neighbour_kind))]


def match_neighbour(
    photo: np.ndarray,
    photo_box: Sequence[int],
    neighbour: np.ndarray,
    neighbour_box: Sequence[int],
    neighbour_transform: PhotoTransform,
    *,
    neighbour_sigma_m: float,
    photo_id: str = "",
    neighbour_id: str = "",
    config: NeighbourConfig | None = None,
    matcher: Matcher | None = None,
) -> NeighbourResult:
    """Place ``photo`` through ``neighbour`` (see the module docstring).

    Args:
        photo: ``[H x W]`` gray scan of the photo to place.
        photo_box: its image area ``(col0, row0, col1, row1)`` in scan pixels.
        neighbour: ``[H' x W']`` gray scan of the located neighbour.
        neighbour_box: its image area.
        neighbour_transform: the neighbour's scan pixel → map transform.
        neighbour_sigma_m: 1-σ of the neighbour's position (m).
        photo_id, neighbour_id: names for the result and messages.
        config: matcher and acceptance checks.
        matcher: a matcher already built (else ``config.matcher`` is built).

    Raises:
        InvalidInputError: a box does not fit its scan, or ``neighbour_sigma_m`` ≤ 0.
    """
    cfg = config or NeighbourConfig()
    t0 = time.perf_counter()
    if not (math.isfinite(neighbour_sigma_m) and neighbour_sigma_m > 0):
        raise InvalidInputError(f"neighbour_sigma_m must be > 0 m, got {neighbour_sigma_m}")
    pbox = _check_box(photo_box, np.shape(photo), "photo")
    nbox = _check_box(neighbour_box, np.shape(neighbour), "neighbour")
    img_p, to_work_p = _work_image(photo, pbox, cfg.work_px)
    img_n, to_work_n = _work_image(neighbour, nbox, cfg.work_px)
    m = matcher if matcher is not None else get_matcher(cfg.matcher)
    raw = m.match(img_p, img_n)
    kinds = tuple(k for k in cfg.kinds if k in m.fit_kinds) or cfg.kinds
    fit = fit_transform(
        Matches(xy_a=raw.xy_a, xy_b=raw.xy_b, scores=raw.scores, matcher=raw.matcher),
        threshold_px=cfg.threshold_px,
        seed=cfg.seed,
        kinds=kinds,
    )

    def done(status: str, reasons: list[str], **values: Any) -> NeighbourResult:
        result = NeighbourResult(
            photo_id=photo_id,
            neighbour_id=neighbour_id,
            status=status,
            reasons=tuple(reasons),
            image_box_px=pbox,
            n_matches=len(raw),
            seconds=time.perf_counter() - t0,
            **values,
        )
        log.debug("photo %s via %s: %s %s", photo_id, neighbour_id, status, "; ".join(reasons))
        return result

    if not fit.ok:
        return done("rejected", [f"no photo-to-neighbour fit: {fit.reason}"])
    stats: dict[str, Any] = {
        "kind": fit.kind,
        "n_inliers": fit.n_inliers,
        "inlier_ratio": fit.inlier_ratio,
        "rmse_px": fit.rmse_px,
    }
    # photo scan px -> photo work px -> neighbour work px -> neighbour scan px -> map
    to_neighbour_scan = np.linalg.inv(to_work_n) @ fit.matrix @ to_work_p
    try:
        transform = PhotoTransform(
            matrix=neighbour_transform.matrix @ to_neighbour_scan,
            kind=_chain_kind(fit.kind, neighbour_transform.kind),
            crs=neighbour_transform.crs,
        )
        footprint = transform.footprint(pbox)
        n_footprint = neighbour_transform.footprint(nbox)
    except (InvalidInputError, DataQualityError) as exc:
        return done("rejected", [f"the chained transform is unusable: {exc}"], **stats)
    pc, pr = (pbox[0] + pbox[2]) / 2, (pbox[1] + pbox[3]) / 2
    nc, nr = (nbox[0] + nbox[2]) / 2, (nbox[1] + nbox[3]) / 2
    gsd_n = neighbour_transform.pixel_size_m(nc, nr)
    scale = transform.pixel_size_m(pc, pr) / gsd_n
    rotation = wrap_deg(heading_of(transform, pc, pr) - heading_of(neighbour_transform, nc, nr))
    overlap = float(footprint.intersection(n_footprint).area / footprint.area)
    rmse_m = fit.rmse_px * gsd_n * (nbox[2] - nbox[0]) / img_n.shape[1]
    values = {
        **stats,
        "transform": transform,
        "footprint": footprint,
        "overlap": overlap,
        "scale_ratio": scale,
        "rotation_deg": rotation,
        "sigma_m": math.hypot(neighbour_sigma_m, rmse_m),
    }
    reasons = []
    if fit.n_inliers < cfg.min_inliers:
        reasons.append(f"{fit.n_inliers} inliers (need {cfg.min_inliers})")
    if fit.inlier_ratio < cfg.min_inlier_ratio:
        reasons.append(f"inlier ratio {fit.inlier_ratio:.2f} (need {cfg.min_inlier_ratio:.2f})")
    lo, hi = cfg.overlap_range
    if not lo <= overlap <= hi:
        reasons.append(f"overlap with the neighbour {overlap:.0%} (expected {lo:.0%}–{hi:.0%})")
    if abs(scale - 1) > cfg.max_scale_change:
        reasons.append(
            f"ground scale {scale:.2f} × the neighbour's "
            f"(expected within ±{cfg.max_scale_change:.0%})"
        )
    if cfg.max_rotation_deg is not None and abs(rotation) > cfg.max_rotation_deg:
        reasons.append(
            f"heading turns {rotation:+.1f}° from the neighbour's "
            f"(expected ≤ {cfg.max_rotation_deg:g}°)"
        )
    return done("rejected" if reasons else "accepted", reasons, **values)


def match_neighbour_files(
    photo_path: str | os.PathLike[str],
    neighbour_path: str | os.PathLike[str],
    neighbour_transform: PhotoTransform,
    *,
    neighbour_sigma_m: float,
    neighbour_box: Sequence[int] | None = None,
    photo_box: Sequence[int] | None = None,
    photo_id: str = "",
    neighbour_id: str = "",
    config: NeighbourConfig | None = None,
    matcher: Matcher | None = None,
) -> NeighbourResult:
    """:func:`match_neighbour` on two scan files; a box not given is detected from the frame.

    The neighbour's box is in its ``result.json`` (``inputs.frame_box_px``).

    Raises:
        MissingFileError, RasterReadError: a scan cannot be read.
    """
    photo = read_gray(photo_path)
    neighbour = read_gray(neighbour_path, what="neighbour photo")
    pbox = photo_box if photo_box is not None else _frame_box(photo)
    nbox = neighbour_box if neighbour_box is not None else _frame_box(neighbour)
    return match_neighbour(
        photo,
        pbox,
        neighbour,
        nbox,
        neighbour_transform,
        neighbour_sigma_m=neighbour_sigma_m,
        photo_id=photo_id or os.path.splitext(os.path.basename(photo_path))[0],
        neighbour_id=neighbour_id or os.path.splitext(os.path.basename(neighbour_path))[0],
        config=config,
        matcher=matcher,
    )


def _frame_box(scan: np.ndarray) -> Box:
    f = detect_frame(scan)
    return f.col0, f.row0, f.col1, f.row1


def expected_window(
    transform: PhotoTransform, image_box_px: Sequence[int], *, margin_m: float = 0.0
) -> tuple[float, float, float, float]:
    """``(minx, miny, maxx, maxy)`` the reference should show for a chained placement.

    The bounds of the footprint (``transform`` of the image box), grown by
    ``margin_m``; crop the reference there to confirm the placement.

    Raises:
        InvalidInputError: ``margin_m`` < 0, or no valid footprint.
    """
    if not (math.isfinite(margin_m) and margin_m >= 0):
        raise InvalidInputError(f"margin_m must be >= 0, got {margin_m}")
    minx, miny, maxx, maxy = transform.footprint(image_box_px).bounds
    return (minx - margin_m, miny - margin_m, maxx + margin_m, maxy + margin_m)
