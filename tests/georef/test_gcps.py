"""aeroloc.georef.gcps: GCPs from tie points."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aeroloc.georef import (
    gcps_from_matches,
)
from georef_helpers import nadir


def test_gcps_from_tie_points_spread_and_carry_residuals():
    t = nadir()
    rng = np.random.default_rng(1)
    pix = rng.uniform([10, 20], [110, 120], size=(400, 2))
    xs, ys = t.apply(pix[:, 0], pix[:, 1])
    mp = np.column_stack([xs, ys])
    mp[0] += (2.0, 0.0)  # one tie point off by one photo pixel along x-ish
    g = gcps_from_matches(t, pix, mp, max_points=16)
    assert len(g) == 16
    # one per 4 x 4 cell: every quadrant of the photo holds some
    assert ((g.pixel_xy[:, 0] < 60) & (g.pixel_xy[:, 1] < 70)).any()
    assert ((g.pixel_xy[:, 0] > 60) & (g.pixel_xy[:, 1] > 70)).any()
    all_g = gcps_from_matches(t, pix[:5], mp[:5])
    assert math.hypot(*all_g.residual_px[0]) == pytest.approx(1.0)
    np.testing.assert_allclose(all_g.residual_px[1:], 0.0, atol=1e-6)
