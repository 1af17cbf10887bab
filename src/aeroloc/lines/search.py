"""A shrunken area of interest around a line prediction, for ``locate_photo``.

A photo the flight line predicts (:class:`~aeroloc.lines.track.Prediction`)
need not be searched over the whole catalog AoI (the rough footprint grown by
10 km): its footprint is known to within ``sigma_m``. The search area is the
predicted footprint's bounding box grown on every side by::

    margin = max(min_margin_m, k_sigma · sigma_m)

and clipped to the full AoI when one is given. :func:`shrunken_request`
turns it into a :class:`~aeroloc.pipeline.LocateRequest` with the line's
heading and GSD (or footprint size), through
:func:`aeroloc.pipeline.request_from_bounds`.

The sequence the batch runs for one predicted photo::

    pred = track.predict(frame, photo_id=pid)                # None: search the full AoI
    req = shrunken_request(pred, photo_path=scan, references=refs)
    res = locate_photo(req, out, model=model, verify=cfg)
    if res.status != "accepted":                             # the batch decides
        res = locate_photo(request_from_record(record, refs), out, ...)   # full AoI

and records ``method = "propagated"`` when the shrunken search was accepted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from aeroloc.aoi import aoi_from_bounds
from aeroloc.errors import ConfigError, CRSError, NoOverlapError
from aeroloc.lines.track import Prediction
from aeroloc.pipeline import LocateRequest, reference_crs, request_from_bounds


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """How far around a prediction to search.

    Attributes:
        k_sigma: the margin is this many ``sigma_m`` ...
        min_margin_m: ... and at least this many metres (the heatmap needs
            room for a few window positions around the footprint).
    """

    k_sigma: float = 3.0
    min_margin_m: float = 300.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.k_sigma) and self.k_sigma > 0):
            raise ConfigError(f"k_sigma must be > 0, got {self.k_sigma}")
        if not (math.isfinite(self.min_margin_m) and self.min_margin_m >= 0):
            raise ConfigError(f"min_margin_m must be >= 0, got {self.min_margin_m}")


def search_margin_m(prediction: Prediction, config: SearchConfig | None = None) -> float:
    """``max(min_margin_m, k_sigma · sigma_m)`` (m)."""
    cfg = config or SearchConfig()
    return max(cfg.min_margin_m, cfg.k_sigma * prediction.sigma_m)


def search_bounds(
    prediction: Prediction,
    config: SearchConfig | None = None,
    *,
    within: Sequence[float] | None = None,
) -> tuple[float, float, float, float]:
    """``(minx, miny, maxx, maxy)`` to search for the predicted photo (map CRS of the prediction).

    Args:
        prediction: the line's prediction.
        config: the margin rule.
        within: the full AoI's bounds; the result is clipped to them.

    Raises:
        NoOverlapError: the grown footprint lies outside ``within``.
    """
    margin = search_margin_m(prediction, config)
    minx, miny, maxx, maxy = prediction.footprint.bounds
    out = (minx - margin, miny - margin, maxx + margin, maxy + margin)
    if within is not None:
        wx0, wy0, wx1, wy1 = (float(v) for v in within)
        out = (max(out[0], wx0), max(out[1], wy0), min(out[2], wx1), min(out[3], wy1))
        if not (out[2] > out[0] and out[3] > out[1]):
            raise NoOverlapError(
                f"the predicted footprint of frame {prediction.frame} grown by {margin:.0f} m "
                f"lies outside the area of interest {tuple(round(v) for v in within)}"
            )
    return (float(out[0]), float(out[1]), float(out[2]), float(out[3]))


def shrunken_request(
    prediction: Prediction,
    *,
    photo_path: Path,
    references: Sequence[Path],
    config: SearchConfig | None = None,
    within: Sequence[float] | None = None,
    rock_mask_path: Path | None = None,
) -> LocateRequest:
    """A :class:`LocateRequest` over :func:`search_bounds`, with the line's heading and scale.

    The photo's scale is the line's scan GSD when known (``request_from_bounds``
    with ``gsd_m``), else its footprint width (``ground_size_m``).

    Raises:
        CRSError: the references are not in the prediction's CRS.
        NoOverlapError: see :func:`search_bounds`.
    """
    refs = tuple(Path(p) for p in references)
    crs = reference_crs(refs)
    if crs != prediction.crs:
        raise CRSError(
            f"the references are in {crs.to_string()} but the flight line in "
            f"{prediction.crs.to_string()}: read the catalog in the reference CRS"
        )
    bounds = search_bounds(prediction, config, within=within)
    photo_id = prediction.photo_id or Path(photo_path).stem
    if prediction.gsd_m is not None:
        request = request_from_bounds(
            Path(photo_path),
            refs,
            bounds,
            gsd_m=prediction.gsd_m,
            azimuth_deg=prediction.heading_deg,
            rock_mask_path=rock_mask_path,
        )
        return replace(request, photo_id=photo_id)
    area = aoi_from_bounds(
        bounds,
        crs,
        ground_size_m=prediction.ground_width_m,
        azimuth_deg=prediction.heading_deg,
        photo_id=photo_id,
    )
    return LocateRequest(
        photo_path=Path(photo_path),
        references=refs,
        aoi=area,
        azimuth_deg=prediction.heading_deg,
        ground_size_m=prediction.ground_width_m,
        rock_mask_path=rock_mask_path,
        photo_id=photo_id,
    )
