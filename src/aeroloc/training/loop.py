"""The training loop."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from aeroloc.errors import ConfigError, DataQualityError, ModelError
from aeroloc.files import write_json
from aeroloc.models import Embedder, get_model, model_entry, read_checkpoint
from aeroloc.models.base import load_state_dict_checked
from aeroloc.training.config import TrainConfig
from aeroloc.training.dataset import (
    DatasetManifest,
    Sample,
    combine_datasets,
    load_samples,
    read_manifest,
)
from aeroloc.training.evaluate import evaluate
from aeroloc.training.features import DenseScorer
from aeroloc.training.outputs import loss_curve, plain_values, save_training_checkpoint, sibling
from aeroloc.training.sources import BankSource, BatchSource, ImageSource
from aeroloc.training.splits import Split, split_by_group


@dataclass(frozen=True, kw_only=True)
class TrainEvent:
    """A progress report.

    Attributes:
        phase: ``"start"``, ``"mine"``, ``"step"``, ``"validate"``, ``"epoch"`` or ``"done"``.
        epoch: 0-based epoch (-1 = before training).
        epochs: planned epochs.
        step: steps done in this epoch.
        steps: steps per epoch.
        loss: running mean training loss of the epoch, when known.
        metrics: the epoch's record (phase ``"epoch"``) or validation scores.
        message: a one-line description.
    """

    phase: str
    epoch: int
    epochs: int
    step: int = 0
    steps: int = 0
    loss: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""


TrainProgress = Callable[[TrainEvent], None]


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    """What :func:`train` wrote and measured.

    Attributes:
        checkpoint: the best epoch's model (``out``).
        last_checkpoint: the last epoch with optimizer state (resume from it).
        loss_curve: PNG of training/validation loss and validation confidence.
        history_path: JSON with config, split and one record per epoch.
        history: the epoch records.
        best_epoch: 0-based epoch of ``checkpoint``.
        before: validation scores before training (None when resumed).
        best: validation scores of the best epoch.
        test: test-split scores of the best model (None without a test split).
        stopped_early: training stopped before ``epochs``.
        elapsed_s: wall-clock time of this call.
        data_hash: the dataset's hash.
        split: the split used.
    """

    checkpoint: Path
    last_checkpoint: Path
    loss_curve: Path
    history_path: Path
    history: tuple[dict[str, Any], ...]
    best_epoch: int
    before: dict[str, Any] | None
    best: dict[str, Any]
    test: dict[str, Any] | None
    stopped_early: bool
    elapsed_s: float
    data_hash: str
    split: Split

    def regression(self) -> str | None:
        """A warning when no epoch beat the untrained model on validation, else None.

        Then the checkpoint (the best *trained* epoch) ranks the truth lower
        than the starting weights did: more data, more epochs or a lower
        learning rate are needed before it is worth using.
        """
        if not self.before:
            return None
        start = self.before.get("mean_confidence")
        best = self.best.get("val_confidence")
        if start is None or best is None or not best < start:
            return None
        return (
            f"no epoch beat the untrained model: validation confidence {best:.1f} % at best, "
            f"{start:.1f} % before training"
        )


@contextmanager
def _torch_settings(threads: int | None) -> Iterator[None]:
    """Thread count and deterministic algorithms for the run, restored afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


def build_model(config: TrainConfig) -> Embedder:
    """The model to train, seeded so that its new layers start the same every run."""
    torch.manual_seed(config.seed)
    return get_model(config.model, weights=config.weights, **config.model_options)


def _param_groups(model: Embedder, config: TrainConfig) -> list[dict[str, Any]]:
    # Layers loaded from pretrained weights learn at lr, new ones faster.
    pretrained = config.weights is not None
    base: list[torch.nn.Parameter] = []
    new: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (base if pretrained and name.startswith("backbone.") else new).append(p)
    groups = []
    if base:
        groups.append({"params": base, "lr": config.lr})
    if new:
        groups.append({"params": new, "lr": config.lr * (config.head_lr_mult if base else 1.0)})
    if not groups:
        raise ModelError(f"{config.model} has no trainable parameter")
    return groups


def _optimizer(model: Embedder, config: TrainConfig) -> torch.optim.Optimizer:
    groups = _param_groups(model, config)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            groups, lr=config.lr, alpha=config.rho, eps=config.eps, weight_decay=config.weight_decay
        )
    return torch.optim.Adam(groups, lr=config.lr, eps=config.eps, weight_decay=config.weight_decay)


MIN_TRAIN_PHOTOS = 2
"""Fewest training photos :func:`train` accepts."""


def train(
    config: TrainConfig,
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    resume: str | os.PathLike[str] | None = None,
    progress: TrainProgress | None = None,
) -> TrainResult:
    """Train ``config.model`` on the dataset(s) in ``data``; write the best checkpoint to ``out``.

    Also writes ``<out stem>.last.pt`` (last epoch, optimizer state, hard
    negatives: pass it as ``resume`` to continue), ``<out stem>.history.json``
    and ``<out stem>.loss.png``.

    Args:
        config: recipe (see :func:`~aeroloc.training.config.preset`).
        data: dataset folder (``aeroloc triplets``), or several (combined).
        out: checkpoint file to write.
        resume: a checkpoint of the same model to continue from (its epoch,
            weights and, if present, optimizer state and hard negatives).
        progress: called with :class:`TrainEvent` reports.

    Raises:
        ConfigError: bad config; resume checkpoint of another model.
        DataQualityError: empty or too small dataset; no binary data for SigNet.
        ModelError: weights cannot be loaded.
    """
    t_start = time.perf_counter()
    out_path = Path(out)
    paths = [data] if isinstance(data, str | os.PathLike) else list(data)
    manifest = combine_datasets([read_manifest(p) for p in paths])
    split = split_by_group(
        manifest,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    if len(split.train) < MIN_TRAIN_PHOTOS:
        raise DataQualityError(
            f"dataset {manifest.root} leaves {len(split.train)} training photo(s) after the "
            f"split; at least {MIN_TRAIN_PHOTOS} are needed: add archives"
        )
    emit = progress or (lambda e: None)
    with _torch_settings(config.threads):
        return _train(config, manifest, split, out_path, resume, emit, t_start)


@dataclass(kw_only=True, eq=False)
class _Run:
    """What one run trains and validates on (fixed once set up)."""

    config: TrainConfig
    manifest: DatasetManifest
    split: Split
    model: Embedder
    source: BatchSource
    train_s: list[Sample]
    val_s: list[Sample]
    test_s: list[Sample]
    eval_kw: dict[str, Any]
    half: bool
    cache_dir: Path | None
    record_cfg: dict[str, Any]
    emit: TrainProgress


@dataclass(kw_only=True, eq=False)
class _Progress:
    """How far a run is (what the ``.last.pt`` checkpoint keeps to resume)."""

    history: list[dict[str, Any]] = field(default_factory=list)
    start_epoch: int = 0
    best_metric: float = -math.inf
    best_epoch: int = -1
    best_state: dict[str, Tensor] | None = None
    bad_epochs: int = 0
    before: dict[str, Any] | None = None


def _check_trainable(config: TrainConfig, model: Embedder, use_bank: bool) -> None:
    if config.loss == "rank" and not use_bank:
        raise ConfigError(
            f"the rank loss scores whole heatmaps in the dense feature domain; {model.spec.name} "
            + (
                "has no frozen trunk prefix to train it on"
                if config.dense_training
                else "needs dense_training=True for it"
            )
            + ": use loss='metric'"
        )


def _set_up(
    config: TrainConfig, manifest: DatasetManifest, split: Split, emit: TrainProgress
) -> _Run:
    """Build the model, load the samples and choose the batch source and the validation scorer."""
    # Channels-last runs EfficientNet's depthwise convolutions about 1.7x faster on CPUs.
    model = build_model(config).to(memory_format=torch.channels_last)
    spec = model.spec
    hooks = model_entry(spec.name).training
    # A model's own batch loss works on image triplets, not on feature-bank items.
    own_loss = hooks is not None and hooks.batch_loss is not None
    use_bank = config.dense_training and model.trunk_split() is not None and not own_loss
    _check_trainable(config, model, use_bank)
    all_samples = load_samples(manifest, verify=True)
    if spec.preprocessing == "binary" and any(
        s.rock is None or s.photo_binary is None for s in all_samples
    ):
        raise DataQualityError(
            f"{spec.name} trains on binary windows but the dataset has no rock mask or "
            "binary photos: build it from archives with rock_outcrop.gpkg"
        )
    train_s = [all_samples[i] for i in split.train]
    val_s = [all_samples[i] for i in split.val]
    test_s = [all_samples[i] for i in split.test]
    dense = config.eval_engine == "dense"
    half = model_entry(spec.name).half_feature_cache
    cache_dir = manifest.root / "feature-cache" if config.feature_cache else None
    source: ImageSource | BankSource
    if use_bank:
        source = BankSource(model, train_s, val_s, config, half, cache_dir)
        val_scorer: DenseScorer | None = source.val_bank
    else:
        val_scorer = (
            DenseScorer(model, val_s, half=half, cache_dir=cache_dir) if dense and val_s else None
        )
        train_scorer = (
            DenseScorer(model, train_s, half=half, cache_dir=cache_dir) if dense else None
        )
        source = ImageSource(model, train_s, val_s, config, train_scorer)
    eval_kw: dict[str, Any] = {
        "engine": config.eval_engine,
        "stride_fraction": config.eval_stride_fraction,
        "scorer": val_scorer if dense else None,
    }
    record_cfg = {
        **config.to_dict(),
        "dataset": str(manifest.root),
        "split": split.to_dict(),
        "training_windows": "dense features" if use_bank else "image crops",
    }
    return _Run(
        config=config,
        manifest=manifest,
        split=split,
        model=model,
        source=source,
        train_s=train_s,
        val_s=val_s,
        test_s=test_s,
        eval_kw=eval_kw,
        half=half,
        cache_dir=cache_dir,
        record_cfg=record_cfg,
        emit=emit,
    )


def _resumed(
    run: _Run,
    resume: str | os.PathLike[str],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
) -> _Progress:
    """The progress, weights, optimizer and hard negatives recorded in a checkpoint."""
    ckpt = read_checkpoint(resume)
    name = run.model.spec.name
    if ckpt.model != name:
        raise ConfigError(f"cannot resume {name} from {ckpt.path}: it holds model {ckpt.model!r}")
    load_state_dict_checked(run.model, ckpt.state_dict, what=f"checkpoint {ckpt.path}")
    # The model's prepare step ran in the first run: its report carries over.
    earlier = ckpt.config.get("model_steps", {})
    if isinstance(earlier, dict) and "prepare" in earlier:
        run.record_cfg.setdefault("model_steps", {})["prepare"] = earlier["prepare"]
    ex = ckpt.extra
    state = _Progress(
        start_epoch=int(ex.get("epoch", 0)),
        history=[dict(h) for h in ex.get("history", [])],
        best_metric=float(ex.get("best_metric", -math.inf)),
        best_epoch=int(ex.get("best_epoch", -1)),
        bad_epochs=int(ex.get("bad_epochs", 0)),
    )
    if "optimizer" in ex:
        optimizer.load_state_dict(ex["optimizer"])
    if "scheduler" in ex:
        scheduler.load_state_dict(ex["scheduler"])
    if ex.get("best_state_dict"):
        state.best_state = {k: v.clone() for k, v in ex["best_state_dict"].items()}
    if ex.get("hard"):
        run.source.load_hard_state(ex["hard"])
    run.emit(
        TrainEvent(
            phase="start",
            epoch=state.start_epoch,
            epochs=run.config.epochs,
            message=f"resumed from {ckpt.path} at epoch {state.start_epoch}",
        )
    )
    return state


def _model_step(run: _Run, step: str, out: Path) -> None:
    """Run the model's ``prepare`` or ``finish`` training hook, if it has one.

    Its report is recorded under ``model_steps`` in the run's config (history
    JSON and checkpoints).
    """
    hooks = model_entry(run.model.spec.name).training
    fn = None if hooks is None else getattr(hooks, step)
    if fn is None:
        return
    run.emit(
        TrainEvent(
            phase="start",
            epoch=-1,
            epochs=run.config.epochs,
            message=f"{run.model.spec.name}: {step} step",
        )
    )
    report = fn(run.model, run.train_s, run.val_s, run.config, out)
    run.record_cfg.setdefault("model_steps", {})[step] = plain_values(report)


def _before_training(run: _Run) -> _Progress:
    """The untrained model's validation scores, as the history's epoch -1."""
    state = _Progress()
    if not run.val_s:
        return state
    epochs = run.config.epochs
    run.emit(TrainEvent(phase="validate", epoch=-1, epochs=epochs, message="before training"))
    ev = evaluate(run.model, run.val_s, **run.eval_kw)
    val_loss = run.source.val_loss(run.model)
    state.before = {**ev.to_dict(), "val_loss": val_loss}
    state.history.append(
        {
            "epoch": -1,
            "train_loss": None,
            "val_loss": val_loss,
            "val_confidence": ev.mean_confidence,
            "val_recall@1": ev.recall[1],
            "val_recall@5": ev.recall[5],
            "lr": None,
            "seconds": ev.seconds,
            "hard_negatives": False,
            "mined": False,
        }
    )
    run.emit(TrainEvent(phase="epoch", epoch=-1, epochs=epochs, metrics=state.history[-1]))
    return state


def _fit_epoch(run: _Run, optimizer: torch.optim.Optimizer, epoch: int) -> tuple[float, bool]:
    """Mine hard negatives when due, then one pass over the batches.

    Returns:
        (mean training loss, whether hard negatives were mined).
    """
    config, source, model = run.config, run.source, run.model
    mined = (
        source.mines
        and epoch >= config.hard_start_epoch
        and (epoch - config.hard_start_epoch) % config.mine_every == 0
    )
    if mined:
        run.emit(
            TrainEvent(
                phase="mine",
                epoch=epoch,
                epochs=config.epochs,
                message=f"mining hard negatives on {len(run.train_s)} photos",
            )
        )
        source.mine(model, epoch)
    torch.manual_seed(config.seed * 100_003 + epoch)
    steps, batches = source.batches(epoch)
    model.train()
    total, count = 0.0, 0
    for step, batch in enumerate(batches, start=1):
        loss, n = source.loss(model, batch)
        if not torch.isfinite(loss):
            raise ModelError(
                f"training loss became {float(loss.detach())} at epoch {epoch + 1}: lower "
                "the learning rate"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * n
        count += n
        run.emit(
            TrainEvent(
                phase="step",
                epoch=epoch,
                epochs=config.epochs,
                step=step,
                steps=steps,
                loss=total / count,
            )
        )
    return total / max(count, 1), mined


def _validate_epoch(
    run: _Run,
    record: dict[str, Any],
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
) -> float:
    """Fill ``record``'s validation scores; the metric early stopping watches."""
    if not run.val_s:
        return -float(record["train_loss"])
    run.emit(TrainEvent(phase="validate", epoch=record["epoch"], epochs=run.config.epochs))
    ev = evaluate(run.model, run.val_s, **run.eval_kw)
    record["val_loss"] = run.source.val_loss(run.model)
    record["val_confidence"] = ev.mean_confidence
    record["val_recall@1"] = ev.recall[1]
    record["val_recall@5"] = ev.recall[5]
    # Confidence level (%) first; recall@1 (adds at most 1 point) breaks
    # near-ties once the confidence saturates.
    metric = ev.mean_confidence + ev.recall[1]
    scheduler.step(metric)
    return metric


def _epoch(
    run: _Run,
    state: _Progress,
    epoch: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
    out: Path,
) -> None:
    """Train, validate and checkpoint one epoch (the best one also to ``out``)."""
    t0 = time.perf_counter()
    train_loss, mined = _fit_epoch(run, optimizer, epoch)
    record: dict[str, Any] = {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": None,
        "val_confidence": None,
        "val_recall@1": None,
        "val_recall@5": None,
        "lr": optimizer.param_groups[0]["lr"],
        "hard_negatives": bool(run.source.hard),
        "mined": mined,
    }
    metric = _validate_epoch(run, record, scheduler)
    record["seconds"] = time.perf_counter() - t0
    state.history.append(record)
    model, history = run.model, state.history
    if metric > state.best_metric + run.config.min_delta:
        state.best_metric, state.best_epoch, state.bad_epochs = metric, epoch, 0
        state.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        extra = {"epoch": epoch + 1, "best_epoch": epoch, "history": history, "metrics": record}
        _save(run, out, extra)
    else:
        state.bad_epochs += 1
    last = {
        "epoch": epoch + 1,
        "history": history,
        "optimizer": optimizer.state_dict(),
        "scheduler": plain_values(scheduler.state_dict()),
        "best_metric": state.best_metric,
        "best_epoch": state.best_epoch,
        "bad_epochs": state.bad_epochs,
        "best_state_dict": state.best_state or {},
        "hard": run.source.hard_state(),
    }
    _save(run, sibling(out, ".last.pt"), last)
    run.emit(TrainEvent(phase="epoch", epoch=epoch, epochs=run.config.epochs, metrics=record))


def _save(run: _Run, path: Path, extra: dict[str, Any]) -> Path:
    return save_training_checkpoint(
        run.model, path, config=run.record_cfg, manifest=run.manifest, extra=extra
    )


def _test_scores(run: _Run, best_epoch: int) -> dict[str, Any] | None:
    """The best model's scores on the test split (None without one)."""
    if not run.test_s:
        return None
    run.emit(
        TrainEvent(
            phase="validate",
            epoch=best_epoch,
            epochs=run.config.epochs,
            message=f"test split ({len(run.test_s)} photos)",
        )
    )
    scorer = (
        DenseScorer(run.model, run.test_s, half=run.half, cache_dir=run.cache_dir)
        if run.config.eval_engine == "dense"
        else None
    )
    test_kw = {**run.eval_kw, "scorer": scorer}
    return evaluate(run.model, run.test_s, **test_kw).to_dict(with_samples=True)


def _finish(
    run: _Run, state: _Progress, out: Path, stopped_early: bool, t_start: float
) -> TrainResult:
    """Restore the best epoch, score it on the test split and write the run's files."""
    config = run.config
    if state.best_state is None:
        raise DataQualityError(
            f"no epoch was trained (resumed at epoch {state.start_epoch} of {config.epochs}): "
            "raise --epochs to continue"
        )
    run.model.load_state_dict(state.best_state)
    run.model = run.model.to(memory_format=torch.contiguous_format).eval()
    _model_step(run, "finish", out)
    history, best_epoch = state.history, state.best_epoch
    best_record = next((h for h in history if h["epoch"] == best_epoch), history[-1])
    test = _test_scores(run, best_epoch)
    elapsed = time.perf_counter() - t_start
    summary = {
        "epoch": best_epoch + 1,
        "best_epoch": best_epoch,
        "history": history,
        "metrics": best_record,
        "before": state.before or {},
        "test": test or {},
        "train_seconds": elapsed,
        "stopped_early": stopped_early,
    }
    _save(run, out, summary)
    manifest = run.manifest
    history_path = write_json(
        sibling(out, ".history.json"),
        {"config": run.record_cfg, "data_hash": manifest.data_hash, **summary},
    )
    title = f"{run.model.spec.name} on {manifest.root.name}"
    curve = loss_curve(history, sibling(out, ".loss.png"), title)
    run.emit(TrainEvent(phase="done", epoch=best_epoch, epochs=config.epochs, metrics=summary))
    return TrainResult(
        checkpoint=out,
        last_checkpoint=sibling(out, ".last.pt"),
        loss_curve=curve,
        history_path=history_path,
        history=tuple(history),
        best_epoch=best_epoch,
        before=state.before,
        best=best_record,
        test=test,
        stopped_early=stopped_early,
        elapsed_s=elapsed,
        data_hash=manifest.data_hash,
        split=run.split,
    )


def _train(
    config: TrainConfig,
    manifest: DatasetManifest,
    split: Split,
    out: Path,
    resume: str | os.PathLike[str] | None,
    emit: TrainProgress,
    t_start: float,
) -> TrainResult:
    run = _set_up(config, manifest, split, emit)
    optimizer = _optimizer(run.model, config)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=config.plateau_factor, patience=config.plateau_patience
    )
    if resume is not None:
        state = _resumed(run, resume, optimizer, scheduler)
    else:
        _model_step(run, "prepare", out)
        state = _before_training(run)
    stopped_early = False
    for epoch in range(state.start_epoch, config.epochs):
        if state.bad_epochs >= config.patience:
            stopped_early = True
            break
        _epoch(run, state, epoch, optimizer, scheduler, out)
    return _finish(run, state, out, stopped_early, t_start)
