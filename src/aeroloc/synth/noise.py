"""Random fields: smooth noise, ridged multifractal terrain, and a periodic fine-detail tile.

All functions take a :class:`numpy.random.Generator`; nothing touches a global RNG.
Fields are built on lattices much coarser than the output and upsampled with
smooth (slope-continuous) kernels, so a 4000² field costs a few full-size
array operations and no hillshade shows a lattice.
"""

from __future__ import annotations

import math
from typing import ClassVar

import cv2
import numpy as np
import scipy.fft

CELLS_PER_WAVELENGTH = 8.0
"""Lattice cells per nominal wavelength of a noise octave."""


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 at ``edge0`` to 1 at ``edge1`` (float32, same shape as ``x``)."""
    t = ramp(edge0, edge1, x)
    out = t * t
    t *= np.float32(-2.0)
    t += np.float32(3.0)
    out *= t
    return out


def ramp(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Linear step from 0 at ``edge0`` to 1 at ``edge1`` (float32); cheaper than smoothstep."""
    t = np.subtract(x, np.float32(edge0), dtype=np.float32)
    t *= np.float32(1.0 / (edge1 - edge0))
    return np.clip(t, 0.0, 1.0, out=t)


def _lattice(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """White noise blurred over about two cells, zero-mean and unit-variance ``[H x W]``."""
    # uniform draws are cheaper than normal ones; blurred, their sum is Gaussian anyway
    cells: np.ndarray = rng.random(shape, dtype=np.float32)
    cells = cv2.GaussianBlur(cells, (0, 0), 2.0, borderType=cv2.BORDER_REFLECT)
    return _normalise(cells)


def _normalise(field: np.ndarray) -> np.ndarray:
    sub = field[::3, ::3] if field.size > 90_000 else field
    field -= np.float32(sub.mean())
    field *= np.float32(1.0 / max(float(sub.std()), 1e-6))
    return field


def smooth_upsample(
    field: np.ndarray, size: tuple[int, int], step: float, *, crop: bool = False
) -> np.ndarray:
    """Upsample ``field`` to ``size`` (W, H) when its cells are ``step`` output px apart.

    Gaussian-pyramid doublings (``pyrUp``) while the factor left is ≥ 2, then
    a bilinear resampling by less than 2. Bicubic or bilinear resizing by
    large factors leaves slope kinks at every cell that show as a lattice in
    any hillshade; pyramid upsampling is smooth. With ``crop``, ``size`` is
    the top-left part of the full upsampled field (cells exactly ``step``
    apart); otherwise the field is stretched to ``size``.
    """
    out = field
    while step >= 2.0:
        out = cv2.pyrUp(out)
        step /= 2.0
    h, w = out.shape[:2]
    if (w, h) == size:
        return out
    if not crop:
        return cv2.resize(out, size, interpolation=cv2.INTER_LINEAR)
    # output pixel centre j ↔ input centre (j + 0.5) / step - 0.5
    m = np.array([[1 / step, 0, 0.5 / step - 0.5], [0, 1 / step, 0.5 / step - 0.5]])
    return cv2.warpAffine(
        out, m, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT
    )


def _to_grid(lattice: np.ndarray, step: float, shape: tuple[int, int]) -> np.ndarray:
    """Upsample a lattice of cells ``step`` px apart onto the grid ``shape`` (top-left aligned)."""
    h, w = shape
    if step <= 1.0:
        return np.ascontiguousarray(lattice[:h, :w])
    return smooth_upsample(lattice, (w, h), step, crop=True)


def _octaves(px_m: float, longest_m: float, shortest_m: float) -> list[float]:
    wls: list[float] = []
    wl = longest_m
    while wl >= max(shortest_m, CELLS_PER_WAVELENGTH * px_m) or not wls:
        wls.append(wl)
        wl /= 2.0
    return wls


def _levels(shape: tuple[int, int], n_levels: int, finest_step: float) -> list[tuple[int, int]]:
    """Lattice sizes, coarse to fine, each exactly half the next (so 2× resizes align)."""
    k = 2 ** (n_levels - 1)
    fh = math.ceil((shape[0] / finest_step + 4) / k) * k
    fw = math.ceil((shape[1] / finest_step + 4) / k) * k
    fh, fw = max(fh, 4 * k), max(fw, 4 * k)
    return [(fh >> (n_levels - 1 - i), fw >> (n_levels - 1 - i)) for i in range(n_levels)]


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], wavelength_px: float
) -> np.ndarray:
    """Zero-mean, unit-variance noise ``[H x W]`` with features about ``wavelength_px`` wide."""
    step = max(wavelength_px / CELLS_PER_WAVELENGTH, 1.0)
    h, w = shape
    lattice = _lattice(rng, (math.ceil(h / step) + 4, math.ceil(w / step) + 4))
    return _normalise(_to_grid(lattice, step, shape))


def fbm(
    rng: np.random.Generator,
    shape: tuple[int, int],
    px_m: float,
    *,
    longest_m: float,
    shortest_m: float,
    hurst: float = 0.8,
) -> np.ndarray:
    """Fractional-Brownian-like noise ``[H x W]`` (unit variance) between two wavelengths.

    Octaves are summed on a pyramid of lattices (coarse to fine, 2× apart),
    so the cost is about that of one full-resolution field.
    """
    wls = _octaves(px_m, longest_m, shortest_m)
    finest = max(wls[-1] / (CELLS_PER_WAVELENGTH * px_m), 1.0)
    sizes = _levels(shape, len(wls), finest)
    acc: np.ndarray = _lattice(rng, sizes[0])
    for wl, size in zip(wls[1:], sizes[1:], strict=True):
        acc = np.asarray(cv2.pyrUp(acc, dstsize=(size[1], size[0])), np.float32)
        acc += _lattice(rng, size) * np.float32((wl / longest_m) ** hurst)
    return _normalise(_to_grid(acc, finest, shape))


def ridged_multifractal(
    rng: np.random.Generator,
    shape: tuple[int, int],
    px_m: float,
    *,
    longest_m: float,
    shortest_m: float,
    hurst: float = 0.85,
    gain: float = 2.2,
    floor: float = 0.15,
) -> np.ndarray:
    """Musgrave's ridged multifractal ``[H x W]`` scaled to [0, 1].

    Each octave is ``(1 - |n|/2)²``: sharp crests where the noise crosses zero.
    Octaves are weighted by the previous one, so valleys stay smooth while
    ridges get rough, as in glacially eroded ranges (``floor`` keeps some
    detail in the valleys). Each octave is computed
    on a grid with about 64 cells per wavelength (its crease stays sharp
    there) and the sums move up a pyramid towards full resolution.
    """
    wls = _octaves(px_m, longest_m, shortest_m)
    level_of = [max(0, math.floor(math.log2(max(wl / (64.0 * px_m), 1.0)))) for wl in wls]
    n_levels = level_of[0] + 1
    sizes = _levels(shape, n_levels, 1.0)[::-1]  # index = level, 0 = full resolution
    level = level_of[0]
    total: np.ndarray = np.zeros(sizes[level], np.float32)
    weight: np.ndarray = np.ones(sizes[level], np.float32)
    for k, wl in enumerate(wls):
        while level > level_of[k]:
            level -= 1
            dst = (sizes[level][1], sizes[level][0])
            total = cv2.pyrUp(total, dstsize=dst)
            weight = cv2.pyrUp(weight, dstsize=dst)
        signal = np.abs(smooth_noise(rng, sizes[level], wl / (px_m * 2**level)))
        signal *= np.float32(-0.5)
        signal += np.float32(1.0)
        np.clip(signal, 0.0, 1.0, out=signal)
        signal *= signal
        signal *= weight
        np.multiply(signal, np.float32(gain), out=weight)
        np.clip(weight, floor, 1.0, out=weight)
        signal *= np.float32(2.0 ** (-k * hurst))
        total += signal
    while level > 0:
        level -= 1
        total = cv2.pyrUp(total, dstsize=(sizes[level][1], sizes[level][0]))
    total = np.ascontiguousarray(total[: shape[0], : shape[1]])
    lo, hi = np.percentile(total[::3, ::3], [0.5, 99.8])
    total -= np.float32(lo)
    total *= np.float32(1.0 / max(float(hi - lo), 1e-6))
    return np.clip(total, 0.0, 1.0, out=total)


class DetailTile:
    """Periodic fractal tiles sampled through rotated affines: fine detail anywhere.

    The photos are rendered at ~2 m only around each footprint, yet two
    overlapping photos must see the same fine terrain. Tiles of fBm noise
    (``size`` × ``size`` cells of ``cell_m``, 4 km by default) are therefore
    functions of map coordinates; each layer reads its tile at its own angle,
    scale and offset. ``relief`` is smooth (most energy at 100 m);
    ``detail`` is rough (much energy at metres), for ragged snow edges and
    rock albedo.
    """

    LAYERS: ClassVar[tuple[tuple[str, float], ...]] = (("relief", 0.75), ("detail", 0.0))
    """(layer name, Hurst exponent of its tile)."""

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        size: int = 2048,
        cell_m: float = 2.0,
        longest_m: float = 160.0,
        shortest_m: float = 4.0,
    ) -> None:
        fy = np.fft.fftfreq(size, d=cell_m).astype(np.float32)
        fx = np.fft.rfftfreq(size, d=cell_m).astype(np.float32)
        f = np.hypot(fx[None, :], fy[:, None])
        band = (f >= 1.0 / longest_m) & (f <= 1.0 / shortest_m)
        self.cell_m = cell_m
        self._tiles: dict[str, np.ndarray] = {}
        self._affines: dict[str, np.ndarray] = {}
        for layer, hurst in self.LAYERS:
            amp = np.zeros_like(f)
            amp[band] = f[band] ** np.float32(-(hurst + 1.0))
            phase = rng.uniform(0, 2 * np.pi, f.shape).astype(np.float32)
            spec = (amp * np.cos(phase) + 1j * (amp * np.sin(phase))).astype(np.complex64)
            tile = scipy.fft.irfft2(spec, s=(size, size), workers=2).astype(np.float32)
            tile -= tile.mean()
            self._tiles[layer] = tile / float(tile.std())
            ang = rng.uniform(0, 2 * np.pi)
            scale = rng.uniform(0.8, 1.25)
            c, s = math.cos(ang) * scale / cell_m, math.sin(ang) * scale / cell_m
            off = rng.uniform(0, size, 2)
            # map (x, y) -> tile (col, row)
            self._affines[layer] = np.array([[c, -s, off[0]], [s, c, off[1]], [0, 0, 1]])

    def sample(self, layer: str, grid_to_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Sample ``layer`` on a grid ``[H x W]`` whose pixel centres map to ``grid_to_map``.

        Args:
            layer: one of :attr:`LAYERS`.
            grid_to_map: ``[2 x 3]`` affine, grid (col, row) of pixel centres → map (x, y).
            shape: grid ``(H, W)``.
        """
        m = (self._affines[layer] @ np.vstack([grid_to_map, [0.0, 0.0, 1.0]]))[:2]
        # OpenCV clamps source coordinates to 16 bits: reduce the offset by
        # whole periods (exact, the tile is periodic).
        tile = self._tiles[layer]
        m[:, 2] = np.mod(m[:, 2], tile.shape[0])
        return cv2.warpAffine(
            tile,
            m,
            (shape[1], shape[0]),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_WRAP,
        )
