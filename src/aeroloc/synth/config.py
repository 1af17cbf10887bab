"""Generator settings: one frozen dataclass and four named presets.

A preset fixes the size of the scene, the flight plan, the scan size, how
noisy the catalog is and how much the historical epoch differs from the
modern one. Everything random is drawn from the seed, never from the config,
so ``(preset, seed)`` names one archive exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from aeroloc.errors import ConfigError
from aeroloc.geometry import Camera

REFERENCE_GSD_M = 10.0
"""Pixel size of ``reference.tif`` and ``truth_epoch.tif`` (Sentinel-2 visible bands)."""


@dataclass(frozen=True, kw_only=True)
class SynthConfig:
    """Settings of one synthetic archive.

    Attributes:
        name: preset name, recorded in ``truth.json``.
        scene_size_m: side of the square scene (fractal terrain); a ``--dem``
            larger than this is cropped to it.
        n_lines: flight lines.
        photos_per_line: photos per flight line.
        image_px: side of the image area of a scan (px); the scan adds the
            fiducial frame and data strip around it.
        photo_gsd_m: nominal ground sampling distance of the photos; the true
            value varies with each line's altitude (±``altitude_jitter_frac``).
        forward_overlap: nominal forward overlap between consecutive photos.
        altitude_jitter_frac: spread of the true altitude between lines.
        crab_max_deg: largest crab angle (heading minus track) of a line.
        position_error_max_m: largest catalog camera-centre error.
        altitude_error_max_frac: largest relative catalog altitude error.
        heading_error_max_deg: largest catalog heading error.
        edge_margin_m: every footprint stays this far inside the scene, so a
            search area around the noisy catalog centre mostly has data.
        relief_m: relief of the fractal mountains.
        shadow_near_m: cast shadows closer than this are ray-marched on the
            fine photo grid; farther ones come from the 10 m terrain.
        n_workers: photos rendered in parallel threads (output does not depend on it).
        focal_length_mm: camera focal length (TMA: 152.4 mm).
        film_mm: film side (TMA: 9 in).
        historical_sun_turn_deg: ``(min, max)`` of the angle between the
            historical and the modern sun azimuth, drawn uniformly, turned
            either way at random; ``(0, 180)`` puts the historical sun on any
            side.
        historical_sun_elevation_deg: ``(min, max)`` of the historical sun
            elevation (drawn uniformly; kept ≥ 3.5° from the modern one).
        historical_rock_share: share of the ice-free land left as bare rock in
            the historical epoch (the modern epoch keeps 30 %); lower = snowier.
        historical_ice_gain_scale: factor on how much higher the historical
            ice surface stood than the modern one (1: the terrain's own
            20–65 m; 2: twice that, i.e. glaciers that have since lowered by
            twice as much).
        cloud_shadow_cover: ``(min, max)`` of the share of each historical
            photo's image area under cloud shadow, drawn per flight line;
            ``(0, 0)`` (the default): no clouds.
        cloud_shadow_darkening: ``(min, max)`` of the relative radiance loss
            inside a cloud shadow, drawn per flight line (only used when
            ``cloud_shadow_cover`` is not ``(0, 0)``).

    The last six fields were added with the ``hard`` preset. At their
    defaults an archive is the same, bit for bit, as before they existed, and
    :meth:`to_dict` leaves them out of ``truth.json`` (a missing key means the
    default).
    """

    name: str = "default"
    scene_size_m: float = 40_000.0
    n_lines: int = 3
    photos_per_line: int = 8
    image_px: int = 2400
    photo_gsd_m: float = 2.0
    forward_overlap: float = 0.6
    altitude_jitter_frac: float = 0.05
    crab_max_deg: float = 4.0
    position_error_max_m: float = 3000.0
    altitude_error_max_frac: float = 0.10
    heading_error_max_deg: float = 10.0
    edge_margin_m: float = 3000.0
    relief_m: float = 2400.0
    shadow_near_m: float = 600.0
    n_workers: int = 2
    focal_length_mm: float = 152.4
    film_mm: float = 228.6
    historical_sun_turn_deg: tuple[float, float] = (45.0, 160.0)
    historical_sun_elevation_deg: tuple[float, float] = (18.0, 33.0)
    historical_rock_share: float = 0.20
    historical_ice_gain_scale: float = 1.0
    cloud_shadow_cover: tuple[float, float] = (0.0, 0.0)
    cloud_shadow_darkening: tuple[float, float] = (0.2, 0.5)

    def __post_init__(self) -> None:
        positive = (
            "scene_size_m",
            "photo_gsd_m",
            "edge_margin_m",
            "relief_m",
            "shadow_near_m",
        )
        for key in positive:
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"synth config {key} must be > 0, got {value}")
        for key in ("n_lines", "photos_per_line", "n_workers"):
            if getattr(self, key) < 1:
                raise ConfigError(f"synth config {key} must be >= 1, got {getattr(self, key)}")
        if not 256 <= self.image_px <= 12_000:
            raise ConfigError(f"synth config image_px must be 256..12000, got {self.image_px}")
        if self.photo_gsd_m >= REFERENCE_GSD_M:
            raise ConfigError(
                f"photo_gsd_m ({self.photo_gsd_m}) must be finer than the "
                f"{REFERENCE_GSD_M:.0f} m reference"
            )
        if not 0.0 <= self.forward_overlap < 0.95:
            raise ConfigError(f"forward_overlap must be in [0, 0.95), got {self.forward_overlap}")
        for key, top in (
            ("altitude_jitter_frac", 0.3),
            ("altitude_error_max_frac", 0.5),
            ("crab_max_deg", 30.0),
            ("heading_error_max_deg", 90.0),
        ):
            value = getattr(self, key)
            if not 0.0 <= value <= top:
                raise ConfigError(f"synth config {key} must be in [0, {top}], got {value}")
        if self.position_error_max_m < 0:
            raise ConfigError(f"position_error_max_m must be >= 0, got {self.position_error_max_m}")
        # Camera validates focal length and film size with its own message.
        Camera(
            focal_length_mm=self.focal_length_mm,
            film_width_mm=self.film_mm,
            film_height_mm=self.film_mm,
        )
        for key, lo, hi in (
            ("historical_sun_turn_deg", 0.0, 180.0),
            ("historical_sun_elevation_deg", 5.0, 60.0),
            ("cloud_shadow_cover", 0.0, 0.6),
            ("cloud_shadow_darkening", 0.0, 0.9),
        ):
            object.__setattr__(self, key, _range(key, getattr(self, key), lo, hi))
        if not (math.isfinite(self.historical_rock_share) and 0 < self.historical_rock_share < 1):
            raise ConfigError(
                f"synth config historical_rock_share must be in (0, 1), "
                f"got {self.historical_rock_share}"
            )
        if not (
            math.isfinite(self.historical_ice_gain_scale)
            and 0 <= self.historical_ice_gain_scale <= 5
        ):
            raise ConfigError(
                f"synth config historical_ice_gain_scale must be in [0, 5], "
                f"got {self.historical_ice_gain_scale}"
            )
        if self.footprint_m + 2 * self.edge_margin_m > self.scene_size_m:
            raise ConfigError(
                f"a {self.footprint_m:.0f} m footprint with {self.edge_margin_m:.0f} m margins "
                f"does not fit a {self.scene_size_m:.0f} m scene"
            )

    @property
    def camera(self) -> Camera:
        """The camera of every photo."""
        return Camera(
            focal_length_mm=self.focal_length_mm,
            film_width_mm=self.film_mm,
            film_height_mm=self.film_mm,
        )

    @property
    def footprint_m(self) -> float:
        """Nominal ground side of one photo (m)."""
        return self.image_px * self.photo_gsd_m

    @property
    def nominal_altitude_m(self) -> float:
        """Height above ground giving the nominal footprint: footprint × focal / film."""
        return self.footprint_m * self.focal_length_mm / self.film_mm

    @property
    def cloud_shadows(self) -> bool:
        """True when the historical photos get cloud shadows."""
        return self.cloud_shadow_cover[1] > 0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``truth.json``.

        The fields added with the ``hard`` preset appear only when they differ
        from their defaults, so archives made without them keep their
        ``truth.json`` byte for byte; ``SynthConfig(**to_dict())`` is the same
        config either way.
        """
        out = asdict(self)
        defaults = {f.name: f.default for f in fields(self)}
        for key in DIFFICULTY_FIELDS:
            if out[key] == defaults[key]:
                del out[key]
        return out


DIFFICULTY_FIELDS = (
    "historical_sun_turn_deg",
    "historical_sun_elevation_deg",
    "historical_rock_share",
    "historical_ice_gain_scale",
    "cloud_shadow_cover",
    "cloud_shadow_darkening",
)
"""Fields :meth:`SynthConfig.to_dict` lists only when they are not at their default."""


def _range(key: str, value: Any, lo: float, hi: float) -> tuple[float, float]:
    """``value`` as a ``(min, max)`` float pair within ``[lo, hi]``."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"synth config {key} must be a (min, max) pair, got {value!r}") from None
    if not (math.isfinite(a) and math.isfinite(b) and lo <= a <= b <= hi):
        raise ConfigError(
            f"synth config {key} must be (min, max) with {lo:g} <= min <= max <= {hi:g}, "
            f"got {value!r}"
        )
    return a, b


PRESETS: dict[str, SynthConfig] = {
    "tiny": SynthConfig(
        name="tiny",
        scene_size_m=10_000.0,
        n_lines=1,
        photos_per_line=3,
        image_px=1000,
        position_error_max_m=1000.0,
        edge_margin_m=1000.0,
        relief_m=900.0,
        shadow_near_m=300.0,
    ),
    "default": SynthConfig(),
    "large": SynthConfig(
        name="large",
        scene_size_m=60_000.0,
        n_lines=4,
        photos_per_line=10,
        image_px=3000,
        position_error_max_m=4000.0,
        edge_margin_m=4000.0,
    ),
    # the default scene and flight plan with a worse catalog and a past that
    # differs more: sun from any side, much more snow, thicker glaciers, clouds
    "hard": SynthConfig(
        name="hard",
        altitude_error_max_frac=0.2,
        heading_error_max_deg=20.0,
        historical_sun_turn_deg=(0.0, 180.0),
        historical_sun_elevation_deg=(10.0, 45.0),
        historical_rock_share=0.10,
        historical_ice_gain_scale=2.0,
        cloud_shadow_cover=(0.1, 0.3),
        cloud_shadow_darkening=(0.2, 0.5),
    ),
}


def get_preset(name: str, **overrides: Any) -> SynthConfig:
    """Preset ``name`` (``tiny``, ``default``, ``large``, ``hard``), maybe with fields replaced.

    Raises:
        ConfigError: unknown preset or unknown field.
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown synth preset {name!r}: choose one of {', '.join(PRESETS)}")
    base = PRESETS[name]
    unknown = sorted(set(overrides) - {f.name for f in fields(base)})
    if unknown:
        raise ConfigError(f"unknown synth config key(s): {', '.join(unknown)}")
    return replace(base, **overrides) if overrides else base
