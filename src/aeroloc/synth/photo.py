"""The historical camera: a nadir photo rendered at its own GSD, then filmed and scanned.

For each photo a grid at the photo's GSD is laid along the sunlight over the
footprint (plus a strip up-sun for shadows). The 10 m historical epoch is
resampled onto it and gains fine fractal relief and class-boundary detail
(functions of map coordinates, so overlapping photos agree), shaded, shadowed
(near shadows ray-marched on the fine DEM, far ones from the 10 m DEM), then
resampled into the photo frame (top = heading), filmed (:func:`apply_film`)
and framed like a USGS scan: dark border, fiducial marks and a data strip
with an altimeter dial, a clock, a level and the frame counter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
from affine import Affine

from aeroloc.geometry import footprint_corners, photo_to_map
from aeroloc.synth.clouds import CloudLayer, cloud_factor
from aeroloc.synth.config import REFERENCE_GSD_M
from aeroloc.synth.noise import DetailTile, ramp, smooth_upsample
from aeroloc.synth.render import (
    FILM_DIFFUSE,
    FilmLook,
    Sun,
    apply_film,
    cover_fractions,
    light_direction,
    radiance,
    reflectance,
    shadow_along_rows,
)
from aeroloc.synth.terrain import Epoch, Geology, Site

FEET_PER_M = 1.0 / 0.3048


@dataclass(frozen=True, kw_only=True)
class HistoricalWorld:
    """Everything a photo samples: the historical epoch at 10 m plus fine detail.

    Attributes:
        site: grid of the 10 m fields.
        epoch: historical land cover.
        geology: rock layering.
        texture: 10 m albedo texture ``[H x W]``.
        far_horizon: far-shadow ray height ``[H x W]`` for ``sun`` (see render.far_horizon).
        near_m: distance below which shadows are ray-marched on the fine grid.
        sun: historical sun.
        detail: fine-detail tile.
        clouds: cloud shadows per flight line (None: no clouds).
    """

    site: Site
    epoch: Epoch
    geology: Geology
    texture: np.ndarray
    far_horizon: np.ndarray
    near_m: float
    sun: Sun
    detail: DetailTile
    clouds: Mapping[str, CloudLayer] | None = None


@dataclass(frozen=True, kw_only=True)
class PhotoPose:
    """True exterior orientation of one nadir photo and what its data strip shows.

    Attributes:
        photo_id, flight_line, frame: identifiers.
        center_x, center_y: camera centre (EPSG:3031, m).
        altitude_m: height above ground; ground side = altitude × film / focal.
        azimuth_deg: heading, clockwise from grid north; the photo's top points along it.
        gsd_m: ground size of one image pixel.
        image_px: side of the (square) image area.
        altimeter_ft: what the altimeter dial shows (the noisy catalog altitude).
        clock_hm: hours and minutes on the clock dial.
        roll: film roll number (in the photo id and flight line).
        date: flight date printed on the border.
    """

    photo_id: str
    flight_line: str
    frame: int
    center_x: float
    center_y: float
    altitude_m: float
    azimuth_deg: float
    gsd_m: float
    image_px: int
    altimeter_ft: float
    clock_hm: tuple[int, int]
    roll: int
    date: str

    def image_to_map(self) -> Affine:
        """Image-area pixel (col, row) → map (x, y)."""
        return photo_to_map(
            center_x=self.center_x,
            center_y=self.center_y,
            gsd_m=self.gsd_m,
            azimuth_deg=self.azimuth_deg,
            width_px=self.image_px,
            height_px=self.image_px,
        )

    def footprint(self) -> np.ndarray:
        """Map corners ``[4 x 2]`` TL, TR, BR, BL of the image area."""
        side = self.image_px * self.gsd_m
        return footprint_corners(
            center_x=self.center_x,
            center_y=self.center_y,
            width_m=side,
            height_m=side,
            azimuth_deg=self.azimuth_deg,
        )


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """``[2 x 3]`` affine ``outer ∘ inner``."""
    m = np.vstack([outer, [0, 0, 1]]) @ np.vstack([inner, [0, 0, 1]])
    return m[:2]


def render_exposure(world: HistoricalWorld, pose: PhotoPose) -> np.ndarray:
    """Apparent panchromatic reflectance ``[N x N]`` of the image area (row 0 = heading side).

    Deterministic: the photo's randomness is all in the film look. Smooth 10 m
    fields are resampled onto a coarse version of the grid and upsampled by
    an integer factor (cheap); only the fine-detail tile is read at full
    resolution. When ``world.clouds`` has the photo's flight line, the
    result is multiplied by its :func:`~aeroloc.synth.clouds.cloud_factor`.
    """
    site, sun, g = world.site, world.sun, pose.gsd_m
    n = pose.image_px
    f = max(1, round(REFERENCE_GSD_M / g))
    gc = g * f
    # local map coordinates: metres from the scene's top-left corner (small numbers)
    cx, cy = pose.center_x - site.x0, pose.center_y - site.y0
    corners = footprint_corners(
        center_x=cx, center_y=cy, width_m=n * g, height_m=n * g, azimuth_deg=pose.azimuth_deg
    )
    lx, ly = light_direction(sun)
    px_, py_ = -ly, lx
    along = corners @ np.array([lx, ly])
    across = corners @ np.array([px_, py_])
    pad = 12 * g
    j_lo = along.min() - world.near_m - pad
    i_lo = across.min() - pad
    njc = math.ceil((along.max() + pad - j_lo) / gc)
    nic = math.ceil((across.max() + pad - i_lo) / gc)
    nj, ni = njc * f, nic * f
    ox, oy = j_lo * lx + i_lo * px_, j_lo * ly + i_lo * py_

    def grid_to_map(step: float) -> np.ndarray:
        return np.array(
            [
                [step * lx, step * px_, ox + 0.5 * step * (lx + px_)],
                [step * ly, step * py_, oy + 0.5 * step * (ly + py_)],
            ]
        )

    fine_to_map, coarse_to_map = grid_to_map(g), grid_to_map(gc)
    map_to_scene = np.array(
        [[1 / REFERENCE_GSD_M, 0, -0.5], [0, -1 / REFERENCE_GSD_M, -0.5]], np.float64
    )
    coarse_to_scene = _compose(map_to_scene, coarse_to_map)

    def coarse(field: np.ndarray, interp: int = cv2.INTER_LINEAR) -> np.ndarray:
        return cv2.warpAffine(
            field,
            coarse_to_scene,
            (njc, nic),
            flags=interp | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )

    def up(field: np.ndarray) -> np.ndarray:
        return smooth_upsample(field, (nj, ni), f)

    ep = world.epoch
    shape = (ni, nj)
    height_c = coarse(ep.surface_m, cv2.INTER_CUBIC)
    jc = np.arange(njc, dtype=np.float32)[None, :]
    ic = np.arange(nic, dtype=np.float32)[:, None]
    xc = coarse_to_map[0, 0] * jc + coarse_to_map[0, 1] * ic + np.float32(coarse_to_map[0, 2])
    yc = coarse_to_map[1, 0] * jc + coarse_to_map[1, 1] * ic + np.float32(coarse_to_map[1, 2])
    light_rock = up(world.geology.light_fraction(height_c, xc, yc))
    height = up(height_c)
    relief = world.detail.sample("relief", fine_to_map, shape)
    fine_tex = world.detail.sample("detail", fine_to_map, shape)
    # Classes absent from the whole grid (fine noise included) are skipped.
    rock_c, ice_c, sea_c = coarse(ep.rock), coarse(ep.ice_m), coarse(ep.sea_m)
    rock = up(rock_c) if rock_c.max() > -1.0 else None
    ice = up(ice_c) if ice_c.max() > -20.0 else None
    sea = up(sea_c) if sea_c.max() > -150.0 else None
    blue_c = coarse(ep.blue)
    blue = up(blue_c) if ice is not None and blue_c.max() > -1.5 else None
    seaice = up(coarse(ep.seaice)) if sea is not None else None

    # Fine relief: metres on bare rock, decimetres (sastrugi) on snow and ice.
    if rock is not None:
        bare = ramp(-0.1, 0.1, rock)
        if ice is not None:
            bare *= ramp(1.0, -1.0, ice)
        if sea is not None:
            bare *= ramp(3.0, -3.0, sea)
        bare *= np.float32(7.0)
        bare += np.float32(0.25)
        bare *= relief
        height += bare
        del bare
    else:
        height += np.float32(0.25) * relief

    # Class boundaries follow the fine relief (snow fills hollows, rock pokes
    # out) and are ragged at the metre scale.
    if rock is not None:
        rock += np.float32(0.05) * relief
        rock += np.float32(0.06) * fine_tex
    if ice is not None:
        ice -= np.float32(3.0) * relief
    if sea is not None:
        sea += np.float32(20.0) * fine_tex
    if seaice is not None:
        seaice += np.float32(0.3) * fine_tex
    if blue is not None:
        blue += np.float32(0.2) * fine_tex
    fr = cover_fractions(sea_m=sea, ice_m=ice, rock=rock, seaice=seaice, blue=blue, soft=0.2)
    del rock, ice, sea, seaice, blue, relief
    texture = up(coarse(world.texture))
    texture *= np.float32(0.8)
    texture += np.float32(0.45) * fine_tex
    albedo = reflectance(fr, light_rock, texture, pan=True)
    del fr, texture, light_rock, fine_tex

    # Shading in grid axes: the sun lies towards -j, at elevation el.
    el = math.radians(sun.elevation_deg)
    d_dj = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3, scale=1.0 / (8.0 * g))
    d_di = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3, scale=1.0 / (8.0 * g))
    inv_norm = d_dj * d_dj
    inv_norm += d_di * d_di
    inv_norm += np.float32(1.0)
    np.sqrt(inv_norm, out=inv_norm)
    np.divide(np.float32(1.0), inv_norm, out=inv_norm)
    cos_i = d_dj * np.float32(math.cos(el))
    cos_i += np.float32(math.sin(el))
    cos_i *= inv_norm
    sky = inv_norm
    sky += np.float32(1.0)
    sky *= np.float32(0.5)
    del d_dj, d_di
    near = shadow_along_rows(height, g, sun.tan_elevation, eps_m=0.15)
    far = up(coarse(world.far_horizon))
    near |= far > height + np.float32(1.0)
    del far, height
    shadow = cv2.GaussianBlur(near.astype(np.float32), (0, 0), 0.6)
    rho = radiance(albedo, cos_i, shadow, sky, sun, FILM_DIFFUSE)
    del albedo, cos_i, shadow, sky

    img_to_map = pose.image_to_map()
    # image pixel centres → local map → grid pixel centres
    a, b, d, e = img_to_map.a, img_to_map.b, img_to_map.d, img_to_map.e
    c0, f0 = img_to_map.c - site.x0, img_to_map.f - site.y0
    img_to_local = np.array([[a, b, c0 + 0.5 * (a + b)], [d, e, f0 + 0.5 * (d + e)]])
    local_to_grid = np.array(
        [
            [lx / g, ly / g, -(ox * lx + oy * ly) / g - 0.5],
            [px_ / g, py_ / g, -(ox * px_ + oy * py_) / g - 0.5],
        ]
    )
    out = cv2.warpAffine(
        rho,
        _compose(local_to_grid, img_to_local),
        (n, n),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    layer = cloud_layer(world, pose)
    if layer is not None:
        out *= cloud_factor(layer, site, img_to_map, n)
    return out


def cloud_layer(world: HistoricalWorld, pose: PhotoPose) -> CloudLayer | None:
    """The clouds over ``pose``'s flight line, if any."""
    if world.clouds is None:
        return None
    return world.clouds.get(pose.flight_line)


def render_photo(
    world: HistoricalWorld, pose: PhotoPose, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[int, int, int, int], FilmLook]:
    """Scan ``[H x W]`` uint8 of one photo, its image box (col0, row0, col1, row1) and film look."""
    rho = render_exposure(world, pose)
    look = FilmLook.draw(rng, pose.image_px)
    image = apply_film(rho, look, rng)
    scan, box = compose_scan(image, pose, rng)
    return scan, box, look


# --------------------------------------------------------------------------- scan frame


def frame_layout(image_px: int) -> tuple[int, int]:
    """(border_px, strip_px): dark border on three sides and data strip width on the left."""
    s = image_px / 2400.0
    return max(24, round(110 * s)), max(72, round(330 * s))


def compose_scan(
    image: np.ndarray, pose: PhotoPose, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Put the image area ``[N x N]`` into a scanned film frame.

    Dark film border with fiducial marks at the corners and mid-sides, a data
    strip on the left (altimeter dial, clock, frame counter, level bubble) and
    a hand-lettered line on the top border.

    Returns:
        ``(scan [H x W] uint8, (col0, row0, col1, row1))`` of the image area.
    """
    n = image.shape[0]
    s = n / 2400.0
    border, strip = frame_layout(n)
    height, width = n + 2 * border, strip + n + border
    c0, r0 = strip, border
    frame = np.full((height, width), 16, np.uint8)
    white, ink = 215, 28

    def pt(x: float, y: float) -> tuple[int, int]:
        return round(x * 16), round(y * 16)

    def line_w(v: float) -> int:
        return max(1, round(v * s))

    # fiducial marks: crosses at the corners, notches with a dot at mid-sides
    off = 0.45 * border
    arm = 0.3 * border
    for fx, fy in (
        (c0 - off, r0 - off),
        (c0 + n + off, r0 - off),
        (c0 + n + off, r0 + n + off),
        (c0 - off, r0 + n + off),
    ):
        cv2.line(frame, pt(fx - arm, fy), pt(fx + arm, fy), white, line_w(4), cv2.LINE_AA, 4)
        cv2.line(frame, pt(fx, fy - arm), pt(fx, fy + arm), white, line_w(4), cv2.LINE_AA, 4)
        cv2.circle(frame, pt(fx, fy), int(16 * 0.1 * border), white, line_w(3), cv2.LINE_AA, 4)
    tri = 0.28 * border
    for (fx, fy), (dx, dy) in (
        ((c0 + n / 2, r0 - 0.55 * border), (0, 1)),
        ((c0 + n / 2, r0 + n + 0.55 * border), (0, -1)),
        ((c0 - 0.55 * border, r0 + n / 2), (1, 0)),
        ((c0 + n + 0.55 * border, r0 + n / 2), (-1, 0)),
    ):
        tip = (fx + dx * tri, fy + dy * tri)
        left = (fx - dx * tri - dy * tri, fy - dy * tri + dx * tri)
        right = (fx - dx * tri + dy * tri, fy - dy * tri - dx * tri)
        poly = np.array([pt(*tip), pt(*left), pt(*right)], np.int32)
        cv2.fillPoly(frame, [poly], white, cv2.LINE_AA, 4)
        cv2.circle(
            frame,
            pt(fx - dx * 1.6 * tri, fy - dy * 1.6 * tri),
            int(16 * 0.06 * border),
            white,
            -1,
            cv2.LINE_AA,
            4,
        )

    sx = 0.44 * strip
    radius = 0.36 * strip
    font = cv2.FONT_HERSHEY_SIMPLEX

    def dial(
        cy: float, r: float, ticks: int, hands: list[tuple[float, float, int]], label: str
    ) -> None:
        cv2.circle(frame, pt(sx, cy), int(16 * r), 190, -1, cv2.LINE_AA, 4)
        cv2.circle(frame, pt(sx, cy), int(16 * r), ink, line_w(5), cv2.LINE_AA, 4)
        for k in range(ticks):
            ang = 2 * math.pi * k / ticks
            ux, uy = math.sin(ang), -math.cos(ang)
            cv2.line(
                frame,
                pt(sx + ux * 0.78 * r, cy + uy * 0.78 * r),
                pt(sx + ux * 0.92 * r, cy + uy * 0.92 * r),
                ink,
                line_w(4),
                cv2.LINE_AA,
                4,
            )
            if ticks == 10:
                txt = str(k)
                scale = 0.9 * s
                (tw, th), _ = cv2.getTextSize(txt, font, scale, line_w(2))
                cv2.putText(
                    frame,
                    txt,
                    (int(sx + ux * 0.6 * r - tw / 2), int(cy + uy * 0.6 * r + th / 2)),
                    font,
                    scale,
                    ink,
                    line_w(2),
                    cv2.LINE_AA,
                )
        (tw, th), _ = cv2.getTextSize(label, font, 0.7 * s, line_w(2))
        cv2.putText(
            frame,
            label,
            (int(sx - tw / 2), int(cy + 0.35 * r)),
            font,
            0.7 * s,
            ink,
            line_w(2),
            cv2.LINE_AA,
        )
        for frac, length, thick in hands:
            ang = 2 * math.pi * frac
            cv2.line(
                frame,
                pt(sx, cy),
                pt(sx + math.sin(ang) * length * r, cy - math.cos(ang) * length * r),
                ink,
                line_w(thick),
                cv2.LINE_AA,
                4,
            )
        cv2.circle(frame, pt(sx, cy), int(16 * 0.06 * r), ink, -1, cv2.LINE_AA, 4)

    feet = pose.altimeter_ft
    dial(
        r0 + 0.16 * n,
        radius,
        10,
        [((feet % 1000) / 1000, 0.85, 6), ((feet % 10000) / 10000, 0.55, 10)],
        "FEET",
    )
    hours, minutes = pose.clock_hm
    dial(
        r0 + 0.37 * n,
        0.8 * radius,
        12,
        [(minutes / 60, 0.85, 6), (((hours % 12) + minutes / 60) / 12, 0.55, 10)],
        "",
    )

    # frame counter
    text = f"{pose.frame:04d}"
    scale = 2.2 * s
    (tw, th), _ = cv2.getTextSize(text, font, scale, line_w(6))
    bx0, by0 = int(sx - tw / 2 - 10 * s), int(r0 + 0.6 * n - th / 2 - 12 * s)
    cv2.rectangle(
        frame, (bx0, by0), (int(sx + tw / 2 + 10 * s), int(r0 + 0.6 * n + th / 2 + 12 * s)), 200, -1
    )
    cv2.putText(
        frame,
        text,
        (int(sx - tw / 2), int(r0 + 0.6 * n + th / 2)),
        font,
        scale,
        ink,
        line_w(6),
        cv2.LINE_AA,
    )
    # level bubble
    by = r0 + 0.8 * n
    cv2.circle(frame, pt(sx, by), int(16 * 0.5 * radius), 150, -1, cv2.LINE_AA, 4)
    cv2.circle(frame, pt(sx, by), int(16 * 0.2 * radius), ink, line_w(3), cv2.LINE_AA, 4)
    bub = rng.normal(0, 0.08 * radius, 2)
    cv2.circle(
        frame, pt(sx + bub[0], by + bub[1]), int(16 * 0.14 * radius), 235, -1, cv2.LINE_AA, 4
    )
    # hand lettering on the top border
    note = f"{pose.flight_line}   V   F {pose.frame:04d}   {pose.date}"
    cv2.putText(
        frame,
        note,
        (int(c0 + 0.04 * n), int(0.68 * border)),
        cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
        1.5 * s,
        225,
        line_w(3),
        cv2.LINE_AA,
    )

    blurred: np.ndarray = cv2.GaussianBlur(frame.astype(np.float32), (0, 0), max(0.8 * s, 0.6))
    noise = rng.random(blurred.shape, dtype=np.float32)
    noise -= np.float32(0.5)
    noise *= np.float32(10.0)  # sd 3 grey levels
    blurred += noise
    scan = np.clip(np.round(blurred), 0, 255).astype(np.uint8)
    scan[r0 : r0 + n, c0 : c0 + n] = image
    return scan, (c0, r0, c0 + n, r0 + n)
