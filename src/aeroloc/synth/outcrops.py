"""ADD-like rock-outcrop polygons: the modern rock mask with a mapping product's errors.

The Antarctic Digital Database rock outcrops agree with careful mapping on
roughly three quarters of the rock area. The errors are not random: thin
snow over rock is missed (omissions where the rock score is marginal), and
shadowed snow is taken for rock (commissions in shadow); polygons are
generalised and slightly misregistered.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import shapely
from affine import Affine
from rasterio import features

from aeroloc.synth.config import REFERENCE_GSD_M
from aeroloc.synth.noise import fbm

TARGET_F1 = 0.74
SIMPLIFY_M = 12.0
MIN_AREA_M2 = 500.0


@dataclass(frozen=True, kw_only=True)
class OutcropResult:
    """Rock-outcrop polygons and how well they agree with the true modern rock.

    Attributes:
        polygons: EPSG:3031 polygons.
        f1, iou, precision, recall: agreement of the rasterised polygons with
            the true modern rock mask (rock pixels; F1 is the "agreement").
    """

    polygons: list[shapely.Polygon]
    f1: float
    iou: float
    precision: float
    recall: float

    def stats(self) -> dict[str, float | int]:
        """Agreement numbers for ``truth.json``."""
        return {
            "f1": round(self.f1, 4),
            "iou": round(self.iou, 4),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "polygons": len(self.polygons),
        }


def _scores(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float, float]:
    tp = float(np.count_nonzero(pred & truth))
    n_pred, n_true = float(np.count_nonzero(pred)), float(np.count_nonzero(truth))
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * tp / (n_pred + n_true) if n_pred + n_true else 0.0
    union = n_pred + n_true - tp
    return f1, (tp / union if union else 0.0), precision, recall


def rock_outcrops(
    rock_true: np.ndarray,
    rock_margin: np.ndarray,
    shadow: np.ndarray,
    at_sea: np.ndarray,
    transform: Affine,
    rng: np.random.Generator,
) -> OutcropResult:
    """Polygons of exposed rock with ADD-like errors (about 74 % agreement, F1).

    Args:
        rock_true: true modern rock mask ``[H x W]`` (bool) on the reference grid.
        rock_margin: modern rock score minus threshold ``[H x W]`` (small = thin snow).
        shadow: modern cast/self shadow fraction ``[H x W]``.
        at_sea: open sea / sea ice ``[H x W]`` (bool): never mapped as rock.
        transform: reference grid affine (EPSG:3031).
        rng: generator.
    """
    shape = rock_true.shape
    n_true = int(np.count_nonzero(rock_true))
    if n_true == 0:
        return OutcropResult(polygons=[], f1=0.0, iou=0.0, precision=0.0, recall=0.0)
    px = REFERENCE_GSD_M
    blobs_o = fbm(rng, shape, px, longest_m=800.0, shortest_m=160.0)
    blobs_c = fbm(rng, shape, px, longest_m=800.0, shortest_m=160.0)
    spread = float(np.std(rock_margin[rock_true])) or 1.0
    omit_rank = np.where(rock_true, -rock_margin / np.float32(spread) + 0.8 * blobs_o, -np.inf)
    candidates = (~rock_true) & (shadow > 0.5) & (~at_sea)
    # shadowed snow next to rock is mistaken first: the error grows out of the outcrops
    dist_m = cv2.distanceTransform((~rock_true).astype(np.uint8), cv2.DIST_L2, 5) * px
    commit_rank = np.where(candidates, 0.5 * blobs_c - dist_m / np.float32(150.0), -np.inf)
    omit_sorted = np.sort(omit_rank[rock_true])[::-1]
    commit_sorted = np.sort(commit_rank[candidates])[::-1]
    shift = (int(rng.integers(-2, 3)), int(rng.integers(-2, 3)))
    kernel = np.ones((3, 3), np.uint8)

    def predict(k: float) -> np.ndarray:
        n_omit = min(int(0.24 * k * n_true), n_true - 1)
        n_commit = min(int(0.26 * k * n_true), commit_sorted.size)
        pred = rock_true.copy()
        if n_omit > 0:
            pred &= omit_rank < omit_sorted[n_omit - 1]
        if n_commit > 0:
            pred |= commit_rank >= commit_sorted[n_commit - 1]
        m: np.ndarray = pred.astype(np.uint8)
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, kernel)
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, kernel)
        m = np.roll(m, shift, axis=(0, 1))
        return (m > 0) & ~at_sea

    lo, hi, k = 0.0, 3.0, 1.0
    pred = predict(k)
    for _ in range(7):
        f1 = _scores(pred, rock_true)[0]
        if abs(f1 - TARGET_F1) < 0.01:
            break
        if f1 > TARGET_F1:
            lo = k
        else:
            hi = k
        k = 0.5 * (lo + hi)
        pred = predict(k)

    polys: list[shapely.Polygon] = []
    for geom, _value in features.shapes(
        pred.astype(np.uint8), mask=pred, transform=transform, connectivity=8
    ):
        poly = shapely.geometry.shape(geom).simplify(SIMPLIFY_M, preserve_topology=True)
        if not poly.is_valid:
            poly = poly.buffer(0)
        for part in getattr(poly, "geoms", [poly]):
            if isinstance(part, shapely.Polygon) and part.area >= MIN_AREA_M2:
                polys.append(part)
    if polys:
        final = features.rasterize(
            [(p, 1) for p in polys], out_shape=shape, transform=transform, dtype=np.uint8
        ).astype(bool)
    else:
        final = np.zeros(shape, bool)
    f1, iou, precision, recall = _scores(final, rock_true)
    return OutcropResult(polygons=polys, f1=f1, iou=iou, precision=precision, recall=recall)
