"""``aeroloc train`` and ``aeroloc triplets`` through the CLI."""

from __future__ import annotations

from pathlib import Path

from aeroloc.models import read_checkpoint
from aeroloc.training.dataset import DatasetManifest
from cli_helpers import run


def test_train_command_line(manifest: DatasetManifest, tmp_path: Path) -> None:
    """``aeroloc train`` writes the checkpoint and its side files, or exits 2 with one line."""
    out = tmp_path / "cli.pt"
    result = run(
        "train", "--model", "effnet-lite0-siamese", "--data", manifest.root, "--out", out,
        "--epochs", 1, "--batch-size", 4, "--loss", "rank", "--seed", 3,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ckpt = read_checkpoint(out)
    assert ckpt.config["loss"] == "rank" and ckpt.config["epochs"] == 1
    assert out.with_suffix(".loss.png").is_file() and out.with_suffix(".history.json").is_file()
    for args, message in (
        (("--model", "alexnet", "--data", manifest.root), "unknown model 'alexnet'"),
        (("--model", "signet", "--data", tmp_path / "missing"), "missing"),
        (("--model", "signet", "--data", manifest.root, "--loss", "rank"), "rank loss"),
    ):
        bad = run("train", *args, "--out", tmp_path / "bad.pt", "--epochs", 1)
        assert bad.exit_code == 2, bad.output
        lines = bad.output.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], bad.output
        assert not (tmp_path / "bad.pt").exists()
