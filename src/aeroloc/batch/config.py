"""What ``aeroloc batch`` runs on and how: validated at the edge, cheap to import.

These two configs import neither torch nor Dask, so the command line can
check its arguments (and fail with one line) before any heavy import.
"""

from __future__ import annotations

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
