"""Light and looks: sun, cast shadows, land-cover reflectance, Sentinel-2 and film rendering.

Radiometry is deliberately simple but keeps what matters for matching
epochs: direct sun on the local slope, cast shadows ray-marched over the DEM
(not only hillshade), skylight that is blue for Sentinel-2 (bluish, fairly
bright shadows) and mostly filtered out on minus-blue panchromatic film
(dark shadows), snow near saturation, dark layered rock.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from aeroloc.errors import InvalidInputError
from aeroloc.synth.noise import ramp, smooth_noise, smoothstep

# Surface reflectances: (R, G, B) for Sentinel-2 B4/B3/B2, and panchromatic film.
SNOW_RGB = (0.92, 0.94, 0.97)
SNOW_PAN = 0.93
BLUE_ICE_RGB = (0.56, 0.66, 0.75)
BLUE_ICE_PAN = 0.55
SEA_ICE_RGB = (0.78, 0.82, 0.87)
SEA_ICE_PAN = 0.80
WATER_RGB = (0.022, 0.035, 0.06)
WATER_PAN = 0.03
ROCK_LIGHT_RGB = (0.25, 0.19, 0.14)  # sandstone
ROCK_LIGHT_PAN = 0.15
ROCK_DARK_RGB = (0.075, 0.07, 0.068)  # dolerite
ROCK_DARK_PAN = 0.05

S2_DIFFUSE = (0.10, 0.14, 0.24)  # skylight relative to direct sun, per band
S2_HAZE = (0.010, 0.016, 0.032)
FILM_DIFFUSE = 0.08  # minus-blue filter: less skylight reaches the film


@dataclass(frozen=True, kw_only=True)
class Sun:
    """Sun direction in the map grid.

    Attributes:
        azimuth_deg: direction *to* the sun, clockwise from grid north (+y).
        elevation_deg: angle above the horizon.
    """

    azimuth_deg: float
    elevation_deg: float

    def __post_init__(self) -> None:
        if not 1.0 <= self.elevation_deg <= 89.0:
            raise InvalidInputError(f"sun elevation must be 1..89°, got {self.elevation_deg}")

    @property
    def vector(self) -> tuple[float, float, float]:
        """Unit vector (east, north, up) pointing to the sun."""
        az, el = math.radians(self.azimuth_deg), math.radians(self.elevation_deg)
        return math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)

    @property
    def tan_elevation(self) -> float:
        """Rise of the sun ray per metre of horizontal distance."""
        return math.tan(math.radians(self.elevation_deg))

    def to_dict(self) -> dict[str, float]:
        """Plain dict for ``truth.json``."""
        return asdict(self)


def light_direction(sun: Sun) -> tuple[float, float]:
    """Horizontal unit vector (east, north) along which sunlight travels (away from the sun)."""
    az = math.radians(sun.azimuth_deg)
    return -math.sin(az), -math.cos(az)


# --------------------------------------------------------------------------- shadows


def shadow_along_rows(h: np.ndarray, px_m: float, tan_el: float, eps_m: float) -> np.ndarray:
    """Cast shadow ``[H x W]`` (bool) on a grid whose columns run along the light.

    A cell is shadowed when some cell up-sun rises above the sun ray through
    it: with ``u = h + j·px·tan(elev)``, that is ``max(u[:j]) > u[j]``.
    One running maximum per row: exact ray marching, vectorised.
    """
    u = h + np.arange(h.shape[1], dtype=np.float32)[None, :] * np.float32(px_m * tan_el)
    run = np.maximum.accumulate(u, axis=1)
    prev = np.empty_like(run)
    prev[:, 0] = -np.inf
    prev[:, 1:] = run[:, :-1]
    return prev > u + np.float32(eps_m)


def far_horizon_along_rows(h: np.ndarray, px_m: float, tan_el: float, min_px: int) -> np.ndarray:
    """Height ``[H x W]`` of the highest sun ray cast by cells at least ``min_px`` up-sun.

    A point of elevation z is in the shadow of those far cells iff the value
    exceeds z. The field is smooth, so it can be resampled to a finer grid.
    """
    ramp = np.arange(h.shape[1], dtype=np.float32)[None, :] * np.float32(px_m * tan_el)
    run = np.maximum.accumulate(h + ramp, axis=1)
    out = np.full_like(run, -1.0e6)
    if min_px < run.shape[1]:
        out[:, min_px:] = run[:, : run.shape[1] - min_px]
    return (out - ramp).astype(np.float32)


def _light_grid(shape: tuple[int, int], sun: Sun) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Affines between a north-up raster and a grid whose columns run along the light.

    Returns:
        ``(to_raster, to_grid, (width, height))``: ``[2 x 3]`` affines mapping
        grid (col, row) → raster (col, row) and back, and the grid size.
    """
    h, w = shape
    lx, ly = light_direction(sun)
    lc, lr = lx, -ly  # raster rows grow southwards
    pc, pr = -lr, lc
    corners = np.array([(0, 0), (w, 0), (0, h), (w, h)], np.float64)
    a = corners @ np.array([lc, lr])
    b = corners @ np.array([pc, pr])
    j0, i0 = math.floor(a.min()) - 1, math.floor(b.min()) - 1
    nj, ni = math.ceil(a.max()) + 1 - j0, math.ceil(b.max()) + 1 - i0
    to_raster = np.array([[lc, pc, j0 * lc + i0 * pc], [lr, pr, j0 * lr + i0 * pr]], np.float64)
    to_grid = np.array([[lc, lr, -j0], [pc, pr, -i0]], np.float64)
    return to_raster, to_grid, (nj, ni)


def cast_shadow(dem: np.ndarray, px_m: float, sun: Sun) -> np.ndarray:
    """Soft cast-shadow fraction ``[H x W]`` in [0, 1] of a north-up DEM.

    The DEM is resampled onto a grid aligned with the light, shadowed by a
    running maximum per row, and the mask is resampled back (bilinear, which
    also gives a one-pixel penumbra).
    """
    to_raster, to_grid, size = _light_grid(dem.shape, sun)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    rot = cv2.warpAffine(
        dem.astype(np.float32), to_raster, size, flags=flags, borderMode=cv2.BORDER_REPLICATE
    )
    mask = shadow_along_rows(rot, px_m, sun.tan_elevation, eps_m=0.2).astype(np.float32)
    back = cv2.warpAffine(
        mask, to_grid, (dem.shape[1], dem.shape[0]), flags=flags, borderMode=cv2.BORDER_REPLICATE
    )
    return np.clip(back, 0.0, 1.0)


def far_horizon(dem: np.ndarray, px_m: float, sun: Sun, min_dist_m: float) -> np.ndarray:
    """Far-shadow ray height ``[H x W]`` of a north-up DEM (see :func:`far_horizon_along_rows`)."""
    to_raster, to_grid, size = _light_grid(dem.shape, sun)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    rot = cv2.warpAffine(
        dem.astype(np.float32), to_raster, size, flags=flags, borderMode=cv2.BORDER_REPLICATE
    )
    far = far_horizon_along_rows(rot, px_m, sun.tan_elevation, max(1, round(min_dist_m / px_m)))
    return cv2.warpAffine(
        far,
        to_grid,
        (dem.shape[1], dem.shape[0]),
        flags=flags,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=-1.0e6,
    )


# --------------------------------------------------------------------------- shading


def illumination(dz_dx: np.ndarray, dz_dy: np.ndarray, sun: Sun) -> tuple[np.ndarray, np.ndarray]:
    """Direct-sun cosine and sky-view factor ``[H x W]`` from slopes east (x) and north (y)."""
    sx, sy, sz = sun.vector
    norm = np.sqrt(1.0 + dz_dx * dz_dx + dz_dy * dz_dy)
    cos_i = (-dz_dx * np.float32(sx) - dz_dy * np.float32(sy) + np.float32(sz)) / norm
    sky = 0.5 * (1.0 + 1.0 / norm)
    return cos_i.astype(np.float32), sky.astype(np.float32)


def cover_fractions(
    *,
    sea_m: np.ndarray | None,
    ice_m: np.ndarray | None,
    rock: np.ndarray | None,
    seaice: np.ndarray | None,
    blue: np.ndarray | None,
    soft: float = 1.0,
) -> dict[str, np.ndarray]:
    """Area fractions ``[H x W]`` of water, sea ice, blue ice, rock and snow (sum to 1).

    A score given as None means the class is absent everywhere (its fraction
    is a scalar zero: cheaper on the fine photo grid). ``soft`` scales the
    width of the class transitions (1 at 10 m; smaller for the photo grid).
    """
    zero = np.zeros((), np.float32)
    f_sea = zero if sea_m is None else ramp(-3.0 * soft, 3.0 * soft, sea_m)
    f_seaice = zero
    if seaice is not None and sea_m is not None:
        f_seaice = ramp(-0.15 * soft, 0.15 * soft, seaice)
        f_seaice *= f_sea
    land = np.float32(1.0) - f_sea
    f_ice = zero
    if ice_m is not None:
        f_ice = ramp(-1.0 * soft, 1.0 * soft, ice_m)
        f_ice *= land
    f_blue = zero
    if blue is not None and ice_m is not None:
        f_blue = ramp(-0.1 * soft, 0.1 * soft, blue)
        f_blue *= f_ice
    bare = land - f_ice
    f_rock = zero
    if rock is not None:
        f_rock = ramp(-0.04 * soft, 0.04 * soft, rock)
        f_rock *= bare
    snow = bare - f_rock
    snow += f_ice
    snow -= f_blue
    water = f_sea - f_seaice
    return {"water": water, "seaice": f_seaice, "blue": f_blue, "rock": f_rock, "snow": snow}


def reflectance(
    fractions: dict[str, np.ndarray],
    light_rock: np.ndarray,
    texture: np.ndarray,
    *,
    pan: bool,
) -> np.ndarray:
    """Surface reflectance: ``[H x W]`` panchromatic or ``[3 x H x W]`` RGB.

    Args:
        fractions: from :func:`cover_fractions` (they sum to one, so each
            class adds its difference from snow).
        light_rock: share of light (sandstone) rock, from the geology.
        texture: unit-variance albedo texture.
        pan: panchromatic film instead of Sentinel-2 RGB.
    """
    rock_tex = np.clip(texture * np.float32(0.3) + np.float32(1.0), 0.4, 1.8)
    rock_frac = fractions["rock"] * rock_tex
    del rock_tex
    # layering shows, but as a modulation: each pixel mixes both rocks
    rock_light = rock_frac * (np.float32(0.35) + np.float32(0.3) * light_rock)
    rock_dark = rock_frac - rock_light
    del rock_frac
    snow_tex = texture * np.float32(0.006)
    snow_tex *= fractions["snow"]

    def band(snow: float, blue: float, seaice: float, water: float, dark: float, light: float):
        out = np.full(light_rock.shape, np.float32(snow), np.float32)
        out += snow_tex * np.float32(snow)
        for frac, value in (
            (fractions["blue"], blue),
            (fractions["seaice"], seaice),
            (fractions["water"], water),
            (fractions["rock"], 0.0),
        ):
            if frac.ndim:  # scalar zero: class absent
                out -= frac * np.float32(snow - value)
        out += rock_dark * np.float32(dark)
        out += rock_light * np.float32(light)
        return out

    if pan:
        return band(SNOW_PAN, BLUE_ICE_PAN, SEA_ICE_PAN, WATER_PAN, ROCK_DARK_PAN, ROCK_LIGHT_PAN)
    return np.stack(
        [
            band(
                SNOW_RGB[k],
                BLUE_ICE_RGB[k],
                SEA_ICE_RGB[k],
                WATER_RGB[k],
                ROCK_DARK_RGB[k],
                ROCK_LIGHT_RGB[k],
            )
            for k in range(3)
        ]
    )


def radiance(
    albedo: np.ndarray,
    cos_i: np.ndarray,
    shadow: np.ndarray,
    sky: np.ndarray,
    sun: Sun,
    diffuse: float,
) -> np.ndarray:
    """Apparent reflectance ``[H x W]``: flat sunlit ground shows its albedo.

    ``(direct · cos i · lit + diffuse · sky) / (sin elev + diffuse)``.
    """
    sz = math.sin(math.radians(sun.elevation_deg))
    light = np.maximum(cos_i, np.float32(0.0))
    light *= np.float32(1.0) - shadow
    light += sky * np.float32(diffuse)
    light *= albedo
    light *= np.float32(1.0 / (sz + diffuse))
    return light


LUT_SIZE = 4096


def sentinel2_rgb(
    albedo_rgb: np.ndarray,
    cos_i: np.ndarray,
    shadow: np.ndarray,
    sky: np.ndarray,
    sun: Sun,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sentinel-2 true-colour look ``[3 x H x W]`` uint8: snow near saturation, blue shadows.

    Reflectance (with haze, MTF blur and sensor noise) → a gamma stretch
    that puts flat sunlit snow near 250 and saturates sunward snow slopes.
    """
    white = 0.98
    lut = np.round(255.0 * np.linspace(0.0, 1.0, LUT_SIZE) ** (1 / 1.8)).astype(np.uint8)
    out = np.empty(albedo_rgb.shape, np.uint8)
    for k in range(3):
        rho: np.ndarray = radiance(albedo_rgb[k], cos_i, shadow, sky, sun, S2_DIFFUSE[k])
        rho += np.float32(S2_HAZE[k])
        rho = np.asarray(cv2.GaussianBlur(rho, (0, 0), 0.5), np.float32)  # sensor MTF
        noise = rng.random(rho.shape, dtype=np.float32)
        noise -= np.float32(0.5)
        rho += noise * np.float32(0.01)  # sd 0.003
        rho *= np.float32((LUT_SIZE - 1) / white)
        np.clip(rho, 0, LUT_SIZE - 1, out=rho)
        out[k] = lut[rho.astype(np.int32)]
    return out


# --------------------------------------------------------------------------- film


def film_curve(rho: np.ndarray, *, mid: float = 0.3, slope: float = 0.6) -> np.ndarray:
    """Print brightness in [0, 1] from apparent reflectance: an S-curve in log exposure.

    Toe and shoulder of the film characteristic; ``mid`` is the reflectance
    printed mid-grey, ``slope`` the contrast (smaller = harder).
    """
    log_e = np.log(np.maximum(rho, 1e-4)) - np.float32(math.log(mid))
    return (0.03 + 0.94 / (1.0 + np.exp(-log_e / np.float32(slope)))).astype(np.float32)


@dataclass(frozen=True, kw_only=True)
class FilmLook:
    """Per-photo film, lens and scan defects (drawn from the photo's RNG).

    Attributes:
        mid, slope: exposure and contrast of :func:`film_curve`.
        vignette: exposure loss in the image corners (0..1).
        blur_px, motion_px: lens blur and along-track motion blur (Gaussian sigma, px).
        grain: grain amplitude (fraction of full scale at mid-grey).
        dust, hairs, scratches: numbers of each defect.
        density_wave: low-frequency uneven development (relative exposure).
    """

    mid: float
    slope: float
    vignette: float
    blur_px: float
    motion_px: float
    grain: float
    dust: int
    hairs: int
    scratches: int
    density_wave: float

    @classmethod
    def draw(cls, rng: np.random.Generator, image_px: int) -> FilmLook:
        """Random look for one photo; defect counts scale with the image area."""
        area = (image_px / 2400.0) ** 2
        return cls(
            mid=float(0.3 * math.exp(rng.normal(0.0, 0.15))),
            slope=float(rng.uniform(0.52, 0.68)),
            vignette=float(rng.uniform(0.25, 0.45)),
            blur_px=float(rng.uniform(0.5, 1.1)),
            motion_px=float(rng.uniform(0.0, 0.8)),
            grain=float(rng.uniform(0.03, 0.05)),
            dust=int(rng.poisson(70 * area)),
            hairs=int(rng.poisson(4 * area)),
            scratches=int(rng.integers(1, 5)),
            density_wave=float(rng.uniform(0.02, 0.06)),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``truth.json``."""
        return asdict(self)


def apply_film(rho: np.ndarray, look: FilmLook, rng: np.random.Generator) -> np.ndarray:
    """Expose, develop and scan: ``[N x M]`` apparent reflectance → uint8 print.

    Lens (vignetting, blur, motion), film curve, grain, uneven development,
    then dust, hairs and scratches on the negative.
    """
    h, w = rho.shape
    dx = (np.arange(w, dtype=np.float32) + np.float32(0.5 - w / 2)) ** 2
    dy = (np.arange(h, dtype=np.float32) + np.float32(0.5 - h / 2)) ** 2
    r2 = dy[:, None] + dx[None, :]
    r2 *= np.float32(1.0 / ((w / 2) ** 2 + (h / 2) ** 2))
    r2 **= np.float32(1.1)
    r2 *= np.float32(-look.vignette)
    r2 += np.float32(1.0)
    exposure: np.ndarray = rho * r2
    del r2
    wave = smooth_noise(rng, (h, w), max(h, w) / 2.5)
    wave *= np.float32(look.density_wave)
    wave += np.float32(1.0)
    exposure *= wave
    del wave
    sigma_y = math.hypot(look.blur_px, look.motion_px)  # film moves along the track = rows
    exposure = cv2.GaussianBlur(exposure, (0, 0), look.blur_px, sigmaY=sigma_y)
    print_ = film_curve(exposure, mid=look.mid, slope=look.slope)
    del exposure

    # grain: fine silver grains plus clumps; strongest in the mid-tones
    grain: np.ndarray = cv2.GaussianBlur(rng.random((h, w), dtype=np.float32), (0, 0), 0.7)
    clumps: np.ndarray = cv2.GaussianBlur(rng.random((h, w), dtype=np.float32), (0, 0), 2.0)
    grain = _normalise_std(grain)
    grain += np.float32(0.4) * _normalise_std(clumps)
    del clumps
    tone = np.float32(1.0) - print_
    tone *= print_
    tone *= np.float32(2.6)
    tone += np.float32(0.35)
    tone *= np.float32(look.grain)
    tone *= grain
    print_ += tone
    del tone, grain

    print_ = _defects(print_, look, rng)
    print_ *= np.float32(255.0)
    np.clip(print_, 0.0, 255.0, out=print_)
    return np.rint(print_).astype(np.uint8)


def _normalise_std(field: np.ndarray) -> np.ndarray:
    sub = field[::3, ::3]
    field -= np.float32(sub.mean())
    field *= np.float32(1.0 / max(float(sub.std()), 1e-6))
    return field


def _defects(img: np.ndarray, look: FilmLook, rng: np.random.Generator) -> np.ndarray:
    """Dust specks, hairs and long scratches blended onto ``img`` ``[H x W]`` in [0, 1]."""
    h, w = img.shape
    scale = max(h, w) / 2400.0
    # opacity of white (dust on the negative) and black (dust on the scanner) marks
    layers = {True: np.zeros((h, w), np.float32), False: np.zeros((h, w), np.float32)}
    for _ in range(look.dust):
        c = (int(rng.integers(w)) * 16, int(rng.integers(h)) * 16)
        radius = int(16 * rng.uniform(0.6, 3.5) * max(scale, 0.5))
        white = bool(rng.uniform() < 0.7)
        cv2.circle(layers[white], c, radius, float(rng.uniform(0.6, 1.0)), -1, cv2.LINE_AA, 4)
    for _ in range(look.hairs):
        n = 12
        length = rng.uniform(40, 260) * scale
        ang = rng.uniform(0, 2 * math.pi)
        turn = rng.normal(0, 0.25, n).cumsum()
        steps = np.stack([np.cos(ang + turn), np.sin(ang + turn)], 1) * (length / n)
        start = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        pts = np.round((start + np.vstack([[0, 0], steps.cumsum(0)])) * 16).astype(np.int32)
        white = bool(rng.uniform() < 0.5)
        cv2.polylines(layers[white], [pts.reshape(-1, 1, 2)], False, 0.8, 1, cv2.LINE_AA, 4)
    for _ in range(look.scratches):
        x = rng.uniform(0.03, 0.97) * w
        tilt = math.tan(math.radians(rng.normal(0, 1.0)))
        y0 = rng.uniform(0, 0.5) * h
        y1 = min(h, y0 + rng.uniform(0.3, 1.0) * h)
        thickness = int(rng.integers(1, 3))
        layer = np.zeros((h, w), np.float32)
        p0 = (int((x + tilt * y0) * 16), int(y0 * 16))
        p1 = (int((x + tilt * y1) * 16), int(y1 * 16))
        cv2.line(layer, p0, p1, float(rng.uniform(0.4, 0.85)), thickness, cv2.LINE_AA, 4)
        # a scratch comes and goes along its length
        layer *= smoothstep(-0.3, 0.6, smooth_noise(rng, (h, 1), h / 6.0))
        white = bool(rng.uniform() < 0.75)
        np.maximum(layers[white], layer, out=layers[white])
    bright, dark = layers[True], layers[False]
    cover = np.minimum(bright + dark, 1.0)
    return img * (1.0 - cover) + np.float32(0.97) * bright + np.float32(0.06) * dark
