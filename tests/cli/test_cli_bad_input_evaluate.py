"""``aeroloc evaluate`` on bad input: a bad radius, a malformed result.json or cells file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from cli_helpers import assert_one_line_error, files_under, run


@pytest.fixture
def results(located_tiny, tmp_path):
    """A writable copy of one located photo's folder."""
    first = sorted(p.parent for p in located_tiny.glob("*/result.json"))[0]
    return shutil.copytree(first, tmp_path / first.name)


def _evaluate(tiny_archive, folder, out, *extra):
    return run("evaluate", "--truth", tiny_archive, "--results", folder, *extra, "--out", out)


@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf"])
def test_a_bad_hit_radius_is_refused(tiny_archive, results, tmp_path, value):
    out = tmp_path / "out"
    result = _evaluate(tiny_archive, results, out, "--hit-radius-m", value)
    assert_one_line_error(result, "--hit-radius-m must be a positive number")
    assert files_under(out) == []


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', '{"grid": [], "inputs": 3}'])
def test_a_result_json_of_the_wrong_shape_is_one_line(tiny_archive, results, tmp_path, body):
    (results / "result.json").write_text(body)
    out = tmp_path / "out"
    assert_one_line_error(_evaluate(tiny_archive, results, out), "is not a locate result")
    assert files_under(out) == []


@pytest.mark.parametrize("kind", ["corrupt", "object", "wrong shape", "1-d"])
def test_a_bad_cells_file_is_one_line(tiny_archive, results, tmp_path, kind):
    cells = results / json.loads((results / "result.json").read_text())["grid"]["cells_file"]
    if kind == "corrupt":
        cells.write_bytes(b"\x93NUMPY garbage")
    elif kind == "object":
        np.save(cells, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    elif kind == "wrong shape":
        np.save(cells, np.zeros((2, 3), np.float32))
    else:
        np.save(cells, np.zeros(5, np.float32))
    out = tmp_path / "out"
    assert_one_line_error(_evaluate(tiny_archive, results, out), "heatmap_cells.npy", "rerun")
    assert files_under(out) == []
