"""The bad inputs of the robustness suite, made once from a tiny synthetic archive.

:func:`make_bad_files` writes every kind of bad file the suite throws at the
commands: broken files (empty, random bytes, a PNG named ``.tif``, a folder),
rasters that are readable but unusable (no CRS, geographic CRS, all nodata,
1 × 1), photos of unusual types (16-bit, float, alpha, constant), bad
catalogs, bad checkpoints, bad results and a corrupt training dataset.
Each is named by its attribute of :class:`BadFiles`.
"""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import torch
from rasterio.crs import CRS
from rasterio.transform import from_origin

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_EXTENSIONS = ("tif", "csv", "pt", "json")
NON_ASCII_FOLDER = "Archiv Ürümqi 写真"


@dataclass(frozen=True)
class BadFiles:
    """Paths of the suite's inputs; ``archive`` is the good archive they were made from."""

    archive: Path
    photo_id: str
    root: Path

    def __getattr__(self, name: str) -> Path:
        # Every other attribute is a file or folder under root: ``garbage_photo_tif``
        # (or ``getattr(bad, "garbage_photo.tif")``) is root / "garbage_photo.tif".
        if name.startswith("__"):
            raise AttributeError(name)
        stem, _, ext = name.rpartition("_")
        if stem and ext in _EXTENSIONS:
            name = f"{stem}.{ext}"
        return self.root / name

    @property
    def non_ascii(self) -> Path:
        """The good archive, copied under a folder name that is not ASCII."""
        return self.root / NON_ASCII_FOLDER

    @property
    def photo(self) -> Path:
        return self.archive / "photos" / f"{self.photo_id}.tif"

    @property
    def reference(self) -> Path:
        return self.archive / "reference.tif"

    @property
    def catalog(self) -> Path:
        return self.archive / "catalog.csv"


def _write_raster(path: Path, data: np.ndarray, *, crs: CRS | None, transform, nodata=None) -> Path:
    bands = data[None] if data.ndim == 2 else data
    profile = {
        "driver": "GTiff",
        "height": bands.shape[1],
        "width": bands.shape[2],
        "count": bands.shape[0],
        "dtype": bands.dtype,
        "transform": transform,
    }
    if crs is not None:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


def _broken_files(root: Path, name: str) -> None:
    """``empty_<name>``, ``garbage_<name>``, ``png_<name>`` and the folder ``folder_<name>``."""
    stem, suffix = Path(name).stem, Path(name).suffix
    (root / f"empty_{stem}{suffix}").write_bytes(b"")
    rng = np.random.default_rng(len(name))
    (root / f"garbage_{stem}{suffix}").write_bytes(rng.integers(0, 256, 4096, np.uint8).tobytes())
    (root / f"png_{stem}{suffix}").write_bytes(_PNG_MAGIC + b"\0" * 200)
    (root / f"folder_{stem}{suffix}").mkdir()


def _references(bad: BadFiles) -> None:
    with rasterio.open(bad.reference) as src:
        data, profile = src.read(1), src.profile
    crs, transform = profile["crs"], profile["transform"]
    _write_raster(bad.root / "nocrs_reference.tif", data, crs=None, transform=transform)
    lonlat = from_origin(-60.0, -70.0, 1e-4, 1e-4)
    _write_raster(
        bad.root / "geographic_reference.tif", data, crs=CRS.from_epsg(4326), transform=lonlat
    )
    _write_raster(
        bad.root / "nodata_reference.tif",
        np.zeros_like(data),
        crs=crs,
        transform=transform,
        nodata=0,
    )
    _write_raster(bad.root / "one_px_reference.tif", data[:1, :1], crs=crs, transform=transform)
    # Float with NaN and Inf holes: they are nodata (a documented graceful case).
    holes = data.astype(np.float32)
    holes[:40, :40] = np.nan
    holes[-10:, -10:] = np.inf
    _write_raster(bad.root / "nan_reference.tif", holes, crs=crs, transform=transform)
    _broken_files(bad.root, "reference.tif")


def _photos(bad: BadFiles) -> None:
    with rasterio.open(bad.photo) as src:
        data = src.read(1)
    ident = from_origin(0, data.shape[0], 1, 1)
    _write_raster(
        bad.root / "uint16_photo.tif", data.astype(np.uint16) * 257, crs=None, transform=ident
    )
    _write_raster(
        bad.root / "float_photo.tif", data.astype(np.float32) / 255.0, crs=None, transform=ident
    )
    alpha = np.full_like(data, 255)
    alpha[:20] = 0
    _write_raster(
        bad.root / "alpha_photo.tif", np.stack([data, data, data, alpha]), crs=None, transform=ident
    )
    _write_raster(
        bad.root / "constant_photo.tif", np.full_like(data, 90), crs=None, transform=ident
    )
    _broken_files(bad.root, "photo.tif")


def _catalogs(bad: BadFiles) -> None:
    table = pd.read_csv(bad.catalog)
    table["path"] = [str(bad.archive / p) for p in table["path"]]

    def save(name: str, frame: pd.DataFrame) -> None:
        frame.to_csv(bad.root / name, index=False)

    save("catalog_no_xy.csv", table.drop(columns=["lon", "lat"]))
    nan = table.copy()
    nan["lon"] = nan["lon"].astype(float)
    nan.loc[0, "lon"] = np.nan
    save("catalog_nan_lon.csv", nan)
    text = table.astype({"altitude_m": object})
    text.loc[0, "altitude_m"] = "high"
    save("catalog_text_altitude.csv", text)
    save("catalog_duplicate_ids.csv", pd.concat([table, table.iloc[:1]]))
    save("catalog_header_only.csv", table.iloc[:0])
    huge = table.copy()
    huge.loc[0, "altitude_m"] = 1e9
    save("catalog_absurd_altitude.csv", huge)
    zero = table.copy()
    zero.loc[0, "focal_length_mm"] = 0.0
    save("catalog_zero_focal.csv", zero)
    latin = bad.root / "catalog_ok.csv"
    save("catalog_ok.csv", table)
    raw = latin.read_bytes().replace(b"nadir", b"nad\xefr", 1)
    (bad.root / "catalog_latin1.csv").write_bytes(raw)
    latin.unlink()
    _broken_files(bad.root, "catalog.csv")
    # The good archive under a non-ASCII folder name (a graceful case).
    shutil.copytree(bad.archive, bad.non_ascii)


def _checkpoints(bad: BadFiles) -> None:
    _broken_files(bad.root, "model.pt")

    # Any object besides tensors and plain containers makes the file a pickle payload.
    torch.save(
        {"format": "aeroloc-checkpoint", "payload": Path("/etc/passwd")},
        bad.root / "pickle_model.pt",
        pickle_module=pickle,
    )
    torch.save({"conv.weight": torch.zeros(2, 2)}, bad.root / "state_dict_model.pt")


def _results(bad: BadFiles) -> None:
    wrong = bad.root / "results_wrong_shape" / bad.photo_id
    wrong.mkdir(parents=True)
    (wrong / "result.json").write_text("[]")
    cells = bad.root / "results_bad_cells" / bad.photo_id
    cells.mkdir(parents=True)
    (cells / "result.json").write_text(json.dumps({"photo_id": bad.photo_id}))
    (cells / "heatmap_cells.npy").write_bytes(b"\x93NUMPY garbage")
    (bad.root / "results_empty").mkdir()
    (bad.root / "truth_not_json.json").write_text("{not json")
    (bad.root / "truth_list.json").write_text("[1, 2]")


def make_bad_files(archive: Path, root: Path) -> BadFiles:
    """Write every bad input of the suite under ``root`` (made from ``archive``)."""
    truth = json.loads((archive / "truth.json").read_text())
    bad = BadFiles(archive=archive, photo_id=truth["photos"][0]["photo_id"], root=root)
    root.mkdir(parents=True, exist_ok=True)
    _references(bad)
    _photos(bad)
    _catalogs(bad)
    _checkpoints(bad)
    _results(bad)
    (root / "a_file").write_text("not a folder")
    return bad
