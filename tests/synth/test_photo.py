"""The scans of a synthetic archive: frame, image area, agreement with the truth epoch."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from scipy.ndimage import map_coordinates

from aeroloc.synth import get_preset
from aeroloc.synth.clouds import cloud_factor, draw_cloud_layers
from aeroloc.synth.noise import DetailTile, fbm
from aeroloc.synth.photo import HistoricalWorld, PhotoPose, frame_layout, render_exposure
from aeroloc.synth.render import Sun, far_horizon
from aeroloc.synth.terrain import Epoch, Geology, Site


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def test_photos_are_unreferenced_scans_with_a_frame(archive: Path, truth: dict) -> None:
    n = get_preset("tiny").image_px
    border, strip = frame_layout(n)
    for photo in truth["photos"]:
        path = archive / photo["path"]
        with rasterio.open(path) as ds:
            assert ds.crs is None and ds.transform == Affine.identity()
            assert (ds.count, ds.dtypes[0]) == (1, "uint8")
            scan = ds.read(1)
        col0, row0, col1, row1 = photo["image_box_px"]
        assert (col0, row0, col1 - col0, row1 - row0) == (strip, border, n, n)
        assert scan.shape == (n + 2 * border, strip + n + border)
        assert list(photo["scan_size_px"]) == [scan.shape[1], scan.shape[0]]
        # dark film border around a brighter image area, bright marks inside the border
        assert np.median(scan[: border // 3, col0:col1]) < 40
        assert np.percentile(scan[row0:row1, col0:col1], 95) > 150
        assert scan[:border, :].max() > 180


def _photo_vs_epoch(archive: Path, photo: dict, shift_m: float = 0.0) -> float:
    """Pearson r between the photo's image area at ~10 m and truth_epoch.tif through the truth."""
    scan = _read(archive / photo["path"])[0].astype(np.float64)
    col0, row0, col1, _ = photo["image_box_px"]
    k = round(10.0 / photo["gsd_m"])
    n = (col1 - col0) // k
    blocks = scan[row0 : row0 + n * k, col0 : col0 + n * k].reshape(n, k, n, k).mean(axis=(1, 3))
    to_map = Affine(*photo["pixel_to_map"])
    cc, rr = np.meshgrid(col0 + (np.arange(n) + 0.5) * k, row0 + (np.arange(n) + 0.5) * k)
    x, y = to_map @ (cc.ravel(), rr.ravel())
    with rasterio.open(archive / "truth_epoch.tif") as ds:
        epoch = ds.read(1).astype(np.float64)
        inv = ~ds.transform
    cols, rows = inv @ (np.asarray(x) + shift_m, np.asarray(y) + shift_m)
    sampled = map_coordinates(epoch, [rows - 0.5, cols - 0.5], order=1, mode="nearest")
    return float(np.corrcoef(blocks.ravel(), sampled)[0, 1])


def test_photo_matches_truth_epoch_through_the_truth(archive: Path, truth: dict) -> None:
    for photo in truth["photos"]:
        r_true = _photo_vs_epoch(archive, photo)
        r_shifted = _photo_vs_epoch(archive, photo, shift_m=700.0)
        assert r_true > 0.85, (photo["photo_id"], r_true)
        assert r_shifted < r_true - 0.3, (photo["photo_id"], r_true, r_shifted)


# --------------------------------------------------------------------------- determinism


# --------------------------------------------------------------------------- cloud shadows


def _small_world(rng: np.random.Generator) -> tuple[HistoricalWorld, PhotoPose]:
    """A 2 km scene of rock and snow around one 512 m nadir photo."""
    site = Site(name="test", x0=500_000.0, y0=-1_000_000.0, width_px=200, height_px=200)
    shape = site.shape
    surface = (600.0 + 80.0 * fbm(rng, shape, 10.0, longest_m=1500.0, shortest_m=80.0)).astype(
        np.float32
    )
    epoch = Epoch(
        name="historical",
        surface_m=surface,
        ice_m=np.full(shape, -1.0, np.float32),
        sea_m=np.full(shape, -1000.0, np.float32),
        rock=fbm(rng, shape, 10.0, longest_m=600.0, shortest_m=40.0) - np.float32(0.5),
        seaice=np.full(shape, -1.0, np.float32),
        blue=np.full(shape, -1.0, np.float32),
    )
    sun = Sun(azimuth_deg=140.0, elevation_deg=25.0)
    world = HistoricalWorld(
        site=site,
        epoch=epoch,
        geology=Geology(periods_m=(50.0, 100.0, 200.0), phases=(0.0, 1.0, 2.0), dip_x=0, dip_y=0),
        texture=np.zeros(shape, np.float32),
        far_horizon=far_horizon(surface, 10.0, sun, 200.0),
        near_m=200.0,
        sun=sun,
        detail=DetailTile(rng, size=256),
    )
    pose = PhotoPose(
        photo_id="CA1000V0001",
        flight_line="TMA1000",
        frame=1,
        center_x=site.x0 + 1000.0,
        center_y=site.y0 - 1000.0,
        altitude_m=512.0 * 152.4 / 228.6,
        azimuth_deg=25.0,
        gsd_m=2.0,
        image_px=256,
        altimeter_ft=1000.0,
        clock_hm=(12, 0),
        roll=1000,
        date="1 JAN 60",
    )
    return world, pose


def test_cloud_shadows_darken_the_exposure_where_their_field_says() -> None:
    world, pose = _small_world(np.random.default_rng(3))
    clear = render_exposure(world, pose)
    layers = draw_cloud_layers(
        world.site,
        [pose.flight_line, "TMA2000"],
        cover=(0.2, 0.2),
        darkening=(0.35, 0.35),
        rng=np.random.default_rng(4),
    )
    clouded = render_exposure(replace(world, clouds=layers), pose)
    factor = cloud_factor(layers[pose.flight_line], world.site, pose.image_to_map(), pose.image_px)
    np.testing.assert_allclose(clouded, clear * factor, rtol=1e-6)
    shade = factor < 1 - 0.35 / 2
    assert shade.mean() == pytest.approx(0.2, abs=0.01)
    core = factor < 0.65 + 1e-6
    assert core.mean() > 0.1
    np.testing.assert_allclose(clouded[core] / clear[core], 0.65, rtol=1e-5)
    assert np.all(clouded[factor == 1.0] == clear[factor == 1.0])
    # another line's clouds leave this photo alone
    other = render_exposure(replace(world, clouds={"TMA2000": layers["TMA2000"]}), pose)
    np.testing.assert_array_equal(other, clear)
