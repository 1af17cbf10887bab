"""Dense-engine features of stored samples: heatmaps (DenseScorer), windows (FeatureBank)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from affine import Affine
from rasterio.crs import CRS
from torch import Tensor

from aeroloc.errors import DataQualityError, ModelError
from aeroloc.files import atomic_output
from aeroloc.heatmap.engines import (
    HeatmapConfig,
    dense_cell_scores,
    model_scale_aoi,
    to_model_input,
    window_scale,
)
from aeroloc.heatmap.grid import Heatmap, box_sums, grid_shape
from aeroloc.models import Embedder
from aeroloc.training.dataset import STORE_WINDOW_PX, Sample
from aeroloc.training.mining import pick_hard
from aeroloc.training.sampling import SamplerConfig, rotate_point, window_nodata


class DenseScorer:
    """Dense-engine heatmaps of stored samples, with the frozen trunk prefix cached.

    Computes what :func:`aeroloc.heatmap.engines.compute_heatmap` with the
    ``dense`` engine computes (the AoI resized once so a window becomes the
    model input, trunk once, head per window, nearest dense output per cell),
    but keeps each AoI's frozen-prefix feature map, so that validation and
    hard-negative mining during training only run the trainable layers.
    Models without a frozen prefix (:meth:`~aeroloc.models.Embedder.trunk_split` is None) run the
    whole trunk each time.
    """

    def __init__(
        self,
        model: Embedder,
        samples: Sequence[Sample],
        *,
        max_nodata: float = HeatmapConfig().max_nodata,
        cache: bool = True,
        half: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        self.model = model
        self.cache_dir = cache_dir
        self._key: str | None = None
        self.samples = list(samples)
        self.max_nodata = max_nodata
        self.mode = model.spec.preprocessing
        self.split = model.trunk_split() if cache else None
        self.half = half
        self._maps: dict[tuple[int, int], Tensor] = {}

    def aoi(self, i: int, k: int = 0) -> np.ndarray:
        """``[H x W]`` AoI of sample ``i`` (model's mode, NaN outside), turned by ``k`` × 90°."""
        return np.ascontiguousarray(np.rot90(self.samples[i].aoi_image(self.mode), k))

    def scale(self) -> tuple[float, float]:
        """(y, x) model pixels per stored pixel."""
        ih, iw = self.model.spec.input_size
        return ih / STORE_WINDOW_PX, iw / STORE_WINDOW_PX

    def scaled_aoi(self, aoi: np.ndarray) -> np.ndarray:
        """The AoI at model scale with NaN filled by its mean, as the dense engine feeds it."""
        finite = np.isfinite(aoi)
        fill = float(aoi[finite].mean())
        # No context cells: the dense engine's padding only shifts its map by that many cells.
        return model_scale_aoi(aoi, window_scale(self.model, STORE_WINDOW_PX), fill)

    def prefix_map(self, i: int, k: int = 0) -> Tensor:
        """``[1 x C x h x w]`` frozen-prefix map of sample ``i``'s AoI turned by ``k`` × 90°."""
        if self.split is None:
            raise ModelError(f"{self.model.spec.name} has no frozen trunk prefix to cache")
        key = (i, k % 4)
        if key not in self._maps:
            path = None
            if self.cache_dir is not None:
                sha = self.samples[i].record.sha256[:20]
                path = self.cache_dir / self._prefix_key() / f"{sha}-{self.mode}-{k % 4}.pt"
            y = None
            if path is not None and path.is_file():
                try:
                    y = torch.load(path, map_location="cpu", weights_only=True)
                except Exception:  # a corrupt cache file is recomputed
                    y = None
            if y is None:
                x = torch.from_numpy(self.scaled_aoi(self.aoi(i, k)))[None, None]
                with torch.inference_mode():
                    y = self.split[0](x.contiguous(memory_format=torch.channels_last))
                y = (y.half() if self.half else y).contiguous()
                if path is not None:
                    with atomic_output(path) as tmp:
                        torch.save(y, tmp)
            self._maps[key] = y
        return self._maps[key]

    def _prefix_key(self) -> str:
        """Hash of everything the frozen prefix depends on (model, config, frozen weights)."""
        if self._key is None:
            h = hashlib.sha256()
            h.update(
                json.dumps([self.model.spec.name, self.model.config_dict(), self.half]).encode()
            )
            # Frozen layers only: their parameters and (frozen batch norms') statistics.
            for mname, module in self.model.named_modules():
                own = list(module.named_parameters(recurse=False))
                if not own or any(p.requires_grad for _, p in own):
                    continue
                tensors = own + list(module.named_buffers(recurse=False))
                for name, t in tensors:
                    h.update(f"{mname}.{name}".encode())
                    h.update(t.detach().cpu().contiguous().numpy().tobytes())
            self._key = h.hexdigest()[:16]
        return self._key

    def trunk_map(self, i: int, k: int = 0) -> Tensor:
        """``[1 x F x h x w]`` full trunk map of the AoI (suffix over the cached prefix)."""
        if self.split is None:
            x = torch.from_numpy(self.scaled_aoi(self.aoi(i, k)))[None, None]
            return self.model.trunk(x)
        return self.split[1](self.prefix_map(i, k).float())

    def heatmap(self, i: int, stride_fraction: float = 0.25) -> Heatmap:
        """Heatmap of sample ``i`` (cells in stored pixels), as the dense engine scores it."""
        model = self.model
        sample = self.samples[i]
        aoi = self.aoi(i)
        window = STORE_WINDOW_PX
        stride_px = max(1, round(window * stride_fraction))
        shape = grid_shape(aoi.shape[0], aoi.shape[1], window, stride_px)
        valid = window_nodata(np.isfinite(aoi), window, stride_px, shape) <= self.max_nodata
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                photo = to_model_input(sample.photo_image(self.mode), model.spec.input_size)
                anchor = model.embed(torch.from_numpy(photo)[None, None])
                scores = dense_cell_scores(
                    model,
                    anchor[0],
                    self.trunk_map(i),
                    valid,
                    stride_px=stride_px,
                    input_per_px=self.scale(),
                )
        finally:
            model.train(was_training)
        return Heatmap(
            scores=scores,
            window_px=window,
            stride_px=stride_px,
            pixel_to_map=Affine.identity(),
            crs=CRS.from_epsg(3031),
            model=model.spec.name,
            engine="dense",
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class BankEntry:
    """One sample, turned by ``k`` × 90°, on the grid of dense head outputs.

    Head output ``(r, c)`` embeds the window whose feature map starts at
    prefix cell ``(r, c)``: model pixels ``(r, c) × stride``.

    Attributes:
        k: quarter turns.
        photo: ``[S x S]`` the photo in [0, 1], turned alike.
        true_cell: fractional (row, col) of the true window's head output.
        distance: ``[R x C]`` distance of each window from the truth, in windows.
        usable: ``[R x C]`` enough data and away from the map border
            (so a crop of the prefix map gives exactly the dense features).
        random: ``[N x 2]`` usable windows at least ``min_distance`` from the truth.
        blank: ``[M x 2]`` those of them with no rock and little texture.
    """

    k: int
    photo: np.ndarray
    true_cell: tuple[float, float]
    distance: np.ndarray
    usable: np.ndarray
    random: np.ndarray
    blank: np.ndarray


class FeatureBank(DenseScorer):
    """Training windows in the dense engine's feature domain.

    A window's embedding in a dense heatmap is the head over its cells of
    ``suffix(prefix(AoI))``; a suffix output cell sees only prefix cells
    within ``margin``, so a crop of the cached prefix map grown by the margin
    gives exactly the features the dense engine scores, context included.
    Training on such crops (instead of separately cut windows, whose borders
    see zero padding) trains what ``locate`` ranks. Anchors (photos) are
    embedded on their own, as at inference.
    """

    def __init__(
        self,
        model: Embedder,
        samples: Sequence[Sample],
        *,
        sampler: SamplerConfig,
        half: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        super().__init__(model, samples, half=half, cache_dir=cache_dir)
        if self.split is None:
            raise ModelError(
                f"{model.spec.name} has no frozen trunk prefix; train it on image triplets"
            )
        self.sampler = sampler
        self._prefix, self._suffix, self.margin = self.split
        self.n = model.window_map_size[0]
        self._entries: dict[tuple[int, int], BankEntry] = {}

    def entry(self, i: int, k: int = 0) -> BankEntry:
        """Geometry and negative candidates of sample ``i`` turned by ``k`` × 90°."""
        key = (i, k % 4)
        if key in self._entries:
            return self._entries[key]
        s = self.samples[i]
        cfg = self.sampler
        fmap = self.prefix_map(i, k)
        h, w = fmap.shape[-2:]
        n, m = self.n, self.margin
        rows, cols = h - n + 1, w - n + 1
        sy, sx = self.scale()
        step = self.model.stride_px
        tops = np.rint(np.arange(rows) * step / sy).astype(np.int64)
        lefts = np.rint(np.arange(cols) * step / sx).astype(np.int64)
        win = STORE_WINDOW_PX
        valid = np.ascontiguousarray(np.rot90(s.valid, k))
        area = float(win * win)
        nodata = 1.0 - box_sums(valid, win, tops, lefts) / area
        gray = np.ascontiguousarray(np.rot90(s.aoi, k)).astype(np.float64) / 255.0 * valid
        mean = box_sums(gray, win, tops, lefts) / area
        std = np.sqrt(np.maximum(box_sums(gray * gray, win, tops, lefts) / area - mean**2, 0))
        rock = (
            np.zeros((rows, cols))
            if s.rock is None
            else box_sums(np.rot90(s.rock, k), win, tops, lefts) / area
        )
        tc, tr = rotate_point(*s.record.true_center, s.aoi.shape, k)
        true_cell = ((tr - win / 2) * sy / step, (tc - win / 2) * sx / step)
        rr, cc = np.mgrid[0:rows, 0:cols]
        distance = np.hypot(rr - true_cell[0], cc - true_cell[1]) / n
        inside = (rr >= m) & (cc >= m) & (rr + n + m <= h) & (cc + n + m <= w)
        usable = inside & (nodata <= cfg.max_nodata)
        far = usable & (distance >= cfg.min_distance)
        random = np.argwhere(far)
        blank = np.empty((0, 2), dtype=np.int64)
        if random.size:
            limit = np.quantile(std[far], cfg.blank_std_quantile)
            blank = np.argwhere(far & (rock <= cfg.blank_rock_max) & (std <= limit))
        if not len(random):
            raise DataQualityError(
                f"sample {s.record.sample_id}: no window lies {cfg.min_distance} windows from "
                "the truth; enlarge the AoI buffer"
            )
        photo = np.ascontiguousarray(np.rot90(s.photo_image(self.mode), k))
        e = BankEntry(
            k=k % 4,
            photo=photo,
            true_cell=true_cell,
            distance=distance,
            usable=usable,
            random=random,
            blank=blank,
        )
        self._entries[key] = e
        return e

    def positive_cell(
        self, e: BankEntry, rng: np.random.Generator, max_shift: float
    ) -> tuple[int, int]:
        """A head output within ``max_shift`` windows of the truth on each axis (or the nearest)."""
        reach = max_shift * self.n
        opts = []
        for t in e.true_cell:
            near = range(math.ceil(t - reach), math.floor(t + reach) + 1)
            opts.append(list(near) or [round(t)])
        r = int(opts[0][rng.integers(len(opts[0]))])
        c = int(opts[1][rng.integers(len(opts[1]))])
        rows, cols = e.usable.shape
        m = self.margin
        h, w = rows + self.n - 1, cols + self.n - 1
        r = int(np.clip(r, m, h - self.n - m))
        c = int(np.clip(c, m, w - self.n - m))
        return r, c

    def window_embeddings(self, cells: Sequence[tuple[int, int, int, int]]) -> Tensor:
        """Embeddings ``[N x D]`` of windows ``(sample, k, row, col)``, with gradients."""
        n, m = self.n, self.margin
        crops = []
        for i, k, r, c in cells:
            fmap = self.prefix_map(i, k)
            crops.append(fmap[0, :, r - m : r + n + m, c - m : c + n + m])
        x = torch.stack(crops).float().contiguous(memory_format=torch.channels_last)
        y = self._suffix(x)[:, :, m : m + n, m : m + n]
        return self.model.head_from_map(y)[:, :, 0, 0]

    def anchor_embeddings(self, photos: Sequence[np.ndarray]) -> Tensor:
        """Embeddings ``[N x D]`` of photos at model input size (no gradients in the prefix)."""
        x = torch.from_numpy(np.stack(photos))[:, None].contiguous(
            memory_format=torch.channels_last
        )
        with torch.no_grad():
            pre = self._prefix(x)
        return self.model.head_from_map(self._suffix(pre))[:, :, 0, 0]

    def window_scores(self, i: int, k: int = 0) -> np.ndarray:
        """``[R x C]`` similarity of the clean photo to every dense window (no gradients)."""
        e = self.entry(i, k)
        model = self.model
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                photo = to_model_input(e.photo, model.spec.input_size)
                anchor = model.embed(torch.from_numpy(photo)[None, None])
                sims = model.similarity_map(anchor[0], self.trunk_map(i, k))
        finally:
            model.train(was_training)
        return sims.float().numpy()

    def hard_cells(self, i: int, k: int, pool: int) -> np.ndarray:
        """``[M x 2]`` the best-scoring usable windows far from the truth, half a window apart."""
        e = self.entry(i, k)
        return pick_hard(
            self.window_scores(i, k),
            e.usable & (e.distance >= self.sampler.min_distance),
            pool=pool,
            spacing=1.0,
            min_separation=0.5 * self.n,
        )
