"""Cloud shadows on the historical photos (off by default; on in the ``hard`` preset).

Each flight line gets one smooth random field in map coordinates, on a coarse
grid over the scene, so overlapping photos of a line see the same clouds. Each
photo thresholds that field at the quantile that puts the line's share
``cover`` of its own image area in shadow; the shadow edge is soft (a
smoothstep across the threshold), and inside a shadow the radiance is
multiplied by ``1 - darkening``. The 10 m ``truth_epoch.tif`` has no clouds:
like film defects they belong to the photos, not to the epoch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from affine import Affine

from aeroloc.synth.noise import fbm, smoothstep
from aeroloc.synth.terrain import Site

CLOUD_PX_M = 20.0
"""Cell size of the cloud fields."""
CLOUD_LONGEST_M = 4000.0
CLOUD_SHORTEST_M = 200.0
"""Wavelength range of the cloud fields (blobs of a few hundred metres to a few km)."""
EDGE_HALF_WIDTH = 0.12
"""Half-width of the soft shadow edge, in units of the (unit-variance) field."""


@dataclass(frozen=True, kw_only=True, eq=False)
class CloudLayer:
    """One flight line's clouds.

    Attributes:
        field: unit-variance smooth noise ``[H x W]`` float32, cells
            :data:`CLOUD_PX_M` apart from the scene's top-left corner.
        cover: share of each photo's image area in shadow.
        darkening: relative radiance loss inside a shadow.
    """

    field: np.ndarray
    cover: float
    darkening: float

    def to_dict(self) -> dict[str, float]:
        """``cover`` and ``darkening`` for ``truth.json``."""
        return {"cover": round(self.cover, 4), "darkening": round(self.darkening, 4)}


def draw_cloud_layers(
    site: Site,
    flight_lines: Sequence[str],
    *,
    cover: tuple[float, float],
    darkening: tuple[float, float],
    rng: np.random.Generator,
) -> dict[str, CloudLayer]:
    """One :class:`CloudLayer` per flight line: cover and darkening uniform in their ranges."""
    shape = (math.ceil(site.height_m / CLOUD_PX_M), math.ceil(site.width_m / CLOUD_PX_M))
    layers: dict[str, CloudLayer] = {}
    for name in flight_lines:
        c = float(rng.uniform(*cover))
        d = float(rng.uniform(*darkening))
        field = fbm(
            rng,
            shape,
            CLOUD_PX_M,
            longest_m=CLOUD_LONGEST_M,
            shortest_m=CLOUD_SHORTEST_M,
            hurst=1.0,
        )
        layers[name] = CloudLayer(field=field, cover=c, darkening=d)
    return layers


def sample_field(layer: CloudLayer, site: Site, image_to_map: Affine, n: int) -> np.ndarray:
    """The layer's field ``[n x n]`` at the pixel centres of an image mapped by ``image_to_map``."""
    a, b, c, d, e, f = tuple(image_to_map)[:6]
    # image pixel centre (j, i) → map (x, y) → cloud-grid pixel (centre convention)
    to_map = np.array([[a, b, c + 0.5 * (a + b)], [d, e, f + 0.5 * (d + e)]])
    to_grid = np.array(
        [
            [1 / CLOUD_PX_M, 0.0, -site.x0 / CLOUD_PX_M - 0.5],
            [0.0, -1 / CLOUD_PX_M, site.y0 / CLOUD_PX_M - 0.5],
        ]
    )
    m = np.vstack([to_grid, [0, 0, 1]]) @ np.vstack([to_map, [0, 0, 1]])
    return cv2.warpAffine(
        layer.field,
        m[:2],
        (n, n),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT,
    )


def cloud_factor(layer: CloudLayer, site: Site, image_to_map: Affine, n: int) -> np.ndarray:
    """Radiance factor ``[n x n]`` float32 in ``[1 - darkening, 1]`` of one photo's image area.

    The share ``layer.cover`` of the pixels is below ``1 - darkening / 2``
    (in shadow); pixels well outside the shadows are exactly 1.
    """
    if layer.cover <= 0 or layer.darkening <= 0:
        return np.ones((n, n), np.float32)
    values = sample_field(layer, site, image_to_map, n)
    thr = float(np.quantile(values, 1.0 - layer.cover))
    shade = smoothstep(thr - EDGE_HALF_WIDTH, thr + EDGE_HALF_WIDTH, values)
    shade *= np.float32(-layer.darkening)
    shade += np.float32(1.0)
    return shade
