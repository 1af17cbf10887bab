"""The bodies of ``aeroloc triplets`` and ``aeroloc train`` (progress bars, summaries)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from aeroloc.aoi import DEFAULT_BUFFER_M
from aeroloc.preprocess import AveragedHistogramThreshold
from aeroloc.training.build import build_dataset
from aeroloc.training.config import preset
from aeroloc.training.dataset import MANIFEST_NAME, DatasetManifest
from aeroloc.training.loop import TrainEvent, TrainResult, train


def triplets_command(
    archives: Sequence[Path],
    out: Path,
    *,
    buffer_m: float = DEFAULT_BUFFER_M,
    threshold: int | None = None,
    echo: Callable[[str], None] | None = None,
) -> DatasetManifest:
    """Body of ``aeroloc triplets``: build a dataset with a progress bar and print a summary.

    Args:
        archives: ``--archive`` folders (repeatable).
        out: ``--out`` dataset folder.
        buffer_m: ``--buffer-m``.
        threshold: ``--threshold`` fixed gray level (default: averaged histogram).
        echo: where the summary lines go (default ``click.echo``).
    """
    say = echo or click.echo
    thr = None if threshold is None else AveragedHistogramThreshold.fixed(threshold)
    with Progress(
        TextColumn("[bold]triplets"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def progress(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=label)

        manifest = build_dataset(archives, out, buffer_m=buffer_m, threshold=thr, progress=progress)
    groups = manifest.groups
    say(
        f"dataset {manifest.root}: {len(manifest.samples)} photos in {len(groups)} flight lines "
        f"from {len(manifest.archives)} archive(s); {len(manifest.skipped)} skipped"
    )
    for s in manifest.skipped:
        say(f"  skipped {s['archive']}/{s['photo_id']}: {s['reason']}")
    say(f"  threshold {manifest.threshold} (threshold.json), data hash {manifest.data_hash[:16]}")
    say(f"  manifest  {manifest.root / MANIFEST_NAME}")
    return manifest


def train_command(
    *,
    model: str,
    data: Path,
    out: Path,
    epochs: int | None = None,
    seed: int | None = None,
    resume: Path | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    weights: str | None = "preset",
    threads: int | None = None,
    loss: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> TrainResult:
    """Body of ``aeroloc train``: the model's preset with the given overrides and a progress bar.

    Args:
        model: ``--model`` registry name.
        data: ``--data`` dataset folder.
        out: ``--out`` checkpoint file.
        epochs, seed, lr, batch_size, threads, loss: override the preset when given.
        resume: ``--resume`` checkpoint.
        weights: ``--weights``: ``imagenet``, ``none`` (random init), a path, or
            ``"preset"`` (the preset's).
        echo: where summary lines go (default ``click.echo``).
    """
    say = echo or click.echo
    overrides: dict[str, Any] = {}
    for key, value in (
        ("epochs", epochs),
        ("seed", seed),
        ("lr", lr),
        ("batch_size", batch_size),
        ("threads", threads),
        ("loss", loss),
    ):
        if value is not None:
            overrides[key] = value
    if weights != "preset":
        overrides["weights"] = None if weights in (None, "none", "random") else weights
    config = preset(model, **overrides)

    with Progress(
        TextColumn("[bold]{task.fields[label]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None, label="start", loss="-")
        result = train(config, data, out, resume=resume, progress=_bar_updater(bar, task))
    _summarize(model, result, say)
    return result


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def _bar_updater(bar: Progress, task: TaskID) -> Callable[[TrainEvent], None]:
    """A :class:`TrainEvent` handler that moves ``bar`` and prints one line per epoch."""

    def on_event(e: TrainEvent) -> None:
        label = f"epoch {e.epoch + 1}/{e.epochs}"
        if e.phase == "step":
            bar.update(task, completed=e.step, total=e.steps, label=label, loss=_fmt(e.loss, ".4f"))
        elif e.phase in ("mine", "validate", "start"):
            bar.update(task, label=f"{label} {e.phase}")
            if e.message and e.phase == "start":
                bar.console.print(e.message)
        elif e.phase == "epoch":
            m = e.metrics
            name = "before" if e.epoch < 0 else f"epoch {e.epoch + 1:>3}"
            bar.console.print(
                f"{name}: train loss {_fmt(m.get('train_loss'), '.4f')}  val loss "
                f"{_fmt(m.get('val_loss'), '.4f')}  val confidence "
                f"{_fmt(m.get('val_confidence'))} %  recall@1 {_fmt(m.get('val_recall@1'))}  "
                f"recall@5 {_fmt(m.get('val_recall@5'))}"
            )

    return on_event


def _summarize(model: str, result: TrainResult, say: Callable[[str], None]) -> None:
    """The lines ``aeroloc train`` prints after training."""
    n_epochs = sum(1 for h in result.history if h["epoch"] >= 0)
    say(
        f"{model}: best epoch {result.best_epoch + 1} of {n_epochs}"
        f"{' (early stop)' if result.stopped_early else ''} in {result.elapsed_s / 60:.1f} min; "
        f"val confidence {_fmt(result.best.get('val_confidence'))} %"
    )
    warning = result.regression()
    if warning:
        say(f"  warning: {warning}")
    if result.test:
        say(
            f"  test split: mean confidence {_fmt(result.test['mean_confidence'])} %, "
            f"recall@1 {_fmt(result.test['recall@1'])}, recall@5 {_fmt(result.test['recall@5'])}"
        )
    for label, p in (
        ("checkpoint", result.checkpoint),
        ("resume from", result.last_checkpoint),
        ("loss curve", result.loss_curve),
        ("history", result.history_path),
    ):
        say(f"  {label:<12} {p}")
