"""Geometry properties: camera, AoI and rotated-grid mappings round-trip; transforms compose."""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine
from hypothesis import example, given
from hypothesis import strategies as st

from aeroloc.aoi import AoIConfig, build_aoi
from aeroloc.catalog import PhotoRecord
from aeroloc.geometry import heading_unit, photo_to_map
from aeroloc.georef.transform import PhotoTransform
from aeroloc.preprocess.rotate import RotatedAoI, rotated_grid
from property_helpers import bounded

coord = st.floats(-3.0e6, 3.0e6, allow_nan=False)
azimuth = st.floats(-720.0, 720.0, allow_nan=False)
gsd = st.floats(0.05, 50.0, allow_nan=False)
size_px = st.integers(1, 4000)
pixel = st.floats(-5000.0, 5000.0, allow_nan=False)


@bounded(100)
@given(cx=coord, cy=coord, g=gsd, az=azimuth, w=size_px, h=size_px, col=pixel, row=pixel)
def test_photo_to_map_round_trips_and_points_the_top_edge_along_the_heading(
    cx, cy, g, az, w, h, col, row
):
    t = photo_to_map(center_x=cx, center_y=cy, gsd_m=g, azimuth_deg=az, width_px=w, height_px=h)
    x, y = t @ (col, row)
    back = ~t @ (x, y)
    assert back == pytest.approx((col, row), abs=1e-6 * max(1.0, abs(cx), abs(cy)) / g)
    assert t @ (w / 2, h / 2) == pytest.approx((cx, cy), abs=1e-6 * max(1.0, abs(cx), abs(cy)))
    # one pixel is g on the ground, and "up" in the photo (row - 1) is the heading
    up = np.subtract(t @ (col, row - 1.0), t @ (col, row))
    assert float(np.hypot(*up)) == pytest.approx(g, rel=1e-6)
    assert up / g == pytest.approx(heading_unit(az), abs=1e-6)


@bounded(60)
@given(
    x=st.floats(-2.0e6, 2.0e6),
    y=st.floats(-2.0e6, 2.0e6),
    altitude=st.floats(100.0, 25_000.0),
    az=st.one_of(st.none(), st.floats(0.0, 360.0, exclude_max=True)),
    focal=st.floats(50.0, 600.0),
    buffer_m=st.floats(0.0, 20_000.0),
)
# A buffer far below the coordinates' precision once gave an empty AoI.
@example(x=0.0, y=0.0, altitude=100.0, az=0.0, focal=50.0, buffer_m=3.932032799553556e-92)
def test_an_aoi_holds_its_footprint_centred_on_the_camera(x, y, altitude, az, focal, buffer_m):
    record = PhotoRecord(
        photo_id="p",
        x=x,
        y=y,
        crs="EPSG:3031",
        altitude_m=altitude,
        focal_length_mm=focal,
        azimuth_deg=az,
    )
    aoi = build_aoi(record, AoIConfig(buffer_m=buffer_m))
    scale = max(1.0, abs(x), abs(y))
    assert aoi.polygon.buffer(1e-6 * scale).contains(aoi.footprint)
    centre = aoi.footprint.centroid
    assert (centre.x, centre.y) == pytest.approx((x, y), abs=1e-6 * scale)
    assert aoi.footprint.area == pytest.approx(aoi.ground_width_m * aoi.ground_height_m, rel=1e-6)
    minx, miny, maxx, maxy = aoi.bounds
    assert minx <= x <= maxx and miny <= y <= maxy
    # the AoI reaches at least the buffer beyond the footprint on every side
    fminx, fminy, fmaxx, fmaxy = aoi.footprint.bounds
    tol = 1e-6 * scale + 1e-3 * buffer_m
    assert minx <= fminx - buffer_m + tol and maxx >= fmaxx + buffer_m - tol
    assert miny <= fminy - buffer_m + tol and maxy >= fmaxy + buffer_m - tol


@st.composite
def aoi_grids(draw):
    """A north-up AoI grid: (Affine pixel → map, (H, W))."""
    res = draw(st.floats(0.5, 100.0))
    x0, y0 = draw(coord), draw(coord)
    shape = (draw(st.integers(1, 3000)), draw(st.integers(1, 3000)))
    return Affine(res, 0.0, x0, 0.0, -res, y0), shape


@bounded(100)
@given(grid=aoi_grids(), az=azimuth, u=st.floats(0.0, 1.0), v=st.floats(0.0, 1.0))
def test_the_rotated_canvas_holds_the_aoi_and_maps_back_exactly(grid, az, u, v):
    src, (height, width) = grid
    inverse, (height_r, width_r) = rotated_grid(
        transform=src, shape=(height, width), azimuth_deg=az
    )
    rotated = RotatedAoI(
        data=np.zeros((1, 1, 1), np.float32),
        inverse=inverse,
        crs="EPSG:3031",
        azimuth_deg=az,
        source_transform=src,
        source_shape=(height, width),
    )
    scale = max(1.0, abs(src.c), abs(src.f))
    tol_px = 1e-6 * scale / src.a + 1e-6
    # every AoI corner (and any point inside) lies on the canvas
    for col, row in ((0, 0), (width, 0), (width, height), (0, height), (u * width, v * height)):
        rc, rr = rotated.to_pixel(*(src @ (col, row)))
        assert -tol_px <= float(rc) <= width_r + tol_px
        assert -tol_px <= float(rr) <= height_r + tol_px
        # rotated pixel → unrotated AoI pixel is the composition of the two maps
        sc, sr = rotated.to_source_pixel(rc, rr)
        assert (float(sc), float(sr)) == pytest.approx((col, row), abs=tol_px)
    # map → rotated pixel → map is the identity; the centres coincide
    x, y = src @ (u * width, v * height)
    xs, ys = rotated.to_map(*rotated.to_pixel(x, y))
    assert (float(xs), float(ys)) == pytest.approx((x, y), abs=1e-6 * scale)
    assert inverse @ (width_r / 2, height_r / 2) == pytest.approx(
        src @ (width / 2, height / 2), abs=1e-6 * scale
    )
    assert rotated.gsd_m == pytest.approx(src.a, rel=1e-9)
    # the canvas is the smallest holding the AoI: at most one pixel of slack per side
    diag = math.hypot(width, height)
    assert width_r <= math.ceil(diag) + 1 and height_r <= math.ceil(diag) + 1


@st.composite
def transforms(draw, kind: str = "homography"):
    """A well-conditioned photo → map transform of ``kind``."""
    angle = math.radians(draw(st.floats(-180.0, 180.0)))
    sx = draw(st.floats(0.2, 20.0))
    sy = sx if kind == "similarity" else draw(st.floats(0.2, 20.0))
    shear = 0.0 if kind == "similarity" else draw(st.floats(-0.5, 0.5))
    c, s = math.cos(angle), math.sin(angle)
    linear = np.array([[c, -s], [s, c]]) @ np.array([[sx, shear * sx], [0.0, sy]])
    m = np.eye(3)
    m[:2, :2] = linear
    m[:2, 2] = (draw(st.floats(-1e5, 1e5)), draw(st.floats(-1e5, 1e5)))
    if kind == "homography":
        m[2, :2] = (draw(st.floats(-1e-5, 1e-5)), draw(st.floats(-1e-5, 1e-5)))
    m *= draw(st.floats(0.1, 10.0))  # any scale of the homogeneous matrix is the same map
    return PhotoTransform(matrix=m, kind=kind, crs="EPSG:3031")


photo_px = st.floats(0.0, 5000.0)


@bounded(100)
@given(t=transforms(), cols=st.lists(photo_px, min_size=1, max_size=8), row=photo_px)
def test_a_transform_and_its_inverse_round_trip(t, cols, row):
    rows = [row] * len(cols)
    xs, ys = t.apply(cols, rows)
    back_c, back_r = t.to_pixel(xs, ys)
    assert back_c == pytest.approx(cols, abs=1e-6) and back_r == pytest.approx(rows, abs=1e-6)
    again = PhotoTransform.from_json(t.to_json())
    assert np.array_equal(again.matrix, t.matrix) and again.kind == t.kind


@bounded(100)
@given(outer=transforms("affine"), inner=transforms(), col=photo_px, row=photo_px)
def test_transforms_compose_as_their_matrix_product(outer, inner, col, row):
    both = PhotoTransform(matrix=outer.matrix @ inner.matrix, kind="homography", crs=inner.crs)
    x1, y1 = inner.apply(col, row)
    x2, y2 = outer.apply(x1, y1)
    x, y = both.apply(col, row)
    tol = 1e-9 * max(1.0, abs(float(x2)), abs(float(y2)))
    assert (float(x), float(y)) == pytest.approx((float(x2), float(y2)), abs=max(tol, 1e-6))
    # and the inverse of the composition undoes both in turn
    c, r = both.to_pixel(x2, y2)
    assert (float(c), float(r)) == pytest.approx((col, row), abs=1e-5)


@bounded(60)
@given(cx=coord, cy=coord, g=gsd, az=azimuth, col=photo_px, row=photo_px)
def test_a_camera_affine_is_the_same_map_as_a_photo_transform(cx, cy, g, az, col, row):
    a = photo_to_map(
        center_x=cx, center_y=cy, gsd_m=g, azimuth_deg=az, width_px=1000, height_px=800
    )
    t = PhotoTransform.from_affine(a, "EPSG:3031", kind="similarity")
    x, y = t.apply(col, row)
    assert (float(x), float(y)) == pytest.approx(a @ (col, row), abs=1e-6 * max(1.0, abs(cx)))
    assert t.pixel_size_m(col, row) == pytest.approx(g, rel=1e-6)
    assert t.check((0, 0, 1000, 800)) is None  # a camera never mirrors the photo
