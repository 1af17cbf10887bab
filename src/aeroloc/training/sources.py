"""The two batch sources of the training loop: image triplets and dense feature-bank items."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from aeroloc.heatmap.engines import to_model_input
from aeroloc.models import Embedder, heatmap_rank_loss, loss_for_triplets, model_entry
from aeroloc.training.config import TrainConfig
from aeroloc.training.dataset import Sample
from aeroloc.training.features import BankEntry, DenseScorer, FeatureBank
from aeroloc.training.mining import mine_hard_negatives
from aeroloc.training.sampling import AugmentConfig, TripletDataset, augment_photo

#: Training items of a feature bank: ``(sample, photo, turn)`` index triples.
Items = Sequence[tuple[int, int, int]]
#: Mined hard negatives: sample index → (turn, ``[M x 2]`` grid cells).
HardPool = Mapping[int, tuple[int, np.ndarray]]


class BatchSource(Protocol):
    """What the training loop needs of a batch source (ImageSource, BankSource)."""

    @property
    def mines(self) -> bool:
        """Whether hard negatives are mined (the rank loss already sees every window)."""

    @property
    def hard(self) -> Mapping[int, Any]:
        """The mined hard negatives per training sample."""

    def mine(self, model: Embedder, epoch: int) -> None:
        """Mine hard negatives with the current model."""

    def batches(self, epoch: int) -> tuple[int, Iterator[Any]]:
        """(steps, batches) of one epoch."""

    def loss(self, model: Embedder, batch: Any) -> tuple[Tensor, int]:
        """(loss with gradients, items in the batch)."""

    def val_loss(self, model: Embedder) -> float | None:
        """Mean validation loss without gradients (None without validation photos)."""

    def hard_state(self) -> dict[str, Any]:
        """The hard negatives as checkpoint values."""

    def load_hard_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`hard_state` (resume)."""


def batch_loss(model: Embedder, batch: dict[str, Tensor], margin: float | None) -> Tensor:
    """Loss over every (anchor, positive, negative_k) of a batch, one forward pass.

    A model with its own loss (``batch_loss`` of its registry entry's
    :class:`~aeroloc.models.registry.TrainingHooks`) computes that instead.
    """
    hooks = model_entry(model.spec.name).training
    if hooks is not None and hooks.batch_loss is not None:
        return hooks.batch_loss(model, batch, margin)
    a, p, n = batch["anchor"], batch["positive"], batch["negatives"]
    b, k = n.shape[0], n.shape[1]
    x = torch.cat([a, p, n.flatten(0, 1)])
    if x.shape[1] != model.spec.channels:
        x = x.expand(-1, model.spec.channels, -1, -1)
    emb = model.embed(x.contiguous(memory_format=torch.channels_last))
    ea, ep, en = emb[:b], emb[b : 2 * b], emb[2 * b :]
    return loss_for_triplets(
        model.spec,
        ea.repeat_interleave(k, dim=0),
        ep.repeat_interleave(k, dim=0),
        en,
        margin=margin,
    )


def _loader(ds: TripletDataset, batch_size: int, seed: int) -> torch.utils.data.DataLoader[Any]:
    g = torch.Generator()
    g.manual_seed(seed)
    return torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=True, generator=g, num_workers=0
    )


def _mean_loss(model: Embedder, ds: TripletDataset, batch_size: int, margin: float | None) -> float:
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ds), batch_size):
            items = [ds[i] for i in range(start, min(len(ds), start + batch_size))]
            batch = {
                k: torch.stack([it[k] for it in items]) for k in ("anchor", "positive", "negatives")
            }
            total += float(batch_loss(model, batch, margin)) * len(items)
            n += len(items)
    return total / max(n, 1)


class ImageSource:
    """Image triplets (:class:`TripletDataset`): every window is cut and embedded on its own."""

    def __init__(
        self,
        model: Embedder,
        train_s: Sequence[Sample],
        val_s: Sequence[Sample],
        config: TrainConfig,
        scorer: DenseScorer | None,
    ) -> None:
        spec = model.spec
        self.config = config
        self.samples = list(train_s)
        self.ds = TripletDataset(
            train_s,
            mode=spec.preprocessing,
            input_hw=spec.input_size,
            augment=config.augment,
            sampler=config.sampler,
            items_per_sample=config.items_per_sample,
            seed=config.seed,
        )
        self.val_ds = (
            TripletDataset(
                val_s,
                mode=spec.preprocessing,
                input_hw=spec.input_size,
                augment=AugmentConfig.none(),
                sampler=replace(config.sampler, hard_fraction=0.0),
                items_per_sample=2,
                seed=config.seed + 7919,
            )
            if val_s
            else None
        )
        self.scorer = scorer
        self.hard: dict[int, np.ndarray] = {}
        self.mines = True

    def mine(self, model: Embedder, epoch: int) -> None:
        self.hard = mine_hard_negatives(
            model,
            self.samples,
            self.ds.grids,
            pool=self.config.sampler.hard_pool,
            min_distance=self.config.sampler.min_distance,
            engine="dense" if self.config.eval_engine == "dense" else "batched",
            heatmap=None if self.scorer is None else self.scorer.heatmap,
        )
        self.ds.set_hard_negatives(self.hard)

    def batches(self, epoch: int) -> tuple[int, Iterator[Any]]:
        self.ds.set_epoch(epoch)
        loader = _loader(self.ds, self.config.batch_size, self.config.seed * 7_919 + epoch)
        return len(loader), iter(loader)

    def loss(self, model: Embedder, batch: Any) -> tuple[Tensor, int]:
        return batch_loss(model, batch, self.config.margin), int(batch["anchor"].shape[0])

    def val_loss(self, model: Embedder) -> float | None:
        if self.val_ds is None:
            return None
        return _mean_loss(model, self.val_ds, self.config.batch_size, self.config.margin)

    def hard_state(self) -> dict[str, Any]:
        return {str(i): torch.from_numpy(v) for i, v in self.hard.items()}

    def load_hard_state(self, state: Mapping[str, Any]) -> None:
        self.hard = {int(i): np.asarray(v.numpy()) for i, v in state.items()}
        self.ds.set_hard_negatives(self.hard)


class BankSource:
    """Training items in the dense engine's feature domain (:class:`FeatureBank`).

    Anchors are augmented photos embedded on their own; windows come from the
    cached AoI prefix maps (turned by 0/180° or all quarter turns), embedded
    exactly as the dense engine embeds them. With the metric loss an item is
    a triplet set (positive and sampled negatives); with the rank loss it is
    the photo's whole similarity map.
    """

    def __init__(
        self,
        model: Embedder,
        train_s: Sequence[Sample],
        val_s: Sequence[Sample],
        config: TrainConfig,
        half: bool,
        cache_dir: Path | None,
    ) -> None:
        self.config = config
        self.model = model
        self.bank = FeatureBank(
            model, train_s, sampler=config.sampler, half=half, cache_dir=cache_dir
        )
        self.val_bank = (
            FeatureBank(
                model,
                val_s,
                sampler=replace(config.sampler, hard_fraction=0.0),
                half=half,
                cache_dir=cache_dir,
            )
            if val_s
            else None
        )
        self.rotations = {1: (0,), 2: (0, 2), 4: (0, 1, 2, 3)}[config.bank_rotations]
        self.hard: dict[int, tuple[int, np.ndarray]] = {}
        self.epoch = 0
        # The rank loss already sees every window: nothing to mine.
        self.mines = config.loss == "metric"

    def mine(self, model: Embedder, epoch: int) -> None:
        for i in range(len(self.bank.samples)):
            rng = np.random.default_rng([self.config.seed, epoch, i, 17])
            k = int(self.rotations[rng.integers(len(self.rotations))])
            self.hard[i] = (k, self.bank.hard_cells(i, k, self.config.sampler.hard_pool))

    def batches(self, epoch: int) -> tuple[int, Iterator[Any]]:
        self.epoch = epoch
        n = len(self.bank.samples)
        items = [(i, j) for i in range(n) for j in range(self.config.items_per_sample)]
        order = np.random.default_rng([self.config.seed, epoch, 29]).permutation(len(items))
        bs = self.config.batch_size
        chunks = [
            [(epoch, *items[t]) for t in order[start : start + bs]]
            for start in range(0, len(items), bs)
        ]
        return len(chunks), iter(chunks)

    def _view(
        self,
        bank: FeatureBank,
        item: tuple[int, int, int],
        augment: AugmentConfig,
        hard: HardPool,
    ) -> tuple[np.random.Generator, BankEntry, np.ndarray]:
        """An item's random stream, its AoI entry (turned) and its augmented photo.

        The turn is the mined one when the photo has hard negatives, a random
        one of ``rotations`` in training, none in validation. The photo is at
        model input size.
        """
        epoch, i, j = item
        rng = np.random.default_rng([self.config.seed, epoch, i, j])
        if i in hard:
            k = hard[i][0]
        elif bank is self.bank:
            k = int(self.rotations[rng.integers(len(self.rotations))])
        else:
            k = 0
        e = bank.entry(i, k)
        spec = self.model.spec
        photo = augment_photo(e.photo, rng, augment, binary=spec.preprocessing == "binary")
        return rng, e, to_model_input(photo, spec.input_size)

    def _triplets(
        self, bank: FeatureBank, items: Items, augment: AugmentConfig, hard: HardPool
    ) -> Tensor:
        cfg = self.config.sampler
        spec = self.model.spec
        photos, cells = [], []
        for item in items:
            rng, e, photo = self._view(bank, item, augment, hard)
            i, k = item[1], e.k
            photos.append(photo)
            r, c = bank.positive_cell(e, rng, augment.max_shift)
            cells.append((i, k, r, c))
            pool_hard = hard[i][1] if i in hard and hard[i][0] == k else np.empty((0, 2))
            for u in rng.random(cfg.negatives):
                if u < cfg.blank_fraction and len(e.blank):
                    pool = e.blank
                elif u < cfg.blank_fraction + cfg.hard_fraction and len(pool_hard):
                    pool = pool_hard
                else:
                    pool = e.random
                r, c = pool[rng.integers(len(pool))]
                cells.append((i, k, int(r), int(c)))
        anchors = bank.anchor_embeddings(photos)
        windows = bank.window_embeddings(cells)
        kk = cfg.negatives + 1
        windows = windows.view(len(items), kk, -1)
        neg = windows[:, 1:].reshape(len(items) * cfg.negatives, -1)
        return loss_for_triplets(
            spec,
            anchors.repeat_interleave(cfg.negatives, dim=0),
            windows[:, 0].repeat_interleave(cfg.negatives, dim=0),
            neg,
            margin=self.config.margin,
        )

    def _ranked(self, bank: FeatureBank, items: Items, augment: AugmentConfig) -> Tensor:
        """Mean :func:`heatmap_rank_loss` of each item's photo over its whole AoI."""
        # The heatmap's grid (a window stride apart) falls anywhere relative to the
        # truth; its cell nearest the truth is up to half a stride away on each axis.
        stride = self.config.eval_stride_fraction * bank.n
        photos, views, truths = [], [], []
        for item in items:
            rng, e, photo = self._view(bank, item, augment, {})
            photos.append(photo)
            views.append((item[1], e))
            dr, dc = rng.uniform(-stride / 2, stride / 2, 2)
            truths.append((e.true_cell[0] + dr, e.true_cell[1] + dc))
        anchors = bank.anchor_embeddings(photos)
        losses = []
        for anchor, (i, e), truth in zip(anchors, views, truths, strict=True):
            scores = self.model.similarity_map(anchor, bank.trunk_map(i, e.k))
            negatives = e.usable & (e.distance >= self.config.sampler.min_distance)
            losses.append(
                heatmap_rank_loss(
                    scores.float(),
                    truth,
                    torch.from_numpy(negatives),
                    tau=self.config.rank_tau,
                    stencil_step=stride,
                )
            )
        return torch.stack(losses).mean()

    def items_loss(
        self, bank: FeatureBank, items: Items, augment: AugmentConfig, hard: HardPool
    ) -> Tensor:
        """The loss of ``items`` ((sample, photo, turn) triples): rank or triplet."""
        if self.config.loss == "rank":
            return self._ranked(bank, items, augment)
        return self._triplets(bank, items, augment, hard)

    def loss(self, model: Embedder, batch: Any) -> tuple[Tensor, int]:
        return self.items_loss(self.bank, batch, self.config.augment, self.hard), len(batch)

    def val_loss(self, model: Embedder) -> float | None:
        if self.val_bank is None:
            return None
        items = [(0, i, j) for i in range(len(self.val_bank.samples)) for j in range(2)]
        model.eval()
        total = 0.0
        bs = self.config.batch_size
        with torch.no_grad():
            for start in range(0, len(items), bs):
                chunk = items[start : start + bs]
                loss = self.items_loss(self.val_bank, chunk, AugmentConfig.none(), {})
                total += float(loss) * len(chunk)
        return total / len(items)

    def hard_state(self) -> dict[str, Any]:
        return {str(i): {"k": k, "cells": torch.from_numpy(v)} for i, (k, v) in self.hard.items()}

    def load_hard_state(self, state: Mapping[str, Any]) -> None:
        self.hard = {
            int(i): (int(v["k"]), np.asarray(v["cells"].numpy())) for i, v in state.items()
        }
