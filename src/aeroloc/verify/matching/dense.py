"""``effnet-dense``: tie points from CNN feature correlation, robust to a changed sun.

Keypoint matchers find the photo's own epoch at under a pixel but fail against
a reference whose sun shines from another side (docs/benchmarks.md): shading
inverts, so local descriptors disagree. The heatmap model's correlation of
whole windows of EfficientNet-Lite0 features does not. This matcher carries
that correlation down to tie points, coarse to fine:

1. **coarse** — the whole photo's stage-4 feature map (stride 16 at an input
   scale where the photo is :data:`PHOTO_INPUT_PX` wide) is correlated (NCC)
   over the target's at a few scales; the best peak gives scale and shift;
2. **tie levels** — the photo, warped into the target frame with the current
   estimate, is cut into templates of 8 × 8 cells; each is searched a few
   cells around its predicted place, first in stage-4 maps, then in stage-3
   maps (stride 8); a RANSAC similarity on the peaks updates the estimate;
3. **feature-metric polish** — the similarity that maximises the NCC of the
   whole photo's stage-3 map against the target's, sampled bilinearly at
   twice the input scale (L-BFGS, as in feature-metric refinement methods);
4. **final ties** — the photo warped with the polished estimate is searched
   once more with stage-3 templates at that finer scale; those sub-cell peaks
   are the tie points returned.

The returned points are measured, not drawn from the estimate: the robust fit
in :mod:`aeroloc.verify.fit` and the acceptance rules judge them like any
other matcher's. Features come from the ImageNet EfficientNet-Lite0 trunk of
the shipped checkpoint (its stage-4 projection included), so nothing beyond
the package is needed. Like the heatmap model, the matcher is not rotation
invariant: :func:`aeroloc.verify.verify_candidate` tries the heading first.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from aeroloc.models import default_model
from aeroloc.models.effnet import stage_stride
from aeroloc.verify.matching.base import MatcherEntry, Matches, check_gray

#: The photo is resampled so that its longer side is about this many input pixels.
PHOTO_INPUT_PX = 512
#: Template side, in feature cells.
TEMPLATE_CELLS = 8
#: Photos smaller than this (either side, input pixels) are not matched.
MIN_INPUT_PX = 4 * TEMPLATE_CELLS * 8
#: Fewer consistent template peaks than this at a refinement level end the
#: search early (wrong places gave at most 5 on held-out photos, right ones 8+).
MIN_LEVEL_INLIERS = 6
#: Targets larger than this many photo sides are not searched (the pipeline
#: passes twice the photo's footprint).
MAX_TARGET_RATIO = 4.0
#: Shift (stage-3 cells at the fine scale) at which the alignment contrast is measured.
CONTRAST_CELLS = 2
_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _default_network() -> Any:
    """The heatmap's default network (shipped checkpoint, else ImageNet), in eval mode."""
    return default_model()[0].eval().for_inference()


def _resize(image: np.ndarray, factor: float) -> np.ndarray:
    h, w = image.shape
    size = (max(8, round(w * factor)), max(8, round(h * factor)))
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(image, size, interpolation=interp), dtype=np.float32)


#: Crops fed to the network start on multiples of this (input px), so their
#: stage-3 and stage-4 cells fall on the cells of the whole image.
_ALIGN = 16


@dataclass(frozen=True)
class _Maps:
    """Feature maps of one image: stage → ``[C x h x w]``, and cell validity ``[h x w]``."""

    feats: dict[int, torch.Tensor]
    valid: dict[int, torch.Tensor]


@dataclass(frozen=True)
class _Region:
    """The target at one input scale (maybe cropped) and its feature maps.

    ``origin`` is the crop's top-left in input pixels of the whole target
    resampled by ``factor``.
    """

    image: np.ndarray
    maps: _Maps
    origin: tuple[int, int]
    factor: float


def _stretch01(image: np.ndarray) -> np.ndarray:
    """Finite values stretched to [0, 1] (0.5–99.5 %), NaN kept."""
    valid = np.isfinite(image)
    if not valid.any():
        return np.full(image.shape, np.nan, np.float32)
    lo, hi = np.percentile(image[valid], [0.5, 99.5])
    hi = hi if hi > lo else lo + 1.0
    return np.clip((image - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _warp(image: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``image`` warped by ``matrix`` (pixel-corner coordinates) onto ``shape``; NaN outside."""
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    centred = np.linalg.inv(shift) @ matrix @ shift
    out = cv2.warpAffine(
        image.astype(np.float32),
        centred[:2],
        (shape[1], shape[0]),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float("nan"),
    )
    return np.asarray(out, dtype=np.float32)


def _unit_templates(templates: torch.Tensor) -> torch.Tensor:
    """Templates ``[K x C x h x w]`` centred per channel and scaled to unit norm each."""
    t = templates - templates.mean(dim=(2, 3), keepdim=True)
    return t / (t.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-8)


def _ncc(templates: torch.Tensor, fmap: torch.Tensor) -> torch.Tensor:
    """NCC of templates ``[K x C x ph x pw]`` at every place of ``fmap`` ``[C x H x W]``.

    Each template is centred per channel and the map window likewise, so the
    score is the cosine of the two channel-centred blocks.
    """
    ph, pw = templates.shape[2:]
    x = fmap[None]
    num = F.conv2d(x, _unit_templates(templates))[0]
    mean = F.avg_pool2d(x, (ph, pw), stride=1)[0]
    mean_sq = F.avg_pool2d(x * x, (ph, pw), stride=1)[0]
    energy = ((mean_sq - mean * mean).sum(0) * ph * pw).clamp_min(1e-12)
    return num / (energy.sqrt()[None] + 1e-8)


def _ncc_pairs(templates: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    """NCC of each template ``[K x C x p x p]`` over its own window ``[K x C x s x s]``.

    Returns ``[K x (s - p + 1) x (s - p + 1)]`` (one grouped convolution).
    """
    k, c, p, _ = templates.shape
    t = _unit_templates(templates)
    num = F.conv2d(windows.reshape(1, k * c, *windows.shape[2:]), t, groups=k)[0]
    mean = F.avg_pool2d(windows, p, stride=1)
    mean_sq = F.avg_pool2d(windows * windows, p, stride=1)
    energy = ((mean_sq - mean * mean).sum(1) * p * p).clamp_min(1e-12)
    return num / (energy.sqrt() + 1e-8)


def _subpixel(score: np.ndarray, r: int, c: int) -> tuple[float, float]:
    """Peak ``(r, c)`` refined by a parabola through its neighbours (±0.5 cell)."""

    def offset(a: float, b: float, c_: float) -> float:
        d = a - 2 * b + c_
        return 0.0 if abs(d) < 1e-12 else float(np.clip(0.5 * (a - c_) / d, -0.5, 0.5))

    h, w = score.shape
    dr = offset(score[r - 1, c], score[r, c], score[r + 1, c]) if 0 < r < h - 1 else 0.0
    dc = offset(score[r, c - 1], score[r, c], score[r, c + 1]) if 0 < c < w - 1 else 0.0
    return r + dr, c + dc


@dataclass(kw_only=True)
class DenseMatcher:
    """Coarse-to-fine correlation of EfficientNet-Lite0 features (see the module docstring).

    Attributes:
        name: registry name.
        scales: photo scale factors tried in the coarse step.
        search_cells: how far (cells) each template is searched around its
            prediction while the estimate is refined.
        final_search_cells: the same for the returned tie points, at least.
            Wider than ``search_cells`` so that a template without a true
            match peaks anywhere in the window, rarely within the fit's
            inlier threshold of its prediction: the inlier count then tells
            right from wrong.
        final_search_px: the returned tie points are searched at least this
            far (target pixels) around their prediction. A stage-3 cell at
            the fine scale is the photo's longer side / 64 target pixels, so
            ``final_search_cells`` alone would shrink the window with the
            photo: on a photo of 130 px the window is ±8 px, hardly wider
            than the 3 px inlier threshold, and wrong places keep a quarter
            of their ties as inliers. 24 px (8 thresholds) widens the window
            for such photos only; photos of 384 px or more keep
            ``final_search_cells``.
        polish: run the feature-metric polish.
        fit_kinds: models :func:`aeroloc.verify.verify_candidate` may fit to
            the ties. No homography: the ties are measured in a frame already
            warped by a similarity, so a homography would fit their noise and
            extrapolate it to the corners.
        network: an ``effnet-lite0-siamese`` model (None: the shipped one).
    """

    name: str = "effnet-dense"
    scales: tuple[float, ...] = (0.9, 0.95, 1.0, 1.05, 1.1)
    search_cells: int = 2
    final_search_cells: int = 4
    final_search_px: float = 24.0
    polish: bool = True
    fit_kinds: tuple[str, ...] = ("similarity", "affine")
    network: Any = field(default=None, repr=False)

    # ------------------------------------------------------------------ features
    def _net(self) -> Any:
        if self.network is None:
            self.network = _default_network()
        return self.network

    def _maps(self, image: np.ndarray, stages: tuple[int, ...]) -> _Maps:
        """Stage outputs of ``image`` ``[H x W]`` (in [0, 1], NaN = nodata)."""
        net = self._net()
        h0, w0 = image.shape
        least = max(net.spec.input_size)
        if h0 < least or w0 < least:  # pad below and right: the cell grid stays put
            image = np.pad(
                image, ((0, max(0, least - h0)), (0, max(0, least - w0))), constant_values=np.nan
            )
        valid = np.isfinite(image)
        fill = float(image[valid].mean()) if valid.any() else 0.5
        x = torch.from_numpy(np.where(valid, image, fill).astype(np.float32))[None, None]
        with torch.inference_mode():
            outs = net.stage_outputs(x, stages)
        feats, masks = {}, {}
        for stage, y in outs.items():
            h, w = y.shape[2:]
            cells = cv2.resize(valid.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
            keep_h, keep_w = (
                math.ceil(h0 / stage_stride(stage)),
                math.ceil(w0 / stage_stride(stage)),
            )
            feats[stage] = y[0, :, :keep_h, :keep_w].clone()
            masks[stage] = torch.from_numpy(np.asarray(cells)[:keep_h, :keep_w] > 0.99)
        return _Maps(feats=feats, valid=masks)

    def final_radius(self, fine: float) -> int:
        """Search radius (stage-3 cells at input scale ``fine``) of the returned ties."""
        cell_px = stage_stride(3) / fine  # target pixels per cell
        return max(self.final_search_cells, math.ceil(self.final_search_px / cell_px - 1e-9))

    # ------------------------------------------------------------------ steps
    def _coarse(
        self, photo: np.ndarray, target4: torch.Tensor, factor: float
    ) -> tuple[np.ndarray, float] | None:
        """Scale-and-shift estimate photo px → target px, and its NCC."""
        stride = stage_stride(4)
        best: tuple[float, np.ndarray] | None = None
        for k in self.scales:
            scaled = _resize(photo, factor * k)
            maps = self._maps(scaled, (4,))
            fa = maps.feats[4]
            if fa.shape[1] > target4.shape[1] or fa.shape[2] > target4.shape[2]:
                continue
            score = _ncc(fa[None], target4)[0].numpy()
            r, c = np.unravel_index(int(np.argmax(score)), score.shape)
            if best is not None and score[r, c] <= best[0]:
                continue
            rr, cc = _subpixel(score, int(r), int(c))
            kx = scaled.shape[1] / (photo.shape[1] * factor)
            ky = scaled.shape[0] / (photo.shape[0] * factor)
            shift = np.array([cc * stride / factor, rr * stride / factor])
            best = (float(score[r, c]), np.array([[kx, 0, shift[0]], [0, ky, shift[1]], [0, 0, 1]]))
        if best is None:
            return None
        return best[1], best[0]

    def _region(
        self,
        target: np.ndarray,
        factor: float,
        stages: tuple[int, ...],
        box: tuple[int, int, int, int] | None = None,
    ) -> _Region:
        """The target at input scale ``factor``, cropped to ``box`` (input px), with its maps."""
        image = _resize(target, factor)
        x0 = y0 = 0
        if box is not None:
            x0, y0, x1, y1 = box
            image = image[y0:y1, x0:x1]
        return _Region(image=image, maps=self._maps(image, stages), origin=(x0, y0), factor=factor)

    def _footprint_box(
        self,
        photo_shape: tuple[int, int],
        matrix: np.ndarray,
        factor: float,
        target_shape: tuple[int, int],
        radius: int,
    ) -> tuple[int, int, int, int]:
        """Input-px box (aligned to ``_ALIGN``) around the photo mapped by ``matrix``, padded."""
        h, w = photo_shape
        corners = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], dtype=np.float64).T
        xy = (matrix @ corners)[:2] * factor
        pad = (max(self.search_cells, radius) + 2) * stage_stride(3)
        full_h = round(target_shape[0] * factor)
        full_w = round(target_shape[1] * factor)
        x0 = max(0, _ALIGN * math.floor((xy[0].min() - pad) / _ALIGN))
        y0 = max(0, _ALIGN * math.floor((xy[1].min() - pad) / _ALIGN))
        x1 = min(full_w, math.ceil(xy[0].max() + pad))
        y1 = min(full_h, math.ceil(xy[1].max() + pad))
        return x0, y0, max(x1, x0 + _ALIGN), max(y1, y0 + _ALIGN)

    def _ties(
        self,
        photo: np.ndarray,
        region: _Region,
        stage: int,
        matrix: np.ndarray,
        radius: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Template peaks: ``(xy_photo, xy_target, ncc)`` in original pixels."""
        stride = stage_stride(stage)
        ox, oy = region.origin
        to_region = np.array([[region.factor, 0.0, -ox], [0.0, region.factor, -oy], [0, 0, 1]])
        warped = _warp(photo, to_region @ matrix, region.image.shape)
        rows, cols = np.nonzero(np.isfinite(warped))
        empty = np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0)
        if len(rows) == 0:
            return empty
        # Only the warped photo's bounding box goes through the network; an
        # aligned crop keeps its cells on the region's cell grid.
        r0, c0 = _ALIGN * (rows.min() // _ALIGN), _ALIGN * (cols.min() // _ALIGN)
        crop = warped[r0 : rows.max() + 1, c0 : cols.max() + 1]
        maps = self._maps(crop, (stage,))
        fw, vw = maps.feats[stage], maps.valid[stage]
        di, dj = r0 // stride, c0 // stride
        fb, vb = region.maps.feats[stage], region.maps.valid[stage]
        p, rad = TEMPLATE_CELLS, self.search_cells if radius is None else radius
        h, w = fb.shape[1:]
        spots = [
            (i, j)
            for i in range(max(rad, di), min(h - p - rad, di + fw.shape[1] - p) + 1, p // 2)
            for j in range(max(rad, dj), min(w - p - rad, dj + fw.shape[2] - p) + 1, p // 2)
            if bool(vw[i - di : i - di + p, j - dj : j - dj + p].all())
            and bool(vb[i - rad : i + p + rad, j - rad : j + p + rad].all())
        ]
        if not spots:
            return empty
        side = p + 2 * rad
        templates = torch.stack([fw[:, i - di : i - di + p, j - dj : j - dj + p] for i, j in spots])
        windows = torch.stack(
            [fb[:, i - rad : i - rad + side, j - rad : j - rad + side] for i, j in spots]
        )
        scores = _ncc_pairs(templates, windows).numpy()
        xy_w, xy_b, peaks = [], [], []
        for (i, j), score in zip(spots, scores, strict=True):
            r, c = np.unravel_index(int(np.argmax(score)), score.shape)
            if r in (0, 2 * rad) or c in (0, 2 * rad):
                continue  # on the border of the search: the true peak may lie beyond
            rr, cc = _subpixel(score, int(r), int(c))
            centre = np.array([(j + p / 2) * stride + ox, (i + p / 2) * stride + oy])
            xy_w.append(centre / region.factor)
            shift = np.array([(cc - rad) * stride, (rr - rad) * stride])
            xy_b.append((centre + shift) / region.factor)
            peaks.append(float(score[r, c]))
        if not xy_w:
            return empty
        back = np.linalg.inv(matrix)
        pts_a = np.asarray(xy_w) @ back[:2, :2].T + back[:2, 2]
        return pts_a, np.asarray(xy_b), np.asarray(peaks)

    def _photo_ncc(
        self, photo: np.ndarray, region: _Region
    ) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """Whole-photo stage-3 NCC as a function of a photo → target matrix (float64 ``[3 x 3]``).

        The photo's cell centres are mapped into the region and its map is
        sampled bilinearly, so the function is differentiable in the matrix.
        None when the photo has fewer than 16 valid cells.
        """
        stage, stride, factor = 3, stage_stride(3), region.factor
        scaled = _resize(photo, factor)
        maps = self._maps(scaled, (stage,))
        fa, va = maps.feats[stage], maps.valid[stage]
        kx = scaled.shape[1] / photo.shape[1]
        ky = scaled.shape[0] / photo.shape[0]
        h, w = fa.shape[1:]
        cols, rows = np.meshgrid(
            (np.arange(w) + 0.5) * stride / kx, (np.arange(h) + 0.5) * stride / ky
        )
        keep = va.numpy().ravel()
        if keep.sum() < 16:
            return None
        pts = torch.tensor(
            np.stack([cols.ravel()[keep], rows.ravel()[keep], np.ones(int(keep.sum()))]),
            dtype=torch.float64,
        )
        fa_v = fa.reshape(fa.shape[0], -1)[:, torch.from_numpy(keep)].double()
        fa_v = fa_v - fa_v.mean(1, keepdim=True)
        fa_v = fa_v / (fa_v.norm() + 1e-12)
        fb = region.maps.feats[stage][None].double()
        big_h, big_w = fb.shape[2:]
        ox, oy = region.origin

        def ncc(matrix: torch.Tensor) -> torch.Tensor:
            q = matrix @ pts
            gx = (q[0] * factor - ox) / stride / big_w * 2 - 1
            gy = (q[1] * factor - oy) / stride / big_h * 2 - 1
            grid = torch.stack([gx, gy], -1).view(1, 1, -1, 2)
            sampled = F.grid_sample(fb, grid, mode="bilinear", align_corners=False)[0, :, 0]
            sampled = sampled - sampled.mean(1, keepdim=True)
            sampled = sampled / (sampled.norm() + 1e-12)
            return (sampled * fa_v).sum()

        return ncc

    def _polish(
        self,
        ncc: Callable[[torch.Tensor], torch.Tensor],
        matrix: np.ndarray,
        centre: np.ndarray,
        factor: float,
    ) -> np.ndarray:
        """Similarity update of ``matrix`` about the photo point ``centre`` maximising ``ncc``."""
        start = torch.tensor(matrix, dtype=torch.float64)
        about = torch.tensor(centre, dtype=torch.float64)
        delta = torch.zeros(4, dtype=torch.float64, requires_grad=True)

        def current() -> torch.Tensor:
            # A similarity about the photo's centre: scale/rotation (a, b), then shift.
            a, b = 1 + delta[0], delta[1]
            lin = torch.stack([torch.stack([a, -b]), torch.stack([b, a])])
            t = about - lin @ about + delta[2:]
            upd = torch.cat([torch.cat([lin, t[:, None]], 1), start.new_tensor([[0, 0, 1]])])
            return start @ upd

        opt = torch.optim.LBFGS([delta], lr=0.5, max_iter=40, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = -ncc(current())
            loss.backward()
            return loss

        with torch.no_grad():
            before = float(ncc(start))
        for _ in range(2):
            opt.step(closure)
        with torch.no_grad():
            moved = current()
            after = float(ncc(moved))
        moved_np = moved.numpy()
        shift = np.hypot(*(moved_np[:2, 2] - matrix[:2, 2]))
        if not (after > before and math.isfinite(after)) or shift > 4 * stage_stride(3) / factor:
            return matrix  # a worse or runaway optimum: keep the tie-point estimate
        return np.asarray(moved_np)

    @staticmethod
    def _contrast(
        ncc: Callable[[torch.Tensor], torch.Tensor], matrix: np.ndarray, factor: float
    ) -> float:
        """How much the whole-photo NCC drops when the fit is shifted by two stage-3 cells.

        ``ncc(matrix)`` minus the best of the four shifts (up, down, left,
        right). A right place has a sharp peak (on the calibration archives
        0.047 or more for three quarters of the correct fits); at a wrong
        place the polish ends on a flat optimum (at most 0.011 there).
        """
        step = CONTRAST_CELLS * stage_stride(3) / factor
        with torch.no_grad():
            at = float(ncc(torch.tensor(matrix, dtype=torch.float64)))
            around = []
            for dx, dy in ((step, 0.0), (-step, 0.0), (0.0, step), (0.0, -step)):
                shift = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])
                around.append(float(ncc(torch.tensor(shift @ matrix, dtype=torch.float64))))
        return at - max(around)

    # ------------------------------------------------------------------ matcher
    def match(self, a: np.ndarray, b: np.ndarray) -> Matches:
        """Tie points of photo ``a`` in target ``b`` (both 2-D, about the same pixel size)."""
        photo = _stretch01(check_gray(a, "image a").astype(np.float32))
        target = _stretch01(check_gray(b, "image b").astype(np.float32))
        empty = Matches.empty(self.name)
        if not (np.isfinite(photo).any() and np.isfinite(target).any()):
            return empty
        factor = PHOTO_INPUT_PX / max(photo.shape)
        if min(photo.shape) * factor < MIN_INPUT_PX:
            return empty  # a sliver: no 8 × 8-cell templates fit
        if not max(photo.shape) / 2 <= max(target.shape) <= MAX_TARGET_RATIO * max(photo.shape):
            return empty  # not the photo's scale: the caller resamples to the target's first
        with _LOCK:  # one network, shared by threads
            return self._match(photo, target, factor)

    def _match(self, photo: np.ndarray, target: np.ndarray, factor: float) -> Matches:
        empty = Matches.empty(self.name)
        region = self._region(target, factor, (3, 4))
        coarse = self._coarse(photo, region.maps.feats[4], factor)
        if coarse is None:
            return empty
        matrix, _ = coarse
        for stage in (4, 3):
            pts_a, pts_b, _ = self._ties(photo, region, stage, matrix)
            if len(pts_a) < 4:
                return empty
            step = 0.5 * stage_stride(stage) / factor
            fitted, inliers = cv2.estimateAffinePartial2D(
                pts_a, pts_b, method=cv2.RANSAC, ransacReprojThreshold=step
            )
            if fitted is None or inliers is None or int(inliers.sum()) < MIN_LEVEL_INLIERS:
                return empty  # nothing here agrees: a wrong place, stop early
            matrix = np.vstack([fitted, [0.0, 0.0, 1.0]])
        fine = 2 * factor
        radius = self.final_radius(fine)
        box = self._footprint_box(photo.shape, matrix, fine, target.shape, radius)
        fine_region = self._region(target, fine, (3,), box)
        ncc = self._photo_ncc(photo, fine_region)
        evidence = {}
        if ncc is not None:
            if self.polish:
                centre = np.array([photo.shape[1] / 2, photo.shape[0] / 2])
                matrix = self._polish(ncc, matrix, centre, fine)
            evidence["alignment_contrast"] = self._contrast(ncc, matrix, fine)
        pts_a, pts_b, peaks = self._ties(photo, fine_region, 3, matrix, radius=radius)
        if len(pts_a) == 0:
            return empty
        return Matches(
            xy_a=pts_a,
            xy_b=pts_b,
            scores=np.clip(peaks, 0.0, 1.0),
            matcher=self.name,
            evidence=evidence,
        )


def build() -> DenseMatcher:
    """The registry's ``effnet-dense`` matcher (network loaded on first use)."""
    return DenseMatcher()


#: Registry entries of this module (see :mod:`aeroloc.verify.matching`).
MATCHERS: dict[str, MatcherEntry] = {
    "effnet-dense": MatcherEntry(
        build=build, install="pip install aeroloc (the matcher uses the packaged model)"
    ),
}
