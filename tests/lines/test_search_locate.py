"""A predicted photo is found by ``locate_photo`` in the shrunken area around its prediction."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from aeroloc.io.archive import Truth
from aeroloc.io.results import read_result
from aeroloc.lines.search import shrunken_request
from aeroloc.lines.track import fit_track
from aeroloc.pipeline import load_model, locate_photo
from aeroloc.verify.walk import VerifyConfig
from lines_helpers import line_from_truth


def test_middle_frame_is_accepted_in_the_shrunken_aoi(
    line_archive: Path, line_truth: Truth, tmp_path: Path
) -> None:
    torch.set_num_threads(1)
    ids = sorted(line_truth.photos, key=lambda i: line_truth.photos[i].frame or 0)
    line = line_from_truth(line_truth, located={ids[0], ids[2]})
    pred = fit_track(line).predict(line.photo(ids[1]).frame, photo_id=ids[1])
    assert pred is not None
    req = shrunken_request(
        pred,
        photo_path=line_archive / f"photos/{ids[1]}.tif",
        references=[line_archive / "reference.tif"],
    )
    model, _ = load_model(None)
    result = locate_photo(req, tmp_path / ids[1], model=model, verify=VerifyConfig())
    assert result is not None and result.status == "accepted"
    best = read_result(tmp_path / ids[1]).best
    truth = line_truth.photos[ids[1]]
    assert best.x is not None and best.y is not None
    assert math.hypot(best.x - truth.center_x, best.y - truth.center_y) < 50.0
