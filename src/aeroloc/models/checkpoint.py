"""Checkpoints that rebuild their model through the registry.

A checkpoint is one ``torch.save`` file holding a plain dict::

    format          "aeroloc-checkpoint"
    version         1
    model           registry name, e.g. "effnet-lite0-siamese"
    model_config    the model's config fields (rebuilds the architecture)
    preprocessing   "binary" or "gray": how training windows were prepared
    input_size      [H, W] of one window in pixels
    desc_dim        embedding length
    data_hash       hash of the training data (or None)
    config          training config (plain values)
    extra           anything else in plain values and tensors (epoch, optimizer state...)
    state_dict      the model's parameters and buffers
    aeroloc_version the package version that wrote it

It is read with ``torch.load(weights_only=True)``, so a checkpoint cannot run
code when loaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from aeroloc import __version__
from aeroloc.errors import InvalidInputError, ModelError, OutputError
from aeroloc.files import atomic_output, require_file
from aeroloc.models.base import (
    CHECKPOINT_FORMAT,
    PREPROCESSING_MODES,
    Embedder,
    load_state_dict_checked,
    torch_load,
)
from aeroloc.models.registry import DEFAULT_MODEL, get_model

CHECKPOINT_VERSION = 1

#: The shipped, adaptively trained ``effnet-lite0-siamese`` (``make model`` rebuilds it).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "weights" / f"{DEFAULT_MODEL}.pt"


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """The contents of a checkpoint file (see the module docstring)."""

    path: Path
    model: str
    model_config: dict[str, Any]
    preprocessing: str
    input_size: tuple[int, int]
    desc_dim: int
    data_hash: str | None
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    state_dict: dict[str, Tensor] = field(default_factory=dict, repr=False)
    aeroloc_version: str = ""


def _check_plain(obj: Any, where: str) -> None:
    """Raise InvalidInputError unless ``obj`` is made of values ``weights_only`` loading accepts."""
    if obj is None or isinstance(obj, bool | int | float | str | Tensor):
        return
    if isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if not isinstance(k, str | int):
                raise InvalidInputError(f"checkpoint {where}: key {k!r} is not a str or int")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise InvalidInputError(
        f"checkpoint {where} holds a {type(obj).__name__}; only None, bool, int, float, str, "
        "tensors, lists and dicts can be stored"
    )


def save_checkpoint(
    model: Embedder,
    path: str | os.PathLike[str],
    *,
    config: Mapping[str, Any] | None = None,
    preprocessing: str | None = None,
    input_size: tuple[int, int] | None = None,
    data_hash: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` with its metadata, atomically.

    Args:
        model: a registry model.
        path: output file (``.pt``).
        config: training config, plain values.
        preprocessing: ``"binary"`` or ``"gray"``; defaults to the model's.
        input_size: (H, W); must equal the model's input size (default).
        data_hash: hash of the training data.
        extra: more plain values or tensors (epoch, optimizer state, metrics).

    Returns:
        ``path``.
    """
    spec = model.spec
    prep = spec.preprocessing if preprocessing is None else preprocessing
    if prep not in PREPROCESSING_MODES:
        raise InvalidInputError(
            f"preprocessing must be one of {', '.join(PREPROCESSING_MODES)}, got {prep!r}"
        )
    size = spec.input_size if input_size is None else (int(input_size[0]), int(input_size[1]))
    if size != spec.input_size:
        raise InvalidInputError(
            f"input_size {size} differs from {spec.name}'s input size {spec.input_size}"
        )
    cfg = dict(config or {})
    ext = dict(extra or {})
    _check_plain(cfg, "config")
    _check_plain(ext, "extra")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": spec.name,
        "model_config": model.config_dict(),
        "preprocessing": prep,
        "input_size": list(size),
        "desc_dim": spec.desc_dim,
        "data_hash": data_hash,
        "config": cfg,
        "extra": ext,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "aeroloc_version": __version__,
    }
    try:
        with atomic_output(path) as tmp:
            torch.save(payload, tmp)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from exc
    return Path(path)


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint's metadata and state dict without building the model."""
    p = require_file(path, "checkpoint")
    obj = torch_load(p, what="checkpoint")
    if not isinstance(obj, Mapping) or obj.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(
            f"{p} is not an aeroloc checkpoint (no format {CHECKPOINT_FORMAT!r}; raw weights?): "
            "give --model a checkpoint written by aeroloc train, or a model name; raw "
            "weights can start a training (aeroloc train --weights PATH)"
        )
    version = obj.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise ModelError(
            f"checkpoint {p} has format version {version!r}; this aeroloc "
            f"({__version__}) reads up to {CHECKPOINT_VERSION}: upgrade aeroloc"
        )
    try:
        size = obj["input_size"]
        return Checkpoint(
            path=p,
            model=str(obj["model"]),
            model_config=dict(obj["model_config"]),
            preprocessing=str(obj["preprocessing"]),
            input_size=(int(size[0]), int(size[1])),
            desc_dim=int(obj["desc_dim"]),
            data_hash=obj.get("data_hash"),
            config=dict(obj.get("config") or {}),
            extra=dict(obj.get("extra") or {}),
            state_dict=dict(obj["state_dict"]),
            aeroloc_version=str(obj.get("aeroloc_version", "")),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelError(f"checkpoint {p} is incomplete or corrupt: {exc!r}") from exc


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    expect_model: str | None = None,
    expect_preprocessing: str | None = None,
) -> Embedder:
    """Rebuild the model of a checkpoint through the registry, in eval mode.

    Args:
        path: checkpoint written by :func:`save_checkpoint`.
        expect_model: raise unless the checkpoint is of this model.
        expect_preprocessing: raise unless it was trained on this preprocessing.

    Raises:
        MissingFileError: no such file.
        ModelError: not a checkpoint, another model or preprocessing, or
            parameters that do not fit the rebuilt model.
    """
    ckpt = read_checkpoint(path)
    if expect_model is not None and ckpt.model != expect_model:
        raise ModelError(
            f"checkpoint {ckpt.path} holds model {ckpt.model!r}, expected {expect_model!r}: "
            f"pass a {expect_model} checkpoint or choose --model {ckpt.model}"
        )
    if expect_preprocessing is not None and ckpt.preprocessing != expect_preprocessing:
        raise ModelError(
            f"checkpoint {ckpt.path} was trained on {ckpt.preprocessing!r} windows, expected "
            f"{expect_preprocessing!r}: use the matching preprocessing or another checkpoint"
        )
    model = get_model(ckpt.model, weights=None, **ckpt.model_config)
    if model.spec.input_size != ckpt.input_size:
        raise ModelError(
            f"checkpoint {ckpt.path} records input size {ckpt.input_size} but its config "
            f"builds {model.spec.input_size}: the file is inconsistent"
        )
    load_state_dict_checked(model, ckpt.state_dict, what=f"checkpoint {ckpt.path}")
    return model.eval()


def default_model() -> tuple[Embedder, str]:
    """The shipped checkpoint, or the ImageNet ``effnet-lite0-siamese`` without one; and a label."""
    if DEFAULT_CHECKPOINT.is_file():
        return load_checkpoint(DEFAULT_CHECKPOINT), f"{DEFAULT_MODEL} (shipped checkpoint)"
    return get_model(DEFAULT_MODEL), f"{DEFAULT_MODEL} (ImageNet)"
