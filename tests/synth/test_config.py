"""aeroloc.synth.config: presets and config validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from aeroloc.errors import (
    ConfigError,
    InvalidInputError,
)
from aeroloc.synth import SynthConfig, get_preset, make_archive


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
