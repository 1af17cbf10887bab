"""Training triplets from stored samples: window grids, crops, augmentation, the dataset.

At training time :class:`TripletDataset` cuts triplets: anchor = the photo;
positive = the true window jittered by at most 1/8 window (about half the
default quarter-window stride; ``AugmentConfig.max_shift``, 3/8 in the default
model's preset) with small rotations and scale changes;
negatives = random windows at least half a window from the truth, *blank*
windows (no rock, little texture: the seed thesis's models scored those high
because none were in training) and hard negatives that the current model
ranks highest (:func:`mine_hard_negatives`). 90° rotations turn the whole
triplet. Gray windows feed ``effnet-lite0-siamese`` and ``resnet50-siamese``,
binary ones ``signet``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from aeroloc.errors import ConfigError, DataQualityError, InvalidInputError
from aeroloc.heatmap.grid import box_sums, grid_shape
from aeroloc.training.dataset import STORE_WINDOW_PX, Sample


@dataclass(frozen=True, kw_only=True)
class AugmentConfig:
    """Training-time augmentation.

    Attributes:
        rot90: turn the whole triplet by a random multiple of 90°.
        max_rotation_deg: windows turn by up to ± this (on top of the catalog's
            own heading error, which is in the data already).
        max_scale: windows are cut up to ± this fraction larger or smaller
            (altitude error).
        max_shift: the positive's centre moves by up to ± this fraction of a
            window along each axis (triplets only: the rank loss of
            :class:`~aeroloc.training.sources.BankSource` scores every window).
        brightness: photo brightness offset up to ± this.
        contrast: photo contrast factor within ``1 ± contrast``.
        gamma: photo gamma ``exp(± gamma)``.
        grain: photo grain (Gaussian) standard deviation up to this.
        window_photometric: windows get this share of the photo's photometric changes.
    """

    rot90: bool = True
    max_rotation_deg: float = 6.0
    max_scale: float = 0.06
    max_shift: float = 0.125
    brightness: float = 0.08
    contrast: float = 0.2
    gamma: float = 0.25
    grain: float = 0.03
    window_photometric: float = 0.3

    def __post_init__(self) -> None:
        for name in ("max_rotation_deg", "brightness", "grain"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"augment {name} must be ≥ 0, got {getattr(self, name)}")
        for name in ("max_scale", "max_shift", "contrast", "gamma", "window_photometric"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"augment {name} must be in [0, 1), got {getattr(self, name)}")

    @classmethod
    def none(cls) -> AugmentConfig:
        """No augmentation at all (validation)."""
        return cls(
            rot90=False,
            max_rotation_deg=0.0,
            max_scale=0.0,
            max_shift=0.0,
            brightness=0.0,
            contrast=0.0,
            gamma=0.0,
            grain=0.0,
            window_photometric=0.0,
        )


@dataclass(frozen=True, kw_only=True)
class SamplerConfig:
    """Which negatives a triplet gets.

    Attributes:
        negatives: negatives per anchor.
        blank_fraction: share of negatives that are blank windows.
        hard_fraction: share of negatives taken from the mined pool (once mined).
        min_distance: negatives' centres lie at least this many windows from the truth.
        grid_fraction: candidate windows lie on a grid of this fraction of a window.
        max_nodata: largest NaN share of a negative window.
        blank_rock_max: a blank window holds at most this share of rock.
        blank_std_quantile: ... and its gray standard deviation is in this lowest quantile.
        hard_pool: hardest windows kept per photo by :func:`mine_hard_negatives`.
    """

    negatives: int = 2
    blank_fraction: float = 0.25
    hard_fraction: float = 0.5
    min_distance: float = 0.5
    grid_fraction: float = 0.25
    max_nodata: float = 0.25
    blank_rock_max: float = 0.01
    blank_std_quantile: float = 0.3
    hard_pool: int = 8

    def __post_init__(self) -> None:
        if not (isinstance(self.negatives, int) and self.negatives >= 1):
            raise ConfigError(f"negatives must be an integer ≥ 1, got {self.negatives!r}")
        if not (isinstance(self.hard_pool, int) and self.hard_pool >= 1):
            raise ConfigError(f"hard_pool must be an integer ≥ 1, got {self.hard_pool!r}")
        for name in ("blank_fraction", "hard_fraction", "blank_rock_max", "blank_std_quantile"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.blank_fraction + self.hard_fraction > 1:
            raise ConfigError("blank_fraction + hard_fraction must be ≤ 1")
        if not 0 < self.grid_fraction <= 1:
            raise ConfigError(f"grid_fraction must be in (0, 1], got {self.grid_fraction}")
        if not self.min_distance >= 0:
            raise ConfigError(f"min_distance must be ≥ 0, got {self.min_distance}")
        if not 0 <= self.max_nodata < 1:
            raise ConfigError(f"max_nodata must be in [0, 1), got {self.max_nodata}")


def _box_sums(img: np.ndarray, side: int, stride: int, shape: tuple[int, int]) -> np.ndarray:
    """``[R x C]`` sums of ``img`` over every window of the grid (summed-area table)."""
    return box_sums(img, side, np.arange(shape[0]) * stride, np.arange(shape[1]) * stride)


def rotate_point(x: float, y: float, shape_hw: tuple[int, int], k: int) -> tuple[float, float]:
    """Where pixel point (x, y) of an ``[H x W]`` image lands after ``np.rot90(image, k)``."""
    h, w = shape_hw
    for _ in range(k % 4):
        x, y = y, w - x
        h, w = w, h
    return x, y


def window_nodata(
    valid: np.ndarray, window_px: int, stride_px: int, shape: tuple[int, int]
) -> np.ndarray:
    """``[R x C]`` NaN share of every grid window (as the heatmap engines count it)."""
    area = float(window_px * window_px)
    return 1.0 - _box_sums(valid, window_px, stride_px, shape) / area


@dataclass(frozen=True, kw_only=True, eq=False)
class WindowGrid:
    """Candidate negative windows of one sample, on a grid of ``stride_px``.

    Attributes:
        stride_px: grid step in stored pixels (window at (r, c) starts at
            ``(r, c) * stride_px``).
        shape: (R, C) of the grid (the heatmap grid at the same stride).
        random: ``[N x 2]`` (row, col) of valid windows far enough from the truth.
        blank: ``[M x 2]`` the blank ones among them (may be empty).
    """

    stride_px: int
    shape: tuple[int, int]
    random: np.ndarray
    blank: np.ndarray
    distance: np.ndarray = field(repr=False)


def window_grid(sample: Sample, config: SamplerConfig) -> WindowGrid:
    """Classify the grid windows of ``sample`` into random and blank negatives."""
    s = STORE_WINDOW_PX
    stride = max(1, round(s * config.grid_fraction))
    h, w = sample.aoi.shape
    shape = grid_shape(h, w, s, stride)
    area = float(s * s)
    nodata = window_nodata(sample.valid, s, stride, shape)
    g = sample.aoi.astype(np.float64) / 255.0 * sample.valid
    mean = _box_sums(g, s, stride, shape) / area
    sq = _box_sums(g * g, s, stride, shape) / area
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    rock = (
        np.zeros(shape) if sample.rock is None else _box_sums(sample.rock, s, stride, shape) / area
    )
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    tc, tr = sample.record.true_center
    dist = np.hypot(cc * stride + s / 2 - tc, rr * stride + s / 2 - tr) / s
    ok = (nodata <= config.max_nodata) & (dist >= config.min_distance)
    random = np.argwhere(ok)
    blank = np.empty((0, 2), dtype=np.int64)
    if random.size:
        flat = ok & (rock <= config.blank_rock_max)
        if flat.any():
            limit = np.quantile(std[ok], config.blank_std_quantile)
            blank = np.argwhere(flat & (std <= limit))
    return WindowGrid(stride_px=stride, shape=shape, random=random, blank=blank, distance=dist)


def crop_window(
    image: np.ndarray,
    valid: np.ndarray,
    center: tuple[float, float],
    *,
    out_hw: tuple[int, int],
    side_px: float = STORE_WINDOW_PX,
    angle_deg: float = 0.0,
) -> np.ndarray:
    """Cut a (rotated) square window and resize it to the model input, as the engines do.

    Args:
        image: ``[H x W]`` uint8 (0–255) or float32 (0–1), meaningful where ``valid``.
        valid: ``[H x W]`` bool.
        center: (col, row) of the window centre (pixel corners at integers).
        out_hw: model input (h, w).
        side_px: window side in ``image`` pixels.
        angle_deg: the window turns counter-clockwise on the image by this.

    Returns:
        ``[h x w]`` float32 in [0, 1]; pixels outside ``valid`` take the
        window's mean (as the ``batched`` engine does).
    """
    s = STORE_WINDOW_PX
    k = side_px / s
    a = math.radians(angle_deg)
    ca, sa = math.cos(a) * k, math.sin(a) * k
    # OpenCV puts pixel centres at integers: shift the centre and the half side by 0.5.
    cx, cy = center[0] - 0.5, center[1] - 0.5
    half = s / 2 - 0.5
    # Output pixel (u, v) → image (x, y): rotate and scale about the window centre.
    m = np.array(
        [
            [ca, sa, cx - ca * half - sa * half],
            [-sa, ca, cy + sa * half - ca * half],
        ],
        dtype=np.float64,
    )
    src = image if image.dtype == np.uint8 else image.astype(np.float32)
    crop = cv2.warpAffine(src, m, (s, s), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    crop = crop.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    ok = cv2.warpAffine(
        valid.astype(np.uint8), m, (s, s), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    ).astype(bool)
    if not ok.all():
        fill = float(crop[ok].mean()) if ok.any() else 0.5
        crop = np.where(ok, crop, fill)
    h, w = out_hw
    out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA if h <= s else cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def augment_photo(
    photo: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, *, binary: bool = False
) -> np.ndarray:
    """A photo ``[h x w]`` in [0, 1] with small rotation/scale, photometric changes and grain.

    The rotation (± ``max_rotation_deg``) and scale (± ``max_scale``) act like
    the catalog's heading and altitude errors; borders are mirrored.
    """
    h, w = photo.shape
    ang = rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)
    scale = math.exp(rng.uniform(-1, 1) * math.log1p(cfg.max_scale))
    out = photo.astype(np.float32)
    if ang or scale != 1.0:
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), ang, scale)
        out = np.asarray(
            cv2.warpAffine(
                out, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
            ),
            dtype=np.float32,
        )
    if binary:
        return _flip_noise((out >= 0.5).astype(np.float32), rng, cfg.grain / 3)
    return _photometric(out, rng, cfg, 1.0)


def _photometric(
    x: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, strength: float
) -> np.ndarray:
    if strength <= 0:
        return x
    g = math.exp(rng.uniform(-cfg.gamma, cfg.gamma) * strength)
    c = 1.0 + rng.uniform(-cfg.contrast, cfg.contrast) * strength
    b = rng.uniform(-cfg.brightness, cfg.brightness) * strength
    y = np.power(np.clip(x, 0.0, 1.0), g)
    m = float(y.mean())
    y = (y - m) * c + m + b
    sigma = rng.uniform(0.0, cfg.grain) * strength
    if sigma > 0:
        y = y + rng.normal(0.0, sigma, size=y.shape)
    return np.clip(y, 0.0, 1.0).astype(np.float32)


def _flip_noise(x: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    if p <= 0:
        return x
    flips = rng.random(x.shape) < p
    return np.where(flips, 1.0 - x, x).astype(np.float32)


class TripletDataset(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Triplets cut on the fly from loaded samples; deterministic in (seed, epoch, index).

    Item ``i`` belongs to sample ``i % len(samples)``; an epoch of
    ``len(samples) * items_per_sample`` items visits every photo that often.

    Each item is a dict of float tensors in [0, 1]: ``anchor`` ``[1 x h x w]``,
    ``positive`` ``[1 x h x w]``, ``negatives`` ``[K x 1 x h x w]`` and
    ``kinds`` ``[K]`` (0 random, 1 blank, 2 hard).
    """

    KINDS = ("random", "blank", "hard")

    def __init__(
        self,
        samples: Sequence[Sample],
        *,
        mode: str,
        input_hw: tuple[int, int],
        augment: AugmentConfig | None = None,
        sampler: SamplerConfig | None = None,
        items_per_sample: int = 1,
        seed: int = 0,
    ) -> None:
        if not samples:
            raise InvalidInputError("no samples: a triplet dataset needs at least one photo")
        if mode not in ("gray", "binary"):
            raise ConfigError(f"mode must be 'gray' or 'binary', got {mode!r}")
        if items_per_sample < 1:
            raise ConfigError(f"items_per_sample must be ≥ 1, got {items_per_sample}")
        self.samples = list(samples)
        self.mode = mode
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.augment = augment or AugmentConfig()
        self.sampler = sampler or SamplerConfig()
        self.items_per_sample = items_per_sample
        self.seed = int(seed)
        self.epoch = 0
        self.grids = [window_grid(s, self.sampler) for s in self.samples]
        for s, g in zip(self.samples, self.grids, strict=True):
            if not len(g.random):
                raise DataQualityError(
                    f"sample {s.record.sample_id}: no window of its AoI lies "
                    f"{self.sampler.min_distance} windows from the truth; enlarge the buffer"
                )
        self.hard: dict[int, np.ndarray] = {}
        self._photos = [s.photo_image(mode) for s in self.samples]
        self._aois = [
            s.aoi if mode == "gray" else np.where(s.rock_mask(), 0, 255).astype(np.uint8)
            for s in self.samples
        ]

    def __len__(self) -> int:
        return len(self.samples) * self.items_per_sample

    def set_epoch(self, epoch: int) -> None:
        """Items of another epoch get other random draws."""
        self.epoch = int(epoch)

    def set_hard_negatives(self, pools: dict[int, np.ndarray]) -> None:
        """Hard windows per sample index: ``[M x 2]`` (row, col) on that sample's grid."""
        self.hard = {int(k): np.asarray(v, dtype=np.int64).reshape(-1, 2) for k, v in pools.items()}

    def _negative_center(self, i: int, kind: int, rng: np.random.Generator) -> tuple[float, float]:
        g = self.grids[i]
        pool = {0: g.random, 1: g.blank, 2: self.hard.get(i, np.empty((0, 2)))}[kind]
        if not len(pool):
            pool = g.random
        r, c = pool[rng.integers(len(pool))]
        s = STORE_WINDOW_PX
        tc, tr = self.samples[i].record.true_center
        base = (c * g.stride_px + s / 2, r * g.stride_px + s / 2)
        for _ in range(4):
            dx, dy = rng.uniform(-0.5, 0.5, size=2) * g.stride_px
            cand = (base[0] + dx, base[1] + dy)
            if math.hypot(cand[0] - tc, cand[1] - tr) >= self.sampler.min_distance * s:
                return cand
        return base

    def _kinds(self, rng: np.random.Generator, i: int) -> list[int]:
        # Each negative's kind is drawn with the configured odds; hard only once mined.
        blank = self.sampler.blank_fraction
        hard = self.sampler.hard_fraction if len(self.hard.get(i, ())) else 0.0
        u = rng.random(self.sampler.negatives)
        return [1 if x < blank else 2 if x < blank + hard else 0 for x in u]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        i = index % len(self.samples)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        cfg = self.augment
        sample = self.samples[i]
        aoi, valid = self._aois[i], sample.valid
        hw = self.input_hw
        s = STORE_WINDOW_PX

        def geo() -> tuple[float, float]:
            ang = rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)
            scale = math.exp(rng.uniform(-1, 1) * math.log1p(cfg.max_scale))
            return ang, s * scale

        tc, tr = sample.record.true_center
        shift = rng.uniform(-cfg.max_shift, cfg.max_shift, size=2) * s
        ang, side = geo()
        pos = crop_window(
            aoi, valid, (tc + shift[0], tr + shift[1]), out_hw=hw, side_px=side, angle_deg=ang
        )
        kinds = self._kinds(rng, i)
        negs = []
        for kind in kinds:
            ang, side = geo()
            center = self._negative_center(i, kind, rng)
            negs.append(crop_window(aoi, valid, center, out_hw=hw, side_px=side, angle_deg=ang))
        photo = self._photos[i]
        interp = cv2.INTER_AREA if hw[0] <= s else cv2.INTER_LINEAR
        anchor = np.clip(cv2.resize(photo, (hw[1], hw[0]), interpolation=interp), 0, 1)
        if self.mode == "gray":
            anchor = _photometric(anchor, rng, cfg, 1.0)
            pos = _photometric(pos, rng, cfg, cfg.window_photometric)
            negs = [_photometric(n, rng, cfg, cfg.window_photometric) for n in negs]
        else:
            anchor = _flip_noise(anchor, rng, cfg.grain / 3)
        k90 = int(rng.integers(4)) if cfg.rot90 and hw[0] == hw[1] else 0
        if cfg.rot90 and hw[0] != hw[1]:
            k90 = 2 * int(rng.integers(2))  # non-square inputs only turn by 180°

        def t(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(np.rot90(x, k90)))[None].float()

        return {
            "anchor": t(anchor),
            "positive": t(pos),
            "negatives": torch.stack([t(n) for n in negs]),
            "kinds": torch.tensor(kinds, dtype=torch.int64),
            "sample": torch.tensor(i, dtype=torch.int64),
        }
