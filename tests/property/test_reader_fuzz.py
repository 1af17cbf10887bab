"""Fuzzed readers: random, truncated and bit-flipped files give a result or an ``AeroLocError``.

Each reader is fed bounded, derandomized examples (see ``property_helpers``),
so the run takes a few seconds and is the same in CI every time. Any other
exception (a traceback for the user) fails the test.
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from hypothesis import given
from hypothesis import strategies as st

from aeroloc.catalog import read_catalog
from aeroloc.errors import AeroLocError
from aeroloc.files import read_gray, write_geotiff
from aeroloc.io.results import LocateRecord, read_result
from property_helpers import bounded
from script_loader import load_script

_names = itertools.count()


def _fresh(folder: Path, suffix: str) -> Path:
    """A new file name per example (``tmp_path`` is shared by all examples of a test)."""
    return folder / f"fuzz_{next(_names)}{suffix}"


@st.composite
def damaged(draw, original: bytes):
    """``original`` truncated, with bytes overwritten, or replaced by random bytes."""
    how = draw(st.sampled_from(["truncate", "flip", "random", "magic"]))
    if how == "truncate":
        return original[: draw(st.integers(0, len(original) - 1))]
    if how == "random":
        return draw(st.binary(max_size=2048))
    if how == "magic":  # the right magic bytes, then garbage
        return original[:16] + draw(st.binary(max_size=512))
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 16))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


def _tiff_bytes(folder: Path, *, dtype: str, bands: int) -> bytes:
    rng = np.random.default_rng(0)
    arr = (rng.random((bands, 40, 48)) * 200).astype(dtype)
    path = write_geotiff(
        folder / f"good_{dtype}_{bands}.tif",
        arr,
        transform=Affine(2.0, 0, 1000.0, 0, -2.0, 5000.0),
        crs="EPSG:3031",
        compress="deflate" if bands == 1 else "lzw",
    )
    return path.read_bytes()


@pytest.fixture(scope="module")
def tiffs(tmp_path_factory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("tiffs")
    return [
        _tiff_bytes(folder, dtype=dtype, bands=bands)
        for dtype, bands in (("uint8", 1), ("float32", 1), ("uint16", 3))
    ]


@bounded(100)
@given(data=st.data(), which=st.integers(0, 2))
def test_the_raster_reader_on_damaged_tiffs(tmp_path, tiffs, data, which):
    path = _fresh(tmp_path, ".tif")
    path.write_bytes(data.draw(damaged(tiffs[which])))
    try:
        gray = read_gray(path, what="photo")
    except AeroLocError as exc:
        assert str(path) in str(exc)
        return
    assert gray.ndim == 2 and gray.dtype == np.float32


@pytest.fixture(scope="module")
def result_json() -> dict:
    """A verified photo's result.json, as ``tests/io/test_results.py`` builds it."""
    module = load_script("tests/io/test_results.py", "_results_cases_for_fuzz")
    return module.verified_record().to_json()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)


def _paths(node, prefix=()):
    """Every key path into a JSON document."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


@bounded(100)
@given(data=st.data())
def test_the_result_reader_on_mutated_documents(tmp_path, result_json, data):
    doc = copy.deepcopy(result_json)
    paths = [p for p in _paths(doc) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = data.draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    file = _fresh(tmp_path, ".json")
    file.write_text(json.dumps(doc))
    try:
        record = read_result(file)
    except AeroLocError as exc:
        assert "is not a locate result" in str(exc) or "schema_version" in str(exc)
        return
    assert isinstance(record, LocateRecord)


@bounded(60)
@given(data=st.data())
def test_the_result_reader_on_damaged_bytes(tmp_path, result_json, data):
    original = json.dumps(result_json, indent=2).encode()
    file = _fresh(tmp_path, ".json")
    file.write_bytes(data.draw(damaged(original)))
    try:
        record = read_result(file)
    except AeroLocError as exc:
        assert str(file) in str(exc)
        return
    assert isinstance(record, LocateRecord)


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    torch = pytest.importorskip("torch")
    from aeroloc.models import get_model
    from aeroloc.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = get_model("effnet-lite0-siamese", weights=None, input_size=96)
    path = save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "model.pt")
    return path.read_bytes()


@bounded(50)
@given(data=st.data())
def test_the_checkpoint_reader_on_damaged_files(tmp_path, checkpoint_bytes, data):
    from aeroloc.models.checkpoint import Checkpoint, read_checkpoint

    file = _fresh(tmp_path, ".pt")
    file.write_bytes(data.draw(damaged(checkpoint_bytes)))
    try:
        ckpt = read_checkpoint(file)
    except AeroLocError as exc:
        assert str(file) in str(exc)
        return
    assert isinstance(ckpt, Checkpoint)


plain = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 500) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@bounded(50)
@given(
    fields=st.fixed_dictionaries(
        {"format": st.just("aeroloc-checkpoint")},
        optional={
            "version": st.one_of(st.integers(-1, 3), plain),
            "model": st.one_of(st.just("effnet-lite0-siamese"), plain),
            "model_config": plain,
            "preprocessing": st.one_of(st.sampled_from(["binary", "gray"]), plain),
            "input_size": st.one_of(st.just([96, 96]), plain),
            "desc_dim": plain,
            "config": plain,
            "extra": plain,
            "state_dict": st.one_of(st.just({}), plain),
        },
    )
)
def test_the_checkpoint_loader_on_wrong_metadata(tmp_path, fields):
    torch = pytest.importorskip("torch")
    from aeroloc.models.checkpoint import load_checkpoint

    file = _fresh(tmp_path, ".pt")
    torch.save(fields, file)
    try:
        model = load_checkpoint(file)
    except AeroLocError as exc:
        assert str(file) in str(exc) or "model" in str(exc)
        return
    assert hasattr(model, "embed")


@pytest.fixture(scope="module")
def catalog_files(tmp_path_factory) -> dict[str, bytes]:
    import geopandas as gpd
    from shapely.geometry import Point

    folder = tmp_path_factory.mktemp("catalogs")
    csv = folder / "cat.csv"
    csv.write_text(
        "photo_id,x,y,altitude_m,azimuth_deg,view\n"
        "a,1000,-2000,5000,10,nadir\nb,1500,-2100,5100,12,L\n"
    )
    gdf = gpd.GeoDataFrame(
        {"photo_id": ["a", "b"], "altitude_m": [5000.0, 5100.0]},
        geometry=[Point(1000, -2000), Point(1500, -2100)],
        crs="EPSG:3031",
    )
    gdf.to_file(folder / "cat.gpkg", driver="GPKG")
    return {".csv": csv.read_bytes(), ".gpkg": (folder / "cat.gpkg").read_bytes()}


@bounded(80)
@given(data=st.data(), suffix=st.sampled_from([".csv", ".gpkg"]))
def test_the_catalog_reader_on_damaged_files(tmp_path, catalog_files, data, suffix):
    file = _fresh(tmp_path, suffix)
    file.write_bytes(data.draw(damaged(catalog_files[suffix])))
    try:
        catalog = read_catalog(file)
    except AeroLocError as exc:
        assert str(file) in str(exc) or "row" in str(exc)
        return
    assert all(r.photo_id for r in catalog.records)
