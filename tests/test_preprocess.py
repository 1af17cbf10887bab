"""Tests of aeroloc.preprocess: frame crop, binarisation, enhancement, matching, rotation, run."""

from __future__ import annotations

import json
import math
import warnings

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from scipy import ndimage
from scipy.stats import norm
from skimage.exposure import match_histograms
from skimage.filters import threshold_otsu

from aeroloc.errors import (
    ConfigError,
    CRSError,
    DataQualityError,
    InvalidInputError,
    MissingFileError,
)
from aeroloc.files import write_geotiff
from aeroloc.preprocess import (
    SEED_STUDY_THRESHOLD,
    AveragedHistogramThreshold,
    EnhanceConfig,
    FrameConfig,
    FrameCrop,
    ReferenceArrays,
    clean_mask,
    crop_frame,
    detect_frame,
    enhance_reference,
    first_valley,
    gray_histogram,
    match_histogram,
    rasterize_rock_mask,
    read_reference,
    rgb_to_gray,
    rotate_aoi,
    rotated_grid,
    run_preprocess,
)

CRS_3031 = "EPSG:3031"


# --------------------------------------------------------------------------- helpers


def _terrain(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Snow (~175) with rock (~55) and shadow (~110) patches, uint8 ``[H x W]``."""
    field = ndimage.gaussian_filter(rng.normal(size=(height, width)), 6)
    field /= field.std()
    img = np.full((height, width), 175.0)
    img[field < -1.0] = 110.0
    img[field < -1.6] = 55.0
    img += rng.normal(0, 6, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _cross(img: np.ndarray, col: int, row: int, arm: int = 10, value: int = 235) -> None:
    img[row - 1 : row + 1, col - arm : col + arm + 1] = value
    img[row - arm : row + arm + 1, col - 1 : col + 1] = value


def make_scan(
    rng: np.random.Generator, *, scanner_margin: int = 0
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A synthetic TMA scan: dark frame, fiducial crosses, data strip with a dial.

    Returns the scan (uint8) and the true image box (col0, row0, col1, row1).
    """
    height, width = 520, 560
    left, top, right, bottom = 80, 30, 30, 36  # the data strip is on the left
    scan = np.clip(rng.normal(12, 3, size=(height, width)), 0, 255).astype(np.uint8)
    col0, row0, col1, row1 = left, top, width - right, height - bottom
    scan[row0:row1, col0:col1] = _terrain(rng, row1 - row0, col1 - col0)
    # Fiducial crosses at the corners and mid-sides, in the frame.
    for col, row in [
        (col0 - 15, row0 - 15),
        (col1 + 15, row0 - 15),
        (col0 - 15, row1 + 18),
        (col1 + 15, row1 + 18),
        ((col0 + col1) // 2, row0 // 2),
        ((col0 + col1) // 2, (row1 + height) // 2),
        (col1 + 15, (row0 + row1) // 2),
        (col0 - 15, (row0 + row1) // 2),
    ]:
        _cross(scan, col, row)
    # Data strip: an altimeter dial (bright face, dark needle) and frame-number digits.
    yy, xx = np.mgrid[0:height, 0:width]
    face = (xx - 38) ** 2 + (yy - 150) ** 2 <= 26**2
    scan[face] = 220
    scan[150:152, 38:60] = 20
    for k in range(4):
        scan[300:318, 14 + 12 * k : 22 + 12 * k] = 230
    if scanner_margin:
        scan = np.pad(scan, scanner_margin, constant_values=200)
        m = scanner_margin
        return scan, (col0 + m, row0 + m, col1 + m, row1 + m)
    return scan, (col0, row0, col1, row1)


def mixture_photos(rng: np.random.Generator, n: int = 4) -> list[np.ndarray]:
    """Photos drawn from rock (55) / shadow (110) / snow (180) with unequal weights."""
    means, sds, weights = np.array([55, 110, 180]), np.array([8, 12, 15]), [0.12, 0.25, 0.63]
    photos = []
    for _ in range(n):
        k = rng.choice(3, size=(200, 200), p=weights)
        photos.append(np.clip(np.rint(rng.normal(means[k], sds[k])), 0, 255).astype(np.uint8))
    return photos


def aoi_grid() -> tuple[Affine, tuple[int, int]]:
    return Affine(10.0, 0.0, 100_000.0, 0.0, -10.0, -1_200_000.0), (60, 80)


# --------------------------------------------------------------------------- frame


@pytest.mark.parametrize("work_size_px", [1024, 128, 100])
def test_detect_frame_finds_image_area(work_size_px: int) -> None:
    scan, truth = make_scan(np.random.default_rng(0))
    crop = detect_frame(scan, FrameConfig(inset_frac=0.0, work_size_px=work_size_px))
    assert crop.detected
    found = (crop.col0, crop.row0, crop.col1, crop.row1)
    assert np.abs(np.subtract(found, truth)).max() <= 1, (found, truth)


@pytest.mark.parametrize("side", ["left", "top", "right", "bottom"])
def test_detect_frame_stops_at_film_black_when_shadow_touches_the_border(side: str) -> None:
    """Deep shadow (darker than the film) and dark rock along one edge of the image."""
    rng = np.random.default_rng(3)
    scan, truth = make_scan(rng)
    col0, row0, col1, row1 = truth
    strip = 120  # px of shadow/rock inside the image along that edge
    area = {
        "left": (slice(row0, row1), slice(col0, col0 + strip)),
        "right": (slice(row0, row1), slice(col1 - strip, col1)),
        "top": (slice(row0, row0 + strip), slice(col0, col1)),
        "bottom": (slice(row1 - strip, row1), slice(col0, col1)),
    }[side]
    shape = scan[area].shape
    shadow = rng.choice([4, 30, 45], size=shape, p=[0.4, 0.3, 0.3]) + rng.normal(0, 2, shape)
    scan[area] = np.clip(shadow, 0, 255).astype(np.uint8)
    crop = detect_frame(scan, FrameConfig(inset_frac=0.0))
    assert crop.detected
    found = (crop.col0, crop.row0, crop.col1, crop.row1)
    assert np.abs(np.subtract(found, truth)).max() <= 2, (side, found, truth)


def test_detect_frame_skips_bright_scanner_margin() -> None:
    scan, truth = make_scan(np.random.default_rng(1), scanner_margin=12)
    crop = detect_frame(scan, FrameConfig(inset_frac=0.0))
    assert crop.detected
    assert np.abs(np.subtract((crop.col0, crop.row0, crop.col1, crop.row1), truth)).max() <= 1


def test_crop_frame_inset_and_mapping_back() -> None:
    scan, (c0, r0, c1, r1) = make_scan(np.random.default_rng(2))
    image, crop = crop_frame(scan, FrameConfig(inset_frac=0.01))
    inset_c, inset_r = math.ceil(0.01 * scan.shape[1]), math.ceil(0.01 * scan.shape[0])
    expected = (c0 + inset_c, r0 + inset_r, c1 - inset_c, r1 - inset_r)
    found = (crop.col0, crop.row0, crop.col1, crop.row1)
    assert np.abs(np.subtract(found, expected)).max() <= 1
    assert image.shape == (crop.height, crop.width)
    # No frame black left inside the crop.
    assert image.min() > 25
    cols, rows = crop.to_scan([0, 10], [0, 5])
    assert scan[int(rows[1]), int(cols[1])] == image[5, 10]
    assert crop.to_dict()["detected"] is True


def test_detect_frame_falls_back_to_margin_with_warning() -> None:
    photo = _terrain(np.random.default_rng(3), 300, 400)  # already cropped: no frame
    with pytest.warns(UserWarning, match="frame detection failed"):
        crop = detect_frame(photo, FrameConfig(fallback_margin_frac=0.1))
    assert not crop.detected and crop.reason
    assert (crop.col0, crop.row0, crop.col1, crop.row1) == (40, 30, 360, 270)


def test_detect_frame_fallback_on_flat_scan() -> None:
    with pytest.warns(UserWarning, match="no contrast"):
        crop = detect_frame(np.full((100, 100), 128, dtype=np.uint8))
    assert not crop.detected


def test_frame_errors() -> None:
    with pytest.raises(InvalidInputError, match=r"one band \[H x W\], found shape \(2, 50, 50\)"):
        detect_frame(np.zeros((2, 50, 50), dtype=np.uint8))
    with pytest.raises(InvalidInputError, match="is empty"):
        detect_frame(np.zeros((0, 50), dtype=np.uint8))
    with pytest.raises(InvalidInputError, match="at least 16 px"):
        detect_frame(np.zeros((8, 50), dtype=np.uint8))
    with pytest.raises(DataQualityError, match="all nodata"):
        detect_frame(np.full((50, 50), np.nan, dtype=np.float32))
    with pytest.raises(InvalidInputError, match="must be a numpy array"):
        detect_frame([[1, 2], [3, 4]])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="dark_fraction"):
        FrameConfig(dark_fraction=1.5)
    with pytest.raises(InvalidInputError, match="work_size_px"):
        FrameConfig(work_size_px=10)
    with pytest.raises(InvalidInputError, match="crop columns"):
        FrameCrop(col0=5, row0=0, col1=5, row1=10, scan_width=10, scan_height=10, detected=True)
    crop = FrameCrop(col0=0, row0=0, col1=5, row1=5, scan_width=10, scan_height=10, detected=True)
    with pytest.raises(InvalidInputError, match="10 x 10 px"):
        crop.apply(np.zeros((12, 10)))


# --------------------------------------------------------------------------- binarize


def test_averaged_histogram_finds_first_valley_where_otsu_does_not() -> None:
    photos = mixture_photos(np.random.default_rng(4))
    x = np.arange(256)
    pdf = 0.12 * norm.pdf(x, 55, 8) + 0.25 * norm.pdf(x, 110, 12) + 0.63 * norm.pdf(x, 180, 15)
    true_valley = 55 + int(np.argmin(pdf[55:111]))  # 77: between rock and shadow

    result = AveragedHistogramThreshold.from_photos(photos)
    otsu = threshold_otsu(np.concatenate([p.ravel() for p in photos]))

    assert abs(result.threshold - true_valley) <= 3
    assert result.peak_bins[0] == pytest.approx(55, abs=3)
    assert result.peak_bins[1] == pytest.approx(110, abs=3)
    assert result.n_photos == 4
    # Otsu splits shadow from snow (~135), far from the rock/shadow valley.
    assert otsu > 110 and abs(otsu - true_valley) > 30
    # Binarisation keeps shadows white: the black share is the rock share (12 %).
    black = 1.0 - np.mean([result.binarize(p).mean() for p in photos])
    assert black == pytest.approx(0.12, abs=0.02)
    otsu_black = np.mean([(p <= otsu).mean() for p in photos])
    assert otsu_black > 0.3


def test_threshold_save_load_roundtrip(tmp_path) -> None:
    result = AveragedHistogramThreshold.from_photos(mixture_photos(np.random.default_rng(5)))
    path = result.save(tmp_path / "sub" / "threshold.json")
    loaded = AveragedHistogramThreshold.load(path)
    assert loaded.threshold == result.threshold
    assert loaded.peak_bins == result.peak_bins
    np.testing.assert_allclose(loaded.mean_histogram, result.mean_histogram)
    np.testing.assert_allclose(loaded.smoothed_histogram, result.smoothed_histogram)
    assert not list(tmp_path.glob("sub/.*"))  # no temporary file left behind


def test_threshold_load_errors(tmp_path) -> None:
    with pytest.raises(MissingFileError, match="threshold file not found"):
        AveragedHistogramThreshold.load(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        AveragedHistogramThreshold.load(bad)
    bad.write_text(json.dumps({"kind": "something"}))
    with pytest.raises(ConfigError, match="expected kind"):
        AveragedHistogramThreshold.load(bad)
    data = AveragedHistogramThreshold.fixed().to_dict()
    data["extra"] = 1
    bad.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="expected keys"):
        AveragedHistogramThreshold.load(bad)
    data = AveragedHistogramThreshold.fixed().to_dict()
    data["threshold"] = 300
    bad.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="invalid value"):
        AveragedHistogramThreshold.load(bad)


def test_binarize_errors_and_fixed_threshold() -> None:
    fixed = AveragedHistogramThreshold.fixed()
    assert fixed.threshold == SEED_STUDY_THRESHOLD == 79
    out = fixed.binarize(np.array([[79, 80]], dtype=np.uint8))
    assert out.tolist() == [[False, True]]
    with pytest.raises(InvalidInputError, match="must not contain NaN"):
        fixed.binarize(np.array([[1.0, np.nan]]))
    with pytest.raises(InvalidInputError, match="expected at least one photo"):
        AveragedHistogramThreshold.from_photos([])
    unimodal = np.random.default_rng(6).normal(170, 10, size=(100, 100)).clip(1, 254)
    with pytest.raises(DataQualityError, match="significant peak"):
        AveragedHistogramThreshold.from_photos([unimodal])
    with pytest.raises(DataQualityError, match="only black/saturated"):
        gray_histogram(np.array([[0, 255]], dtype=np.uint8))
    with pytest.raises(InvalidInputError, match=r"shape \(256,\), found \(10,\)"):
        first_valley(np.ones(10))
    with pytest.raises(InvalidInputError, match="threshold must be an int"):
        AveragedHistogramThreshold.fixed(255)


def test_gray_histogram_ignores_nan_and_clipped() -> None:
    photo = np.array([[0.0, 10.0, np.nan], [255.0, 10.4, 20.0]])
    hist = gray_histogram(photo)
    assert hist.sum() == pytest.approx(1.0)
    assert hist[10] == pytest.approx(2 / 3) and hist[20] == pytest.approx(1 / 3)
    assert hist[0] == hist[255] == 0


# --------------------------------------------------------------------------- enhance


def test_rgb_to_gray_uses_bt601() -> None:
    rgb = np.stack([np.full((2, 2), 100.0), np.full((2, 2), 50.0), np.full((2, 2), 200.0)])
    rgb[:, 0, 0] = np.nan
    gray = rgb_to_gray(rgb.astype(np.float32))
    assert gray.dtype == np.float32 and gray.shape == (2, 2)
    assert gray[1, 1] == pytest.approx(0.299 * 100 + 0.587 * 50 + 0.114 * 200, rel=1e-6)
    assert np.isnan(gray[0, 0])
    np.testing.assert_array_equal(rgb_to_gray(rgb[0]), rgb[0].astype(np.float32))
    with pytest.raises(InvalidInputError, match="found 2"):
        rgb_to_gray(rgb[:2])
    with pytest.raises(InvalidInputError, match=r"\[B x H x W\]"):
        rgb_to_gray(np.zeros((1, 2, 3, 4)))


def _rock_gdf(crs: str = CRS_3031) -> gpd.GeoDataFrame:
    transform, _ = aoi_grid()
    x0, y0 = transform.c, transform.f
    big = shapely.box(x0 + 200, y0 - 300, x0 + 400, y0 - 150)  # cols 20-40, rows 15-30
    speck = shapely.box(x0 + 600, y0 - 100, x0 + 610, y0 - 90)  # one pixel: opened away
    return gpd.GeoDataFrame({"id": [1, 2]}, geometry=[big, speck], crs=crs)


def test_rasterize_rock_mask_known_pixels(tmp_path) -> None:
    transform, shape = aoi_grid()
    path = tmp_path / "rock.gpkg"
    _rock_gdf().to_file(path)
    mask = rasterize_rock_mask(path, transform=transform, shape=shape, crs=CRS_3031)
    expected = np.zeros(shape, dtype=bool)
    expected[15:30, 20:40] = True
    np.testing.assert_array_equal(mask, expected)

    # The same polygons stored in lon/lat are reprojected onto the grid.
    path_ll = tmp_path / "rock_ll.gpkg"
    _rock_gdf().to_crs("EPSG:4326").to_file(path_ll)
    mask_ll = rasterize_rock_mask(path_ll, transform=transform, shape=shape, crs=CRS_3031)
    assert (mask_ll != expected).sum() <= 4

    # A GeoDataFrame works too; without opening the one-pixel speck stays.
    raw = rasterize_rock_mask(
        _rock_gdf(), transform=transform, shape=shape, crs=CRS_3031, open_px=0
    )
    assert raw[9, 60] and not mask[9, 60]


def test_rasterize_rock_mask_crs_errors(tmp_path) -> None:
    transform, shape = aoi_grid()
    no_crs = tmp_path / "nocrs.gpkg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _rock_gdf().set_crs(None, allow_override=True).to_file(no_crs)
    with pytest.raises(CRSError, match="have no CRS"):
        rasterize_rock_mask(no_crs, transform=transform, shape=shape, crs=CRS_3031)
    wrong = tmp_path / "wrong.gpkg"
    _rock_gdf().set_crs("EPSG:4326", allow_override=True).to_file(wrong)
    with pytest.raises(CRSError, match="are not degrees"):
        rasterize_rock_mask(wrong, transform=transform, shape=shape, crs=CRS_3031)
    with pytest.raises(CRSError, match="have no CRS"):
        rasterize_rock_mask(
            _rock_gdf().set_crs(None, allow_override=True),
            transform=transform,
            shape=shape,
            crs=CRS_3031,
        )
    with pytest.raises(CRSError, match="unknown CRS"):
        rasterize_rock_mask(_rock_gdf(), transform=transform, shape=shape, crs="EPSG:nope")
    with pytest.raises(MissingFileError, match="rock polygon file not found"):
        rasterize_rock_mask(tmp_path / "x.gpkg", transform=transform, shape=shape, crs=CRS_3031)
    not_vector = tmp_path / "x.gpkg"
    not_vector.write_text("hello")
    with pytest.raises(InvalidInputError, match="cannot read rock polygons"):
        rasterize_rock_mask(not_vector, transform=transform, shape=shape, crs=CRS_3031)
    with pytest.raises(InvalidInputError, match=r"shape must be \(H, W\)"):
        rasterize_rock_mask(_rock_gdf(), transform=transform, shape=(5,), crs=CRS_3031)  # type: ignore[arg-type]


def test_clean_mask_opens_closes_and_keeps_border() -> None:
    mask = np.zeros((30, 30), dtype=bool)
    mask[0:12, 0:12] = True  # touches the image border
    mask[5, 5] = False  # a hole: closed
    mask[20, 20] = True  # a speck: opened away
    out = clean_mask(mask, open_px=1, close_px=1)
    assert out[5, 5] and not out[20, 20]
    assert out[0, 0] and out[0, 11] and out[11, 0]
    with pytest.raises(InvalidInputError, match="must not contain NaN"):
        clean_mask(np.array([[1.0, np.nan], [0.0, 0.0]]))


def test_enhance_lifts_shadow_and_darkens_rock() -> None:
    gray = np.array([[10.0, 60.0, 60.0, 240.0, np.nan]], dtype=np.float32)
    gray = np.repeat(gray, 3, axis=0)
    rock = np.zeros(gray.shape, dtype=bool)
    rock[:, 2] = True
    cfg = EnhanceConfig(feather_px=0.0, low_pct=0.0, high_pct=100.0)
    out = enhance_reference(gray, rock, cfg)
    g_shadow = (60 - 10) / (240 - 10)
    assert out[1, 1] == pytest.approx(255 * g_shadow**0.5, rel=1e-5)  # shadow lifted
    assert out[1, 2] == pytest.approx(255 * 0.6 * g_shadow, rel=1e-5)  # rock darkened
    assert out[1, 1] > 255 * g_shadow > out[1, 2]
    assert out[1, 3] == pytest.approx(255.0) and out[1, 0] == pytest.approx(0.0)
    assert np.isnan(out[:, 4]).all()
    stretched = enhance_reference(gray, None, cfg)
    assert stretched[1, 1] == pytest.approx(255 * g_shadow, rel=1e-5)


def test_enhance_errors() -> None:
    with pytest.raises(DataQualityError, match="no contrast"):
        enhance_reference(np.full((4, 4), 3.0), None)
    with pytest.raises(DataQualityError, match="all nodata"):
        enhance_reference(np.full((4, 4), np.nan), None)
    with pytest.raises(InvalidInputError, match=r"match the reference grid \(4, 4\)"):
        enhance_reference(np.arange(16.0).reshape(4, 4), np.zeros((3, 3), dtype=bool))
    with pytest.raises(InvalidInputError, match="low_pct must be below high_pct"):
        EnhanceConfig(low_pct=50, high_pct=40)
    with pytest.raises(InvalidInputError, match="open_px"):
        EnhanceConfig(open_px=-1)


# --------------------------------------------------------------------------- histmatch


def test_match_histogram_ignores_nan_in_reference() -> None:
    rng = np.random.default_rng(7)
    source = rng.normal(90, 20, size=(120, 120)).clip(0, 255).astype(np.uint8)
    reference = rng.normal(170, 30, size=(150, 150)).astype(np.float32)
    with_nan = reference.copy()
    with_nan[:, :40] = np.nan
    out = match_histogram(source, with_nan)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    valid = with_nan[np.isfinite(with_nan)]
    for q in (5, 25, 50, 75, 95):
        assert np.percentile(out, q) == pytest.approx(np.percentile(valid, q), abs=2.0)
    # Without NaN it agrees with scikit-image; the uint8 lookup path agrees with the float path.
    ours = match_histogram(source, reference)
    theirs = match_histograms(source.astype(np.float64), reference.astype(np.float64))
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    np.testing.assert_allclose(ours, match_histogram(source.astype(np.float32), reference))
    # Float source: NaN stays NaN, order is preserved.
    src_f = source.astype(np.float32)
    src_f[0, 0] = np.nan
    out_f = match_histogram(src_f, with_nan)
    assert np.isnan(out_f[0, 0]) and np.isfinite(out_f[1:]).all()
    flat_src, flat_out = src_f[1:].ravel(), out_f[1:].ravel()
    order = np.argsort(flat_src, kind="stable")
    assert (np.diff(flat_out[order]) >= 0).all()


def test_match_histogram_errors() -> None:
    src = np.zeros((4, 4), dtype=np.uint8)
    with pytest.raises(DataQualityError, match="reference is all nodata"):
        match_histogram(src, np.full((4, 4), np.nan))
    with pytest.raises(InvalidInputError, match="reference is empty"):
        match_histogram(src, np.zeros((0,)))
    with pytest.raises(InvalidInputError, match=r"one band \[H x W\]"):
        match_histogram(np.zeros((2, 4, 4)), np.ones((4, 4)))
    with pytest.raises(InvalidInputError, match="max_reference_samples"):
        match_histogram(src, np.ones((4, 4)), max_reference_samples=1)


# --------------------------------------------------------------------------- rotate


@pytest.mark.parametrize("azimuth", [0.0, 23.5, 90.0, 137.0, 200.0, 301.7])
def test_rotated_aoi_mapping_round_trips(azimuth: float) -> None:
    transform, shape = aoi_grid()
    data = np.random.default_rng(8).random(shape).astype(np.float32)
    rot = rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=azimuth)
    rng = np.random.default_rng(9)
    h, w = rot.shape
    cols, rows = rng.uniform(0, w, 500), rng.uniform(0, h, 500)
    xs, ys = rot.to_map(cols, rows)
    back_c, back_r = rot.to_pixel(xs, ys)
    err = np.hypot(back_c - cols, back_r - rows)
    assert err.max() < 0.5
    assert err.max() < 1e-6  # the maps are exact inverses
    # The inverse is the photo convention: the top edge points along the heading.
    x_top, y_top = rot.to_map([w / 2], [0.0])
    x_mid, y_mid = rot.to_map([w / 2], [h / 2])
    heading = math.degrees(math.atan2(x_top[0] - x_mid[0], y_top[0] - y_mid[0])) % 360
    assert heading == pytest.approx(azimuth % 360, abs=1e-6)
    # Every valid rotated pixel maps back into the source AoI.
    valid_r, valid_c = np.nonzero(rot.valid_mask)
    sc, sr = rot.to_source_pixel(valid_c + 0.5, valid_r + 0.5)
    assert sc.min() > -0.5 and sc.max() < shape[1] + 0.5
    assert sr.min() > -0.5 and sr.max() < shape[0] + 0.5


@pytest.mark.parametrize("azimuth", [0.0, 37.5, 90.0, 200.0, 301.0])
def test_marker_lands_at_predicted_rotated_pixel(azimuth: float) -> None:
    transform, shape = aoi_grid()
    data = np.zeros(shape, dtype=np.float32)
    src_col, src_row = 57, 21
    data[src_row - 1 : src_row + 2, src_col - 1 : src_col + 2] = 1.0  # 3x3 marker
    x, y = transform @ (src_col + 0.5, src_row + 0.5)
    rot = rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=azimuth)
    pred_c, pred_r = rot.forward @ (x, y)
    img = np.nan_to_num(rot.data[0])
    rr, cc = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    centroid = ((cc + 0.5) * img).sum() / img.sum(), ((rr + 0.5) * img).sum() / img.sum()
    assert math.hypot(centroid[0] - pred_c, centroid[1] - pred_r) < 0.5


def test_azimuth_zero_is_identity() -> None:
    transform, shape = aoi_grid()
    data = np.random.default_rng(10).random((2, *shape)).astype(np.float32)
    data[1, 5, 5] = np.nan
    rot = rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=0.0)
    assert rot.shape == shape
    np.testing.assert_allclose(tuple(rot.inverse), tuple(transform), atol=1e-6)
    np.testing.assert_allclose(rot.data, data, atol=1e-5)
    assert np.isnan(rot.data[1, 5, 5])
    # 360 degrees is the same heading.
    rot360 = rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=360.0)
    np.testing.assert_allclose(rot360.data, data, atol=1e-5)


def test_heading_east_puts_east_edge_on_top() -> None:
    transform, shape = aoi_grid()
    data = np.zeros(shape, dtype=np.float32)
    data[:, -1] = 1.0  # east edge
    rot = rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=90.0)
    assert rot.shape == (shape[1], shape[0])
    np.testing.assert_allclose(rot.data[0, 0], 1.0, atol=1e-5)
    np.testing.assert_allclose(rot.data[0], np.rot90(data, 1), atol=1e-5)


def test_rotation_pads_with_nan_not_zero() -> None:
    transform, shape = aoi_grid()
    data = np.random.default_rng(11).uniform(100, 200, size=shape).astype(np.float32)
    rot = rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=45.0)
    h, w = rot.shape
    expected_side = (shape[0] + shape[1]) / math.sqrt(2)
    assert abs(h - expected_side) <= 1 and abs(w - expected_side) <= 1
    corners = rot.data[0, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert np.isnan(corners).all()
    finite = rot.data[np.isfinite(rot.data)]
    assert finite.min() >= 100 and finite.max() <= 200  # no 0 padding leaks in
    assert rot.valid_mask.sum() == pytest.approx(shape[0] * shape[1], rel=0.03)
    inverse, grid_shape = rotated_grid(transform=transform, shape=shape, azimuth_deg=45.0)
    assert grid_shape == rot.shape and inverse == rot.inverse


def test_window_polygon_and_nearest_mask() -> None:
    transform, shape = aoi_grid()
    mask = np.zeros(shape, dtype=np.float32)
    mask[10:20, 10:30] = 1.0
    rot = rotate_aoi(
        mask, transform=transform, crs=CRS_3031, azimuth_deg=33.0, resampling="nearest"
    )
    values = rot.data[np.isfinite(rot.data)]
    assert set(np.unique(values).tolist()) <= {0.0, 1.0}
    poly = rot.window_polygon(0, 0, 10, 10)
    xs, ys = rot.to_map([0, 10], [0, 0])
    assert poly.exterior.coords[0] == pytest.approx((xs[0], ys[0]))
    assert poly.exterior.coords[1] == pytest.approx((xs[1], ys[1]))
    assert poly.area == pytest.approx((10 * rot.gsd_m) ** 2)


def test_rotate_errors() -> None:
    transform, shape = aoi_grid()
    data = np.ones(shape, dtype=np.float32)
    with pytest.raises(CRSError, match="no CRS"):
        rotate_aoi(data, transform=transform, crs=None, azimuth_deg=10)
    with pytest.raises(InvalidInputError, match=r"affine\.Affine, found tuple"):
        rotate_aoi(data, transform=(10, 0, 0, 0, -10, 0), crs=CRS_3031, azimuth_deg=10)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="invertible"):
        rotate_aoi(data, transform=Affine(0, 0, 0, 0, 0, 0), crs=CRS_3031, azimuth_deg=10)
    with pytest.raises(InvalidInputError, match="azimuth_deg must be finite"):
        rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=math.nan)
    with pytest.raises(InvalidInputError, match="resampling must be one of"):
        rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=10, resampling="cubic")
    with pytest.raises(DataQualityError, match="all nodata"):
        rotate_aoi(data * np.nan, transform=transform, crs=CRS_3031, azimuth_deg=10)
    with pytest.raises(InvalidInputError, match="is empty"):
        rotate_aoi(np.ones((1, 0, 5)), transform=transform, crs=CRS_3031, azimuth_deg=10)
    rot = rotate_aoi(data, transform=transform, crs=CRS_3031, azimuth_deg=10)
    with pytest.raises(InvalidInputError, match="same shape"):
        rot.to_map([1, 2], [1])


# --------------------------------------------------------------------------- run


def _aoi_arrays() -> ReferenceArrays:
    transform, shape = aoi_grid()
    rng = np.random.default_rng(12)
    base = ndimage.gaussian_filter(rng.normal(size=shape), 3)
    base = (base - base.min()) / np.ptp(base) * 200 + 40
    rgb = np.stack([base, base * 0.98, base * 1.02]).astype(np.float32)
    rgb[:, :3, :5] = np.nan  # a nodata corner
    return ReferenceArrays(
        data=rgb, transform=transform, crs=rasterio.crs.CRS.from_string(CRS_3031)
    )


def test_run_preprocess_writes_everything(tmp_path) -> None:
    scan, _ = make_scan(np.random.default_rng(13))
    photo_path = write_geotiff(tmp_path / "photo.tif", scan)
    rock_path = tmp_path / "rock.gpkg"
    _rock_gdf().to_file(rock_path)
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="threshold computed from this photo alone"):
        outputs = run_preprocess(
            photo_path=photo_path,
            aoi=_aoi_arrays(),
            azimuth_deg=30.0,
            out_dir=out,
            rock_mask_path=rock_path,
            binarize=True,
        )
    paths = outputs.paths()
    assert set(paths) == {
        "photo_cropped",
        "photo_matched",
        "photo_binary",
        "threshold",
        "aoi_enhanced",
        "aoi_rotated",
        "rock_mask",
        "rock_mask_rotated",
        "metadata",
        "preview",
    }
    assert all(p.is_file() for p in paths.values())
    assert not list(out.glob(".*"))  # no temporary files

    meta = json.loads(outputs.metadata.read_text())
    box = meta["frame"]
    assert box["detected"]
    with rasterio.open(outputs.photo_cropped) as ds:
        assert ds.crs is None and ds.dtypes[0] == "uint8"
        assert (ds.height, ds.width) == (box["row1"] - box["row0"], box["col1"] - box["col0"])
    with rasterio.open(outputs.photo_binary) as ds:
        assert set(np.unique(ds.read(1)).tolist()) <= {0, 255}
    # The rotated AoI carries its rotated geotransform: each pixel maps back to the map.
    with rasterio.open(outputs.aoi_rotated) as ds:
        inverse = Affine(*meta["rotation"]["inverse_pixel_to_map"])
        assert ds.crs.to_epsg() == 3031
        np.testing.assert_allclose(tuple(ds.transform)[:6], tuple(inverse)[:6], atol=1e-6)
        rotated = ds.read(1)
        assert np.isnan(rotated[0, 0])
    expected = rotate_aoi(
        np.asarray(rasterio.open(outputs.aoi_enhanced).read(1)),
        transform=aoi_grid()[0],
        crs=CRS_3031,
        azimuth_deg=30.0,
    )
    np.testing.assert_allclose(rotated, expected.data[0], atol=1e-4)
    with rasterio.open(outputs.rock_mask_rotated) as ds:
        assert ds.nodata == 255 and set(np.unique(ds.read(1)).tolist()) <= {0, 1, 255}
    assert meta["aoi"]["rock_fraction"] == pytest.approx(300 / 4800)
    assert outputs.preview.read_bytes()[:4] == b"\x89PNG"


def test_run_preprocess_with_threshold_file_and_read_reference(tmp_path) -> None:
    scan, _ = make_scan(np.random.default_rng(14))
    photo_path = write_geotiff(tmp_path / "photo.tif", scan)
    aoi = _aoi_arrays()
    aoi_path = write_geotiff(
        tmp_path / "aoi.tif", aoi.data, transform=aoi.transform, crs=aoi.crs, nodata=float("nan")
    )
    loaded = read_reference(aoi_path)
    np.testing.assert_array_equal(np.isnan(loaded.data), np.isnan(aoi.data))
    threshold = AveragedHistogramThreshold.fixed(79).save(tmp_path / "t.json")
    outputs = run_preprocess(
        photo_path=photo_path,
        aoi=loaded,
        azimuth_deg=-45.0,
        out_dir=tmp_path / "out",
        threshold_path=threshold,
    )
    assert outputs.photo_binary is not None and outputs.threshold is None
    assert outputs.rock_mask is None
    meta = json.loads(outputs.metadata.read_text())
    assert meta["threshold"] == 79 and meta["azimuth_deg"] == pytest.approx(315.0)


def test_run_preprocess_errors_leave_no_output(tmp_path) -> None:
    scan, _ = make_scan(np.random.default_rng(15))
    photo_path = write_geotiff(tmp_path / "photo.tif", scan)
    out = tmp_path / "out"
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(ConfigError, match="expected kind"):
        run_preprocess(
            photo_path=photo_path, aoi=_aoi_arrays(), azimuth_deg=0, out_dir=out, threshold_path=bad
        )
    assert not out.exists()
    with pytest.raises(MissingFileError, match="photo not found"):
        run_preprocess(
            photo_path=tmp_path / "none.tif", aoi=_aoi_arrays(), azimuth_deg=0, out_dir=out
        )
    no_crs = ReferenceArrays(data=_aoi_arrays().data, transform=aoi_grid()[0], crs=None)
    with pytest.raises(CRSError, match="AoI has no CRS"):
        run_preprocess(photo_path=photo_path, aoi=no_crs, azimuth_deg=0, out_dir=out)
    with pytest.raises(InvalidInputError, match="without 'data'"):
        run_preprocess(photo_path=photo_path, aoi=object(), azimuth_deg=0, out_dir=out)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="azimuth_deg must be finite"):
        run_preprocess(photo_path=photo_path, aoi=_aoi_arrays(), azimuth_deg=math.inf, out_dir=out)
    assert not out.exists()
    with pytest.raises(CRSError, match="has no CRS"):
        read_reference(photo_path)
