"""What ``aeroloc batch`` runs on and how: validated at the edge, cheap to import.

These two configs import neither torch nor Dask, so the command line can
check its arguments (and fail with one line) before any heavy import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from aeroloc.batch.dask import ClusterConfig, check_scheduler_address
from aeroloc.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class BatchInputs:
    """What a batch runs on.

    Attributes:
        catalog: a catalog file (CSV, GeoPackage, shapefile) or an archive folder.
        references: reference rasters (mosaic, first wins); empty takes an
            archive's own reference.
        rock_mask: rock-outcrop polygons; None takes an archive's own (if any).
        columns: ``FIELD=COL,...`` column map of a catalog file.
        catalog_crs: CRS of a catalog file's x/y.
    """

    catalog: Path
    references: tuple[Path, ...] = ()
    rock_mask: Path | None = None
    columns: str | None = None
    catalog_crs: str | None = None


@dataclass(frozen=True, kw_only=True)
class BatchConfig:
    """How and where a batch runs.

    Attributes:
        out_dir: the batch's output folder (``<photo_id>/``, ``results.gpkg``, ``results.csv``).
        workers: 0 runs in this process without Dask; N ≥ 1 a LocalCluster of
            N single-threaded worker processes; None one worker per core
            (unless ``scheduler`` is given).
        scheduler: address of an existing Dask scheduler (``tcp://host:8786``).
        retry_failed: rerun photos that failed before.
        prioritise: order each line's photos by :func:`~aeroloc.batch.priority.job_priority`.
    """

    out_dir: Path
    workers: int | None = None
    scheduler: str | None = None
    retry_failed: bool = False
    prioritise: bool = True

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"--workers must be ≥ 0, got {self.workers}")
        if self.workers is not None and self.scheduler is not None:
            raise ConfigError("give --workers or --scheduler, not both")
        if self.scheduler is not None:
            object.__setattr__(self, "scheduler", check_scheduler_address(self.scheduler))

    @property
    def in_process(self) -> bool:
        return self.workers == 0

    def cluster(self) -> ClusterConfig:
        """The Dask cluster (not used when :attr:`in_process`)."""
        return ClusterConfig(n_workers=self.workers or None, scheduler=self.scheduler)

    def describe(self) -> str:
        return "this process (no Dask)" if self.in_process else self.cluster().describe()


@dataclass(frozen=True, kw_only=True)
class LinesConfig:
    """How a batch uses its flight lines (``docs/batch.md``, "Flight lines").

    Attributes:
        max_gap_frames: a photo at most this many frames from an accepted one
            gets a prediction and is placed along its line (≥ 1).
        neighbour: try matching a photo to its accepted neighbour (one frame
            away) before any search.
        neighbour_matcher: the photo-to-photo matcher (a name of
            :func:`aeroloc.verify.matching.list_matchers`; checked on the worker).
        neighbour_margin_m: the chained footprint is confirmed against the
            reference in its bounding box grown by this much (m).
        consistency_k_sigma: a chained footprint whose centre is more than
            this many σ (prediction and chain combined) from the prediction,
            and more than ``neighbour_margin_m``, is not used.
        search_k_sigma, search_min_margin_m: the shrunken AoI around a
            prediction: its footprint grown by ``max(min margin, k σ)``.
        solve: run the joint solve of each line at the end (verdicts, line
            placements).
        solve_min_offset_frac: an accepted photo contradicts its line by its
            position only when it is also this share of the line's footprint
            side off the solved track (and at least the solve's 150 m). Real
            and synthetic lines wander by a few percent of the interval per
            frame, and a photo off by less than a third of its side still
            overlaps its true footprint with IoU ≥ 0.5; 1/6 flags photos half
            way to that.
        plot: write ``lines/<line>.png`` per line at the end.
    """

    max_gap_frames: int = 5
    neighbour: bool = True
    neighbour_matcher: str = "sift"
    neighbour_margin_m: float = 300.0
    consistency_k_sigma: float = 3.0
    search_k_sigma: float = 3.0
    search_min_margin_m: float = 300.0
    solve: bool = True
    solve_min_offset_frac: float = 1 / 6
    plot: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.max_gap_frames, int) and self.max_gap_frames >= 1):
            raise ConfigError(f"max_gap_frames must be an integer ≥ 1, got {self.max_gap_frames}")
        if not self.neighbour_matcher:
            raise ConfigError("neighbour_matcher must name a matcher")
        for name in ("neighbour_margin_m", "search_min_margin_m"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be ≥ 0 m, got {v}")
        if not (math.isfinite(self.solve_min_offset_frac) and 0 <= self.solve_min_offset_frac < 1):
            raise ConfigError(
                f"solve_min_offset_frac must be in [0, 1), got {self.solve_min_offset_frac}"
            )
        for name in ("consistency_k_sigma", "search_k_sigma"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be > 0, got {v}")
