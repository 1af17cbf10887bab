"""aeroloc.synth.clouds: cloud-shadow fields, where they darken a photo and by how much."""

from __future__ import annotations

import numpy as np
import pytest

from aeroloc.geometry import photo_to_map
from aeroloc.synth.clouds import CLOUD_PX_M, CloudLayer, cloud_factor, draw_cloud_layers
from aeroloc.synth.terrain import Site

SITE = Site(name="test", x0=100_000.0, y0=-200_000.0, width_px=400, height_px=400)  # 4 km


def _image_to_map(azimuth_deg: float, n: int = 200, gsd_m: float = 5.0):
    # a 1 km photo in the middle of the 4 km scene
    return photo_to_map(
        center_x=SITE.x0 + 2000.0,
        center_y=SITE.y0 - 2000.0,
        gsd_m=gsd_m,
        azimuth_deg=azimuth_deg,
        width_px=n,
        height_px=n,
    )


def test_known_answer_shadow_on_the_east_side() -> None:
    # the field grows eastwards by one unit per 20 m cell: the quarter of the
    # photo with the largest values, its east side, is the shadow
    cols = np.arange(round(SITE.width_m / CLOUD_PX_M), dtype=np.float32)
    field = np.broadcast_to(cols, (round(SITE.height_m / CLOUD_PX_M), cols.size)).copy()
    layer = CloudLayer(field=field, cover=0.25, darkening=0.4)
    n = 200
    north_up = cloud_factor(layer, SITE, _image_to_map(0.0, n), n)
    assert north_up.dtype == np.float32 and north_up.shape == (n, n)
    # west three quarters untouched, east quarter 40 % darker; a sharp edge at 75 %
    assert np.all(north_up[:, : int(0.74 * n)] == 1.0)
    np.testing.assert_allclose(north_up[:, int(0.76 * n) :], 0.6, atol=1e-6)
    assert np.mean(north_up < 0.8) == pytest.approx(0.25, abs=0.01)
    # heading east: the photo's top points east, so the shadow is along the top rows
    heading_east = cloud_factor(layer, SITE, _image_to_map(90.0, n), n)
    np.testing.assert_allclose(heading_east, np.rot90(north_up), atol=1e-6)
    assert np.all(heading_east[int(0.26 * n) :, :] == 1.0)
    np.testing.assert_allclose(heading_east[: int(0.24 * n), :], 0.6, atol=1e-6)


def test_no_cover_or_no_darkening_is_no_shadow() -> None:
    field = np.zeros((200, 200), np.float32)
    for cover, dark in ((0.0, 0.4), (0.2, 0.0)):
        layer = CloudLayer(field=field, cover=cover, darkening=dark)
        assert np.all(cloud_factor(layer, SITE, _image_to_map(10.0), 200) == 1.0)


def test_drawn_layers_cover_and_darkening_per_line() -> None:
    layers = draw_cloud_layers(
        SITE,
        ["TMA1", "TMA2"],
        cover=(0.1, 0.3),
        darkening=(0.2, 0.5),
        rng=np.random.default_rng(7),
    )
    assert list(layers) == ["TMA1", "TMA2"]
    again = draw_cloud_layers(
        SITE, ["TMA1", "TMA2"], cover=(0.1, 0.3), darkening=(0.2, 0.5), rng=np.random.default_rng(7)
    )
    for name, layer in layers.items():
        assert 0.1 <= layer.cover <= 0.3 and 0.2 <= layer.darkening <= 0.5
        np.testing.assert_array_equal(layer.field, again[name].field)  # deterministic
        factor = cloud_factor(layer, SITE, _image_to_map(33.0), 200)
        # share in shadow (below half the darkening) is the line's cover; the core is
        # 1 - darkening, the rest of the photo untouched
        assert np.mean(factor < 1 - layer.darkening / 2) == pytest.approx(layer.cover, abs=0.01)
        assert factor.min() == pytest.approx(1 - layer.darkening, abs=1e-5)
        assert np.mean(factor == 1.0) > 0.5
        # smooth blobs, not speckle: few pixels on a shadow edge
        edge = (factor < 1.0) & (factor > 1 - layer.darkening)
        assert np.mean(edge) < 0.25
    assert layers["TMA1"].to_dict() != layers["TMA2"].to_dict()
    assert not np.array_equal(layers["TMA1"].field, layers["TMA2"].field)
