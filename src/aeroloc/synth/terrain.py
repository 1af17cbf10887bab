"""Terrain and the two epochs' land cover at 10 m.

The static ground is a bedrock surface (fractal, or a real DEM) with:

* ridged-multifractal ranges cut by U-shaped troughs (outlet glaciers);
* an ice level that fills valleys (the smoothed bed minus a draw-down, rising
  to an ice sheet inland), so ridges and nunataks stick out of the ice;
* a coast: the bed drops below sea level, a floating ice shelf spreads beyond
  the grounding line and ends at an ice front, open sea or sea ice beyond;
* a rock-exposure score from slope, convexity and elevation (snow does not
  stay on steep, wind-scoured crests);
* layered geology (light sandstone / dark dolerite sills, gently dipping).

Two epochs differ in ice (thicker glaciers and another ice-front position
half a century ago), snow cover (another threshold and patch pattern on the
rock score), blue ice and sea ice. Every field an epoch needs is a smooth
float field, so the photo renderer can resample it to 2 m.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from pyproj import Transformer
from rasterio.errors import RasterioIOError

from aeroloc.errors import DataQualityError, InvalidInputError, RasterReadError
from aeroloc.files import open_raster
from aeroloc.synth.config import REFERENCE_GSD_M, SynthConfig
from aeroloc.synth.noise import (
    fbm,
    ridged_multifractal,
    smooth_noise,
    smooth_upsample,
    smoothstep,
)

SITES: tuple[tuple[str, float, float], ...] = (
    ("Beardmore Glacier, Transantarctic Mountains", -84.3, 171.0),
    ("Shackleton Glacier, Transantarctic Mountains", -85.2, -175.0),
    ("Byrd Glacier, Transantarctic Mountains", -80.4, 158.0),
    ("McMurdo Dry Valleys, Victoria Land", -77.6, 161.5),
    ("Ellsworth Mountains", -78.8, -85.0),
    ("Shackleton Range", -80.6, -25.0),
    ("Prince Charles Mountains", -73.5, 65.5),
    ("Wohlthat Mountains, Dronning Maud Land", -71.8, 12.0),
    ("Graham Land, Antarctic Peninsula", -65.0, -62.5),
    ("Alexander Island, Antarctic Peninsula", -71.0, -69.5),
)

NO_SEA_M = 1.0e5
"""Ice-front distance used where there is no sea at all (far inland)."""


@dataclass(frozen=True, kw_only=True)
class Site:
    """Where the scene lies: EPSG:3031 grid of the 10 m rasters.

    Attributes:
        name: nearby real place (the terrain itself is synthetic unless from a DEM).
        x0, y0: map coordinates (m) of the top-left corner of the top-left pixel.
        width_px, height_px: raster size at :data:`REFERENCE_GSD_M`.
    """

    name: str
    x0: float
    y0: float
    width_px: int
    height_px: int

    @property
    def px_m(self) -> float:
        """Pixel size (m)."""
        return REFERENCE_GSD_M

    @property
    def shape(self) -> tuple[int, int]:
        """Raster shape ``(H, W)``."""
        return self.height_px, self.width_px

    @property
    def width_m(self) -> float:
        """Scene width (m)."""
        return self.width_px * REFERENCE_GSD_M

    @property
    def height_m(self) -> float:
        """Scene height (m)."""
        return self.height_px * REFERENCE_GSD_M


@dataclass(frozen=True, kw_only=True)
class Geology:
    """Horizontal layering: light sandstone and dark dolerite sills, gently dipping.

    Attributes:
        periods_m: periods of the three sine components of the layer pattern.
        phases: their phases (rad).
        dip_x, dip_y: layer dip as elevation change per metre east/north.
    """

    periods_m: tuple[float, float, float]
    phases: tuple[float, float, float]
    dip_x: float
    dip_y: float

    def light_fraction(self, elev_m: np.ndarray, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """Share of light rock (sandstone) ``[H x W]`` in [0, 1] at each point."""
        z = elev_m + self.dip_x * x_m + self.dip_y * y_m
        s = np.zeros_like(elev_m, dtype=np.float32)
        for period, phase in zip(self.periods_m, self.phases, strict=True):
            s += np.sin(z * np.float32(2 * math.pi / period) + np.float32(phase))
        return (0.5 + 0.5 * np.tanh(0.8 * s)).astype(np.float32)


@dataclass(frozen=True, kw_only=True)
class Terrain:
    """Static ground at 10 m (all ``[H x W]`` float32, metres unless said).

    Attributes:
        site: placement.
        rock_m: bedrock / land surface elevation.
        ice_level_m: modern ice-surface level (ice where above ``rock_m``).
        ice_gain_m: how much higher the ice stood in the historical epoch.
        front_m: signed distance to the modern ice front / coast, > 0 on the
            ice or land side, < 0 at sea.
        front_shift_m: historical minus modern front position (> 0: advanced).
        rock_score: rock exposure score (dimensionless, larger = barer).
        blue_noise, seaice_noise, texture: unit-variance noise fields.
        geology: layering.
        from_dem: True when the bed comes from a user DEM.
    """

    site: Site
    rock_m: np.ndarray
    ice_level_m: np.ndarray
    ice_gain_m: np.ndarray
    front_m: np.ndarray
    front_shift_m: np.ndarray
    rock_score: np.ndarray
    blue_noise: np.ndarray
    seaice_noise: np.ndarray
    texture: np.ndarray
    geology: Geology
    from_dem: bool


@dataclass(frozen=True, kw_only=True)
class Epoch:
    """One epoch's surface and land cover at 10 m (``[H x W]`` float32 fields).

    Scores are zero at the class boundary and positive inside the class, so
    they can be resampled and thresholded at any resolution.

    Attributes:
        name: ``modern`` or ``historical``.
        surface_m: visible surface elevation (ice, rock, or sea level).
        ice_m: ice thickness (> 0 is ice).
        sea_m: distance beyond the ice front (> 0 is sea).
        rock: rock-exposure score minus this epoch's snow threshold (> 0 is bare rock).
        seaice: > 0 where the sea is covered by sea ice.
        blue: > 0 where glacier ice is bare blue ice.
    """

    name: str
    surface_m: np.ndarray
    ice_m: np.ndarray
    sea_m: np.ndarray
    rock: np.ndarray
    seaice: np.ndarray
    blue: np.ndarray


def blur_px(arr: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur ``[H x W]``; large sigmas are done on a downsampled copy (fast)."""
    if sigma_px < 1e-3:
        return arr.astype(np.float32)
    factor = int(max(1, sigma_px // 6))
    h, w = arr.shape
    if factor == 1:
        return cv2.GaussianBlur(
            arr.astype(np.float32), (0, 0), sigma_px, borderType=cv2.BORDER_REFLECT
        )
    small = cv2.resize(
        arr.astype(np.float32),
        (max(w // factor, 2), max(h // factor, 2)),
        interpolation=cv2.INTER_AREA,
    )
    small = cv2.GaussianBlur(small, (0, 0), sigma_px / factor, borderType=cv2.BORDER_REFLECT)
    return smooth_upsample(small, (w, h), factor)


def grid_xy(shape: tuple[int, int], px_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Local map coordinates (m) of pixel centres: x east from the left edge, y north (≤ 0)."""
    h, w = shape
    x = (np.arange(w, dtype=np.float32) + 0.5) * np.float32(px_m)
    y = -(np.arange(h, dtype=np.float32) + 0.5) * np.float32(px_m)
    return np.broadcast_to(x[None, :], shape), np.broadcast_to(y[:, None], shape)


def choose_site(rng: np.random.Generator, *, width_px: int, height_px: int) -> Site:
    """A real mountain area of Antarctica, jittered by up to ±20 km, on the 10 m grid."""
    name, lat, lon = SITES[int(rng.integers(len(SITES)))]
    to_3031 = Transformer.from_crs("EPSG:4326", "EPSG:3031", always_xy=True)
    cx, cy = to_3031.transform(lon, lat)
    cx += rng.uniform(-20_000, 20_000)
    cy += rng.uniform(-20_000, 20_000)
    x0 = math.floor((cx - width_px * REFERENCE_GSD_M / 2) / REFERENCE_GSD_M) * REFERENCE_GSD_M
    y0 = math.floor((cy + height_px * REFERENCE_GSD_M / 2) / REFERENCE_GSD_M) * REFERENCE_GSD_M
    return Site(name=name, x0=float(x0), y0=float(y0), width_px=width_px, height_px=height_px)


def _troughs(
    rng: np.random.Generator, inland_m: np.ndarray, inland_dir: tuple[float, float], size_m: float
) -> np.ndarray:
    """Depth (m, ``[H x W]``) of U-shaped glacial troughs running from inland to the coast."""
    h, w = inland_m.shape
    px = REFERENCE_GSD_M
    factor = 8
    ch, cw = max(h // factor, 2), max(w // factor, 2)
    cpx_x, cpx_y = w * px / cw, h * px / ch
    inland_small = cv2.resize(inland_m, (cw, ch), interpolation=cv2.INTER_AREA)
    depth = np.zeros((ch, cw), np.float32)
    n_troughs = max(1, round(size_m / 14_000))
    ux, uy = inland_dir
    for _ in range(n_troughs):
        # start somewhere well inland, walk towards the coast with a meander
        for _attempt in range(50):
            r, c = int(rng.integers(ch)), int(rng.integers(cw))
            if inland_small[r, c] > 0.25 * size_m:
                break
        x, y = (c + 0.5) * cpx_x, (r + 0.5) * cpx_y  # metres, y downwards here
        # seawards, in coarse-grid (x east, y down) coordinates
        heading = math.atan2(uy, -ux)
        pts = []
        dev = 0.0
        for _step in range(int(3 * size_m / 300)):
            pts.append((x / cpx_x, y / cpx_y))
            dev = float(np.clip(dev + rng.normal(0, 0.18), -0.7, 0.7))
            x += 300 * math.cos(heading + dev)
            y += 300 * math.sin(heading + dev)
            if not (-0.2 * size_m < x < 1.2 * w * px and -0.2 * size_m < y < 1.2 * h * px):
                break
        mask = np.full((ch, cw), 255, np.uint8)
        poly = np.round(np.array(pts) * 16).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(mask, [poly], False, 0, thickness=1, shift=4)
        dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5) * np.float32(cpx_x)
        half_width = rng.uniform(1100, 2200) * min(1.0, size_m / 30_000) ** 0.5
        d0 = rng.uniform(550, 950) * min(1.0, size_m / 30_000) ** 0.5
        profile = 1.0 - smoothstep(0.35 * half_width, half_width, dist)
        seaward = 0.6 + 0.4 * smoothstep(0.6 * size_m, 0.0, inland_small)
        depth = np.maximum(depth, profile * seaward * np.float32(d0))
    return smooth_upsample(depth, (w, h), factor)


def fractal_terrain(cfg: SynthConfig, site: Site, rng: np.random.Generator) -> Terrain:
    """Ranges, troughs, ice and an ice-shelf margin for ``site`` (fields ``[H x W]``)."""
    shape = site.shape
    px = REFERENCE_GSD_M
    size_m = max(site.width_m, site.height_m)
    x, y = grid_xy(shape, px)
    cx, cy = site.width_m / 2, -site.height_m / 2

    ridges = ridged_multifractal(
        rng, shape, px, longest_m=min(12_000.0, 0.4 * size_m), shortest_m=8 * px, hurst=1.0
    )
    # Domain warping bends the ridge lines into natural curves and spurs.
    warp_x = fbm(rng, shape, px, longest_m=8000.0, shortest_m=500.0) * np.float32(250.0 / px)
    warp_y = fbm(rng, shape, px, longest_m=8000.0, shortest_m=500.0) * np.float32(250.0 / px)
    warp_x += np.arange(shape[1], dtype=np.float32)[None, :]
    warp_y += np.arange(shape[0], dtype=np.float32)[:, None]
    ridges = cv2.remap(ridges, warp_x, warp_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    del warp_x, warp_y
    massifs = fbm(rng, shape, px, longest_m=size_m, shortest_m=size_m / 8)
    rough = fbm(rng, shape, px, longest_m=600.0, shortest_m=8 * px, hurst=0.9)

    phi = rng.uniform(0, 2 * math.pi)
    ux, uy = math.cos(phi), math.sin(phi)  # inland direction in map (x, y)
    along = (x - cx) * np.float32(ux) + (y - cy) * np.float32(uy)
    coast_at = -size_m * rng.uniform(0.28, 0.36)
    wiggle = fbm(rng, shape, px, longest_m=6000.0, shortest_m=320.0) * np.float32(900.0)
    inland = (along - np.float32(coast_at) + wiggle).astype(np.float32)

    mount = np.float32(cfg.relief_m) * ridges**1.25 * (0.55 + 0.45 * smoothstep(-1.5, 1.5, massifs))
    base = 250.0 + 350.0 * smoothstep(-0.1 * size_m, 0.6 * size_m, inland)
    rock = base + mount + np.float32(0.01 * cfg.relief_m) * rough * ridges
    rock -= _troughs(rng, inland, (ux, uy), size_m)
    land = smoothstep(-2500.0, 3500.0, inland)
    rock = rock * land - np.float32(600.0) * (1.0 - land)

    ice_level = _ice_level(rng, rock, fill=0.38)
    ice_level += 450.0 * smoothstep(0.15 * size_m, 0.75 * size_m, inland)
    front_width = size_m * rng.uniform(0.10, 0.16)
    front_wiggle = fbm(rng, shape, px, longest_m=4000.0, shortest_m=160.0) * np.float32(500.0)
    front = (inland + np.float32(front_width) + front_wiggle).astype(np.float32)
    shelf = 40.0 + 4.0 * fbm(rng, shape, px, longest_m=3000.0, shortest_m=320.0)
    grounded = smoothstep(-600.0, 4000.0, inland)
    ice_level = shelf + (np.maximum(ice_level, shelf) - shelf) * grounded

    gain = (20.0 + 45.0 * smoothstep(0.5 * size_m, 0.0, inland)) * (
        1.0 + 0.3 * fbm(rng, shape, px, longest_m=8000.0, shortest_m=500.0)
    )
    sign = 1.0 if rng.uniform() < 0.65 else -1.0
    shift = sign * rng.uniform(1500, 3500) * min(1.0, size_m / 30_000) + 400.0 * fbm(
        rng, shape, px, longest_m=4000.0, shortest_m=200.0
    )
    return _finish(
        rng,
        site,
        rock=rock,
        ice_level=ice_level,
        ice_gain=np.maximum(gain, 5.0).astype(np.float32),
        front=front,
        front_shift=shift.astype(np.float32),
        from_dem=False,
    )


def _ice_level(rng: np.random.Generator, rock: np.ndarray, *, fill: float) -> np.ndarray:
    """Ice surface filling valleys to a share ``fill`` of the local relief.

    Local relief is the span between the lowest and highest bed within
    1.5 km (on a 100 m grid): glaciers fill valley floors, ridges and peaks
    stay above the ice.
    """
    h, w = rock.shape
    factor = 10
    small = cv2.resize(
        rock, (max(w // factor, 4), max(h // factor, 4)), interpolation=cv2.INTER_AREA
    )
    radius = max(2, round(1500.0 / (REFERENCE_GSD_M * factor)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    lo = cv2.GaussianBlur(cv2.erode(small, disk), (0, 0), 1.2 * radius)
    hi = cv2.GaussianBlur(cv2.dilate(small, disk), (0, 0), 1.2 * radius)
    share = fill + 0.12 * fbm(
        rng, small.shape, REFERENCE_GSD_M * factor, longest_m=10_000.0, shortest_m=1000.0
    )
    level = lo + share * (hi - lo)
    return smooth_upsample(level.astype(np.float32), (w, h), factor)


def _finish(
    rng: np.random.Generator,
    site: Site,
    *,
    rock: np.ndarray,
    ice_level: np.ndarray,
    ice_gain: np.ndarray,
    front: np.ndarray,
    front_shift: np.ndarray,
    from_dem: bool,
) -> Terrain:
    px = REFERENCE_GSD_M
    shape = rock.shape
    rock = rock.astype(np.float32)
    smooth = blur_px(rock, 1.0)
    gy, gx = np.gradient(smooth, px)
    slope_deg = np.degrees(np.arctan(np.hypot(gx, gy))).astype(np.float32)
    curv = -cv2.Laplacian(blur_px(rock, 4.0), cv2.CV_32F)
    land = front > 0
    scale = float(np.std(curv[land])) if land.any() else 1.0
    curv = np.tanh(curv / np.float32(max(scale, 1e-6)))
    lo, hi = np.percentile(rock[land], [20, 98]) if land.any() else (0.0, 1.0)
    elev = np.clip((rock - lo) / max(hi - lo, 1.0), -1.0, 1.5)
    patches = fbm(rng, shape, px, longest_m=800.0, shortest_m=80.0)
    score = (
        np.clip((slope_deg - 18.0) / 22.0, -1.0, 1.5) + 0.35 * curv + 0.2 * elev + 0.5 * patches
    ).astype(np.float32)
    geology = Geology(
        periods_m=(
            float(rng.uniform(45, 70)),
            float(rng.uniform(90, 140)),
            float(rng.uniform(180, 300)),
        ),
        phases=tuple(float(v) for v in rng.uniform(0, 2 * math.pi, 3)),  # type: ignore[arg-type]
        dip_x=float(rng.uniform(-0.03, 0.03)),
        dip_y=float(rng.uniform(-0.03, 0.03)),
    )
    return Terrain(
        site=site,
        rock_m=rock,
        ice_level_m=ice_level.astype(np.float32),
        ice_gain_m=ice_gain,
        front_m=front.astype(np.float32),
        front_shift_m=front_shift,
        rock_score=score,
        blue_noise=fbm(rng, shape, px, longest_m=3000.0, shortest_m=320.0),
        seaice_noise=fbm(rng, shape, px, longest_m=2000.0, shortest_m=160.0),
        texture=fbm(rng, shape, px, longest_m=400.0, shortest_m=80.0),
        geology=geology,
        from_dem=from_dem,
    )


MODERN_ROCK_SHARE = 0.30
"""Share of the ice-free land that is bare rock in the modern epoch."""
HISTORICAL_ROCK_SHARE = 0.20
"""The same half a century ago (more snow): the default of ``historical_rock_share``."""


def make_epoch(
    terrain: Terrain,
    name: str,
    rng: np.random.Generator,
    *,
    rock_share: float | None = None,
    ice_gain_scale: float = 1.0,
) -> Epoch:
    """Land cover of epoch ``name`` (``modern`` or ``historical``) on the 10 m grid.

    Args:
        terrain: the static ground.
        name: ``modern`` or ``historical``.
        rng: this epoch's stream (snow patches, sea ice, blue ice).
        rock_share: share of the ice-free land left bare (default
            :data:`MODERN_ROCK_SHARE` or :data:`HISTORICAL_ROCK_SHARE`).
        ice_gain_scale: factor on ``terrain.ice_gain_m`` (historical epoch only).
    """
    if name not in ("modern", "historical"):
        raise InvalidInputError(f"epoch must be 'modern' or 'historical', got {name!r}")
    historical = name == "historical"
    if rock_share is None:
        rock_share = HISTORICAL_ROCK_SHARE if historical else MODERN_ROCK_SHARE
    if not 0 < rock_share < 1:
        raise InvalidInputError(f"rock_share must be in (0, 1), got {rock_share}")
    shape = terrain.rock_m.shape
    px = REFERENCE_GSD_M
    if historical:
        gain = terrain.ice_gain_m
        if ice_gain_scale != 1.0:
            gain = (gain * np.float32(ice_gain_scale)).astype(np.float32)
        ice_level = terrain.ice_level_m + gain
    else:
        ice_level = terrain.ice_level_m + 0.0
    front = terrain.front_m + (terrain.front_shift_m if historical else 0.0)
    sea = (-front).astype(np.float32)
    at_sea = sea > 0
    ice = np.where(at_sea, -1.0, ice_level - terrain.rock_m).astype(np.float32)
    surface = np.where(
        at_sea, np.maximum(terrain.rock_m, 0.0), np.maximum(terrain.rock_m, ice_level)
    ).astype(np.float32)

    snow_patches = fbm(rng, shape, px, longest_m=800.0, shortest_m=160.0)
    score = terrain.rock_score + np.float32(0.2) * snow_patches
    # snow lies on the ledges of the soft layers: banded snow on rock faces
    x, y = grid_xy(shape, px)
    score += np.float32(0.25) * (terrain.geology.light_fraction(surface, x, y) - 0.5)
    bare_land = (~at_sea) & (ice <= 0)
    # More snow half a century ago: fewer small outcrops stay bare.
    thr = float(np.quantile(score[bare_land], 1 - rock_share)) if bare_land.any() else 1.0
    rock = (score - np.float32(thr)).astype(np.float32)

    own = smooth_noise(rng, shape, 1500.0 / px)
    # Blue ice: glacier ice swept bare by katabatic wind around nunataks.
    lee = blur_px(((rock > 0) & bare_land).astype(np.float32), 60.0)
    lee *= np.float32(1.0 / max(float(lee.max()), 1e-6))
    if historical:
        seaice = 0.75 * terrain.seaice_noise + 0.6 * own + 0.35
        blue = 0.8 * terrain.blue_noise + 0.5 * own + 3.0 * lee - 3.0
    else:
        seaice = terrain.seaice_noise - 0.95
        blue = terrain.blue_noise + 3.0 * lee - 2.3
    grounded = smoothstep(0.0, 2000.0, terrain.front_m - np.float32(5000.0))
    blue = np.where((grounded > 0.5) & (ice > 5.0), blue, -1.0)
    return Epoch(
        name=name,
        surface_m=surface,
        ice_m=ice,
        sea_m=sea,
        rock=rock,
        seaice=seaice.astype(np.float32),
        blue=np.asarray(blue, dtype=np.float32),
    )


#: Fewest DEM pixels per side: fewer hold no relief to render.
MIN_DEM_PX = 8


def check_dem(path: str | os.PathLike[str]) -> None:
    """Fail at once, before anything is written, on a DEM that cannot make terrain.

    Raises:
        MissingFileError, InvalidInputError, RasterReadError: missing, a folder, not a raster.
        CRSError: no CRS (its pixel size would have no unit, its place no meaning).
        DataQualityError: fewer than :data:`MIN_DEM_PX` pixels on a side.
    """
    with open_raster(path, what="DEM", need_crs=True) as ds:
        width, height = ds.width, ds.height
    if min(width, height) < MIN_DEM_PX:
        raise DataQualityError(
            f"DEM {path} is {width} x {height} pixels: a DEM needs at least "
            f"{MIN_DEM_PX} x {MIN_DEM_PX} to give terrain"
        )


def dem_terrain(
    path: str | os.PathLike[str], cfg: SynthConfig, site: Site, rng: np.random.Generator
) -> Terrain:
    """Terrain from a real DEM: resampled to 10 m, cropped to the preset's scene size.

    A DEM in EPSG:3031 keeps its own location; any other DEM is placed at
    ``site``, keeping its pixel size (in metres through its CRS; a DEM
    without CRS is refused by :func:`check_dem`). Elevations are metres;
    cells at or below 0 m become sea.

    Raises:
        MissingFileError: no such file.
        RasterReadError: not a readable raster, or corrupt data.
        DataQualityError: no valid elevation.
    """
    check_dem(path)
    with open_raster(path, what="DEM", need_crs=True) as ds:
        try:
            band = ds.read(1, masked=True)
        except (RasterioIOError, ValueError) as exc:
            raise RasterReadError(f"cannot read DEM {path}: corrupt data ({exc})") from exc
        crs = ds.crs
        transform = ds.transform
        bounds = ds.bounds
    data = np.ma.filled(band.astype(np.float64), np.nan)
    data[~np.isfinite(data)] = np.nan
    if np.isnan(data).all():
        raise DataQualityError(f"DEM {path} has no valid elevation (all nodata)")
    if np.isnan(data).any():
        from scipy.ndimage import distance_transform_edt

        idx = distance_transform_edt(np.isnan(data), return_distances=False, return_indices=True)
        data = data[tuple(idx)]
    if np.nanmax(np.abs(data)) > 10_000:
        raise DataQualityError(f"DEM {path} has elevations beyond ±10 km: not metres?")

    px_x, px_y = abs(transform.a), abs(transform.e)
    own_location = False
    if transform.is_identity or px_x == 0 or px_y == 0:
        warnings.warn(
            f"DEM {path} has no pixel size; assuming {REFERENCE_GSD_M:.0f} m", stacklevel=3
        )
        px_x = px_y = REFERENCE_GSD_M
    elif crs is not None and crs.is_geographic:
        lat = math.radians((bounds.top + bounds.bottom) / 2)
        px_x *= 111_320.0 * max(math.cos(lat), 0.05)
        px_y *= 110_540.0
    elif crs is not None:
        factor = crs.linear_units_factor[1] if crs.is_projected else 1.0
        px_x *= factor
        px_y *= factor
        own_location = crs.to_epsg() == 3031
    if transform.b != 0 or transform.d != 0:
        warnings.warn(f"DEM {path} is rotated; its rotation is ignored", stacklevel=3)

    rows, cols = data.shape
    max_rows = int(cfg.scene_size_m // px_y)
    max_cols = int(cfg.scene_size_m // px_x)
    r0 = max((rows - max_rows) // 2, 0)
    c0 = max((cols - max_cols) // 2, 0)
    data = data[r0 : r0 + min(rows, max_rows), c0 : c0 + min(cols, max_cols)]
    rows, cols = data.shape
    width_px = round(cols * px_x / REFERENCE_GSD_M)
    height_px = round(rows * px_y / REFERENCE_GSD_M)
    if width_px < 64 or height_px < 64:
        raise DataQualityError(
            f"DEM {path} covers only {cols * px_x:.0f} × {rows * px_y:.0f} m: "
            "too small for a synthetic archive"
        )
    if width_px < cols:
        rock = cv2.resize(
            data.astype(np.float32), (width_px, height_px), interpolation=cv2.INTER_AREA
        )
    else:
        rock = smooth_upsample(data.astype(np.float32), (width_px, height_px), width_px / cols)
    if own_location:
        left = bounds.left + c0 * px_x
        top = bounds.top - r0 * px_y
        site = Site(
            name=f"DEM {os.path.basename(os.fspath(path))}",
            x0=float(left),
            y0=float(top),
            width_px=width_px,
            height_px=height_px,
        )
    else:
        cx = site.x0 + site.width_m / 2
        cy = site.y0 - site.height_m / 2
        site = Site(
            name=f"DEM {os.path.basename(os.fspath(path))} placed near {site.name}",
            x0=float(round((cx - width_px * 5.0) / 10.0) * 10.0),
            y0=float(round((cy + height_px * 5.0) / 10.0) * 10.0),
            width_px=width_px,
            height_px=height_px,
        )
    shape = rock.shape
    size_m = max(site.width_m, site.height_m)
    px = REFERENCE_GSD_M
    front = np.where(rock > 0, NO_SEA_M, -NO_SEA_M).astype(np.float32)
    if (rock <= 0).any():
        from scipy.ndimage import distance_transform_edt

        # signed distance to the coast, so the coastline resamples smoothly
        to_sea = distance_transform_edt(rock > 0) * px
        to_land = distance_transform_edt(rock <= 0) * px
        front = np.where(rock > 0, to_sea, -to_land).astype(np.float32)
    relief = float(np.percentile(rock, 98) - np.percentile(rock, 2))
    ice_level = np.where(rock > 0, _ice_level(rng, rock, fill=0.2), -1.0e4).astype(np.float32)
    gain = np.float32(max(10.0, 0.02 * relief)) * (
        1.0 + 0.3 * fbm(rng, shape, px, longest_m=0.3 * size_m, shortest_m=200.0)
    )
    return _finish(
        rng,
        site,
        rock=rock,
        ice_level=ice_level,
        ice_gain=np.maximum(gain, 2.0).astype(np.float32),
        front=front,
        front_shift=np.zeros(shape, np.float32),
        from_dem=True,
    )
