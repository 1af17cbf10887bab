"""What a training run writes besides the model: checkpoints with their record, loss curve."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from aeroloc.files import write_png
from aeroloc.models import Embedder, save_checkpoint
from aeroloc.training.dataset import DatasetManifest


def loss_curve(history: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    ep = [h["epoch"] + 1 for h in history if h["epoch"] >= 0]
    tr = [h["train_loss"] for h in history if h["epoch"] >= 0]
    va = [h["val_loss"] for h in history if h["epoch"] >= 0]
    ax.plot(ep, tr, "o-", label="training loss")
    if any(v is not None and math.isfinite(v) for v in va):
        ax.plot(ep, va, "s-", label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ce = [h["epoch"] + 1 for h in history]
    cv = [h["val_confidence"] for h in history]
    if any(v is not None and math.isfinite(v) for v in cv):
        ax2.plot(ce, cv, "^--", color="tab:green", label="val. mean confidence level (%)")
        ax2.set_ylabel("mean confidence level (%)")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return write_png(path, fig)


def sibling(out: Path, suffix: str) -> Path:
    """``out`` with its suffix replaced by ``suffix`` (``model.pt`` → ``model.last.pt``)."""
    return out.with_name(out.stem + suffix)


def plain_values(obj: Any) -> Any:
    """State dicts with only plain values (what a checkpoint may hold)."""
    if isinstance(obj, Mapping):
        return {str(k): plain_values(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain_values(v) for v in obj]
    if obj is None or isinstance(obj, bool | int | float | str | Tensor):
        return obj
    return str(obj)


def save_training_checkpoint(
    model: Embedder,
    path: Path,
    *,
    config: dict[str, Any],
    manifest: DatasetManifest,
    extra: dict[str, Any],
) -> Path:
    return save_checkpoint(
        model,
        path,
        config=plain_values(config),
        preprocessing=model.spec.preprocessing,
        input_size=model.spec.input_size,
        data_hash=manifest.data_hash,
        extra=plain_values(extra),
    )
