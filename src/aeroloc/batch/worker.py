"""The per-photo function of ``aeroloc batch``: plain settings in, a small report out.

:class:`LocateSpec` says how to locate every photo with plain values only (a
model *name or checkpoint path*, not a model), so it pickles in a few hundred
bytes to any worker. :func:`locate_spec_job` is the module-level function a
runner maps over the jobs: on its first call in a process it sets the torch
thread count and loads the model, and every later call in that process
reuses both (:func:`worker_model`), so a worker loads the model once, not
once per photo. It returns a :class:`PhotoReport` (status and a few numbers),
not the heatmap arrays: the files are on disk, and only the report travels
back to the client.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from aeroloc.batch.loop import LocateSettings, PhotoJob, locate_job
from aeroloc.errors import ConfigError
from aeroloc.heatmap.engines import HeatmapConfig
from aeroloc.io.results import read_result
from aeroloc.models import Embedder
from aeroloc.verify.walk import VerifyConfig


@dataclass(frozen=True, kw_only=True)
class LocateSpec:
    """How every photo of a batch is located (plain and picklable).

    Attributes:
        model: registry name or checkpoint path; None for the shipped default.
        buffer_m: AoI buffer around each catalog position (m).
        heatmap_config: engine, stride and poses.
        verify: verification settings; None skips verification.
        max_candidates: candidates kept from the heatmap.
        torch_threads: torch intra-op threads per worker process (≥ 1).
            Workers × threads must not exceed the cores: two processes of
            two threads each on two cores run 3–10× slower.
    """

    model: str | None = None
    buffer_m: float = 10_000.0
    heatmap_config: HeatmapConfig = field(default_factory=HeatmapConfig)
    verify: VerifyConfig | None = None
    max_candidates: int = 20
    torch_threads: int = 1

    def __post_init__(self) -> None:
        if not self.buffer_m >= 0:
            raise ConfigError(f"buffer_m must be ≥ 0, got {self.buffer_m}")
        if self.max_candidates < 1:
            raise ConfigError(f"max_candidates must be ≥ 1, got {self.max_candidates}")
        if self.torch_threads < 1:
            raise ConfigError(f"torch_threads must be ≥ 1, got {self.torch_threads}")


@dataclass(frozen=True, kw_only=True)
class PhotoReport:
    """What one located photo sends back to the client.

    Attributes:
        photo_id: the photo.
        status: ``accepted``, ``review``, ``rejected`` or ``unverified``.
        p_correct: the best candidate's calibrated probability, or None.
        method: how it was placed (``search``, ``propagated``, ``neighbour``).
        full_search: a search over the full AoI ran for it.
        already_done: the folder already held a result (nothing was run).
    """

    photo_id: str
    status: str
    p_correct: float | None = None
    method: str = "search"
    full_search: bool = True
    already_done: bool = False


_lock = threading.Lock()
#: Models loaded in this process, by spec (name or checkpoint path; None: the default).
_models: dict[str | None, tuple[Embedder, str]] = {}
_threads_set: list[int] = []


def worker_model(spec: str | None) -> tuple[Embedder, str]:
    """The model ``spec`` names, loaded once per process and reused afterwards."""
    with _lock:
        if spec not in _models:
            from aeroloc.pipeline import load_model

            _models[spec] = load_model(spec)
        return _models[spec]


def set_torch_threads(n: int) -> None:
    """Set torch's intra-op threads for this process (a repeated call with the same n is free)."""
    with _lock:
        if _threads_set and _threads_set[-1] == n:
            return
        import torch

        torch.set_num_threads(n)
        _threads_set.append(n)


def locate_spec_job(job: PhotoJob, spec: LocateSpec) -> PhotoReport:
    """Locate one photo of a batch into ``job.out_dir`` (see the module docstring).

    Raises:
        What :func:`aeroloc.batch.loop.locate_job` raises (a runner with
        ``record_failures`` turns it into a failed photo).
    """
    set_torch_threads(spec.torch_threads)
    model, label = worker_model(spec.model)
    settings = LocateSettings(
        model=model,
        model_label=label,
        buffer_m=spec.buffer_m,
        heatmap_config=spec.heatmap_config,
        verify=spec.verify,
        draw_truth=True,
        max_candidates=spec.max_candidates,
    )
    result = locate_job(job, settings)
    if result is None:  # finished by another run since the job was submitted
        record = read_result(job.out_dir) if job.out_dir is not None else None
        status = record.status if record is not None else "unverified"
        return PhotoReport(photo_id=job.photo_id, status=status, already_done=True)
    chosen = None if result.verification is None else result.verification.chosen
    return PhotoReport(
        photo_id=job.photo_id,
        status=result.status,
        p_correct=None if chosen is None else float(chosen.p_correct),
    )
