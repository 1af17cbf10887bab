"""The catalog reader on arbitrary rows: a catalog or an ``AeroLocError``, nothing else."""

from __future__ import annotations

import csv
import itertools
import math

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from aeroloc.catalog import FIELDS, read_catalog
from aeroloc.errors import AeroLocError
from property_helpers import bounded

_names = itertools.count()

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e400", "0x10", "1,5", "12 m", "NaN"]),
)
texts = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
cells = st.one_of(numbers, texts)
header = st.lists(
    st.one_of(st.sampled_from((*FIELDS, "X", " photo_id ", "Longitude", "extra")), texts),
    min_size=1,
    max_size=8,
)


@st.composite
def tables(draw):
    """A header and rows of arbitrary cells (rows may be shorter or longer than the header)."""
    head = draw(header)
    n_cols = len(head)
    rows = draw(
        st.lists(
            st.lists(cells, min_size=max(0, n_cols - 1), max_size=n_cols + 1),
            min_size=0,
            max_size=6,
        )
    )
    return head, rows


def _write(folder, head, rows):
    path = folder / f"catalog_{next(_names)}.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(head)
        writer.writerows(rows)
    return path


def _check(catalog):
    ids = [r.photo_id for r in catalog.records]
    assert len(ids) == len(set(ids))
    for r in catalog.records:
        assert math.isfinite(r.x) and math.isfinite(r.y)
        assert r.azimuth_deg is None or 0.0 <= r.azimuth_deg < 360.0
        assert r.view in ("nadir", "left", "right")


@bounded(80)
@given(table=tables())
def test_arbitrary_rows_give_a_catalog_or_an_aeroloc_error(tmp_path, table):
    path = _write(tmp_path, *table)
    try:
        catalog = read_catalog(path)
    except AeroLocError as exc:
        event(f"refused: {type(exc).__name__}")
        assert str(exc).strip(), "a refusal must say why"
        return
    event("read")
    assert len(catalog.records) <= len(table[1])  # at most one record per row
    _check(catalog)


plausible = st.floats(-3.0e6, 3.0e6).map(repr)
altitudes = st.one_of(st.floats(100.0, 9000.0).map(repr), st.just(""), numbers)
views = st.one_of(st.sampled_from(["", "nadir", "L", "right", "V"]), texts)


@bounded(80)
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(st.none(), texts),
            st.one_of(plausible, numbers),
            st.one_of(plausible, numbers),
            altitudes,
            st.one_of(st.floats(-720.0, 720.0).map(repr), st.just(""), numbers),
            views,
        ),
        min_size=1,
        max_size=3,
    ),
    crs=st.sampled_from([None, "EPSG:4326", "EPSG:3031"]),
)
def test_rows_with_every_column_give_a_catalog_or_an_aeroloc_error(tmp_path, rows, crs):
    head = ["photo_id", "x", "y", "altitude_m", "azimuth_deg", "view"]
    # None: a unique id, so that many examples get past the id checks to the values.
    rows = [(f"p{i}" if pid is None else pid, *rest) for i, (pid, *rest) in enumerate(rows)]
    path = _write(tmp_path, head, rows)
    try:
        catalog = read_catalog(path, crs=crs)
    except AeroLocError as exc:
        event(f"refused: {type(exc).__name__}")
        return
    event("read")
    _check(catalog)
    assert len(catalog.records) == len(rows)


def test_a_good_row_among_generated_ones_is_read(tmp_path):
    # The generators above do reach the success path: a plain row reads.
    path = _write(tmp_path, ["photo_id", "x", "y", "altitude_m"], [["a", "1000", "-2000", "5000"]])
    (record,) = read_catalog(path).records
    assert (record.photo_id, record.x, record.y, record.altitude_m) == (
        "a",
        1000.0,
        -2000.0,
        5000.0,
    )


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_other_encodings_give_a_catalog_or_an_aeroloc_error(tmp_path, encoding):
    path = tmp_path / "cat.csv"
    path.write_bytes("photo_id,x,y\nÅrhus,1,2\n".encode(encoding))
    try:
        catalog = read_catalog(path)
    except AeroLocError as exc:
        assert any(words in str(exc) for words in ("cannot read catalog", "column", "not UTF-8"))
        return
    _check(catalog)
