"""aeroloc.synth.config: presets and config validation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from aeroloc.cli.options import ARCHIVE_PRESETS
from aeroloc.errors import (
    ConfigError,
    InvalidInputError,
)
from aeroloc.synth import PRESETS, SynthConfig, get_preset, make_archive
from aeroloc.synth.config import DIFFICULTY_FIELDS


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown synth preset 'huge'"):
        make_archive(tmp_path, seed=0, preset="huge")
    with pytest.raises(ConfigError, match="unknown synth config key"):
        get_preset("tiny", bogus=1)
    with pytest.raises(ConfigError, match="image_px"):
        SynthConfig(image_px=10)
    with pytest.raises(ConfigError, match="finer than"):
        SynthConfig(photo_gsd_m=12.0)
    with pytest.raises(ConfigError, match="does not fit"):
        SynthConfig(scene_size_m=5000.0)
    with pytest.raises(InvalidInputError, match="seed must be a non-negative integer"):
        make_archive(tmp_path, seed=-1, preset="tiny")


def test_presets() -> None:
    default = get_preset("default")
    assert (default.n_lines, default.photos_per_line, default.scene_size_m) == (3, 8, 40_000.0)
    assert default.image_px >= 2000 and default.photo_gsd_m == 2.0
    assert default.nominal_altitude_m == pytest.approx(2400 * 2.0 * 152.4 / 228.6)
    tiny = get_preset("tiny")
    assert (tiny.n_lines, tiny.photos_per_line, tiny.image_px) == (1, 3, 1000)


# --------------------------------------------------------------------------- hard preset


def test_hard_preset_is_the_default_archive_made_harder() -> None:
    hard, default = get_preset("hard"), get_preset("default")
    assert "hard" in PRESETS and hard.name == "hard"
    assert (hard.heading_error_max_deg, hard.altitude_error_max_frac) == (20.0, 0.2)
    assert hard.historical_sun_turn_deg == (0.0, 180.0)
    lo, hi = hard.historical_sun_elevation_deg
    assert (
        lo < default.historical_sun_elevation_deg[0]
        and hi > default.historical_sun_elevation_deg[1]
    )
    assert hard.historical_rock_share < default.historical_rock_share
    assert hard.historical_ice_gain_scale > 1.0
    assert hard.cloud_shadows and not default.cloud_shadows
    assert hard.cloud_shadow_cover == (0.1, 0.3) and hard.cloud_shadow_darkening == (0.2, 0.5)
    # same scene, flight plan and scan as the default preset
    same = (
        "scene_size_m",
        "n_lines",
        "photos_per_line",
        "image_px",
        "photo_gsd_m",
        "forward_overlap",
        "position_error_max_m",
        "relief_m",
        "edge_margin_m",
    )
    assert all(getattr(hard, k) == getattr(default, k) for k in same)
    # the CLI offers every preset (it lists the names without importing synth)
    assert list(ARCHIVE_PRESETS.choices) == list(PRESETS)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("historical_sun_turn_deg", (10.0, 200.0), "historical_sun_turn_deg"),
        ("historical_sun_turn_deg", (90.0, 45.0), "min <= max"),
        ("historical_sun_turn_deg", 45.0, "pair"),
        ("historical_sun_elevation_deg", (2.0, 30.0), "historical_sun_elevation_deg"),
        ("historical_sun_elevation_deg", (20.0, math.nan), "historical_sun_elevation_deg"),
        ("historical_rock_share", 0.0, "historical_rock_share"),
        ("historical_rock_share", 1.0, "historical_rock_share"),
        ("historical_ice_gain_scale", -0.5, "historical_ice_gain_scale"),
        ("historical_ice_gain_scale", 9.0, "historical_ice_gain_scale"),
        ("cloud_shadow_cover", (0.1, 0.9), "cloud_shadow_cover"),
        ("cloud_shadow_cover", (-0.1, 0.2), "cloud_shadow_cover"),
        ("cloud_shadow_darkening", (0.2, 1.0), "cloud_shadow_darkening"),
        ("cloud_shadow_darkening", ("a", 0.2), "pair"),
    ],
)
def test_difficulty_fields_are_validated(key: str, value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        get_preset("tiny", **{key: value})


def test_difficulty_fields_coerced_and_left_out_of_truth_at_their_defaults() -> None:
    cfg = get_preset("tiny", historical_sun_turn_deg=[0, 180], cloud_shadow_cover=[0.1, 0.3])
    assert cfg.historical_sun_turn_deg == (0.0, 180.0) and cfg.cloud_shadow_cover == (0.1, 0.3)
    # presets made before these fields existed keep their truth.json config unchanged
    for name in ("tiny", "default", "large"):
        assert not set(DIFFICULTY_FIELDS) & set(get_preset(name).to_dict())
    hard = get_preset("hard").to_dict()
    assert set(DIFFICULTY_FIELDS) - {"cloud_shadow_darkening"} <= set(hard)
    # JSON turns tuples into lists; the config rebuilds equal either way
    for cfg in (
        get_preset("tiny"),
        get_preset("hard"),
        get_preset("tiny", historical_rock_share=0.1),
    ):
        back = json.loads(json.dumps(cfg.to_dict()))
        assert SynthConfig(**back) == cfg
