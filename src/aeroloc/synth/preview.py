"""Side-by-side PNGs of an archive, to judge the generator's realism by eye.

For one photo, on the same north-up map window around its centre:
``reference`` (Sentinel-2-like tile), ``epoch`` (historical scene at 10 m),
``photo`` (the image area resampled to north-up), ``rock`` (rasterised rock
outcrop polygons); plus ``scan`` (the whole scan with its frame, reduced) and
``detail`` (a full-resolution crop of the scan).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import geopandas as gpd
import numpy as np
from affine import Affine
from rasterio import features

from aeroloc.errors import InvalidInputError
from aeroloc.files import atomic_output, open_raster, read_gray, require_file


def _write(path: Path, image: np.ndarray) -> Path:
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise InvalidInputError(f"cannot encode {path.name} as PNG")
    with atomic_output(path) as tmp:
        tmp.write_bytes(buf.tobytes())
    return path


def _outline(image: np.ndarray, corners_px: np.ndarray, colour: tuple[int, ...]) -> None:
    pts = np.round(corners_px * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(image, [pts], True, colour, 2, cv2.LINE_AA, 4)


def write_previews(
    archive_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    photo_id: str | None = None,
    window_m: float | None = None,
    size_px: int = 480,
    prefix: str = "synth_",
) -> dict[str, Path]:
    """Write the preview PNGs of one photo of an archive.

    Args:
        archive_dir: folder written by :func:`~aeroloc.synth.make_archive`.
        out_dir: where to write ``{prefix}{name}.png``.
        photo_id: photo to show (default: the one with most rock in view).
        window_m: side of the north-up map window around the photo centre
            (default: just enough for the rotated footprint).
        size_px: side of the window panels.
        prefix: file-name prefix.

    Returns:
        Panel name → PNG path.

    Raises:
        MissingFileError: the archive lacks ``truth.json`` or a raster.
        InvalidInputError: unknown ``photo_id``.
    """
    root = Path(archive_dir)
    truth = json.loads(require_file(root / "truth.json", "archive truth").read_text())
    rocks = gpd.read_file(require_file(root / "rock_outcrop.gpkg", "rock outcrops"))
    photos = {p["photo_id"]: p for p in truth["photos"]}
    if photo_id is None:
        photo_id = max(photos, key=lambda pid: _rock_share(rocks, photos[pid]))
    if photo_id not in photos:
        raise InvalidInputError(f"photo {photo_id!r} is not in {root / 'truth.json'}")
    photo = photos[photo_id]
    if window_m is None:
        foot = np.asarray(photo["footprint"])
        window_m = 1.02 * float(np.ptp(foot, axis=0).max())
    out = Path(out_dir)
    px = window_m / size_px
    cx, cy = photo["center_x"], photo["center_y"]
    # window pixel (col, row) → map
    win = Affine(px, 0, cx - window_m / 2, 0, -px, cy + window_m / 2)

    with open_raster(root / truth["reference"], what="reference") as ds:
        ref = ds.read()
        ref_tf = ds.transform
    to_ref = ~ref_tf @ win  # window px → reference px
    m = np.array([[to_ref.a, to_ref.b, to_ref.c], [to_ref.d, to_ref.e, to_ref.f]])
    # pixel centres: shift by half a pixel on both sides of the mapping
    m[:, 2] += 0.5 * (m[:, 0] + m[:, 1]) - 0.5
    rgb = np.dstack(
        [
            cv2.warpAffine(
                ref[k], m, (size_px, size_px), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
            )
            for k in (2, 1, 0)
        ]
    )
    epoch = read_gray(root / truth["truth_epoch"], what="truth epoch")
    epoch_win = cv2.warpAffine(
        epoch, m, (size_px, size_px), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    )

    scan = read_gray(root / photo["path"])
    to_scan = ~Affine(*photo["pixel_to_map"]) @ win
    ms = np.array([[to_scan.a, to_scan.b, to_scan.c], [to_scan.d, to_scan.e, to_scan.f]])
    ms[:, 2] += 0.5 * (ms[:, 0] + ms[:, 1]) - 0.5
    # area-average the 2 m photo down to the panel's pixel size before resampling
    factor = max(1, round(px / photo["gsd_m"]))
    small = cv2.resize(
        scan, (scan.shape[1] // factor, scan.shape[0] // factor), interpolation=cv2.INTER_AREA
    )
    ms[:, :2] /= factor
    ms[:, 2] = (ms[:, 2] + 0.5) / factor - 0.5
    photo_win = cv2.warpAffine(
        small, ms, (size_px, size_px), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    )
    col0, row0, col1, row1 = photo["image_box_px"]
    inside = np.zeros(small.shape, np.uint8)
    inside[row0 // factor : row1 // factor, col0 // factor : col1 // factor] = 1
    inside_win = cv2.warpAffine(
        inside, ms, (size_px, size_px), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    )
    photo_win = np.where(inside_win > 0, photo_win, 255.0)

    mask = features.rasterize(
        [(g, 1) for g in rocks.geometry if g is not None and not g.is_empty],
        out_shape=(size_px, size_px),
        transform=win,
        dtype=np.uint8,
    )
    rock_img = np.where(mask[..., None] > 0, (40, 40, 40), (235, 235, 235)).astype(np.uint8)

    inv = ~win
    foot = np.array([inv @ tuple(c) for c in photo["footprint"]])
    panels = {
        "reference": rgb.copy(),
        "epoch": cv2.cvtColor(np.clip(epoch_win, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR),
        "photo": cv2.cvtColor(np.clip(photo_win, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR),
        "rock": rock_img,
    }
    for img in panels.values():
        _outline(img, foot, (40, 170, 255))
    written = {name: _write(out / f"{prefix}{name}.png", img) for name, img in panels.items()}

    # the whole scan, reduced, and a full-resolution crop of its image area
    scale = 700.0 / max(scan.shape)
    scan_u8 = np.clip(scan, 0, 255).astype(np.uint8)
    reduced = cv2.resize(
        scan_u8,
        (round(scan.shape[1] * scale), round(scan.shape[0] * scale)),
        interpolation=cv2.INTER_AREA,
    )
    written["scan"] = _write(out / f"{prefix}scan.png", reduced)
    half = min(size_px, col1 - col0, row1 - row0) // 2
    rc, cc = (row0 + row1) // 2, (col0 + col1) // 2
    written["detail"] = _write(
        out / f"{prefix}detail.png", scan_u8[rc - half : rc + half, cc - half : cc + half]
    )
    return written


def _rock_share(rocks: gpd.GeoDataFrame, photo: dict) -> float:
    from shapely.geometry import Polygon

    foot = Polygon(photo["footprint"])
    hits = rocks[rocks.intersects(foot)]
    if hits.empty:
        return 0.0
    share = float(hits.intersection(foot).area.sum()) / foot.area
    # prefer views with both rock and snow
    return min(share, 0.5 - abs(share - 0.25))
