"""``aeroloc locate --model imlnet|olr`` end to end on the tiny archive, by name and checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch

from aeroloc.models import get_model, save_checkpoint
from cli_helpers import LOCATE_OUTPUTS, run

FAST = ["--buffer-m", "1500", "--stride", "0.5", "--no-verify"]


@pytest.mark.parametrize("model", ["imlnet", "olr"])
def test_locate_with_a_related_method(archive, catalog_args, model, tmp_path):
    out = tmp_path / model
    result = run("locate", *catalog_args(), "--model", model, *FAST, "--out", out)
    assert result.exit_code == 0, result.output
    for name in LOCATE_OUTPUTS:
        assert (out / name).is_file(), name
    res = json.loads((out / "result.json").read_text())
    assert res["model"] == model
    assert res["candidates"] and res["best"]["status"] == "unverified"
    with rasterio.open(out / "heatmap.tif") as ds:
        scores = ds.read(1)
    finite = scores[np.isfinite(scores)]
    assert finite.size > 4 and ((finite >= 0) & (finite <= 1)).all()
    # Windows score differently: the model looks at the images.
    assert float(finite.std()) > 0
    ev = tmp_path / f"{model}-ev"
    result = run("evaluate", "--truth", archive / "truth.json", "--results", out, "--out", ev)
    assert result.exit_code == 0, result.output
    assert "confidence level" in (ev / "evaluation.md").read_text()


@pytest.mark.parametrize("model", ["imlnet", "olr"])
def test_locate_with_a_checkpoint_of_the_model(archive, catalog_args, model, tmp_path):
    torch.manual_seed(0)
    ckpt = save_checkpoint(get_model(model, input_size=64), tmp_path / f"{model}.pt")
    out = tmp_path / "loc"
    result = run("locate", *catalog_args(), "--model", ckpt, *FAST, "--out", out)
    assert result.exit_code == 0, result.output
    res = json.loads((out / "result.json").read_text())
    assert res["model"] == str(ckpt)
