"""``result.json`` of ``aeroloc locate``: one typed, versioned record, written and read here.

The record (:class:`LocateRecord`) carries ``schema_version`` =
:data:`SCHEMA_VERSION` (2). Version 2 differs from version 1 (files without
``schema_version``) in:

- ``best.x``/``best.y`` are the **located photo centre** (the centroid of the
  verified footprint) when the best candidate is verified (``accepted`` or
  ``review``); the candidate window's centre is ``best.window_x``/``window_y``.
  Unverified or rejected: ``best.x``/``best.y`` are the top candidate's window
  centre, as in version 1.
- candidates' ``row``/``col`` are ``grid_row``/``grid_col``: the cell of the
  rotated score grid saved in ``heatmap_cells.npy`` (``grid.shape``), not a
  cell of the north-up, resampled ``heatmap.tif``. ``candidates.gpkg`` uses
  the same names.
- ``best`` always has every field (null where it does not apply), and
  ``verification``, ``windows_tried``, ``search_reduction`` and
  ``area_searched`` are null when verification did not run.

:func:`read_result` reads both versions into the version-2 record (a version-1
file gets ``best.x``/``y`` recomputed as above); a newer version is an
:class:`~aeroloc.errors.InvalidInputError` naming it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from affine import Affine
from shapely.geometry import mapping, shape

from aeroloc import __version__
from aeroloc.errors import InvalidInputError, MissingFileError
from aeroloc.files import atomic_output, parse_crs, require_file, write_json
from aeroloc.georef import (
    FOOTPRINT_FILE,
    GCP_TIFF_FILE,
    POINTS_FILE,
    WARPED_FILE,
    GeorefOutputs,
)
from aeroloc.heatmap.candidates import Candidate
from aeroloc.heatmap.grid import Heatmap

if TYPE_CHECKING:
    from aeroloc.pipeline import LocateRequest
    from aeroloc.preprocess.prepare import PreparedPair
    from aeroloc.verify.walk import TriedCandidate, Verification

RESULT_FILE = "result.json"
CELLS_FILE = "heatmap_cells.npy"
CANDIDATES_FILE = "candidates.gpkg"
SCHEMA_VERSION = 2
#: Statuses whose best candidate has a verified footprint.
LOCATED_STATUSES = ("accepted", "review")
#: How a photo's position was found: the search over the full AoI, the search
#: in a shrunken AoI around its flight line's prediction, matching to a located
#: neighbour (confirmed against the reference when possible), or the joint
#: solve of its flight line alone.
METHODS = ("search", "propagated", "neighbour", "line")


def _finite_or_none(v: float | None, digits: int) -> float | None:
    if v is None:
        return None
    v = float(v)
    return round(v, digits) if math.isfinite(v) else None


def geojson(geometry: Any) -> dict[str, Any]:
    """GeoJSON of a shapely geometry with lists, not tuples (equal to what is read back)."""
    out: dict[str, Any] = json.loads(json.dumps(mapping(geometry)))
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def _to_json(record: Any) -> dict[str, Any]:
    """A record's fields in order, tuples as lists and mappings as dicts."""
    return {f.name: _jsonable(getattr(record, f.name)) for f in fields(record)}


def _opt(data: Mapping[str, Any], key: str, kind: Any) -> Any:
    v = data.get(key)
    return None if v is None else kind(v)


@dataclass(frozen=True, kw_only=True)
class CandidateRecord:
    """One ranked window.

    Attributes:
        rank: 1 = best.
        score: similarity in [0, 1] (rounded to 6 decimals).
        percentile: percentile rank (0–100) among the valid windows.
        x, y: window centre (map CRS).
        grid_row, grid_col: cell of the rotated score grid (``heatmap_cells.npy``).
        scale: footprint size the heatmap's pose search found, relative to
            the nominal one (1 without a search).
        heading_offset_deg: heading the search found minus the given heading
            (clockwise degrees; 0 without a search).
        azimuth_deg: the heading the search found (given + offset).
    """

    rank: int
    score: float
    percentile: float
    x: float
    y: float
    grid_row: int
    grid_col: int
    scale: float = 1.0
    heading_offset_deg: float = 0.0
    azimuth_deg: float = 0.0

    @classmethod
    def from_candidate(cls, c: Candidate) -> CandidateRecord:
        return cls(
            rank=c.rank,
            score=round(c.score, 6),
            percentile=round(c.percentile, 3),
            x=round(c.x, 3),
            y=round(c.y, 3),
            grid_row=c.row,
            grid_col=c.col,
            scale=round(c.scale, 6),
            heading_offset_deg=round(c.heading_offset_deg, 6),
            azimuth_deg=round(c.azimuth_deg, 6),
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any], version: int) -> CandidateRecord:
        cell = ("grid_row", "grid_col") if version >= 2 else ("row", "col")
        return cls(
            rank=int(data["rank"]),
            score=float(data.get("score", math.nan)),
            percentile=float(data.get("percentile", math.nan)),
            x=float(data["x"]),
            y=float(data["y"]),
            grid_row=int(data.get(cell[0], -1)),
            grid_col=int(data.get(cell[1], -1)),
            scale=float(data.get("scale", 1.0)),
            heading_offset_deg=float(data.get("heading_offset_deg", 0.0)),
            azimuth_deg=float(data.get("azimuth_deg", 0.0)),
        )

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)


@dataclass(frozen=True, kw_only=True)
class TriedRecord:
    """One candidate window that verification matched (``verification.tried``)."""

    rank: int
    status: str
    reasons: tuple[str, ...] = ()
    p_correct: float | None = None
    kind: str = ""
    n_matches: int = 0
    n_inliers: int = 0
    inlier_ratio: float = 0.0
    rmse_px: float | None = None
    rotation_deg: float = 0.0
    box_px: tuple[int, ...] = ()
    seconds: float = 0.0
    features: Mapping[str, float | None] = field(default_factory=dict)
    footprint: Mapping[str, Any] | None = None

    @classmethod
    def from_tried(cls, t: TriedCandidate) -> TriedRecord:
        return cls(
            rank=t.candidate.rank,
            status=t.status,
            reasons=tuple(t.reasons),
            p_correct=_finite_or_none(t.p_correct, 4),
            kind=t.kind,
            n_matches=t.n_matches,
            n_inliers=t.n_inliers,
            inlier_ratio=round(t.inlier_ratio, 4),
            rmse_px=_finite_or_none(t.rmse_px, 4),
            rotation_deg=t.rotation_deg,
            box_px=tuple(t.box_px),
            seconds=round(t.seconds, 4),
            features={k: _finite_or_none(v, 6) for k, v in t.features.items()},
            footprint=None if t.footprint is None else geojson(t.footprint),
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TriedRecord:
        return cls(
            rank=int(data["rank"]),
            status=str(data["status"]),
            reasons=tuple(str(r) for r in data.get("reasons") or ()),
            p_correct=_opt(data, "p_correct", float),
            kind=str(data.get("kind") or ""),
            n_matches=int(data.get("n_matches") or 0),
            n_inliers=int(data.get("n_inliers") or 0),
            inlier_ratio=float(data.get("inlier_ratio") or 0.0),
            rmse_px=_opt(data, "rmse_px", float),
            rotation_deg=float(data.get("rotation_deg") or 0.0),
            box_px=tuple(int(v) for v in data.get("box_px") or ()),
            seconds=float(data.get("seconds") or 0.0),
            features=dict(data.get("features") or {}),
            footprint=data.get("footprint"),
        )

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)


@dataclass(frozen=True, kw_only=True)
class BestRecord:
    """The located photo (verified) or the top candidate (unverified, rejected).

    Attributes:
        status: ``accepted``, ``review``, ``rejected`` or ``unverified``.
        x, y: the photo centre (centroid of the verified footprint) when
            ``status`` is accepted or review; else the window centre.
        window_x, window_y: centre of the chosen (or top) candidate window.
        rank, score, percentile, grid_row, grid_col, scale,
        heading_offset_deg, azimuth_deg: that candidate (see :class:`CandidateRecord`).
        footprint: GeoJSON polygon: the verified footprint, else the window.
        matcher: verification matcher (None when unverified).
        reasons: why this status.
        p_correct: calibrated probability that the fit is right (rejected:
            the best over the tried candidates; None when none had one).
        kind, n_matches, n_inliers, inlier_ratio, rmse_px, rotation_deg: the
            fit of a verified candidate (None otherwise).
        transform: photo scan pixel → map (``PhotoTransform.to_json``), or None.
        files: georeferenced files written (label → name in the folder).
        gcp_source, n_gcps: where the GCPs came from and how many.
    """

    status: str
    x: float | None = None
    y: float | None = None
    window_x: float | None = None
    window_y: float | None = None
    rank: int | None = None
    score: float | None = None
    percentile: float | None = None
    grid_row: int | None = None
    grid_col: int | None = None
    scale: float | None = None
    heading_offset_deg: float | None = None
    azimuth_deg: float | None = None
    footprint: Mapping[str, Any] | None = None
    matcher: str | None = None
    reasons: tuple[str, ...] = ()
    p_correct: float | None = None
    kind: str | None = None
    n_matches: int | None = None
    n_inliers: int | None = None
    inlier_ratio: float | None = None
    rmse_px: float | None = None
    rotation_deg: float | None = None
    transform: Mapping[str, Any] | None = None
    files: Mapping[str, str] = field(default_factory=dict)
    gcp_source: str | None = None
    n_gcps: int | None = None

    @property
    def verified(self) -> bool:
        """True when the best candidate has a verified footprint (accepted or review)."""
        return self.status in LOCATED_STATUSES and self.transform is not None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], version: int) -> BestRecord:
        v2 = version >= 2
        cell = ("grid_row", "grid_col") if v2 else ("row", "col")
        window = ("window_x", "window_y") if v2 else ("x", "y")
        rec = cls(
            status=str(data.get("status", "unverified")),
            x=_opt(data, "x", float),
            y=_opt(data, "y", float),
            window_x=_opt(data, window[0], float),
            window_y=_opt(data, window[1], float),
            rank=_opt(data, "rank", int),
            score=_opt(data, "score", float),
            percentile=_opt(data, "percentile", float),
            grid_row=_opt(data, cell[0], int),
            grid_col=_opt(data, cell[1], int),
            scale=_opt(data, "scale", float),
            heading_offset_deg=_opt(data, "heading_offset_deg", float),
            azimuth_deg=_opt(data, "azimuth_deg", float),
            footprint=data.get("footprint") or None,
            matcher=_opt(data, "matcher", str),
            reasons=tuple(str(r) for r in data.get("reasons") or ()),
            p_correct=_opt(data, "p_correct", float),
            kind=_opt(data, "kind", str),
            n_matches=_opt(data, "n_matches", int),
            n_inliers=_opt(data, "n_inliers", int),
            inlier_ratio=_opt(data, "inlier_ratio", float),
            rmse_px=_opt(data, "rmse_px", float),
            rotation_deg=_opt(data, "rotation_deg", float),
            transform=data.get("transform") or None,
            files=dict(data.get("files") or {}),
            gcp_source=_opt(data, "gcp_source", str),
            n_gcps=_opt(data, "n_gcps", int),
        )
        if v2 or not rec.verified or rec.footprint is None:
            return rec
        x, y = _centre(rec.footprint)
        return replace(rec, x=x, y=y)

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)


def _centre(footprint: Mapping[str, Any]) -> tuple[float, float]:
    """Centroid (map CRS) of a GeoJSON polygon, rounded to the millimetre."""
    c = shape(dict(footprint)).centroid
    return round(float(c.x), 3), round(float(c.y), 3)


@dataclass(frozen=True, kw_only=True)
class VerificationRecord:
    """How verification searched: matcher, scored windows and every candidate tried.

    Attributes:
        matcher: matcher actually used.
        n_windows: scored windows of the heatmap.
        tried: the candidates matched, in the order tried.
        windows_tried: ``len(tried)``.
        search_reduction: 1 − windows_tried / n_windows.
        area_searched: share of the valid AoI inside the matched boxes.
    """

    matcher: str
    n_windows: int
    tried: tuple[TriedRecord, ...]
    windows_tried: int
    search_reduction: float | None
    area_searched: float | None


@dataclass(frozen=True, kw_only=True)
class InputsRecord:
    """What ``locate`` was given (``inputs``)."""

    references: tuple[str, ...] = ()
    rock_mask: str | None = None
    crs: str = ""
    aoi_bounds: tuple[float, ...] = ()
    azimuth_deg: float | None = None
    ground_size_m: float | None = None
    frame_box_px: tuple[int, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InputsRecord:
        return cls(
            references=tuple(str(p) for p in data.get("references") or ()),
            rock_mask=_opt(data, "rock_mask", str),
            crs=str(data["crs"]),
            aoi_bounds=tuple(float(v) for v in data.get("aoi_bounds") or ()),
            azimuth_deg=_opt(data, "azimuth_deg", float),
            ground_size_m=_opt(data, "ground_size_m", float),
            frame_box_px=tuple(int(v) for v in data.get("frame_box_px") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`METHODS`, else :class:`InvalidInputError`."""
    if method not in METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return method


@dataclass(frozen=True, kw_only=True)
class AttemptRecord:
    """One way the batch tried to place a photo (``placement.attempts``).

    Attributes:
        method: ``neighbour``, ``propagated`` or ``search`` (see :data:`METHODS`).
        status: what it gave (``accepted``, ``review``, ``rejected``, ...).
        seconds: time it took.
        reasons: why, when it did not give ``accepted``.
        area_km2: area searched (km²), None when nothing was searched.
    """

    method: str
    status: str
    seconds: float
    reasons: tuple[str, ...] = ()
    area_km2: float | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AttemptRecord:
        return cls(
            method=str(data["method"]),
            status=str(data["status"]),
            seconds=float(data.get("seconds") or 0.0),
            reasons=tuple(str(r) for r in data.get("reasons") or ()),
            area_km2=_opt(data, "area_km2", float),
        )

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)


@dataclass(frozen=True, kw_only=True)
class SolveChange:
    """What the joint solve of a flight line changed (``placement.before_solve``).

    Attributes:
        method: the photo's method before the solve.
        best: its ``best`` before the solve (its original status is ``best.status``).
        sigma_m: its ``placement.sigma_m`` before the solve.
        reasons: why the solve changed it.
    """

    method: str
    best: BestRecord
    sigma_m: float | None = None
    reasons: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SolveChange:
        return cls(
            method=check_method(str(data.get("method") or "search")),
            best=BestRecord.from_json(data.get("best") or {}, SCHEMA_VERSION),
            sigma_m=_opt(data, "sigma_m", float),
            reasons=tuple(str(r) for r in data.get("reasons") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "best": self.best.to_json(),
            "sigma_m": self.sigma_m,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, kw_only=True)
class PlacementRecord:
    """How the batch placed a photo along its flight line (``placement``).

    Attributes:
        attempts: every way tried, in order (the last one gave the result).
        full_search: True when a search over the full AoI ran for this photo.
        neighbour_id: the located neighbour a ``neighbour`` placement chained from.
        sigma_m: 1-σ position uncertainty (m) of a flight-line placement
            (the chain for ``neighbour``, the solve for ``line``); None otherwise.
        before_solve: what the joint solve changed, or None.
    """

    attempts: tuple[AttemptRecord, ...] = ()
    full_search: bool = True
    neighbour_id: str | None = None
    sigma_m: float | None = None
    before_solve: SolveChange | None = None

    @property
    def original_status(self) -> str | None:
        """The status before the joint solve changed it (None: it did not)."""
        return None if self.before_solve is None else self.before_solve.best.status

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlacementRecord:
        before = data.get("before_solve")
        return cls(
            attempts=tuple(AttemptRecord.from_json(a) for a in data.get("attempts") or ()),
            full_search=bool(data.get("full_search", True)),
            neighbour_id=_opt(data, "neighbour_id", str),
            sigma_m=_opt(data, "sigma_m", float),
            before_solve=None if not before else SolveChange.from_json(before),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "attempts": [a.to_json() for a in self.attempts],
            "full_search": self.full_search,
            "neighbour_id": self.neighbour_id,
            "sigma_m": _finite_or_none(self.sigma_m, 3),
            "before_solve": None if self.before_solve is None else self.before_solve.to_json(),
        }


@dataclass(frozen=True, kw_only=True)
class LocateRecord:
    """The whole ``result.json`` of one photo (see the module docstring).

    Attributes:
        photo_id, photo: the photo's id and scan path.
        inputs: references, rock mask, CRS, AoI bounds, heading, ground size, frame box.
        model, engine: what scored the heatmap.
        window_px, stride_px: window side and step (AoI pixels).
        grid_shape: ``(R, C)`` of the rotated score grid.
        grid_pixel_to_map: its rotated-AoI pixel → map affine (six numbers).
        cells_file: the ``[R x C]`` scores, next to ``result.json``.
        poses: the ``(heading offset °, scale)`` pairs the heatmap scored
            (``[(0, 1)]`` without a pose search).
        aoi_pixel_m: AoI pixel size (m).
        n_windows, n_valid_windows: windows of the grid, and those scored.
        timings_s: seconds per stage.
        candidates: ranked windows, best first.
        best: see :class:`BestRecord`.
        verification: None when verification did not run.
        method: how the position was found (:data:`METHODS`).
        placement: how the batch placed it along its flight line, or None.
        schema_version: :data:`SCHEMA_VERSION` for a file written now.
        aeroloc_version: the package version that wrote it.
    """

    photo_id: str
    photo: str
    inputs: InputsRecord
    model: str
    engine: str
    window_px: int
    stride_px: int
    grid_shape: tuple[int, ...]
    grid_pixel_to_map: tuple[float, ...]
    cells_file: str
    aoi_pixel_m: float | None
    n_windows: int | None
    n_valid_windows: int | None
    timings_s: Mapping[str, float]
    candidates: tuple[CandidateRecord, ...]
    best: BestRecord
    verification: VerificationRecord | None = None
    poses: tuple[tuple[float, float], ...] = ((0.0, 1.0),)
    method: str = "search"
    placement: PlacementRecord | None = None
    schema_version: int = SCHEMA_VERSION
    aeroloc_version: str = __version__

    def __post_init__(self) -> None:
        check_method(self.method)

    @property
    def status(self) -> str:
        return self.best.status

    def unsolved(self) -> LocateRecord:
        """The record as it was before the joint solve of its line changed it (or itself)."""
        change = None if self.placement is None else self.placement.before_solve
        if self.placement is None or change is None:
            return self
        return replace(
            self,
            method=change.method,
            best=change.best,
            placement=replace(self.placement, sigma_m=change.sigma_m, before_solve=None),
        )

    def to_json(self) -> dict[str, Any]:
        v = self.verification
        return {
            "schema_version": self.schema_version,
            "aeroloc_version": self.aeroloc_version,
            "photo_id": self.photo_id,
            "photo": self.photo,
            "inputs": self.inputs.to_json(),
            "model": self.model,
            "engine": self.engine,
            "window_px": self.window_px,
            "stride_px": self.stride_px,
            "grid": {
                "shape": list(self.grid_shape),
                "pixel_to_map": list(self.grid_pixel_to_map),
                "cells_file": self.cells_file,
                "poses": [list(p) for p in self.poses],
            },
            "aoi_pixel_m": self.aoi_pixel_m,
            "n_windows": self.n_windows,
            "n_valid_windows": self.n_valid_windows,
            "timings_s": dict(self.timings_s),
            "candidates": [c.to_json() for c in self.candidates],
            "best": self.best.to_json(),
            "windows_tried": None if v is None else v.windows_tried,
            "search_reduction": None if v is None else v.search_reduction,
            "area_searched": None if v is None else v.area_searched,
            "verification": None
            if v is None
            else {
                "matcher": v.matcher,
                "n_windows": v.n_windows,
                "tried": [t.to_json() for t in v.tried],
            },
            "method": self.method,
            "placement": None if self.placement is None else self.placement.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LocateRecord:
        """Parse a version-1 or version-2 ``result.json`` (see the module docstring)."""
        version = int(data.get("schema_version", 1))
        if version > SCHEMA_VERSION:
            raise InvalidInputError(
                f"result.json schema_version {version} is newer than this aeroloc reads "
                f"({SCHEMA_VERSION}): upgrade aeroloc"
            )
        grid = data["grid"]
        ver = data.get("verification")
        placement = data.get("placement")
        if ver is None and data.get("windows_tried") is not None:
            ver = {}  # search counts without the tried list (a hand-made version-1 file)
        return cls(
            schema_version=version,
            aeroloc_version=str(data.get("aeroloc_version", "")),
            photo_id=str(data.get("photo_id") or ""),
            photo=str(data.get("photo") or ""),
            inputs=InputsRecord.from_json(data["inputs"]),
            model=str(data["model"]),
            engine=str(data["engine"]),
            window_px=int(data["window_px"]),
            stride_px=int(data["stride_px"]),
            grid_shape=tuple(int(v) for v in grid.get("shape") or ()),
            grid_pixel_to_map=tuple(float(v) for v in grid["pixel_to_map"]),
            cells_file=str(grid.get("cells_file") or CELLS_FILE),
            poses=tuple((float(p[0]), float(p[1])) for p in grid.get("poses") or ((0.0, 1.0),)),
            aoi_pixel_m=_opt(data, "aoi_pixel_m", float),
            n_windows=_opt(data, "n_windows", int),
            n_valid_windows=_opt(data, "n_valid_windows", int),
            timings_s={str(k): float(v) for k, v in (data.get("timings_s") or {}).items()},
            candidates=tuple(
                CandidateRecord.from_json(c, version) for c in data.get("candidates") or ()
            ),
            best=BestRecord.from_json(data.get("best") or {}, version),
            verification=None
            if ver is None
            else VerificationRecord(
                matcher=str(ver.get("matcher") or ""),
                n_windows=int(ver.get("n_windows") or 0),
                tried=tuple(TriedRecord.from_json(t) for t in ver.get("tried") or ()),
                windows_tried=int(data.get("windows_tried") or 0),
                search_reduction=_opt(data, "search_reduction", float),
                area_searched=_opt(data, "area_searched", float),
            ),
            method=str(data.get("method") or "search"),
            placement=None if not placement else PlacementRecord.from_json(placement),
        )


# --------------------------------------------------------------------------- building


#: Fields of a tried candidate's fit that ``best`` repeats for the chosen one.
_FIT_FIELDS = (
    "status",
    "reasons",
    "p_correct",
    "kind",
    "n_matches",
    "n_inliers",
    "inlier_ratio",
    "rmse_px",
    "rotation_deg",
)


def _best_unverified(top: Candidate) -> BestRecord:
    c = CandidateRecord.from_candidate(top)
    return BestRecord(
        status="unverified",
        x=c.x,
        y=c.y,
        window_x=c.x,
        window_y=c.y,
        rank=c.rank,
        score=c.score,
        percentile=c.percentile,
        grid_row=c.grid_row,
        grid_col=c.grid_col,
        scale=c.scale,
        heading_offset_deg=c.heading_offset_deg,
        azimuth_deg=c.azimuth_deg,
        footprint=geojson(top.polygon),
    )


def _best_verified(
    top: Candidate, verification: Verification, georef: GeorefOutputs | None
) -> BestRecord:
    """``best`` of a verified run: the chosen candidate's fit, or the top one's reasons."""
    chosen = verification.chosen
    if chosen is None:
        reasons = [f"rank {t.candidate.rank}: {'; '.join(t.reasons)}" for t in verification.tried]
        return replace(
            _best_unverified(top),
            status=verification.status,
            matcher=verification.matcher,
            reasons=(f"none of the {verification.windows_tried} candidates verified", *reasons),
            p_correct=max(
                (t.p_correct for t in verification.tried if math.isfinite(t.p_correct)),
                default=None,
            ),
        )
    footprint = None if chosen.footprint is None else geojson(chosen.footprint)
    window = _best_unverified(chosen.candidate)
    x, y = (window.x, window.y) if footprint is None else _centre(footprint)
    fit = TriedRecord.from_tried(chosen)
    return replace(
        window,
        x=x,
        y=y,
        footprint=footprint,
        matcher=verification.matcher,
        **{name: getattr(fit, name) for name in _FIT_FIELDS},
        transform=None if chosen.transform is None else chosen.transform.to_json(),
        files={} if georef is None else georef.files(),
        gcp_source=None if georef is None else georef.gcp_source,
        n_gcps=None if georef is None else len(georef.gcps),
    )


def locate_record(
    request: LocateRequest,
    prepared: PreparedPair,
    heatmap: Heatmap,
    candidates: Sequence[Candidate],
    timings: Mapping[str, float],
    *,
    verification: Verification | None = None,
    georef: GeorefOutputs | None = None,
    method: str = "search",
    placement: PlacementRecord | None = None,
) -> LocateRecord:
    """The record ``locate_photo`` writes for one photo."""
    f = prepared.frame
    v = verification
    return LocateRecord(
        photo_id=request.photo_id,
        photo=str(request.photo_path),
        inputs=InputsRecord(
            references=tuple(str(p) for p in request.references),
            rock_mask=str(request.rock_mask_path) if request.rock_mask_path else None,
            crs=heatmap.crs.to_string(),
            aoi_bounds=tuple(request.aoi.bounds),
            azimuth_deg=request.azimuth_deg,
            ground_size_m=prepared.ground_size_m,
            frame_box_px=(f.col0, f.row0, f.col1, f.row1),
        ),
        model=heatmap.model,
        engine=heatmap.engine,
        window_px=heatmap.window_px,
        stride_px=heatmap.stride_px,
        grid_shape=tuple(heatmap.shape),
        grid_pixel_to_map=tuple(heatmap.pixel_to_map)[:6],
        cells_file=CELLS_FILE,
        poses=heatmap.pose_grid.poses,
        aoi_pixel_m=heatmap.pixel_size_m,
        n_windows=heatmap.n_windows,
        n_valid_windows=int(heatmap.valid.sum()),
        timings_s={k: round(t, 4) for k, t in timings.items()},
        candidates=tuple(CandidateRecord.from_candidate(c) for c in candidates),
        best=(
            _best_unverified(candidates[0])
            if v is None
            else _best_verified(candidates[0], v, georef)
        ),
        verification=None
        if v is None
        else VerificationRecord(
            matcher=v.matcher,
            n_windows=v.n_windows,
            tried=tuple(TriedRecord.from_tried(t) for t in v.tried),
            windows_tried=v.windows_tried,
            search_reduction=round(v.search_reduction, 6),
            area_searched=round(v.area_searched, 6),
        ),
        method=method,
        placement=placement,
    )


# --------------------------------------------------------------------------- files


def write_result(record: LocateRecord, folder: str | os.PathLike[str]) -> Path:
    """Write ``folder/result.json`` atomically (last: its presence means the photo is done)."""
    return write_json(Path(folder) / RESULT_FILE, record.to_json())


def has_result(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` holds a finished ``locate`` result."""
    return (Path(folder) / RESULT_FILE).is_file()


def read_result(path: str | os.PathLike[str]) -> LocateRecord:
    """Read a ``result.json`` (or the one inside a folder), version 1 or 2.

    Raises:
        MissingFileError: no result there.
        InvalidInputError: not JSON, a field missing or malformed, or a newer schema.
    """
    p = Path(path)
    if p.is_dir():
        p = p / RESULT_FILE
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise MissingFileError(
            f"no {RESULT_FILE} in {p.parent}: run aeroloc locate first"
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{p} is not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{p} is not a locate result: not UTF-8 text (byte {exc.start}); "
            "is it a result.json written by aeroloc?"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"{p} is not a locate result: expected a JSON object, found a {type(data).__name__}"
        )
    try:
        return LocateRecord.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise InvalidInputError(f"{p} is not a locate result: bad or missing {exc}") from exc


def save_cells(heatmap: Heatmap, path: str | os.PathLike[str]) -> Path:
    """The raw ``[R x C]`` window scores (rotated grid) as ``.npy``, for evaluation."""
    with atomic_output(path) as tmp, tmp.open("wb") as fh:
        np.save(fh, heatmap.scores.astype(np.float32))
    return Path(path)


def read_cells(path: Path, shape: Sequence[int] = ()) -> np.ndarray:
    """The ``[R x C]`` window scores :func:`save_cells` wrote, checked.

    Loaded with ``allow_pickle=False``: an object array (which would unpickle,
    and could run code) is refused like any other malformed file.

    Raises:
        MissingFileError: no file.
        InvalidInputError: corrupt, not a float matrix, or not of ``shape`` (when given).
    """
    p = require_file(path, "heatmap cells file")
    try:
        cells = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidInputError(
            f"{p} is not a heatmap cells file written by aeroloc locate ({exc}): "
            "rerun aeroloc locate for this photo"
        ) from None
    if not isinstance(cells, np.ndarray) or cells.ndim != 2 or cells.dtype.kind != "f":
        found = getattr(cells, "shape", type(cells).__name__)
        raise InvalidInputError(
            f"{p} must hold a 2-D float array of window scores, found {found}: "
            "rerun aeroloc locate for this photo"
        )
    if shape and tuple(cells.shape) != tuple(shape):
        raise InvalidInputError(
            f"{p} holds {cells.shape[0]} x {cells.shape[1]} scores but result.json says "
            f"{shape[0]} x {shape[1]}: rerun aeroloc locate for this photo"
        )
    return cells


def heatmap_from_result(record: LocateRecord, folder: str | os.PathLike[str]) -> Heatmap:
    """Rebuild the :class:`Heatmap` of a ``locate`` run from its record and cells file."""
    return Heatmap(
        scores=read_cells(Path(folder) / record.cells_file, record.grid_shape),
        window_px=record.window_px,
        stride_px=record.stride_px,
        pixel_to_map=Affine(*record.grid_pixel_to_map[:6]),
        crs=parse_crs(record.inputs.crs),
        model=record.model,
        engine=record.engine,
    )


def write_candidates_gpkg(
    candidates: Sequence[Candidate], heatmap: Heatmap, path: str | os.PathLike[str]
) -> Path:
    """Window polygons with the :class:`CandidateRecord` fields, as a GeoPackage layer."""
    import geopandas as gpd

    frame = gpd.GeoDataFrame(
        [CandidateRecord.from_candidate(c).to_json() for c in candidates],
        geometry=[c.polygon for c in candidates],
        crs=heatmap.crs.to_wkt(),
    )
    with atomic_output(path) as tmp:
        frame.to_file(tmp, layer="candidates", driver="GPKG")
    return Path(path)


def remove_stale_georef(out: str | os.PathLike[str], georef: GeorefOutputs | None) -> None:
    """Delete georeferenced files of an earlier run that this run did not write."""
    written = set() if georef is None else {p.name for p in georef.paths.values()}
    for name in (FOOTPRINT_FILE, POINTS_FILE, GCP_TIFF_FILE, WARPED_FILE):
        if name not in written:
            (Path(out) / name).unlink(missing_ok=True)
