"""aeroloc.synth.render: cast shadows (known answers)."""

from __future__ import annotations

import numpy as np

from aeroloc.synth.render import Sun, cast_shadow, shadow_along_rows


def test_shadow_ray_march_known_answer() -> None:
    # a 100 m wall on flat ground, sun at 45°: shadow 100 m long behind it
    h = np.zeros((2, 200), np.float32)
    h[:, 10] = 100.0
    mask = shadow_along_rows(h, 1.0, 1.0, eps_m=0.2)
    assert not mask[:, :11].any()
    assert mask[:, 11:110].all() and not mask[:, 110:].any()


def test_cast_shadow_follows_the_sun() -> None:
    # a tower in the middle of a flat 10 m DEM; sun from the east (az 90°) at 45°
    dem = np.zeros((101, 101), np.float32)
    dem[48:53, 48:53] = 200.0
    shadow = cast_shadow(dem, 10.0, Sun(azimuth_deg=90.0, elevation_deg=45.0))
    assert shadow[50, 60] < 0.1  # east of the tower: lit
    assert shadow[50, 40] > 0.9 and shadow[50, 35] > 0.9  # west: in its 200 m shadow
    assert shadow[50, 20] < 0.1  # beyond the shadow's end
