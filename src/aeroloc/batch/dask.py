"""The batch on Dask distributed: the same jobs and per-photo function as the loop, on workers.

:func:`run_on_cluster` takes what :func:`aeroloc.batch.loop.run_jobs` takes
(a tuple of :class:`~aeroloc.batch.loop.PhotoJob` and a plain per-photo
function) and:

1. skips photos that are done (``result.json``), and photos that failed
   before (``failed.json``) unless ``retry_failed``;
2. opens a client on a :class:`distributed.LocalCluster` (``n_workers``
   processes of one thread each, no dashboard), or on an existing scheduler
   (``tcp://host:8786``);
3. with a ``priority`` function, scores the pending photos on the workers and
   orders them with :func:`aeroloc.batch.priority.order_by_line` (every
   line's best photos first);
4. submits :func:`aeroloc.batch.loop.attempt` of every job, in that order
   (Dask priorities keep the order on the scheduler), and reports each outcome
   through ``progress`` as soon as it is known (``as_completed``). A photo
   that raises, or whose worker dies, is a failed photo with its one-line
   reason in ``failed.json``;
5. closes the client, and a cluster it started, on exit, on error and on
   ``KeyboardInterrupt``.

This module imports Dask (and the loop, hence torch) only when a batch
runs, so :class:`ClusterConfig` validates command-line input cheaply.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aeroloc.errors import ClusterError, ConfigError

if TYPE_CHECKING:
    from distributed import Client

    from aeroloc.batch.loop import PhotoJob, PhotoOutcome

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: ``tcp://host:port`` or ``tls://host:port`` (host a name, IPv4 or [IPv6]).
_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
#: Seconds to wait for an existing scheduler before giving up.
CONNECT_TIMEOUT_S = 10.0


def check_scheduler_address(address: str) -> str:
    """``address`` stripped, or :class:`~aeroloc.errors.ConfigError` when it is not
    ``tcp://host:port`` / ``tls://host:port``."""
    text = address.strip()
    m = _ADDRESS.match(text)
    if m is None or not 0 < int(m.group(3)) < 65536:
        raise ConfigError(
            f"scheduler address {address!r} is not tcp://HOST:PORT (e.g. tcp://10.0.0.5:8786)"
        )
    return text


def default_workers(threads_per_worker: int = 1) -> int:
    """Workers that fill this machine's cores at ``threads_per_worker`` threads each."""
    return max(1, (os.cpu_count() or 1) // max(1, threads_per_worker))


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    """Where the batch runs.

    Attributes:
        n_workers: worker processes of a new LocalCluster (None: one per core).
        scheduler: address of an existing scheduler (``tcp://host:8786``);
            then no cluster is started and ``n_workers`` must be None.
        threads_per_worker: threads of each LocalCluster worker (photos run
            at once per process); 1 keeps torch threads × workers ≤ cores.
        connect_timeout_s: how long to wait for an existing scheduler.
    """

    n_workers: int | None = None
    scheduler: str | None = None
    threads_per_worker: int = 1
    connect_timeout_s: float = CONNECT_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.scheduler is not None:
            if self.n_workers is not None:
                raise ConfigError(
                    "give either a number of workers or a scheduler address, not both"
                )
            object.__setattr__(self, "scheduler", check_scheduler_address(self.scheduler))
        if self.n_workers is not None and self.n_workers < 1:
            raise ConfigError(f"a cluster needs at least 1 worker, got {self.n_workers}")
        if self.threads_per_worker < 1:
            raise ConfigError(f"threads_per_worker must be ≥ 1, got {self.threads_per_worker}")
        if not self.connect_timeout_s > 0:
            raise ConfigError(f"connect_timeout_s must be > 0, got {self.connect_timeout_s}")

    def describe(self) -> str:
        if self.scheduler is not None:
            return f"Dask scheduler {self.scheduler}"
        n = self.n_workers or default_workers(self.threads_per_worker)
        return f"local Dask cluster of {n} worker(s) × {self.threads_per_worker} thread(s)"


@contextlib.contextmanager
def open_client(config: ClusterConfig) -> Iterator[Client]:
    """A Dask client for ``config``; closes it (and a cluster it started) on the way out.

    Raises:
        ClusterError: the scheduler cannot be reached within
            ``connect_timeout_s``, or a local cluster does not start.
    """
    from distributed import Client, LocalCluster

    if config.scheduler is not None:
        try:
            client = Client(config.scheduler, timeout=f"{config.connect_timeout_s}s")
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {config.scheduler} within "
                f"{config.connect_timeout_s:g} s ({type(exc).__name__}): start one with "
                "`dask scheduler`, or leave out --scheduler for a local cluster"
            ) from exc
        try:
            yield client
        finally:
            client.close()
        return
    try:
        cluster = LocalCluster(
            n_workers=config.n_workers or default_workers(config.threads_per_worker),
            threads_per_worker=config.threads_per_worker,
            processes=True,
            dashboard_address=None,
        )
    except (OSError, TimeoutError, RuntimeError) as exc:
        raise ClusterError(f"cannot start a local Dask cluster: {exc}") from exc
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def run_on_cluster(
    jobs: Sequence[PhotoJob],
    fn: Callable[[PhotoJob], T],
    *,
    cluster: ClusterConfig,
    retry_failed: bool = False,
    priority: Callable[[PhotoJob], float] | None = None,
    progress: Callable[[PhotoOutcome[T]], None] | None = None,
) -> tuple[PhotoOutcome[T], ...]:
    """Run ``fn`` on every pending job on Dask workers (see the module docstring).

    Args:
        jobs: the photos (each with an ``out_dir``: that is where a finished
            or failed photo is recorded).
        fn: the per-photo function, picklable (a module-level function or a
            :func:`functools.partial` of one).
        cluster: a local cluster or an existing scheduler.
        retry_failed: rerun photos that failed before.
        priority: per-photo score run on the workers first (higher goes
            first within its flight line); None keeps the given order.
        progress: called with each outcome as soon as it is known (skipped
            photos first).

    Returns:
        One outcome per job: the skipped ones first, then in completion order.
    """
    from distributed import as_completed

    from aeroloc.batch.loop import skipped_outcome
    from aeroloc.batch.priority import order_by_line

    outcomes: list[PhotoOutcome[T]] = []

    def report(outcome: PhotoOutcome[T]) -> None:
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)

    pending: list[PhotoJob] = []
    for job in jobs:
        skipped = skipped_outcome(job, retry_failed=retry_failed)
        if skipped is None:
            pending.append(job)
        else:
            report(skipped)
    if not pending:
        return tuple(outcomes)
    logger.info("%d photo(s) to locate on a %s", len(pending), cluster.describe())
    with open_client(cluster) as client:
        order: Sequence[PhotoJob] = pending
        if priority is not None:
            scores = client.gather(client.map(priority, pending, pure=False))
            order = order_by_line(
                pending, {j.photo_id: float(s) for j, s in zip(pending, scores, strict=True)}
            )
        run = secrets.token_hex(4)
        futures = {
            client.submit(
                _attempt,
                job,
                fn,
                key=f"aeroloc-photo-{job.photo_id}-{run}",
                priority=len(order) - i,
                pure=False,
            ): job
            for i, job in enumerate(order)
        }
        for future in as_completed(futures):
            job = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # the worker died, or the result did not unpickle
                outcome = _lost(job, exc)
            report(outcome)
    return tuple(outcomes)


class DaskRunner(Generic[T]):
    """Jobs submitted one by one to a Dask client; outcomes taken as they finish.

    The Dask twin of :class:`aeroloc.batch.loop.InProcessRunner` (same
    ``submit``, ``pending``, ``next_outcome``), for a caller that decides what
    to run next from the outcomes so far. Every job runs through
    :func:`aeroloc.batch.loop.attempt` on a worker; a task whose worker died
    is a failed outcome recorded from the client. A higher ``priority`` runs
    sooner (Dask priorities).
    """

    def __init__(self, client: Client, fn: Callable[[PhotoJob], T]) -> None:
        from distributed import as_completed

        self._client = client
        self._fn = fn
        self._jobs: dict[str, PhotoJob] = {}
        self._done = as_completed()
        self._run = secrets.token_hex(4)
        self._count = 0

    def submit(self, job: PhotoJob, *, priority: int = 0) -> None:
        """Send ``job`` to the scheduler."""
        self._count += 1
        future = self._client.submit(
            _attempt,
            job,
            self._fn,
            key=f"aeroloc-photo-{job.photo_id}-{self._run}-{self._count}",
            priority=priority,
            pure=False,
        )
        self._jobs[str(future.key)] = job
        self._done.add(future)

    def pending(self) -> int:
        """Jobs submitted whose outcome has not been taken."""
        return len(self._jobs)

    def next_outcome(self) -> PhotoOutcome[T]:
        """The outcome of the next job to finish (blocks until one does).

        Raises:
            ConfigError: nothing is pending.
        """
        if not self._jobs:
            raise ConfigError("no job is pending")
        future = next(self._done)
        job = self._jobs.pop(str(future.key))
        try:
            outcome: PhotoOutcome[T] = future.result()
        except Exception as exc:  # the worker died, or the result did not unpickle
            outcome = _lost(job, exc)
        return outcome


def scores_on_cluster(
    client: Client, jobs: Sequence[PhotoJob], priority: Callable[[PhotoJob], float]
) -> dict[str, float]:
    """``priority`` of every job, computed on the workers (photo id → score)."""
    if not jobs:
        return {}
    scores = client.gather(client.map(priority, list(jobs), pure=False))
    return {j.photo_id: float(s) for j, s in zip(jobs, scores, strict=True)}


def _attempt(job: PhotoJob, fn: Callable[[PhotoJob], Any]) -> PhotoOutcome[Any]:
    """:func:`aeroloc.batch.loop.attempt` imported on the worker (keeps this module light)."""
    from aeroloc.batch.loop import attempt

    return attempt(job, fn)


def _lost(job: PhotoJob, exc: BaseException) -> PhotoOutcome[Any]:
    """The failed outcome of a photo whose task did not return; recorded from the client."""
    from aeroloc.batch.loop import PhotoOutcome, record_failure
    from aeroloc.io.failures import FailureRecord, one_line_reason

    record = FailureRecord.from_exception(job.photo_id, exc, seconds=0.0)
    record = FailureRecord(
        photo_id=record.photo_id,
        reason=f"the task did not finish: {one_line_reason(exc)}",
        error_type=record.error_type,
    )
    record_failure(job, record)
    return PhotoOutcome(job=job, skipped=False, value=None, seconds=0.0, error=record.reason)
